// Fixed-width integer encoding for LMDB keys and values (doc/cache_format.md).
// Keys use big-endian so LMDB's byte order sorts them numerically; values
// use little-endian. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace jigdoofus::cache_bytes {

// REQUIRES: 1 <= n <= 8 and p has room for n bytes.
inline void PutBe(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
}
inline uint64_t GetBe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
inline void PutLe(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t GetLe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}
inline std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace jigdoofus::cache_bytes
