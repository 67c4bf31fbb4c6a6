// libFuzzer target: the .jigdo parser with includes. The input is split at
// "\n##FILE##\n" into a top-level document (remote: its origin is a URL)
// and files that [Include]s may name as i0.jigdo, i1.jigdo, ... relative to
// it; an in-memory loader serves them. Checks: no crash, no leak, bounded
// memory (the parser's budget), and that a remote document never asks the
// loader for anything but an http(s)/ftp URL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "core/jigdo_file.h"
#include "core/uri.h"

namespace {

class MapLoader final : public jigdoofus::IncludeLoader {
 public:
  std::map<std::string, std::string> files;
  jigdoofus::Result<std::string> Load(const std::string& uri) override {
    if (!jigdoofus::IsNetworkUrl(uri)) std::abort();  // a remote document reached a local name
    auto it = files.find(uri);
    if (it == files.end()) return jigdoofus::Status::NotFound(uri);
    return it->second;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSep = "\n##FILE##\n";
  MapLoader loader;
  std::string_view top = in.substr(0, in.find(kSep));
  int n = 0;
  for (size_t at = in.find(kSep); at != std::string_view::npos; ++n) {
    const size_t start = at + kSep.size();
    const size_t next = in.find(kSep, start);
    loader.files["http://h/d/i" + std::to_string(n) + ".jigdo"] =
        std::string(in.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start));
    at = next;
  }
  auto f = jigdoofus::ParseJigdo(top, "http://h/d/top.jigdo", &loader);
  if (f.ok()) {
    for (const auto& image : f->images()) (void)image.filename.size();
    (void)f->part_count();
  }
  return 0;
}
