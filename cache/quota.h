// Quota: how many slice bytes the chunk cache may hold, who may write a
// slice, and what is evicted to make room (the way CernVM-FS keeps its
// QuotaManager apart from the cache manager).
//
// The bound is --cache-size, lowered for the rest of the process when the
// disk says otherwise: a write that fails for lack of space (ENOSPC,
// EDQUOT, a full map) sets the effective bound to 90% of what was stored
// then (a warning the first time, shown in the status file), and eviction
// keeps to it from then on. A full disk is a capacity, not a failure.
//
// Admission is decided inside the write transaction that stages a slice,
// as one of the typed outcomes below; only LMDB failures are errors.
// Thread-safe (atomics); the transactional parts run in the caller's txn.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "cache/chunk_tables.h"

namespace jigdoofus {

enum class Admission {
  kWrite,            // staged and charged: write it
  kAlreadyComplete,  // the slice is in the cache: read it
  kBusyElsewhere,    // another writer (here or in a live process) has it staged
  kNoRoomNow,        // the bound is taken by slices being written
  kTooLarge,         // larger than the whole (effective) bound: never stored
};

class Quota {
 public:
  explicit Quota(uint64_t capacity) : capacity_(capacity), bound_(capacity) {}

  // The bound in force: capacity, or lower after the disk filled.
  uint64_t bound() const { return bound_.load(std::memory_order_relaxed); }
  bool fits_at_all(uint64_t size) const { return size <= bound(); }

  // In a write transaction: the admission of `id` (slice key `key`) for
  // writer `self`. kWrite stages the record and charges its size, evicting
  // least recently used complete slices first if needed.
  Result<Admission> Admit(LmdbTxn& txn, const ChunkTables& t, const SliceId& id, const std::string& key,
                          const WriterIdentity& self);
  // In a write transaction: evicts least recently used complete slices
  // until at most `target` bytes are charged (all_or_nothing: evicts
  // nothing unless that can be reached); returns how many it evicted.
  Result<uint64_t> EvictTo(LmdbTxn& txn, const ChunkTables& t, uint64_t target, cache_record::Totals& totals,
                           bool all_or_nothing);

  // A write failed for lack of space with `used` bytes charged: lowers the
  // bound to 90% of that (never raises it). Returns the new bound.
  uint64_t LowerAfterNoSpace(uint64_t used, const std::string& dir);

  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  uint64_t no_space_events() const { return no_space_.load(std::memory_order_relaxed); }

 private:
  const uint64_t capacity_;
  std::atomic<uint64_t> bound_;
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> no_space_{0};
  std::atomic<bool> warned_{false};
};

}  // namespace jigdoofus
