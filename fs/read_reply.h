// ReadReply: how one FUSE read is answered, built from its ReadPlan.
//
// The policy: literal bytes only (one memory part) are sent from the plan's
// memory; a plan of at least kMinSpliceBytes whose parts fit the splice
// budget is sent as fd-backed buffers libfuse splices (file ranges: verified local files or the
// cache's data file under a read snapshot the plan holds); anything else
// (small replies, splice off, more parts than the pipe holds) is copied
// once into a pooled buffer. Built by BuildReadReply (unit-tested); OpRead only sends
// it. FUSE-free apart from the fuse_bufvec it fills.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

#include "core/read_plan.h"
#include "core/result.h"
#include "fs/buffer_pool.h"
#include "fs/splice_budget.h"

namespace jigdoofus {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using BufVecPtr = std::unique_ptr<fuse_bufvec, FreeDeleter>;

struct ReadReply {
  enum class Kind { kEmpty, kMemory, kFileBacked };
  Kind kind = Kind::kEmpty;
  const uint8_t* data = nullptr;  // kMemory: size bytes
  size_t size = 0;
  BufVecPtr bufv;                 // kFileBacked
  // Own a copied reply (kMemory that is not the plan's memory).
  std::optional<BufferPool::Lease> lease;
  std::unique_ptr<uint8_t[]> large;
};

// Replies smaller than this are copied even when they could be spliced:
// libfuse splices with three system calls (vmsplice of the header, splice
// in, splice out) where a copy takes two (pread, writev). Random 4 KiB
// reads from the chunk cache, 1 GB image, 5 alternating runs: spliced
// 21.2k/s and 560 ms of daemon CPU per 20,000 reads (medians), copied
// below 64 KiB 23.6k/s and 520 ms.
inline constexpr size_t kMinSpliceBytes = 64 << 10;

struct ReplyPolicy {
  bool splice = true;
  size_t min_splice_bytes = kMinSpliceBytes;
  const SpliceBudget* budget = nullptr;
  BufferPool* buffers = nullptr;
};

// Builds the reply for `plan` (which must outlive the reply). Copying
// fails only if a file range cannot be read whole: kIOError naming it.
Result<ReadReply> BuildReadReply(const ReadPlan& plan, const ReplyPolicy& policy);

// Copies the bytes of `plan` into out[0, plan.size).
Status CopyPlan(const ReadPlan& plan, uint8_t* out);

}  // namespace jigdoofus
