// ChunkStore: the persistent, content-addressed, size-bounded store of
// VERIFIED slice bytes in the LMDB cache (layout: doc/cache_format.md).
//
// A slice (SliceId = digest + size) is written through a Writer that
// streams its bytes into fixed-size chunks (kChunkSize), kWriteBatchChunks of them per
// own short write transaction, hashing as it goes. Commit() verifies the
// digest and only then publishes the slice with one transaction that turns
// its metadata record "complete". Readers (Get) see complete slices only;
// staged chunks of an unfinished, failed or crashed writer are never
// served and are collected (abort, destructor, or GC at Open for writers
// whose process is gone).
//
// Capacity: BeginSlice charges the whole slice size up front (so a Writer
// never runs out of room half way) after evicting least recently used
// complete slices until it fits. A slice larger than the capacity is
// refused with kInvalidArgument ("slice of N bytes does not fit a cache of
// M bytes"); callers stream such slices without keeping them.
// Recency: Get() notes the slice in memory; the notes are written to the
// "lru" index in batches (the next BeginSlice, FlushTouches(), every
// kTouchFlushInterval from Get, and the destructor), so reads stay read-only
// transactions.
//
// Thread-safety: every method is thread-safe; one Writer is used by one
// thread at a time. Several processes may share one cache directory.
// Lock order: pin_mu_ -> LMDB transactions (LmdbEnv map lock, then LMDB's
// write lock) -> mu_; mu_ is never held while beginning a transaction.
// A VerifiedSlice from Get() pins its slice: this process never evicts it
// while the object lives. Another process sharing the directory may evict
// it; ReadAt then fails with kNotFound ("evicted from the cache"), never
// with wrong bytes, and the caller should fetch again.
// REQUIRES: the LmdbEnv outlives the store; the store outlives its Writers
// and the VerifiedSlices it returned. One ChunkStore per LmdbEnv.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "cache/lmdb_env.h"
#include "core/digest.h"
#include "core/slice_provider.h"
#include "core/template_index.h"

namespace jigdoofus {

inline constexpr uint32_t kChunkSize = 256 * 1024;
// Chunks written per write transaction. Every commit flushes the data it
// wrote (MDB_NOMETASYNC), and that flush, not the copying, bounds how fast
// a download can be stored: one commit per 256 KiB chunk held a cold read
// from a loopback mirror at ~75 MB/s; 2 MiB per commit lifts it several
// times. Costs one batch of memory per slice being written.
inline constexpr uint32_t kWriteBatchChunks = 8;
inline constexpr size_t kWriteBatchBytes = size_t{kChunkSize} * kWriteBatchChunks;
inline constexpr auto kTouchFlushInterval = std::chrono::seconds(30);
inline constexpr size_t kMaxPendingTouches = 4096;

// Which process writes a staging slice: boot id, pid and process start
// time (pids are reused; the same pid with the same start time in the same
// boot is the same process).
struct ChunkWriterIdentity {
  std::array<uint8_t, 16> boot{};
  uint32_t pid = 0;
  uint64_t start = 0;  // clock ticks since boot (/proc/<pid>/stat field 22)
  friend bool operator==(const ChunkWriterIdentity&, const ChunkWriterIdentity&) = default;
};

struct ChunkStoreOptions {
  uint64_t capacity = uint64_t{1} << 30;  // --cache-size, in slice bytes
};

struct ChunkStoreStats {
  uint64_t capacity = 0;
  uint64_t bytes_used = 0;        // charged bytes of complete + staged slices (all processes)
  uint64_t slices_complete = 0;   // (all processes)
  uint64_t slices_staged = 0;     // staging records (all processes, live writers)
  uint64_t evictions = 0;         // slices evicted by this store since Open
  uint64_t gc_slices_at_open = 0; // dead writers' staging collected by Open
  uint64_t gc_bytes_at_open = 0;
  uint64_t gc_orphan_chunks_at_open = 0;
};

class ChunkStore : public SliceProvider {
 public:
  class Writer;

  // Opens the chunk databases in `env` and garbage-collects staging left by
  // writers whose process is gone (and chunks with no metadata).
  static Result<std::unique_ptr<ChunkStore>> Open(LmdbEnv* env, ChunkStoreOptions options = {});
  ~ChunkStore() override;  // flushes recency notes
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  // Starts writing a slice. Errors:
  //  kInvalidArgument  the slice is larger than the capacity (stream it)
  //  kUnavailable      another Writer (this or another live process) is
  //                    writing this slice (don't wait: fetch without keeping,
  //                    or retry Get later); or the cache is full of slices
  //                    being written or read and nothing can be evicted.
  // If the slice is already complete, returns a Writer whose
  // already_complete() is true: it stores nothing, but Commit() still
  // verifies what was appended, so callers need no special case.
  Result<std::unique_ptr<Writer>> BeginSlice(const SliceId& id);

