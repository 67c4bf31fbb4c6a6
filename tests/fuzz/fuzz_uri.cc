// libFuzzer target: URI helpers and safe paths. The input is two strings
// split at the first NUL: a base and a reference. Checks: no crash;
// percent-encoding round-trips; a path judged safe has no '..' component
// and is not absolute.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/uri.h"
#include "fetch/sources/safe_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  std::string_view base = in.substr(0, nul);
  std::string_view ref = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  (void)jigdoofus::UriScheme(base);
  (void)jigdoofus::IsNetworkUrl(ref);
  (void)jigdoofus::ResolveReference(base, ref);
  (void)jigdoofus::FileUrlToPath(ref, base);
  (void)jigdoofus::DirName(base);
  if (jigdoofus::PercentDecode(jigdoofus::PercentEncodePath(ref)) != ref) std::abort();
  if (jigdoofus::IsSafeRelativePath(ref)) {
    if (ref.front() == '/') std::abort();
    std::string_view rest = ref;
    while (!rest.empty()) {
      const size_t slash = rest.find('/');
      if (rest.substr(0, slash) == "..") std::abort();
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
  }
  return 0;
}
