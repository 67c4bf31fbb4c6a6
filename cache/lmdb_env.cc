#include "cache/lmdb_env.h"
#include "cache/byte_order.h"
#include "core/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

namespace jigdoofus {

namespace {

using cache_bytes::Bytes;
using cache_bytes::GetLe;
using cache_bytes::PutLe;

constexpr std::string_view kMetaDb = "meta";
constexpr std::string_view kSchemaKey = "schema";



// Directories with an open LmdbEnv in this process (LMDB: one env per
// path per process; fcntl locks would be lost by a second one). Keyed by
// pid too, so a child after fork() may open its own.
struct Registry {
  std::mutex mu;
  std::set<std::tuple<uint64_t, uint64_t, pid_t>> open;  // GUARDED_BY(mu)
};
Registry& OpenDirs() {
  static Registry* r = new Registry;  // never destroyed: used from destructors at exit
  return *r;
}

struct EnvCloser {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};

}  // namespace

int64_t LmdbValueFileOffset(std::span<const uint8_t> value, size_t page_size) {
  constexpr size_t kPageHeader = 16;  // pgno (8), pad (2), flags (2), overflow page count (4)
  constexpr uint16_t kOverflowPage = 0x04;
  const auto addr = reinterpret_cast<uintptr_t>(value.data());
  if (value.empty() || page_size == 0 || addr < kPageHeader || (addr - kPageHeader) % page_size != 0) return -1;
  const auto* header = value.data() - kPageHeader;
  uint64_t pgno;
  uint16_t flags;
  uint32_t pages;
  std::memcpy(&pgno, header, 8);
  std::memcpy(&flags, header + 10, 2);
  std::memcpy(&pages, header + 12, 4);
  if ((flags & kOverflowPage) == 0 || uint64_t{pages} * page_size < value.size() + kPageHeader) return -1;
  if (pgno > (uint64_t{1} << 40)) return -1;
  return static_cast<int64_t>(pgno * page_size + kPageHeader);
}

Status LmdbStatus(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case 0:
      return Status::OK();
    case MDB_NOTFOUND:
      return Status::NotFound(std::move(msg));
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return Status::NoSpace(std::move(msg));
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
      return Status::Unavailable(std::move(msg));
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_DBI:
      return Status::Corruption(std::move(msg));
    default:
      return Status::IOError(std::move(msg));
  }
}

