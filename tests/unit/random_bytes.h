// Seeded pseudo-random test data: the same bytes for the same seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace jigdoofus::testing_util {

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

inline std::vector<uint8_t> RandomByteVector(size_t n, uint32_t seed) {
  const std::string s = RandomBytes(n, seed);
  return {s.begin(), s.end()};
}

}  // namespace jigdoofus::testing_util
