// ChunkStore: the persistent, content-addressed, size-bounded store of
// VERIFIED slice bytes in the LMDB cache (layout: doc/cache_format.md).
// It composes the cache's separate jobs: the record codec
// (cache/record_codec.h), the tables (cache/chunk_tables.h), admission and
// eviction (cache/quota.h), collection at open (cache/cache_gc.h), the
// writer (below) and the slices it hands out (cache/cached_slice.h).
//
// Writing: Admit(id) answers with a typed Admission; kWrite comes with a
// Writer that streams the bytes into 256 KiB chunks, each stored with a
// checksum per 4 KiB block, in 2 MiB batches (one grouped transaction
// each), hashing as it goes. Commit() verifies the slice checksum, only
// then publishes the slice, and returns it as a VerifiedSlice. Staged
// chunks of an unfinished, failed or crashed writer are never served.
//
// Reading: every read checks the block checksums of the bytes it serves
// inside one read snapshot; a mismatch is kCorruption, never bytes
// (CachedSlice::Discard then drops the slice: DropCorrupt).
//
// A full disk: a write that fails with kNoSpace lowers the quota's bound,
// evicts down to it and is tried again (up to kNoSpaceRetries); only then
// does the writer fail with kNoSpace (the caller serves from memory).
//
// Thread-safety: every method is thread-safe; one Writer is used by one
// thread at a time. Several processes may share one cache directory.
// mu_ is a leaf lock, never held while a transaction begins.
// REQUIRES: the LmdbEnv outlives the store; the store outlives its Writers
// and the VerifiedSlices it returned. One ChunkStore per LmdbEnv.
#pragma once

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_set>
#include <span>
#include <string>
#include <vector>

#include "cache/cache_gc.h"
#include "cache/chunk_tables.h"
#include "cache/lmdb_env.h"
#include "cache/quota.h"
#include "core/digest.h"
#include "core/mount_defaults.h"
#include "core/slice_provider.h"

namespace jigdoofus {

// Chunks written per write transaction. Every commit flushes the data it
// wrote (MDB_NOMETASYNC), and that flush, not the copying, bounds how fast
// a download can be stored: one commit per 256 KiB chunk held a cold read
// from a loopback mirror at ~75 MB/s; 2 MiB per commit lifts it several
// times. Costs one batch of memory per slice being written.
inline constexpr uint32_t kWriteBatchChunks = 8;
inline constexpr size_t kWriteBatchBytes = size_t{cache_record::kChunkSize} * kWriteBatchChunks;
inline constexpr auto kTouchFlushInterval = std::chrono::seconds(30);
inline constexpr size_t kMaxPendingTouches = 4096;
inline constexpr int kNoSpaceRetries = 3;
// Waiting for another process's writer is polling (there is no
// cross-process wake-up): this often, for at most the caller's deadline.
inline constexpr auto kOtherProcessPoll = std::chrono::milliseconds(100);

struct ChunkStoreOptions {
  uint64_t capacity = mount_defaults::kCacheSize;  // --cache-size, in slice bytes
};

struct ChunkStoreStats {
  uint64_t capacity = 0;
  uint64_t bound = 0;             // the effective bound (lower after the disk filled)
  uint64_t bytes_used = 0;        // charged bytes of complete + staged slices (all processes)
  uint64_t slices_complete = 0;   // (all processes)
  uint64_t slices_staged = 0;     // staging records (all processes, live writers)
  uint64_t evictions = 0;         // slices evicted by this store since Open
  uint64_t no_space_events = 0;   // writes the disk refused (ENOSPC, EDQUOT, full map)
  uint64_t corrupt_dropped = 0;   // slices dropped because stored bytes no longer matched
  CacheGcStats gc_at_open;
};

class ChunkStore {
 public:
  class Writer;
  struct Admitted {
    Admission admission = Admission::kNoRoomNow;
    std::unique_ptr<Writer> writer;  // kWrite only
  };

  static Result<std::unique_ptr<ChunkStore>> Open(LmdbEnv* env, ChunkStoreOptions options);
  ~ChunkStore();  // flushes recency notes
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  // Decides whether this caller writes `id` (see Admission). Errors are
  // LMDB failures only (kIOError, kNoSpace, kCorruption).
  Result<Admitted> Admit(const SliceId& id);
  // The complete slice, or kNotFound. Notes the use for LRU.
  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& id);
  Result<bool> Contains(const SliceId& id);
  // Waits while another writer has `id` staged: in this process on a
  // condition variable, for another process by polling every
  // kOtherProcessPoll. Returns when it is no longer staged, or
  // kTimedOut at `deadline`.
  Status WaitWhileBusy(const SliceId& id, std::chrono::steady_clock::time_point deadline);
  // Removes a complete slice whose stored bytes failed their block
  // checksums (counted in corrupt_dropped; logged).
  void DropCorrupt(const SliceId& id, const std::string& why);

