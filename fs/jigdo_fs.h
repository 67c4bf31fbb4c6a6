// JigdoFs: the FUSE low-level adapter. The mount root (inode 1) holds one
// read-only regular file per image of an ImageSet, plus the hidden status
// file ".jigdoofus-status" (JSON, see doc/jigdoofus.1): a snapshot taken at
// open(2), served with direct_io, st_size 0.
//
// Inodes are fixed: 1 root, 2 the status file, 3 + i image i. Nothing is
// ever created or removed, so lookup counts are not tracked.
//
// The handlers (Lookup, GetAttr, ...) hold the logic and return 0 or an
// errno, so tests can call them without a mount; the C callbacks in Ops()
// only convert, catch every exception (bad_alloc => ENOMEM, others => EIO)
// and make the single fuse_reply_* of each request.
//
// No globals: Ops() expects the JigdoFs* as the session's userdata, so
// several filesystems can live in one process.
// Thread-safe: the image set is immutable; counters are atomic.
// REQUIRES: `images` outlives the JigdoFs.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "core/image_reader.h"
#include "core/mount_defaults.h"
#include "core/prefetcher.h"
#include "core/slice_provider.h"
#include "fetch/mount/image_set.h"
#include "fs/buffer_pool.h"
#include "fs/errno_map.h"
#include "fs/read_reply.h"
#include "fs/recent_failures.h"
#include "fs/splice_budget.h"

namespace jigdoofus {

inline constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kStatusIno = 2;
inline constexpr fuse_ino_t kFirstImageIno = 3;
inline constexpr const char* kStatusFileName = kReservedStatusName;
// The image never changes: the kernel may cache names and attributes for a day.
inline constexpr double kCacheTimeoutS = 86400;
inline constexpr size_t kKeptReplyBuffers = 8;

struct JigdoFsOptions {
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;  // deadline of one read waiting for slices
  // Slice read-ahead for sequential readers (core/prefetcher.h): worker
  // threads (0: no read-ahead) and the per-file window policy.
  size_t prefetch_threads = 2;
  // More workers, up to max_prefetch_threads, while far servers want them
  // (may be null: never).
  std::shared_ptr<const JobBudget> prefetch_budget;
  size_t max_prefetch_threads = 0;
  ReadAheadOptions read_ahead;
  // Reply with fd-backed buffers the kernel may splice (else copy).
  bool splice = true;
};

// How open() wants the file handled.
struct OpenReply {
  uint64_t fh = 0;
  bool keep_cache = false;
  bool direct_io = false;
};

class JigdoFs {
 public:
  JigdoFs(const ImageSet* images, JigdoFsOptions options);
  ~JigdoFs();
  JigdoFs(const JigdoFs&) = delete;
  JigdoFs& operator=(const JigdoFs&) = delete;

  // The callback table; pass `this` as userdata to fuse_session_new.
  static const fuse_lowlevel_ops& Ops();

  // --- handlers: 0 or an errno ---
  int Lookup(fuse_ino_t parent, std::string_view name, fuse_entry_param* out) const;
  int GetAttr(fuse_ino_t ino, struct stat* out) const;
  int Open(fuse_ino_t ino, int flags, OpenReply* out);
  // Resolves a read of [offset, offset+size) into `plan` (empty at or past
  // the end): verified slices held open plus literal bytes in memory.
  // Counts the read and feeds the file handle's read-ahead.
  int PlanRead(fuse_ino_t ino, uint64_t fh, uint64_t offset, size_t size, ReadPlan* plan,
               const FetchContext& ctx);
  // How replies are built (fs/read_reply.h).
  ReplyPolicy reply_policy() {
    return ReplyPolicy{options_.splice, kMinSpliceBytes, &splice_budget_, &reply_buffers_};
  }
  // Counts how a read was replied (status file: fs.replies) or why its
  // reply could not be built; returns the errno for the reader (0: send it).
  int CountReply(const Result<ReadReply>& reply);
  void Release(fuse_ino_t ino, uint64_t fh);
  int OpenDir(fuse_ino_t ino) const;
  // Fills `buf` (capacity `size`) with entries after `offset`; *used is the
  // number of bytes written. `plus`: readdirplus entries.
  int ReadDir(fuse_ino_t ino, size_t size, off_t offset, bool plus, char* buf, size_t* used) const;
  void StatFs(struct statvfs* out) const;
  void Init(fuse_conn_info* conn);

  // The status file's content now (JSON text).
  std::string StatusText() const;
  // A fresh FetchContext with this filesystem's deadline.
  FetchContext MakeFetchContext() const;
  const FailureCounters& failures() const { return failures_; }
  bool splice() const { return options_.splice; }
  // Request size, and which replies libfuse can splice (fs/splice_budget.h).
  const SpliceBudget& splice_budget() const { return splice_budget_; }
  // Buffers for the replies the daemon copies (at most kKeptReplyBuffers
  // stay allocated between reads).
  BufferPool& reply_buffers() { return reply_buffers_; }
  // Null when read-ahead is off.
  Prefetcher* prefetcher() const { return prefetcher_.get(); }

 private:
  struct ImageHandle;  // fh of an open image: its read-ahead state
  void FillAttr(fuse_ino_t ino, struct stat* st) const;
  const OpenImage* ImageOf(fuse_ino_t ino) const;

  const ImageSet* images_;
  JigdoFsOptions options_;
  SpliceBudget splice_budget_;
  BufferPool reply_buffers_;
  struct timespec mount_time_{};
  std::vector<struct timespec> image_mtimes_;  // the .jigdo's mtime, per image
  uid_t uid_;
  gid_t gid_;
  FailureCounters failures_;
  RecentFailures recent_failures_;
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> replies_fd_backed_{0};  // fd-backed, libfuse may splice
  std::atomic<uint64_t> replies_copied_{0};   // copied by us (too many parts for the pipe, or splice off)
  // Declared last: destroyed first, so no worker runs once the rest goes.
  std::unique_ptr<Prefetcher> prefetcher_;
};

}  // namespace jigdoofus
