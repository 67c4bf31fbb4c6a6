// The AVX-512 kernel of core/md5_lanes.h: 16 lanes, with native rotates and
// the round functions as single ternary-logic instructions. Compiled with
// -mavx512f; runs only where md5_lanes.cc found AVX-512F. Like the AVX2
// kernel, it includes nothing from the standard library.
#include <immintrin.h>

#include "core/md5_lanes_scalar.h"
#include "core/md5_rounds.h"

namespace jigdoofus::md5_internal {
namespace {

struct Avx512Ops {
  using Vec = __m512i;
  static Vec Add(Vec a, Vec b) { return _mm512_add_epi32(a, b); }
  static Vec Set1(uint32_t k) { return _mm512_set1_epi32(static_cast<int>(k)); }
  // Truth tables over (b, c, d) = (0xf0, 0xcc, 0xaa).
  static Vec F(Vec b, Vec c, Vec d) { return _mm512_ternarylogic_epi32(b, c, d, 0xca); }
  static Vec G(Vec b, Vec c, Vec d) { return _mm512_ternarylogic_epi32(b, c, d, 0xe4); }
  static Vec H(Vec b, Vec c, Vec d) { return _mm512_ternarylogic_epi32(b, c, d, 0x96); }
  static Vec I(Vec b, Vec c, Vec d) { return _mm512_ternarylogic_epi32(b, c, d, 0x39); }
  template <int S>
  static Vec Rotl(Vec x) {
    return _mm512_rol_epi32(x, S);
  }
};

// Word j of one block of each of 16 lanes: a gather per word, from the
// lanes' blocks copied side by side (16 x 64 bytes).
inline void LoadBlock(const uint8_t* const* p, __m512i w[16]) {
  alignas(64) uint32_t staged[16][16];  // [lane][word]
  for (int lane = 0; lane < 16; ++lane) {
    _mm512_store_si512(staged[lane], _mm512_loadu_si512(p[lane]));
  }
  const __m512i index = _mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64, 48, 32, 16, 0);
  for (int j = 0; j < 16; ++j) w[j] = _mm512_i32gather_epi32(index, &staged[0][j], 4);
}

}  // namespace

void CompressAvx512(uint32_t (*words)[16], const uint8_t* const* blocks, size_t nblocks) {
  __m512i state[4];
  for (int i = 0; i < 4; ++i) state[i] = _mm512_load_si512(words[i]);
  const uint8_t* p[16];
  for (int i = 0; i < 16; ++i) p[i] = blocks[i];
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i w[16];
    LoadBlock(p, w);
    Compress<Avx512Ops>(state, w);
    for (int i = 0; i < 16; ++i) p[i] += 64;
  }
  for (int i = 0; i < 4; ++i) _mm512_store_si512(words[i], state[i]);
}

}  // namespace jigdoofus::md5_internal
