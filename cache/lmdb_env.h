// LmdbEnv: the jigdoofus cache environment (doc/cache_format.md), one per
// cache directory and process.
//
// Opens or creates `<dir>/data.mdb` (+ lock.mdb) with a schema version in
// the "meta" database; a cache written by an incompatible schema is
// refused with a message naming the directory. Named databases:
//   meta      "schema" -> u32 version
//   verified  FileKey + algo -> digest (LmdbVerificationStore)
//   scanned   FileKey -> what a scan of an image file found (LmdbImageScanStore)
//   (chunk cache databases are added by cache/chunk_store)
//
// RAII owners for MDB_env / MDB_txn; a transaction belongs to the thread
// that began it (MDB_NOTLS is set so read transactions may be used from
// FUSE worker threads without per-thread slots leaking).
// Thread-safe: the environment may be shared; transactions may not.
//
// Map size: every transaction holds a shared lock on the environment's map
// lock for its whole life; growing the map (MDB_MAP_FULL) or adopting a
// size grown by another process (MDB_MAP_RESIZED) takes it exclusively, so
// the remap happens with no transaction active in this process.
// REQUIRES: a thread never begins a transaction while it holds another one
// (it could wait for itself when the map has to grow).
// REQUIRES: one LmdbEnv per directory per process (enforced: a second Open
// of the same directory in one process fails). Processes may share a
// directory; LMDB's lock.mdb coordinates them. Don't use an LmdbEnv in a
// child after fork(); open a new one there.
#pragma once

#include <lmdb.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_scan_store.h"
#include "cache/verification_store.h"
#include "core/result.h"

namespace jigdoofus {

// 2: chunk values carry per-block checksums. A version 1 cache is upgraded
// by dropping its slices; a newer version is refused.
inline constexpr uint32_t kCacheSchemaVersion = 2;

struct LmdbOptions {
  uint64_t map_size = uint64_t{1} << 36;  // address space reserved; the file grows as needed
  unsigned max_dbs = 16;
  unsigned max_readers = 510;             // concurrent read transactions (all processes)
  uint64_t max_map_size = uint64_t{1} << 42;  // MDB_MAP_FULL grows the map up to this
  // false: MDB_NOSYNC (tests). Survives kill -9 either way (the page cache
  // persists), but only durable=true survives a power cut.
  bool durable = true;
};

class LmdbTxn;

class LmdbEnv {
 public:
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, LmdbOptions options = {});
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* env() const { return env_; }
  const std::string& dir() const { return dir_; }
  // Opens (creating if needed) a named database. Call before concurrent use
  // of the handle (LMDB rule: a handle is usable by other transactions only
  // once the transaction that opened it committed; this one commits).
  Result<MDB_dbi> OpenDb(const std::string& name);

  // Runs `fn` in a write transaction and commits it. If the map is full it
  // aborts, grows the map and runs `fn` again (up to max_map_size), so `fn`
  // must only change state outside the transaction in ways that are reset
  // at its start. Returns fn's error (the transaction is aborted) or the
  // commit's.
  Status Update(const std::function<Status(LmdbTxn&)>& fn);
  // Update with group commit: callers that arrive while a grouped
  // transaction is committing (waiting for its flush to disk) queue up, and
  // the next one to run takes them all, runs their fns in arrival order in
  // one write transaction and commits once: one flush for the group instead
  // of one each. If any fn (or the commit) fails, the group's transaction
  // is aborted and every fn of it is run alone with Update, so a failure
  // only ever affects its own caller. Returns this caller's fn's result.
  // `fn` must be re-runnable (as for Update) and independent of the other
  // callers' fns; it runs on whichever caller's thread leads the group.
  Status UpdateGrouped(const std::function<Status(LmdbTxn&)>& fn);
  struct GroupCommitStats {
    uint64_t transactions = 0;  // grouped transactions run
    uint64_t ops = 0;           // fns they carried
    uint64_t fallbacks = 0;     // groups that failed and ran their fns alone
    size_t queued = 0;          // fns waiting for the next group now
  };
  GroupCommitStats group_commit_stats();
  // Runs `fn` in a read transaction (aborted afterwards).
  Status View(const std::function<Status(LmdbTxn&)>& fn) const;

  // Current map size in bytes.
  uint64_t map_size() const;

 private:
  friend class LmdbTxn;
  LmdbEnv(std::string dir, MDB_env* env, LmdbOptions options, uint64_t dev, uint64_t ino)
      : dir_(std::move(dir)), env_(env), options_(options), dev_(dev), ino_(ino) {}
  Status GrowMap();         // takes map_mu_ exclusively
  Status AdoptMapSize() const;  // MDB_MAP_RESIZED: takes map_mu_ exclusively

  std::string dir_;
  MDB_env* env_;
  LmdbOptions options_;
  uint64_t dev_, ino_;  // identity of dir_ in the per-process registry
  // Lock order: map_mu_ (shared, held by every LmdbTxn) -> LMDB's own write
  // lock -> db_mu_.
  mutable std::shared_mutex map_mu_;
  std::mutex db_mu_;  // serialises OpenDb

