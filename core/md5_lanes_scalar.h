// The scalar "vector" of core/md5_rounds.h: one lane. Internal to md5_lanes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace jigdoofus::md5_internal {

struct ScalarOps {
  using Vec = uint32_t;
  static Vec Add(Vec a, Vec b) { return a + b; }
  static Vec Set1(uint32_t k) { return k; }
  static Vec F(Vec b, Vec c, Vec d) { return d ^ (b & (c ^ d)); }
  static Vec G(Vec b, Vec c, Vec d) { return c ^ (d & (b ^ c)); }
  static Vec H(Vec b, Vec c, Vec d) { return b ^ c ^ d; }
  static Vec I(Vec b, Vec c, Vec d) { return c ^ (b | ~d); }
  template <int S>
  static Vec Rotl(Vec x) {
    return (x << S) | (x >> (32 - S));
  }
};

// The rounds of md5_rounds.h for one stream, in plain C++: the fallback
// where OpenSSL's low-level MD5 is not available.
void CompressPortable(uint32_t state[4], const uint8_t* blocks, size_t nblocks);

// Kernels compiled for other instruction sets (md5_lanes_avx2.cc,
// md5_lanes_avx512.cc). REQUIRES the CPU has them.
void CompressAvx2(uint32_t (*words)[16], const uint8_t* const* blocks, size_t nblocks);
void CompressAvx512(uint32_t (*words)[16], const uint8_t* const* blocks, size_t nblocks);

}  // namespace jigdoofus::md5_internal
