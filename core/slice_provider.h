// SliceProvider: where the assembler gets slice bytes from. Implemented in
// fetch/ (local trees, scanned trees, the chunk cache, mirrors); faked in
// tests.
//
// The contract that makes jigdoofus bit-exact: a VerifiedSlice exists only
// for bytes whose whole-slice checksum has been verified, and it hands out
// bytes only while they are still those bytes. Readers never see
// unverified data.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/fetch_context.h"
#include "core/read_plan.h"
#include "core/result.h"
#include "core/slice_id.h"

namespace jigdoofus {

// The bytes of one slice, verified. Thread-safe (concurrent reads).
class VerifiedSlice {
 public:
  virtual ~VerifiedSlice() = default;
  virtual const SliceId& id() const = 0;
  // Copies slice bytes [offset, offset + out.size()) into out.
  // REQUIRES: offset + out.size() <= id().size.
  // Errors: kIOError (the backing file shrank or failed), kCorruption
  // (stored bytes no longer match what was verified: call Discard, get the
  // slice again), kNotFound (the bytes are gone, e.g. evicted from the
  // cache by another process: get the slice again).
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) const = 0;
  // Appends slice bytes [offset, offset + n) to `plan`: as a range of a
  // file the caller may splice, or copied into plan memory. Whatever must
  // stay alive for those bytes (besides this object, which the caller
  // keeps in the plan: ReadPlan::Keep) is held by the plan. Errors as ReadAt.
  // The default serves fd() ranges (checking the file still holds them)
  // and copies otherwise.
  virtual Status AppendTo(uint64_t offset, size_t n, ReadPlan* plan) const;
  // If the bytes are a range of an open file: its fd and the file offset
  // of slice byte 0. Otherwise fd() is -1.
  virtual int fd() const { return -1; }
  virtual uint64_t fd_offset() const { return 0; }
  // Whether a holder (the resolver's LRU of open slices) should keep this
  // object rather than ask again. False for slices held in memory: their
  // owner keeps them within a memory budget.
  virtual bool worth_keeping_open() const { return true; }
  // The bytes were found damaged (kCorruption from a read): forget them
  // wherever they are kept, so the next Get fetches the slice anew.
  virtual void Discard() const {}
};

class SliceProvider {
 public:
  virtual ~SliceProvider() = default;
  // Returns the verified slice or: kNotFound (no source knows it),
  // kUnavailable (offline, every server failed), kCorruption (every
  // candidate failed its checksum), kNoSpace, kTimedOut, kCancelled.
  // Thread-safe; concurrent calls for one slice share one fetch.
  virtual Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& slice,
                                                           const FetchContext& ctx) = 0;
  // Drops any slice object kept for `slice` (it went bad or went away), so
  // the next Get asks the sources again.
  virtual void Forget(const SliceId& slice) {}
  // Whether Get would answer at once from a slice kept open (no source
  // asked, no waiting): read-ahead skips such slices. Never blocks.
  virtual bool IsOpen(const SliceId& slice) const { return false; }
};

}  // namespace jigdoofus
