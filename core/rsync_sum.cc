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
  uint32_t p = p_, q = q_;
  auto k = static_cast<uint32_t>(pos_);
  for (uint8_t b : bytes) {
    uint32_t t = kTable[b];
    p += t;
    q += k * t;
    ++k;
  }
  p_ = p;
  q_ = q;
  pos_ += bytes.size();
}

}  // namespace jigdoofus
