// Status -> errno: the one place where jigdoofus errors become what a
// reader of the mount sees, and the per-cause counters that say why reads
// failed (they appear in the status file).
//
// Every EIO has a cause tag ("eio-not-found", "eio-unavailable",
// "eio-corruption", "eio-io-error", "eio-timed-out", ...) used both in its
// log line and as its counter name.
//
// Thread-safe: ErrnoFromStatus is pure; FailureCounters is lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace jigdoofus {

// 0 for OK. kNotFound / kUnavailable / kCorruption / kIOError / kTimedOut /
// kNotSupported / kNoSpace / kInternal => EIO (the file exists; its bytes
// could not be produced), kCancelled => EINTR, kInvalidArgument => EINVAL
// (only for requests that are themselves wrong, never for a read that
// failed inside jigdoofus: that is kInternal, "eio-internal").
int ErrnoFromStatus(const Status& status);

// "eio-not-found", ..., "eintr-cancelled", "einval-invalid-argument".
const char* FailureTag(Status::Code code);

inline constexpr size_t kStatusCodeCount = static_cast<size_t>(Status::Code::kInternal) + 1;

// Counts failed requests per Status code.
class FailureCounters {
 public:
  void Count(Status::Code code) { counts_[Index(code)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t Get(Status::Code code) const { return counts_[Index(code)].load(std::memory_order_relaxed); }
  // tag -> count, every non-OK code (zeros included, so the schema is stable).
  std::map<std::string, uint64_t> Snapshot() const;

 private:
  static size_t Index(Status::Code code) {
    size_t i = static_cast<size_t>(code);
    return i < kStatusCodeCount ? i : 0;
  }
  std::array<std::atomic<uint64_t>, kStatusCodeCount> counts_{};
};

}  // namespace jigdoofus
