// libFuzzer target: decoding .jigdo bytes (plain text and gzip members in
// any order) with a 1 MiB output bound: no crash, no leak, no output past
// the bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/jigdo_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kBound = 1 << 20;
  auto text = jigdoofus::DecodeJigdoBytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", kBound);
  if (text.ok() && text->size() > kBound) std::abort();
  return 0;
}
