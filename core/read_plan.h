// ReadPlan: one read of an image, resolved but not yet copied. Each part is
// either a byte range of an open file (a verified slice's file, or the
// cache's data file) that fs/ may splice to the kernel, or a range of
// `memory` (literal template bytes, or slice bytes that had to be copied).
//
// Whatever keeps a part's bytes valid (an open slice holding its fd, a
// read snapshot of the cache pinning its pages) is held by the plan until
// it is cleared or destroyed: a plan must live until its reply was sent.
// Not thread-safe: one plan per read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace jigdoofus {

struct ReadPlan {
  struct Part {
    size_t length = 0;
    // >= 0: the bytes are fd at file offset `pos`. -1: memory[pos, pos + length).
    int fd = -1;
    uint64_t pos = 0;
  };
  std::vector<Part> parts;
  // Keeps the parts' bytes valid: (owner, hold); see HoldFor and Keep.
  std::vector<std::pair<const void*, std::shared_ptr<void>>> holds;
  std::vector<std::shared_ptr<const void>> kept;
  // Not value-initialised (no zeroing); grown on demand, reused across
  // reads on the same ReadPlan.
  std::unique_ptr<uint8_t[]> memory;
  size_t memory_capacity = 0;
  size_t memory_used = 0;
  size_t size = 0;  // sum of the parts' lengths

  // Drops the parts and releases every hold.
  void Clear() {
    parts.clear();
    holds.clear();
    kept.clear();
    memory_used = 0;
    size = 0;
  }
  // Appends an n-byte memory part (merged with a memory part before it)
  // and returns its bytes for the caller to fill. Grows `memory` to at
  // least `capacity_hint` bytes when it has to grow.
  std::span<uint8_t> AppendMemory(size_t n, size_t capacity_hint = 0);
  // Appends n bytes of `fd` at file offset `pos` (merged with the part
  // before it when that one ends there in the same file).
  void AppendFile(int fd, uint64_t pos, size_t n);
  // The hold registered under `owner` (one per owner: a cache keeps one
  // read snapshot per plan), or null. The second form registers one; it
  // lives as long as the plan's parts (until Clear).
  void* HoldFor(const void* owner) const {
    for (const auto& [o, h] : holds) {
      if (o == owner && owner != nullptr) return h.get();
    }
    return nullptr;
  }
  void HoldFor(const void* owner, std::shared_ptr<void> hold) { holds.emplace_back(owner, std::move(hold)); }
  // Keeps `object` (a slice whose open file the parts name) alive until
  // Clear, whoever else lets go of it meanwhile.
  void Keep(std::shared_ptr<const void> object) {
    if (kept.empty() || kept.back() != object) kept.push_back(std::move(object));
  }
};

}  // namespace jigdoofus
