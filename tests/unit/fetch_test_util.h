// Helpers shared by the fetch/ unit tests: a temporary directory, file
// writing, slice ids from content, reading a whole VerifiedSlice.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/digest.h"
#include "core/slice_provider.h"
#include "tests/unit/temp_dir.h"

namespace jigdoofus::testing_util {


inline void WriteFile(const std::string& path, std::string_view content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline SliceId IdOf(std::string_view content, HashAlgo algo = HashAlgo::kSha256) {
  return SliceId{HashBytes(algo, Bytes(content)), content.size()};
}

// Deterministic pseudo-random content of `n` bytes, distinct per `seed`.
inline std::string Content(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return s;
}

inline std::string ReadAll(const VerifiedSlice& slice) {
  std::string out(slice.id().size, '\0');
  Status st = slice.ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

}  // namespace jigdoofus::testing_util
