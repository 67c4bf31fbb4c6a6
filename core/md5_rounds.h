// The 64 steps of MD5's compression function (RFC 1321), written once over
// a "vector" type so that one definition serves the scalar fallback and
// the AVX2 (8 lanes) and AVX-512 (16 lanes) multi-buffer kernels
// (core/md5_lanes.h): lane i of every vector belongs to message i.
//
// V provides: Vec; Add, Set1; F, G, H, I (MD5's round functions); Rotl<S>.
// Include only from the md5_lanes*.cc files: it must be compiled with the
// instruction set of the V it is used with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace jigdoofus::md5_internal {

inline constexpr uint32_t kK[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
inline constexpr int kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

// The RFC's initial state.
inline constexpr uint32_t kInit[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

constexpr int MessageIndex(int i) {
  return i < 16 ? i : i < 32 ? (5 * i + 1) % 16 : i < 48 ? (3 * i + 5) % 16 : (7 * i) % 16;
}

template <class V, int I>
inline void Step(typename V::Vec s[4], const typename V::Vec w[16]) {
  // Step I updates a, d, c, b, a, ... in turn; the other three follow it.
  constexpr int t = (4 - I % 4) % 4;
  typename V::Vec& a = s[t];
  const typename V::Vec b = s[(t + 1) % 4], c = s[(t + 2) % 4], d = s[(t + 3) % 4];
  typename V::Vec f;
  if constexpr (I < 16) {
    f = V::F(b, c, d);
  } else if constexpr (I < 32) {
    f = V::G(b, c, d);
  } else if constexpr (I < 48) {
    f = V::H(b, c, d);
  } else {
    f = V::I(b, c, d);
  }
  const typename V::Vec sum = V::Add(V::Add(a, f), V::Add(V::Set1(kK[I]), w[MessageIndex(I)]));
  a = V::Add(b, V::template Rotl<kShift[I / 16][I % 4]>(sum));
}

template <class V, int... I>
inline void AllSteps(typename V::Vec s[4], const typename V::Vec w[16], std::integer_sequence<int, I...>) {
  (Step<V, I>(s, w), ...);
}

// One block: state += rounds(state, w).
template <class V>
inline void Compress(typename V::Vec state[4], const typename V::Vec w[16]) {
  typename V::Vec s[4] = {state[0], state[1], state[2], state[3]};
  AllSteps<V>(s, w, std::make_integer_sequence<int, 64>());
  for (int i = 0; i < 4; ++i) state[i] = V::Add(state[i], s[i]);
}

}  // namespace jigdoofus::md5_internal