// ---------------------------------------------------------------------------
// LmdbEnv

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, LmdbOptions options) {
  JIGDOOFUS_RETURN_IF_ERROR(MakePrivateDir(dir));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) return Status::FromErrno(dir, errno);
  {
    // A data.mdb that is not a regular file (a directory, say) is not ours.
    struct stat dst;
    std::string data = dir + "/data.mdb";
    if (::stat(data.c_str(), &dst) == 0 && !S_ISREG(dst.st_mode)) {
      return Status::Corruption(data + ": not a regular file; not a jigdoofus cache");
    }
  }

  auto key = std::make_tuple(uint64_t{st.st_dev}, uint64_t{st.st_ino}, ::getpid());
  {
    Registry& reg = OpenDirs();
    std::lock_guard<std::mutex> lock(reg.mu);
    if (!reg.open.insert(key).second) {
      return Status::Unavailable(dir + ": cache directory already open in this process");
    }
  }
  auto unregister = [&] {
    Registry& reg = OpenDirs();
    std::lock_guard<std::mutex> lock(reg.mu);
    reg.open.erase(key);
  };

  MDB_env* raw = nullptr;
  int rc = mdb_env_create(&raw);
  if (rc != 0) {
    unregister();
    return LmdbStatus(rc, dir + ": mdb_env_create");
  }
  std::unique_ptr<MDB_env, EnvCloser> env(raw);
  rc = mdb_env_set_maxdbs(raw, options.max_dbs);
  if (rc == 0) rc = mdb_env_set_maxreaders(raw, options.max_readers);
  if (rc == 0) rc = mdb_env_set_mapsize(raw, options.map_size);
  if (rc != 0) {
    unregister();
    return LmdbStatus(rc, dir + ": configuring LMDB");
  }
  unsigned flags = MDB_NOTLS | (options.durable ? MDB_NOMETASYNC : MDB_NOSYNC);
  rc = mdb_env_open(raw, dir.c_str(), flags, 0600);
  if (rc != 0) {
    unregister();
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      return Status::Corruption(dir + "/data.mdb: not an LMDB database usable as a jigdoofus cache (" +
                                mdb_strerror(rc) + ")");
    }
    if (rc > 0) return Status::FromErrno(dir + ": opening the cache", rc);
    return LmdbStatus(rc, dir + ": opening the cache");
  }
  int dead = 0;
  mdb_reader_check(raw, &dead);  // clear reader slots of killed processes

  std::unique_ptr<LmdbEnv> self(new LmdbEnv(dir, env.release(), options, st.st_dev, st.st_ino));
  // From here the destructor unregisters.

  // Schema check (creates "meta" with the version in a new cache).
  bool upgraded = false;
  Status s = self->Update([&](LmdbTxn& txn) -> Status {
    MDB_dbi meta;
    int r = mdb_dbi_open(txn.get(), std::string(kMetaDb).c_str(), 0, &meta);
    if (r == MDB_NOTFOUND) {
      // New cache, unless someone else's LMDB database lives here.
      MDB_dbi main_db;
      r = mdb_dbi_open(txn.get(), nullptr, 0, &main_db);
      if (r != 0) return LmdbStatus(r, dir + ": opening the main database");
      MDB_stat ms;
      r = mdb_stat(txn.get(), main_db, &ms);
      if (r != 0) return LmdbStatus(r, dir + ": mdb_stat");
      if (ms.ms_entries != 0) {
        return Status::Corruption(dir + "/data.mdb: an LMDB database that is not a jigdoofus cache "
                                        "(no schema record); use another --cache-dir");
      }
      r = mdb_dbi_open(txn.get(), std::string(kMetaDb).c_str(), MDB_CREATE, &meta);
      txn.NoteRc(r);
      if (r != 0) return LmdbStatus(r, dir + ": creating the meta database");
      uint8_t v[4];
      PutLe(v, kCacheSchemaVersion, 4);
      return txn.Put(meta, Bytes(kSchemaKey), v);
    }
    if (r != 0) return LmdbStatus(r, dir + ": opening the meta database");
    auto got = txn.Get(meta, Bytes(kSchemaKey));
    if (!got.ok()) {
      if (got.status().IsNotFound()) {
        return Status::Corruption(dir + "/data.mdb: no cache schema record; not a jigdoofus cache");
      }
      return got.status();
    }
    if (got->size() != 4) {
      return Status::Corruption(dir + "/data.mdb: cache schema record of " + std::to_string(got->size()) +
                                " bytes, expected 4");
    }
    uint32_t version = static_cast<uint32_t>(GetLe(got->data(), 4));
    if (version == 1) {
      // Version 1 chunks carry no block checksums. It is a cache: drop the
      // slices (verification records keep their format) and go on.
      for (const char* name : {"slices", "chunks", "lru"}) {
        MDB_dbi dbi;
        int d = mdb_dbi_open(txn.get(), name, 0, &dbi);
        if (d == MDB_NOTFOUND) continue;
        if (d == 0) d = mdb_drop(txn.get(), dbi, 1);
        txn.NoteRc(d);
        if (d != 0) return LmdbStatus(d, dir + ": dropping the old chunk cache");
      }
      JIGDOOFUS_RETURN_IF_ERROR(txn.Del(meta, Bytes("chunk_totals")));
      uint8_t v[4];
      PutLe(v, kCacheSchemaVersion, 4);
      upgraded = true;
      return txn.Put(meta, Bytes(kSchemaKey), v);
    }
    if (version != kCacheSchemaVersion) {
      return Status::NotSupported(dir + ": cache schema version " + std::to_string(version) +
                                  ", this jigdoofus uses " + std::to_string(kCacheSchemaVersion) +
                                  "; remove the directory or use another --cache-dir");
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  if (upgraded) {
    spdlog::warn("cache {}: written by an older jigdoofus (schema 1); its slices were dropped and will be fetched again",
                 dir);
  }
  return self;
}

LmdbEnv::~LmdbEnv() {
  mdb_env_close(env_);
  Registry& reg = OpenDirs();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.open.erase(std::make_tuple(dev_, ino_, ::getpid()));
}

Result<MDB_dbi> LmdbEnv::OpenDb(const std::string& name) {
  std::lock_guard<std::mutex> lock(db_mu_);
  MDB_dbi dbi = 0;
  Status s = Update([&](LmdbTxn& txn) -> Status {
    int rc = mdb_dbi_open(txn.get(), name.c_str(), MDB_CREATE, &dbi);
    txn.NoteRc(rc);
    return LmdbStatus(rc, dir_ + ": opening database \"" + name + "\"");
  });
  if (!s.ok()) return s;
  return dbi;
}

uint64_t LmdbEnv::map_size() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

Status LmdbEnv::GrowMap() {
  std::unique_lock<std::shared_mutex> lock(map_mu_);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  uint64_t cur = info.me_mapsize;
  if (cur >= options_.max_map_size) {
    return Status::NoSpace(dir_ + ": cache database full at its maximum map size of " +
                               std::to_string(cur) + " bytes");
  }
  uint64_t next = std::min<uint64_t>(options_.max_map_size, cur * 2);
  int rc = mdb_env_set_mapsize(env_, next);
  return LmdbStatus(rc, dir_ + ": growing the cache map to " + std::to_string(next) + " bytes");
}

Status LmdbEnv::AdoptMapSize() const {
  std::unique_lock<std::shared_mutex> lock(map_mu_);
  int rc = mdb_env_set_mapsize(env_, 0);
  return LmdbStatus(rc, dir_ + ": adopting the map size grown by another process");
}

namespace {

// LMDB reports a short write (what a filling disk gives) as EIO: when the
// disk holding `dir` has almost nothing left, that EIO means "no space".
bool DiskNearlyFull(const std::string& dir) {
  struct statvfs sv;
  if (::statvfs(dir.c_str(), &sv) != 0) return false;
  return uint64_t{sv.f_bavail} * sv.f_frsize < (uint64_t{64} << 20);
}

}  // namespace

Status LmdbEnv::Update(const std::function<Status(LmdbTxn&)>& fn) {
  for (int attempt = 0;; ++attempt) {
    bool full = false;
    Status s;
    {
      JIGDOOFUS_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::Begin(*this, false));
      s = fn(txn);
      if (s.ok()) {
        s = txn.Commit();
        if (s.code() == Status::Code::kIOError && DiskNearlyFull(dir_)) {
          s = Status::NoSpace(dir_ + ": the disk is full (" + s.message() + ")");
        }
      }
      full = txn.map_full();
    }  // aborted here if not committed; the map lock is released
    if (s.ok() || !full || attempt >= 8) return s;
    JIGDOOFUS_RETURN_IF_ERROR(GrowMap());
  }
}

struct LmdbEnv::GroupedOp {
  const std::function<Status(LmdbTxn&)>* fn;
  Status result;
  bool done = false;
};

Status LmdbEnv::UpdateGrouped(const std::function<Status(LmdbTxn&)>& fn) {
  GroupedOp op{&fn, Status::OK(), false};
  std::unique_lock<std::mutex> lock(group_mu_);
  group_queue_.push_back(&op);
  // Wait until a leader ran our op, or until no group is running (then our
  // op is still queued and we lead the next group).
  group_cv_.wait(lock, [&] { return op.done || !group_running_; });
  if (op.done) return op.result;
  group_running_ = true;
  std::vector<GroupedOp*> group;
  group.swap(group_queue_);
  lock.unlock();

  // Whatever happens below (an fn may throw), the group ends: its callers
  // are released and the next group may start.
  bool fallback = false;
  struct EndGroup {
    LmdbEnv* env;
    const std::vector<GroupedOp*>& group;
    const bool& fallback;
    ~EndGroup() {
      {
        std::lock_guard<std::mutex> l(env->group_mu_);
        ++env->group_stats_.transactions;
        env->group_stats_.ops += group.size();
        env->group_stats_.fallbacks += fallback ? 1 : 0;
        for (GroupedOp* o : group) o->done = true;
        env->group_running_ = false;
      }
      env->group_cv_.notify_all();
    }
  } end{this, group, fallback};
  for (GroupedOp* o : group) o->result = Status::IOError(dir_ + ": grouped write transaction did not finish");

  Status all = Update([&group](LmdbTxn& txn) -> Status {
    for (GroupedOp* o : group) JIGDOOFUS_RETURN_IF_ERROR((*o->fn)(txn));
    return Status::OK();
  });
  fallback = !all.ok() && group.size() > 1;
  if (!fallback) {
    for (GroupedOp* o : group) o->result = all;
  } else {
    for (GroupedOp* o : group) o->result = Update(*o->fn);
  }
  return op.result;
}

LmdbEnv::GroupCommitStats LmdbEnv::group_commit_stats() {
  std::lock_guard<std::mutex> lock(group_mu_);
  GroupCommitStats s = group_stats_;
  s.queued = group_queue_.size();
  return s;
}

Status LmdbEnv::View(const std::function<Status(LmdbTxn&)>& fn) const {
  JIGDOOFUS_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::Begin(*this, true));
  return fn(txn);
}

