// SliceProvider: where the assembler gets slice bytes from. Implemented in
// fetch/ (local trees, scanned trees, cache, mirrors); faked in tests.
//
// The contract that makes jigdoofus bit-exact: a VerifiedSlice exists only
// for bytes whose whole-slice checksum has been verified. Readers never see
// unverified data.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "core/result.h"
#include "core/template_index.h"

namespace jigdoofus {

// Per-request limits: when to give up, and whether the caller still cares
// (fuse_req_interrupted). Both are optional.
struct FetchContext {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<bool()> interrupted;  // may be empty
  bool expired() const { return std::chrono::steady_clock::now() >= deadline; }
  bool cancelled() const { return interrupted && interrupted(); }
};

// The bytes of one slice, verified. Thread-safe (concurrent ReadAt).
class VerifiedSlice {
 public:
  virtual ~VerifiedSlice() = default;
  virtual const SliceId& id() const = 0;
  // REQUIRES: offset + out.size() <= id().size. Short reads are errors
  // (the backing file shrank): kIOError naming the file.
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) const = 0;
  // If the bytes are a range of an open file: its fd and the file offset
  // of slice byte 0 (lets fs/ splice). Otherwise fd() is -1.
  virtual int fd() const { return -1; }
  virtual uint64_t fd_offset() const { return 0; }
  // Whether a holder (the resolver's LRU of open slices) should keep this
  // object rather than ask again. False when holding it costs more than
  // reopening: a chunk-cache slice pins its bytes against eviction, while
  // getting it again is one read transaction.
  virtual bool worth_keeping_open() const { return true; }
};

class SliceProvider {
 public:
  virtual ~SliceProvider() = default;
  // Returns the verified slice or: kNotFound (no source knows it),
  // kUnavailable (offline, every server failed), kCorruption (every
  // candidate failed its checksum), kTimedOut, kCancelled.
  // Thread-safe; concurrent calls for one slice share one fetch.
  virtual Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& slice,
                                                           const FetchContext& ctx) = 0;
};

}  // namespace jigdoofus
