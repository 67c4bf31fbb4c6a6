// Multi-buffer MD5: several independent messages hashed at once, one per
// SIMD lane (8 with AVX2, 16 with AVX-512), with runtime CPU dispatch and a
// scalar fallback.
//
// Why: MD5 is one long dependency chain per message, so one stream runs at
// about 0.7 GB/s on one core whatever the CPU; Debian's .jigdo files use MD5
// by default, and a first mount from a local tree, a scan or a prefetch
// hash many slices at the same time. Eight or sixteen chains side by side
// keep the core's vector units busy. No library packaged in Debian 12 does
// this (OpenSSL hashes one stream per call), so it is written here; OpenSSL
// stays in use for single streams and for SHA256 (SHA-NI beats
// multi-buffer there). Tested against OpenSSL over all lengths and
// alignments (tests/unit/md5_lanes_test.cc).
//
// Md5Streams hashes a list of messages that arrive through read callbacks
// (files, memory), refilling a lane as soon as its message ends.
// Thread-compatible: one Md5Streams per thread; the kernels are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/digest.h"
#include "core/fetch_context.h"
#include "core/result.h"

namespace jigdoofus {

enum class Md5Kernel : uint8_t { kScalar, kAvx2, kAvx512 };

inline constexpr size_t kMd5MaxLanes = 16;

// The widest kernel this CPU runs. JIGDOOFUS_MD5_KERNEL=scalar|avx2|avx512
// in the environment lowers it (never raises it past what the CPU has).
Md5Kernel BestMd5Kernel();
bool Md5KernelSupported(Md5Kernel k);
size_t Md5KernelLanes(Md5Kernel k);  // 1, 8, 16
const char* Md5KernelName(Md5Kernel k);

// Lane states, structure of arrays: words[i][lane].
struct Md5LaneStates {
  alignas(64) uint32_t words[4][kMd5MaxLanes];
  void Reset(size_t lane);
};

// Compresses `nblocks` 64-byte blocks of every lane of the kernel:
// blocks[lane] points at nblocks * 64 readable bytes (any bytes for a lane
// whose state does not matter). REQUIRES Md5KernelSupported(k).
void Md5CompressLanes(Md5Kernel k, Md5LaneStates* states, const uint8_t* const* blocks, size_t nblocks);
// One lane, scalar.
void Md5CompressOne(Md5LaneStates* states, size_t lane, const uint8_t* blocks, size_t nblocks);
// Pads the lane's message (`tail`: its last size % 64 bytes, `size`: its
// whole length) and returns its digest.
Digest Md5FinishLane(Md5LaneStates* states, size_t lane, std::span<const uint8_t> tail, uint64_t size);

struct Md5Stream {
  uint64_t size = 0;
  // Copies message bytes [offset, offset + out.size()) into out; returns
  // how many it copied (0: the message ended early, an error).
  std::function<Result<size_t>(uint64_t offset, std::span<uint8_t> out)> read;
};

// The lanes of one kernel, each hashing one stream: buffers (64 KiB a
// lane), states, and the step that refills, finishes and compresses.
// Md5Streams and Md5Batcher (core/md5_batcher.h) drive it. Not thread-safe.
class Md5LaneEngine {
 public:
  explicit Md5LaneEngine(Md5Kernel kernel);
  size_t width() const { return width_; }
  size_t active() const { return active_; }
  // Puts `stream` (which must outlive its lane) into a free lane, under
  // `id`; false if every lane is busy.
  bool Admit(const Md5Stream* stream, uint64_t id);
  // Frees the lane of `id` without a result.
  void Drop(uint64_t id);
  // Refills lanes that need bytes, finishes the streams that are read
  // whole, then compresses as many blocks as every busy lane holds, with
// the narrowest kernel (up to the engine's) that covers the busy lanes.
  // Calls done(id, digest or read error) for each stream that ended.
  void Step(const std::function<void(uint64_t, Result<Digest>)>& done);

 private:
  static constexpr size_t kLaneBuffer = size_t{64} << 10;
  // Moves busy lanes below `width`. REQUIRES active_ <= width.
  void Compact(size_t width);
  struct Lane {
    const Md5Stream* stream = nullptr;  // null: free
    uint64_t id = 0;
    uint64_t read = 0;        // message bytes read into buf so far
    size_t pos = 0, len = 0;  // unhashed bytes are buf[pos, len)
    uint8_t* buf = nullptr;
  };
  Md5Kernel kernel_;
  size_t width_;
  std::unique_ptr<uint8_t[]> buffers_;
  uint8_t* idle_ = nullptr;  // blocks for lanes with no stream
  std::vector<Lane> lanes_;
  size_t active_ = 0;
  Md5LaneStates states_{};
};

// Hashes every stream; result i is stream i's digest or the error of its
// read (kIOError when it ended early; kCancelled / kTimedOut from ctx,
// checked between refills).
std::vector<Result<Digest>> Md5Streams(std::span<const Md5Stream> streams, const FetchContext& ctx,
                                       Md5Kernel kernel = BestMd5Kernel());

}  // namespace jigdoofus
