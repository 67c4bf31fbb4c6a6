#include "core/rsync_sum.h"

namespace jigdoofus {
namespace {

constexpr uint32_t kTable[256] = {
#include "core/rsync_sum_table.inc"
};

}  // namespace

uint64_t RsyncSum64(std::span<const uint8_t> bytes) {
  uint32_t lo = 0, hi = 0;
  for (uint8_t b : bytes) {
    lo += kTable[b];
    hi += lo;
  }
  return uint64_t{lo} | uint64_t{hi} << 32;
}

void HeadSums::Accumulate(std::span<const uint8_t> bytes) {
  // Four interleaved sums: independent chains, so the table lookups
  // overlap instead of waiting on one addition each.
  const uint8_t* b = bytes.data();
  const size_t n = bytes.size();
  uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += kTable[b[j]];
    s1 += kTable[b[j + 1]];
    s2 += kTable[b[j + 2]];
    s3 += kTable[b[j + 3]];
  }
  for (; j < n; ++j) s0 += kTable[b[j]];
  p_ += s0 + s1 + s2 + s3;
  pos_ += n;
}

}  // namespace jigdoofus