// ---------------------------------------------------------------------------
// LmdbTxn

Result<LmdbTxn> LmdbTxn::Begin(const LmdbEnv& env, bool read_only) {
  for (int attempt = 0;; ++attempt) {
    std::shared_lock<std::shared_mutex> lock(env.map_mu_);
    MDB_txn* t = nullptr;
    int rc = mdb_txn_begin(env.env_, nullptr, read_only ? MDB_RDONLY : 0, &t);
    if (rc == 0) return LmdbTxn(t, std::move(lock));
    if (rc != MDB_MAP_RESIZED || attempt >= 3) {
      return LmdbStatus(rc, env.dir_ + (read_only ? ": beginning a read transaction"
                                                  : ": beginning a write transaction"));
    }
    lock.unlock();
    JIGDOOFUS_RETURN_IF_ERROR(env.AdoptMapSize());
  }
}

LmdbTxn::LmdbTxn(LmdbTxn&& o) noexcept
    : txn_(o.txn_), lock_(std::move(o.lock_)), map_full_(o.map_full_) {
  o.txn_ = nullptr;
}

LmdbTxn& LmdbTxn::operator=(LmdbTxn&& o) noexcept {
  if (this != &o) {
    Abort();
    txn_ = o.txn_;
    o.txn_ = nullptr;
    lock_ = std::move(o.lock_);
    map_full_ = o.map_full_;
  }
  return *this;
}

