// CachedSlice: a VerifiedSlice whose bytes live in the chunk cache.
//
// It holds no pin: a read opens a read snapshot, checks the slice is
// complete in it and checks the block checksums of exactly the bytes it
// serves. AppendTo hands those bytes to the caller as ranges of the cache's
// data file (the kernel splices them, no copy) and keeps the snapshot in
// the ReadPlan, so LMDB cannot reuse those pages until the reply was
// sent. A slice evicted meanwhile reads as kNotFound, damaged bytes as
// kCorruption: never as other bytes. Thread-safe.
// REQUIRES: the store outlives the slice.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "cache/chunk_store.h"

namespace jigdoofus {

class CachedSlice final : public VerifiedSlice {
 public:
  CachedSlice(ChunkStore* store, SliceId id, std::string key) : store_(store), id_(id), key_(std::move(key)) {}
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  Status AppendTo(uint64_t offset, size_t n, ReadPlan* plan) const override;
  void Discard() const override;

 private:
  // Reads are uses for the cache's LRU order (the resolver keeps this
  // object, so the store's Get is not asked again): noted at most once a
  // kUseNoteInterval per slice object.
  static constexpr auto kUseNoteInterval = std::chrono::seconds(1);
  void NoteUse() const;
  mutable std::atomic<int64_t> last_use_note_{0};  // steady_clock ticks
  ChunkStore* store_;
  SliceId id_;
  std::string key_;
};

}  // namespace jigdoofus
