// RsyncSum64: jigdo's checksum of a file's first blockLen bytes, as stored
// in template DESC entries of types 6 and 9 (TechDetails.txt). It lets a
// scan reject a candidate after reading one small block instead of hashing
// a whole file or a whole byte range.
//
// Over bytes b_0 .. b_{n-1} and a fixed table T of 256 words:
//   lo = sum T[b_i],  hi = sum (n - i) * T[b_i]  (mod 2^32);  sum = lo | hi << 32
// The table (core/rsync_sum_table.inc) was derived from jigdo-file's own
// templates by tests/tools/derive_rsync_table.py; rsync_sum_test checks it
// against templates written by jigdo-file and by xorriso's JTE.
//
// HeadSums scans one long stream for windows whose sum may be wanted: it
// gives the low half (lo) of the sum of the n-byte window at every aligned
// offset, in one pass at one table lookup and one addition per byte, from
// the prefix sum P(j) = sum_{k<j} T[b_k]: lo(a) = P(a+n) - P(a). The high
// half needs a multiplication per byte; a caller computes it, with
// RsyncSum64, only for the windows whose lo it wants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <deque>
#include <span>

namespace jigdoofus {

// The sum of `bytes`, as a template stores it (little-endian lo, then hi).
uint64_t RsyncSum64(std::span<const uint8_t> bytes);

// The low halves of the head sums of every window [a, a+n) with a a
// multiple of `stride`, over a stream fed in consecutive pieces of any
// size. Each complete window is reported once, in order, as report(a, lo).
// Memory: one mark per window open at a time (n / stride + 1).
class HeadSums {
 public:
  // The stream's first byte is at `start` (a scan resumed part-way, or a
  // range of a file); windows start at multiples of `stride` from 0.
  // REQUIRES n > 0, stride > 0.
  HeadSums(uint32_t n, uint32_t stride, uint64_t start = 0)
      : n_(n), stride_(stride), pos_(start), next_start_((start + stride - 1) / stride * stride) {}
  template <typename Fn>
  void Feed(std::span<const uint8_t> piece, Fn&& report) {
    for (;;) {
      if (pos_ == next_start_) {
        open_.push_back({pos_, p_});
        next_start_ += stride_;
      }
      if (!open_.empty() && open_.front().at + n_ == pos_) {
        report(open_.front().at, p_ - open_.front().p);
        open_.pop_front();
      }
      if (piece.empty()) return;
      uint64_t next = next_start_;
      if (!open_.empty()) next = std::min(next, open_.front().at + n_);
      size_t run = static_cast<size_t>(std::min<uint64_t>(next - pos_, piece.size()));
      Accumulate(piece.first(run));
      piece = piece.subspan(run);
    }
  }
  uint64_t position() const { return pos_; }

 private:
  struct Mark {
    uint64_t at;
    uint32_t p;
  };
  void Accumulate(std::span<const uint8_t> bytes);
  uint32_t n_, stride_;
  uint64_t pos_;           // position of the next byte fed
  uint64_t next_start_;    // the next window start not yet marked
  uint32_t p_ = 0;         // P(pos_)
  std::deque<Mark> open_;  // windows started and not yet complete, oldest first
};

// The low half of a head sum (what HeadSums reports).
inline uint32_t HeadSumLow(uint64_t sum) { return static_cast<uint32_t>(sum); }

}  // namespace jigdoofus
