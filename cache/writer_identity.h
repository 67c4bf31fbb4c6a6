// WriterIdentity: which process writes a staging slice, so that staging
// left by a process that is gone (kill -9, power cut) can be told from
// staging of a live process sharing the cache directory. Boot id, pid and
// process start time: pids are reused, but the same pid with the same
// start time in the same boot is the same process. Read from /proc.
#pragma once

#include <array>
#include <cstdint>

namespace jigdoofus {

struct WriterIdentity {
  std::array<uint8_t, 16> boot{};
  uint32_t pid = 0;
  uint64_t start = 0;  // clock ticks since boot (/proc/<pid>/stat field 22)
  friend bool operator==(const WriterIdentity&, const WriterIdentity&) = default;
};

// This process.
WriterIdentity SelfWriterIdentity();
// True if `o` is a live process other than `self` (not a zombie, same
// boot, same start time).
bool IsOtherLiveProcess(const WriterIdentity& o, const WriterIdentity& self);

}  // namespace jigdoofus
