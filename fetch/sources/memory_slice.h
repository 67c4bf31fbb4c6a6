// Slices held in memory: what a reader still gets when the cache cannot
// keep a slice (larger than the cache's bound, no room now, a disk that
// stays full). The bytes are downloaded into memory, verified as a whole,
// and only then served; they count against a MemoryBudget (bytes of such
// slices alive at once) so that no input can exhaust memory.
//
// MemorySlice is thread-safe; a MemorySink is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/digest.h"
#include "core/slice_provider.h"
#include "fetch/sources/memory_budget.h"
#include "fetch/sources/slice_sink.h"

namespace jigdoofus {

class MemorySlice final : public VerifiedSlice {
 public:
  // Adopts `bytes` (already verified) and the budget share they hold.
  MemorySlice(SliceId id, std::vector<uint8_t> bytes, std::shared_ptr<MemoryBudget> budget);
  ~MemorySlice() override;
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  // Holding it costs memory: keep it only where the budget is managed.
  bool worth_keeping_open() const override { return false; }

 private:
  SliceId id_;
  std::vector<uint8_t> bytes_;
  std::shared_ptr<MemoryBudget> budget_;
};

// Gathers a slice's bytes, hashing them; Finish() verifies and returns the
// MemorySlice. Reserve() must succeed first.
class MemorySink final : public SliceSink {
 public:
  MemorySink(SliceId id, std::shared_ptr<MemoryBudget> budget);
  ~MemorySink() override;
  MemorySink(const MemorySink&) = delete;
  MemorySink& operator=(const MemorySink&) = delete;
  bool Reserve();  // takes id.size bytes of the budget
  Status Append(std::span<const uint8_t> bytes) override;
  Result<std::shared_ptr<const VerifiedSlice>> Finish() override;

 private:
  SliceId id_;
  std::shared_ptr<MemoryBudget> budget_;
  bool reserved_ = false;
  Hasher hasher_;
  std::vector<uint8_t> bytes_;
};

}  // namespace jigdoofus
