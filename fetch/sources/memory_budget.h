// MemoryBudget: bytes of one kind held in memory at once, across threads,
// so that no input can exhaust memory. Used for slices the cache cannot
// keep (fetch/sources/memory_slice.h) and for the bytes a piece plan holds
// out of slice order (fetch/sources/piece_plan.h). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace jigdoofus {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}
  // Takes n bytes of the budget; false (nothing taken) if they do not fit.
  bool TryTake(uint64_t n);
  // Takes n bytes even past the limit (a caller that checked for room
  // just before, and may go over by what others took since).
  void Take(uint64_t n) { used_.fetch_add(n, std::memory_order_relaxed); }
  void Give(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace jigdoofus
