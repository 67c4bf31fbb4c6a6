// libFuzzer target: the template reader and index, the literal store and
// the part decoders behind it. When the index accepts the input, the whole
// literal stream is read twice: front to back in one read, and in pieces
// at awkward offsets (which go through the decoders' restart points); the
// two must be the same bytes, or fail alike.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/byte_source.h"
#include "core/literal_store.h"
#include "core/template_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = std::make_shared<jigdoofus::MemoryByteSource>(
      "fuzz.template", std::string(reinterpret_cast<const char*>(data), size));
  auto index = jigdoofus::ReadTemplateIndex(*file);
  if (!index.ok()) return 0;
  auto shared = std::make_shared<const jigdoofus::TemplateIndex>(std::move(index).value());
  const uint64_t n = shared->literal_size();
  if (n > (uint64_t{8} << 20)) return 0;  // bounded work per input
  jigdoofus::LiteralStore whole(file, shared);
  std::vector<uint8_t> a(n), b(n);
  const bool ok_a = whole.ReadAt(0, a).ok();
  jigdoofus::LiteralStore pieces(file, shared);
  bool ok_b = true;
  for (uint64_t at = 0, step = 1; at < n && ok_b; at += step, step = step * 3 + 7) {
    const uint64_t len = std::min<uint64_t>(step, n - at);
    ok_b = pieces.ReadAt(at, std::span<uint8_t>(b.data() + at, len)).ok();
    // Backwards too: a restart point before the last one read.
    if (ok_b && at > 0) ok_b = pieces.ReadAt(at / 2, std::span<uint8_t>(b.data() + at / 2, 1)).ok();
  }
  if (ok_a && ok_b && a != b) std::abort();  // restart points disagree with the sequential decode
  return 0;
}