LmdbTxn::~LmdbTxn() { Abort(); }

void LmdbTxn::Abort() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  txn_ = nullptr;
  if (lock_.owns_lock()) lock_.unlock();
}

Status LmdbTxn::Commit() {
  if (txn_ == nullptr) return Status::InvalidArgument("LMDB commit: transaction already ended");
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // freed by commit, whatever it returned
  if (lock_.owns_lock()) lock_.unlock();
  NoteRc(rc);
  return LmdbStatus(rc, "LMDB commit");
}

Result<std::span<const uint8_t>> LmdbTxn::Get(MDB_dbi dbi, std::span<const uint8_t> key) const {
  MDB_val k = ToVal(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc != 0) return LmdbStatus(rc, "LMDB get");
  return FromVal(v);
}

Status LmdbTxn::Put(MDB_dbi dbi, std::span<const uint8_t> key, std::span<const uint8_t> value,
                    unsigned flags) {
  MDB_val k = ToVal(key), v = ToVal(value);
  int rc = mdb_put(txn_, dbi, &k, &v, flags);
  NoteRc(rc);
  return LmdbStatus(rc, "LMDB put");
}

Result<std::span<uint8_t>> LmdbTxn::Reserve(MDB_dbi dbi, std::span<const uint8_t> key, size_t size) {
  MDB_val k = ToVal(key), v{size, nullptr};
  int rc = mdb_put(txn_, dbi, &k, &v, MDB_RESERVE);
  NoteRc(rc);
  if (rc != 0) return LmdbStatus(rc, "LMDB put");
  return std::span<uint8_t>(static_cast<uint8_t*>(v.mv_data), size);
}

Status LmdbTxn::Del(MDB_dbi dbi, std::span<const uint8_t> key) {
  MDB_val k = ToVal(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  NoteRc(rc);
  if (rc == MDB_NOTFOUND) return Status::OK();
  return LmdbStatus(rc, "LMDB delete");
}

Result<LmdbCursor> LmdbCursor::Open(const LmdbTxn& txn, MDB_dbi dbi) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn.get(), dbi, &c);
  if (rc != 0) return LmdbStatus(rc, "LMDB cursor");
  return LmdbCursor(c);
}

LmdbCursor::~LmdbCursor() {
  if (cur_ != nullptr) mdb_cursor_close(cur_);
}

}  // namespace jigdoofus