  // Group commit (UpdateGrouped). group_mu_ is a leaf: never held while a
  // transaction begins.
  struct GroupedOp;
  std::mutex group_mu_;
  std::condition_variable group_cv_;
  std::vector<GroupedOp*> group_queue_;  // GUARDED_BY(group_mu_)
  bool group_running_ = false;           // GUARDED_BY(group_mu_)
  GroupCommitStats group_stats_;         // GUARDED_BY(group_mu_)
};

// Move-only transaction; aborts unless Commit() succeeded. Holds the
// environment's map lock shared for its life.
class LmdbTxn {
 public:
  static Result<LmdbTxn> Begin(const LmdbEnv& env, bool read_only);
  LmdbTxn(LmdbTxn&& o) noexcept;
  LmdbTxn& operator=(LmdbTxn&& o) noexcept;
  ~LmdbTxn();
  MDB_txn* get() const { return txn_; }
  Status Commit();
  void Abort();

  // Thin wrappers that name the database in errors and remember a
  // MDB_MAP_FULL (LmdbEnv::Update grows the map and retries on it).
  // Get: kNotFound if absent; the span lives until the transaction ends.
  Result<std::span<const uint8_t>> Get(MDB_dbi dbi, std::span<const uint8_t> key) const;
  Status Put(MDB_dbi dbi, std::span<const uint8_t> key, std::span<const uint8_t> value,
             unsigned flags = 0);
  // Reserves `size` bytes for the value of `key` (MDB_RESERVE) and returns
  // them for the caller to fill before the transaction ends: no copy.
  Result<std::span<uint8_t>> Reserve(MDB_dbi dbi, std::span<const uint8_t> key, size_t size);
  // Deleting an absent key is OK.
  Status Del(MDB_dbi dbi, std::span<const uint8_t> key);
  bool map_full() const { return map_full_; }
  void NoteRc(int rc) { if (rc == MDB_MAP_FULL) map_full_ = true; }

 private:
  LmdbTxn(MDB_txn* t, std::shared_lock<std::shared_mutex> lock) : txn_(t), lock_(std::move(lock)) {}
  MDB_txn* txn_ = nullptr;
  std::shared_lock<std::shared_mutex> lock_;
  bool map_full_ = false;
};

// RAII cursor; must be closed before its transaction ends (declare it
// after the LmdbTxn).
class LmdbCursor {
 public:
  static Result<LmdbCursor> Open(const LmdbTxn& txn, MDB_dbi dbi);
  LmdbCursor(LmdbCursor&& o) noexcept : cur_(o.cur_) { o.cur_ = nullptr; }
  LmdbCursor& operator=(LmdbCursor&&) = delete;
  ~LmdbCursor();
  MDB_cursor* get() const { return cur_; }

 private:
  explicit LmdbCursor(MDB_cursor* c) : cur_(c) {}
  MDB_cursor* cur_;
};

// Where the bytes of `value` (as returned by a get in a read-only
// transaction) lie in data.mdb, or -1 when that cannot be told: values
// larger than half a page live on overflow pages, whose header (page
// number, flags, page count: LMDB's MDB_page) sits just before them; a
// value inside a leaf page is not located. The caller checks the result
// against the file before relying on it (ChunkStore does, once).
int64_t LmdbValueFileOffset(std::span<const uint8_t> value, size_t page_size);

// Status for an LMDB return code, naming the operation.
Status LmdbStatus(int rc, std::string_view what);

inline MDB_val ToVal(std::span<const uint8_t> s) {
  return MDB_val{s.size(), const_cast<uint8_t*>(s.data())};
}
inline std::span<const uint8_t> FromVal(const MDB_val& v) {
  return {static_cast<const uint8_t*>(v.mv_data), v.mv_size};
}

// Persistent VerificationStore in the "verified" database. Key: FileKey
// fields then algo, fixed-width little-endian (41 bytes); value: digest
// bytes then u64 LE unix time of the record. Thread-safe.
// REQUIRES: env outlives the store.
class LmdbVerificationStore final : public VerificationStore {
 public:
  static Result<std::unique_ptr<LmdbVerificationStore>> Open(LmdbEnv* env);
  std::optional<Digest> Lookup(const FileKey& key, HashAlgo algo) override;
  Status Record(const FileKey& key, const Digest& digest) override;

 private:
  LmdbVerificationStore(LmdbEnv* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {}
  LmdbEnv* env_;
  MDB_dbi dbi_;
};

// The "scanned" database (doc/cache_format.md). key: the 40 bytes of
// FileKey's fields, fixed-width little-endian; value: EncodeImageScanRecord.
// Thread-safe. REQUIRES: env outlives the store.
class LmdbImageScanStore final : public ImageScanStore {
 public:
  static Result<std::unique_ptr<LmdbImageScanStore>> Open(LmdbEnv* env);
  std::optional<ImageScanRecord> Lookup(const FileKey& key) override;
  Status Record(const FileKey& key, const ImageScanRecord& record) override;

 private:
  LmdbImageScanStore(LmdbEnv* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {}
  LmdbEnv* env_;
  MDB_dbi dbi_;
};

}  // namespace jigdoofus
