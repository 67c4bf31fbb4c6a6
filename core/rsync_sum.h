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
// HeadSums computes the sum of the n-byte window at many aligned offsets of
// one long stream in a single pass (one table lookup per byte), from two
// running prefix sums: with P(j) = sum_{k<j} T[b_k] and Q(j) = sum_{k<j} k*T[b_k],
//   lo(a) = P(a+n) - P(a),  hi(a) = (a+n) * lo(a) - (Q(a+n) - Q(a)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <deque>
#include <span>

namespace jigdoofus {

// The sum of `bytes`, as a template stores it (little-endian lo, then hi).
uint64_t RsyncSum64(std::span<const uint8_t> bytes);

// Head sums of every window [a, a+n) with a a multiple of `stride`, over a
// stream fed in consecutive pieces of any size. Each complete window is
// reported once, in order, as report(a, sum). Cost: one table lookup, two
// additions and a multiplication per byte, whatever n and stride are.
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
        open_.push_back({pos_, p_, q_});
        next_start_ += stride_;
      }
      if (!open_.empty() && open_.front().at + n_ == pos_) {
        const Mark& m = open_.front();
        report(m.at, Window(m));
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
    uint32_t p, q;
  };
  uint64_t Window(const Mark& m) const {
    uint32_t lo = p_ - m.p;
    uint32_t hi = static_cast<uint32_t>(m.at + n_) * lo - (q_ - m.q);
    return uint64_t{lo} | uint64_t{hi} << 32;
  }
  void Accumulate(std::span<const uint8_t> bytes);
  uint32_t n_, stride_;
  uint64_t pos_;         // position of the next byte fed
  uint64_t next_start_;  // the next window start not yet marked
  uint32_t p_ = 0, q_ = 0;   // P(pos_), Q(pos_)
  std::deque<Mark> open_;    // windows started and not yet complete, oldest first
};

}  // namespace jigdoofus
