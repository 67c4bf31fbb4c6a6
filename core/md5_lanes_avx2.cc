// The AVX2 kernel of core/md5_lanes.h: 8 lanes. Compiled with -mavx2; runs
// only where md5_lanes.cc found AVX2. Includes nothing from the standard
// library that another translation unit could share (its inline code would
// carry AVX2 instructions there).
#include <immintrin.h>

#include "core/md5_lanes_scalar.h"
#include "core/md5_rounds.h"

namespace jigdoofus::md5_internal {
namespace {

struct Avx2Ops {
  using Vec = __m256i;
  static Vec Add(Vec a, Vec b) { return _mm256_add_epi32(a, b); }
  static Vec Set1(uint32_t k) { return _mm256_set1_epi32(static_cast<int>(k)); }
  static Vec F(Vec b, Vec c, Vec d) { return _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d))); }
  static Vec G(Vec b, Vec c, Vec d) { return _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c))); }
  static Vec H(Vec b, Vec c, Vec d) { return _mm256_xor_si256(_mm256_xor_si256(b, c), d); }
  static Vec I(Vec b, Vec c, Vec d) {
    return _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))));
  }
  template <int S>
  static Vec Rotl(Vec x) {
    return _mm256_or_si256(_mm256_slli_epi32(x, S), _mm256_srli_epi32(x, 32 - S));
  }
};

// Words [8k, 8k+8) of one block of each of 8 lanes, transposed: out[j]
// holds word 8k+j of lanes 0..7.
inline void Transpose8(const uint8_t* const* p, int k, __m256i out[8]) {
  __m256i r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p[i] + 32 * k));
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  out[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  out[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  out[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  out[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  out[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  out[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  out[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  out[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

}  // namespace

void CompressAvx2(uint32_t (*words)[16], const uint8_t* const* blocks, size_t nblocks) {
  __m256i state[4];
  for (int i = 0; i < 4; ++i) state[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(words[i]));
  const uint8_t* p[8];
  for (int i = 0; i < 8; ++i) p[i] = blocks[i];
  for (size_t b = 0; b < nblocks; ++b) {
    __m256i w[16];
    Transpose8(p, 0, w);
    Transpose8(p, 1, w + 8);
    Compress<Avx2Ops>(state, w);
    for (int i = 0; i < 8; ++i) p[i] += 64;
  }
  for (int i = 0; i < 4; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(words[i]), state[i]);
}

}  // namespace jigdoofus::md5_internal