  // The complete slice, or kNotFound. Notes the use for LRU.
  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& id);
  // SliceProvider: same as Get(id); ctx is not needed (no waiting).
  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& slice, const FetchContext& ctx) override {
    return Get(slice);
  }
  bool Contains(const SliceId& id);

  // Calls fn with the mapped bytes [offset, offset+len) of a complete
  // slice, chunk by chunk, without copying, inside one read transaction.
  // REQUIRES: fn does not use this store or begin LMDB transactions; the
  // spans are valid only during the call.
  Status Visit(const SliceId& id, uint64_t offset, uint64_t length,
               const std::function<void(std::span<const uint8_t>)>& fn) const;
  Status ReadAt(const SliceId& id, uint64_t offset, std::span<uint8_t> out) const;

  // Writes pending recency notes to the lru index.
  Status FlushTouches();
  ChunkStoreStats Stats();
  const ChunkStoreOptions& options() const { return options_; }

 private:
  friend class Writer;
  class Slice;
  struct Dbs {
    MDB_dbi slices, chunks, lru, meta;
  };
  ChunkStore(LmdbEnv* env, Dbs dbs, ChunkStoreOptions options);
  Status CollectAtOpen();
  Status ApplyTouches(LmdbTxn& txn, const std::vector<std::string>& keys);
  void NoteTouch(const std::string& key);
  void Pin(const std::string& key);
  void Unpin(const std::string& key);
  // Writer callbacks.
  // Writes `data` as chunks first_index, first_index+1, ... in one transaction.
  Status WriteChunks(const std::string& key, uint32_t first_index, std::span<const uint8_t> data);
  Status Publish(const std::string& key, uint64_t size, uint32_t first_index,
                 std::span<const uint8_t> last_chunk);
  void Discard(const std::string& key);
  void EndWriter(const std::string& key);

  LmdbEnv* env_;
  Dbs dbs_;
  ChunkStoreOptions options_;
  const ChunkWriterIdentity self_;  // this process

  // Lock order: pin_mu_ -> LMDB transaction -> mu_. pin_mu_ is held
  // exclusively by an evicting BeginSlice across its write transaction and
  // shared by Get while it takes a pin (never across a transaction).
  std::shared_mutex pin_mu_;
  std::mutex mu_;  // never held while beginning a transaction
  std::set<std::string> writing_;             // GUARDED_BY(mu_) slice keys with a live Writer here
  std::map<std::string, int> pins_;           // GUARDED_BY(mu_) slice keys with live VerifiedSlices
  std::vector<std::string> touched_;          // GUARDED_BY(mu_) recency notes, oldest first
  std::chrono::steady_clock::time_point last_flush_;  // GUARDED_BY(mu_)

  std::atomic<uint64_t> evictions_{0};
  uint64_t gc_slices_ = 0, gc_bytes_ = 0, gc_orphans_ = 0;  // set by Open only
};

// Streams one slice into the store. Not thread-safe (one thread at a time).
// The destructor discards the staged data unless Commit() succeeded.
class ChunkStore::Writer {
 public:
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Appends the next bytes. More bytes than the slice size is kCorruption
  // (and discards the staging). After any error the Writer is dead: every
  // later call returns that error.
  Status Append(std::span<const uint8_t> bytes);
  // Verifies size and digest, then publishes. On mismatch returns
  // kCorruption and discards the staged chunks.
  Status Commit();
  const SliceId& id() const { return id_; }
  uint64_t bytes_appended() const { return appended_; }
  bool already_complete() const { return already_complete_; }

 private:
  friend class ChunkStore;
  Writer(ChunkStore* store, SliceId id, std::string key, bool already_complete);
  void Fail(Status s);

  ChunkStore* store_;
  SliceId id_;
  std::string key_;
  bool already_complete_;
  Hasher hasher_;
  std::vector<uint8_t> buf_;  // the batch being filled (<= kWriteBatchBytes)
  uint32_t next_index_ = 0;   // chunks written so far
  uint64_t appended_ = 0;
  bool done_ = false;         // committed or discarded
  Status error_;
};

}  // namespace jigdoofus