  // Writes pending recency notes to the lru index.
  Status FlushTouches();
  Result<ChunkStoreStats> Stats();
  const ChunkStoreOptions& options() const { return options_; }

  // For CachedSlice: reads [offset, offset + n) of a complete slice in
  // `txn`, checking block sums; calls fn(bytes, file_offset) per chunk
  // piece, where file_offset is the bytes' offset in data.mdb (or -1 when
  // they are not in the map). kNotFound if not complete in this snapshot.
  Status ReadInSnapshot(LmdbTxn& txn, const SliceId& id, const std::string& key, uint64_t offset, uint64_t n,
                        const std::function<void(std::span<const uint8_t>, int64_t)>& fn) const;
  LmdbEnv* env() const { return env_; }
  int data_fd() const { return data_fd_; }
  // Notes a use of a slice for the LRU order (batched, once per slice per
  // batch; see "Recency" in doc/cache_format.md). With may_flush, a batch
  // that is full or old is written at once (a write transaction: never
  // while the calling thread holds a read snapshot).
  void NoteUse(const std::string& key, bool may_flush);

 private:
  friend class Writer;
  ChunkStore(LmdbEnv* env, ChunkTables tables, ChunkStoreOptions options);
  // A grouped write; on kNoSpace lowers the bound, evicts and tries again.
  Status Write(const std::function<Status(LmdbTxn&)>& fn);
  // Lowers the bound and evicts, unless room was made since generation
  // `seen` (then the caller just tries again).
  Status MakeRoomAfterNoSpace(uint64_t seen);
  // The offset in data.mdb of a value read in a read snapshot, or -1.
  int64_t FileOffsetOf(std::span<const uint8_t> value) const;
  void EndWriter(const std::string& key);
  std::vector<std::string> TakeTouches();
  Result<bool> IsComplete(const std::string& key) const;  // the pending recency notes, oldest first
  std::shared_ptr<const VerifiedSlice> MakeSlice(const SliceId& id, std::string key);

  LmdbEnv* env_;
  ChunkTables tables_;
  ChunkStoreOptions options_;
  Quota quota_;
  const WriterIdentity self_;
  CacheGcStats gc_;
  int data_fd_ = -1;  // LMDB's own descriptor of data.mdb (not ours to close)
  size_t page_size_ = 4096;
  // Offsets in data.mdb derived from values (LmdbValueFileOffset) are
  // checked against the file once per process before they are trusted.
  mutable std::atomic<bool> file_ranges_ok_{true};
  mutable std::atomic<bool> file_ranges_checked_{false};

  std::mutex mu_;
  std::condition_variable writers_cv_;                 // a writer here ended
  std::set<std::string> writing_;                      // GUARDED_BY(mu_) keys with a live Writer here
  std::vector<std::string> touched_;                   // GUARDED_BY(mu_) recency notes, oldest first
  std::unordered_set<std::string> touched_set_;        // GUARDED_BY(mu_) the same keys
  std::chrono::steady_clock::time_point last_flush_;   // GUARDED_BY(mu_)
  std::mutex no_space_mu_;                             // serialises MakeRoomAfterNoSpace
  std::atomic<uint64_t> no_space_gen_{0};              // rooms made after a full disk
  std::atomic<uint64_t> corrupt_dropped_{0};
};

// Streams one slice into the store. Not thread-safe (one thread at a time).
// The destructor discards the staged data unless Commit() succeeded.
class ChunkStore::Writer {
 public:
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Appends the next bytes. More bytes than the slice size is kCorruption;
  // a disk that stays full is kNoSpace. After any error the Writer is dead
  // (its staging removed): every later call returns that error.
  Status Append(std::span<const uint8_t> bytes);
  // Verifies size and digest, then publishes, and returns the slice. On
  // mismatch returns kCorruption and discards the staged chunks.
  Result<std::shared_ptr<const VerifiedSlice>> Commit();
  const SliceId& id() const { return id_; }

 private:
  friend class ChunkStore;
  Writer(ChunkStore* store, SliceId id, std::string key);
  Status WriteBatch(uint32_t first_index, std::span<const uint8_t> data);
  void Fail(Status s);
  void Discard();

  ChunkStore* store_;
  SliceId id_;
  std::string key_;
  Hasher hasher_;
  std::vector<uint8_t> buf_;  // the batch being filled (<= kWriteBatchBytes)
  uint32_t next_index_ = 0;   // chunks written so far
  uint64_t appended_ = 0;
  bool done_ = false;         // committed or discarded
  Status error_;
};

}  // namespace jigdoofus
