// LmdbEnv: the jigdoofus cache environment (doc/cache_format.md), one per
// cache directory and process.
//
// Opens or creates `<dir>/data.mdb` (+ lock.mdb) with a schema version in
// the "meta" database; a cache written by an incompatible schema is
// refused with a message naming the directory. Named databases:
//   meta      "schema" -> u32 version
//   verified  FileKey + algo -> digest (LmdbVerificationStore)
//   (chunk cache databases are added by cache/chunk_store)
//
// RAII owners for MDB_env / MDB_txn; a transaction belongs to the thread
// that began it (MDB_NOTLS is set so read transactions may be used from
// FUSE worker threads without per-thread slots leaking).
// Thread-safe: the environment may be shared; transactions may not.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cache/verification_store.h"
#include "core/result.h"

namespace jigdoofus {

inline constexpr uint32_t kCacheSchemaVersion = 1;

struct LmdbOptions {
  uint64_t map_size = uint64_t{1} << 36;  // address space reserved; the file grows as needed
  unsigned max_dbs = 16;
};

class LmdbEnv {
 public:
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, LmdbOptions options = {});
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* env() const { return env_; }
  const std::string& dir() const { return dir_; }
  // Opens (creating if needed) a named database. Call before concurrent use.
  Result<MDB_dbi> OpenDb(const std::string& name);

 private:
  LmdbEnv(std::string dir, MDB_env* env) : dir_(std::move(dir)), env_(env) {}
  std::string dir_;
  MDB_env* env_;
};

// Move-only transaction; aborts unless Commit() succeeded.
class LmdbTxn {
 public:
  static Result<LmdbTxn> Begin(const LmdbEnv& env, bool read_only);
  LmdbTxn(LmdbTxn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  LmdbTxn& operator=(LmdbTxn&& o) noexcept;
  ~LmdbTxn();
  MDB_txn* get() const { return txn_; }
  Status Commit();

 private:
  explicit LmdbTxn(MDB_txn* t) : txn_(t) {}
  MDB_txn* txn_ = nullptr;
};

// Status for an LMDB return code, naming the operation.
Status LmdbStatus(int rc, std::string_view what);

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

}  // namespace jigdoofus
