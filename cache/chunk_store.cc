#include "cache/chunk_store.h"
#include "cache/byte_order.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace jigdoofus {

namespace {

using cache_bytes::Bytes;
using cache_bytes::GetLe;
using cache_bytes::PutLe;
using cache_bytes::GetBe;
using cache_bytes::PutBe;

// ---------------------------------------------------------------------------
// On-disk encodings (doc/cache_format.md).

constexpr size_t kSliceKeySize = 1 + kSha256Size + 8;  // algo, digest (zero padded), size BE
constexpr size_t kChunkKeySize = kSliceKeySize + 4;     // + chunk index BE
constexpr size_t kLruKeySize = 8 + kSliceKeySize;       // stamp BE + slice key
constexpr size_t kSliceMetaSize = 64;
constexpr size_t kTotalsSize = 32;
constexpr uint8_t kStateStaging = 1;
constexpr uint8_t kStateComplete = 2;
constexpr std::string_view kTotalsKey = "chunk_totals";

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string SliceKey(const SliceId& id) {
  std::string k(kSliceKeySize, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(k.data());
  p[0] = static_cast<uint8_t>(id.digest.algo);
  std::memcpy(p + 1, id.digest.bytes.data(), id.digest.size());
  PutBe(p + 1 + kSha256Size, id.size, 8);
  return k;
}
uint64_t SizeFromSliceKey(const uint8_t* k) { return GetBe(k + 1 + kSha256Size, 8); }

std::array<uint8_t, kChunkKeySize> ChunkKey(const std::string& slice_key, uint32_t index) {
  std::array<uint8_t, kChunkKeySize> k{};
  std::memcpy(k.data(), slice_key.data(), kSliceKeySize);
  PutBe(k.data() + kSliceKeySize, index, 4);
  return k;
}

std::array<uint8_t, kLruKeySize> LruKey(uint64_t stamp, const std::string& slice_key) {
  std::array<uint8_t, kLruKeySize> k{};
  PutBe(k.data(), stamp, 8);
  std::memcpy(k.data() + 8, slice_key.data(), kSliceKeySize);
  return k;
}

std::string Describe(const SliceId& id) {
  return std::string(HashAlgoName(id.digest.algo)) + " " + id.digest.ToHex() + " (" +
         std::to_string(id.size) + " bytes)";
}
std::string DescribeKey(const std::string& key) {
  const uint8_t* p = U8(key);
  HashAlgo algo = p[0] == static_cast<uint8_t>(HashAlgo::kSha256) ? HashAlgo::kSha256 : HashAlgo::kMd5;
  SliceId id{Digest::FromBytes(algo, {p + 1, DigestSize(algo)}), SizeFromSliceKey(p)};
  return "slice " + Describe(id);
}

using Owner = ChunkWriterIdentity;

std::array<uint8_t, 16> BootId() {
  std::array<uint8_t, 16> out{};
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string s;
  std::getline(f, s);
  size_t n = 0;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = -1;
  for (char c : s) {
    int v = hex(c);
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      if (n < out.size()) out[n++] = static_cast<uint8_t>(hi << 4 | v);
      hi = -1;
    }
  }
  return out;
}

// State letter and start time (clock ticks since boot) of a process, from
// /proc/<pid>/stat; nullopt if there is no such process.
std::optional<std::pair<char, uint64_t>> ProcStat(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return std::nullopt;
  std::string line;
  std::getline(f, line);
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  std::string tok;
  char state = '?';
  uint64_t start = 0;
  for (int i = 0; i < 20 && (rest >> tok); ++i) {
    if (i == 0) state = tok.empty() ? '?' : tok[0];
    if (i == 19) start = std::strtoull(tok.c_str(), nullptr, 10);
  }
  return std::make_pair(state, start);
}

Owner SelfOwner() {
  Owner o;
  o.boot = BootId();
  o.pid = static_cast<uint32_t>(::getpid());
  if (auto st = ProcStat(o.pid)) o.start = st->second;
  return o;
}

// True if `o` is a live process other than `self`.
bool OtherLiveProcess(const Owner& o, const Owner& self) {
  if (o == self) return false;
  if (o.boot != self.boot) return false;  // written before a reboot
  auto st = ProcStat(o.pid);
  if (!st) return false;
  if (st->first == 'Z' || st->first == 'X') return false;
  return st->second == o.start;
}

struct SliceMeta {
  uint8_t state = 0;
  uint64_t size = 0;
  uint64_t charged = 0;  // bytes counted in Totals::used
  uint64_t stamp = 0;    // LRU stamp (complete only)
  Owner owner;           // the writer (staging only)

  std::array<uint8_t, kSliceMetaSize> Encode() const {
    std::array<uint8_t, kSliceMetaSize> b{};
    b[0] = state;
    PutLe(&b[8], size, 8);
    PutLe(&b[16], charged, 8);
    PutLe(&b[24], stamp, 8);
    std::memcpy(&b[32], owner.boot.data(), 16);
    PutLe(&b[48], owner.pid, 4);
    PutLe(&b[56], owner.start, 8);
    return b;
  }
  static std::optional<SliceMeta> Decode(std::span<const uint8_t> b) {
    if (b.size() != kSliceMetaSize) return std::nullopt;
    SliceMeta m;
    m.state = b[0];
    if (m.state != kStateStaging && m.state != kStateComplete) return std::nullopt;
    m.size = GetLe(&b[8], 8);
    m.charged = GetLe(&b[16], 8);
    m.stamp = GetLe(&b[24], 8);
    std::memcpy(m.owner.boot.data(), &b[32], 16);
    m.owner.pid = static_cast<uint32_t>(GetLe(&b[48], 4));
    m.owner.start = GetLe(&b[56], 8);
    return m;
  }
};

struct Totals {
  uint64_t used = 0;      // sum of SliceMeta::charged
  uint64_t complete = 0;  // complete records
  uint64_t staged = 0;    // staging records
  uint64_t clock = 0;     // last LRU stamp handed out
};

}  // namespace

// ---------------------------------------------------------------------------
// Transaction-level helpers (free functions over the databases).

namespace {

struct Ctx {
  MDB_dbi slices, chunks, lru, meta;
  const std::string& dir;
};

Result<Totals> LoadTotals(LmdbTxn& txn, const Ctx& c) {
  auto got = txn.Get(c.meta, Bytes(kTotalsKey));
  if (!got.ok()) {
    if (got.status().IsNotFound()) return Totals{};
    return got.status();
  }
  if (got->size() != kTotalsSize) {
    return Status::Corruption(c.dir + ": chunk_totals record of " + std::to_string(got->size()) + " bytes");
  }
  Totals t;
  t.used = GetLe(got->data(), 8);
  t.complete = GetLe(got->data() + 8, 8);
  t.staged = GetLe(got->data() + 16, 8);
  t.clock = GetLe(got->data() + 24, 8);
  return t;
}

Status StoreTotals(LmdbTxn& txn, const Ctx& c, const Totals& t) {
  std::array<uint8_t, kTotalsSize> b{};
  PutLe(&b[0], t.used, 8);
  PutLe(&b[8], t.complete, 8);
  PutLe(&b[16], t.staged, 8);
  PutLe(&b[24], t.clock, 8);
  return txn.Put(c.meta, Bytes(kTotalsKey), b);
}

// nullopt if absent; kCorruption if undecodable.
Result<std::optional<SliceMeta>> LoadMeta(LmdbTxn& txn, const Ctx& c, const std::string& key) {
  auto got = txn.Get(c.slices, Bytes(key));
  if (!got.ok()) {
    if (got.status().IsNotFound()) return std::optional<SliceMeta>();
    return got.status();
  }
  auto m = SliceMeta::Decode(*got);
  if (!m) return Status::Corruption(c.dir + ": bad metadata record for " + DescribeKey(key));
  return m;
}

Status PutMeta(LmdbTxn& txn, const Ctx& c, const std::string& key, const SliceMeta& m) {
  auto b = m.Encode();
  return txn.Put(c.slices, Bytes(key), b);
}

// Deletes every chunk of a slice key; returns how many.
Result<uint64_t> DeleteChunks(LmdbTxn& txn, const Ctx& c, const std::string& key) {
  JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, c.chunks));
  auto first = ChunkKey(key, 0);
  uint64_t n = 0;
  for (;;) {
    MDB_val k = ToVal(first), v;
    int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) break;
    if (rc != 0) return LmdbStatus(rc, c.dir + ": seeking chunks");
    if (k.mv_size != kChunkKeySize || std::memcmp(k.mv_data, key.data(), kSliceKeySize) != 0) break;
    rc = mdb_cursor_del(cur.get(), 0);
    txn.NoteRc(rc);
    if (rc != 0) return LmdbStatus(rc, c.dir + ": deleting a chunk");
    ++n;
  }
  return n;
}

// Removes a slice (chunks, metadata, lru entry) and its charge.
Status RemoveSlice(LmdbTxn& txn, const Ctx& c, const std::string& key, const SliceMeta& m, Totals& t) {
  JIGDOOFUS_RETURN_IF_ERROR(DeleteChunks(txn, c, key).status());
  JIGDOOFUS_RETURN_IF_ERROR(txn.Del(c.slices, Bytes(key)));
  if (m.state == kStateComplete) {
    JIGDOOFUS_RETURN_IF_ERROR(txn.Del(c.lru, LruKey(m.stamp, key)));
    t.complete -= std::min<uint64_t>(t.complete, 1);
  } else {
    t.staged -= std::min<uint64_t>(t.staged, 1);
  }
  t.used -= std::min(t.used, m.charged);
  return Status::OK();
}

}  // namespace

// ---------------------------------------------------------------------------
// The VerifiedSlice handed out by Get().

class ChunkStore::Slice final : public VerifiedSlice {
 public:
  // Adopts a pin the caller took on key.
  Slice(ChunkStore* store, SliceId id, std::string key) : store_(store), id_(id), key_(std::move(key)) {}
  ~Slice() override { store_->Unpin(key_); }
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    return store_->ReadAt(id_, offset, out);
  }
  bool worth_keeping_open() const override { return false; }  // a pin blocks eviction

 private:
  ChunkStore* store_;
  SliceId id_;
  std::string key_;
};

// ---------------------------------------------------------------------------
// ChunkStore

ChunkStore::ChunkStore(LmdbEnv* env, Dbs dbs, ChunkStoreOptions options)
    : env_(env), dbs_(dbs), options_(options), self_(SelfOwner()), last_flush_(std::chrono::steady_clock::now()) {}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(LmdbEnv* env, ChunkStoreOptions options) {
  Dbs dbs{};
  JIGDOOFUS_ASSIGN_OR_RETURN(dbs.slices, env->OpenDb("slices"));
  JIGDOOFUS_ASSIGN_OR_RETURN(dbs.chunks, env->OpenDb("chunks"));
  JIGDOOFUS_ASSIGN_OR_RETURN(dbs.lru, env->OpenDb("lru"));
  JIGDOOFUS_ASSIGN_OR_RETURN(dbs.meta, env->OpenDb("meta"));
  std::unique_ptr<ChunkStore> store(new ChunkStore(env, dbs, options));
  JIGDOOFUS_RETURN_IF_ERROR(store->CollectAtOpen());
  return store;
}

ChunkStore::~ChunkStore() { FlushTouches(); }

Status ChunkStore::CollectAtOpen() {
  const Owner& self = self_;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  Status s = env_->Update([&](LmdbTxn& txn) -> Status {
    gc_slices_ = gc_bytes_ = gc_orphans_ = 0;
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals old, LoadTotals(txn, c));
    Totals t;
    t.clock = old.clock;
    std::vector<std::string> dead;           // staging of dead writers, bad records
    std::vector<std::pair<std::string, uint64_t>> relink;  // complete records missing an lru entry
    {
      JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, c.slices));
      MDB_val k, v;
      for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
           rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
        if (rc != 0) return LmdbStatus(rc, c.dir + ": scanning slice metadata");
        std::string key(static_cast<const char*>(k.mv_data), k.mv_size);
        auto m = SliceMeta::Decode(FromVal(v));
        if (key.size() != kSliceKeySize || !m || m->size != SizeFromSliceKey(U8(key))) {
          dead.push_back(std::move(key));
          continue;
        }
        if (m->state == kStateStaging && !OtherLiveProcess(m->owner, self)) {
          gc_bytes_ += m->charged;
          dead.push_back(std::move(key));
          continue;
        }
        t.used += m->charged;
        if (m->state == kStateComplete) {
          ++t.complete;
          t.clock = std::max(t.clock, m->stamp);
          auto lru_key = LruKey(m->stamp, key);
          MDB_val lk = ToVal(lru_key), lv;
          if (mdb_get(txn.get(), c.lru, &lk, &lv) != 0) relink.emplace_back(key, m->stamp);
        } else {
          ++t.staged;
        }
      }
    }
    for (const std::string& key : dead) {
      JIGDOOFUS_RETURN_IF_ERROR(DeleteChunks(txn, c, key).status());
      JIGDOOFUS_RETURN_IF_ERROR(txn.Del(c.slices, Bytes(key)));
      ++gc_slices_;
    }
    for (const auto& [key, stamp] : relink) {
      JIGDOOFUS_RETURN_IF_ERROR(txn.Put(c.lru, LruKey(stamp, key), {}));
    }
    // lru entries that do not match a complete record.
    std::vector<std::array<uint8_t, kLruKeySize>> stale_lru;
    {
      JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, c.lru));
      MDB_val k, v;
      for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
           rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
        if (rc != 0) return LmdbStatus(rc, c.dir + ": scanning the lru index");
        std::array<uint8_t, kLruKeySize> lk{};
        bool keep = false;
        if (k.mv_size == kLruKeySize) {
          std::memcpy(lk.data(), k.mv_data, kLruKeySize);
          std::string key(reinterpret_cast<const char*>(lk.data() + 8), kSliceKeySize);
          MDB_val mk = ToVal(Bytes(key)), mv;
          if (mdb_get(txn.get(), c.slices, &mk, &mv) == 0) {
            auto m = SliceMeta::Decode(FromVal(mv));
            keep = m && m->state == kStateComplete && m->stamp == GetBe(lk.data(), 8);
          }
          if (!keep) stale_lru.push_back(lk);
        }
      }
    }
    for (const auto& lk : stale_lru) JIGDOOFUS_RETURN_IF_ERROR(txn.Del(c.lru, lk));
    // Chunks whose slice has no metadata record (defensive: every write
    // puts chunks and metadata in one transaction).
    std::vector<std::string> orphans;
    {
      JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, c.chunks));
      MDB_val k, v;
      std::string last;
      for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
           rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
        if (rc != 0) return LmdbStatus(rc, c.dir + ": scanning chunks");
        if (k.mv_size < kSliceKeySize) continue;
        std::string prefix(static_cast<const char*>(k.mv_data), kSliceKeySize);
        if (prefix == last) continue;
        last = prefix;
        MDB_val mk = ToVal(Bytes(prefix)), mv;
        if (mdb_get(txn.get(), c.slices, &mk, &mv) != 0) orphans.push_back(prefix);
      }
    }
    for (const std::string& key : orphans) {
      JIGDOOFUS_ASSIGN_OR_RETURN(uint64_t n, DeleteChunks(txn, c, key));
      gc_orphans_ += n;
    }
    return StoreTotals(txn, c, t);
  });
  return s.WithContext(env_->dir() + ": opening the chunk cache");
}

Result<std::unique_ptr<ChunkStore::Writer>> ChunkStore::BeginSlice(const SliceId& id) {
  if (id.size > options_.capacity) {
    return Status::InvalidArgument("slice of " + std::to_string(id.size) + " bytes does not fit a cache of " +
                                   std::to_string(options_.capacity) + " bytes");
  }
  const std::string key = SliceKey(id);
  std::vector<std::string> touches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_.insert(key).second) {
      return Status::Unavailable(env_->dir() + ": " + Describe(id) + " is already being written");
    }
    touches.swap(touched_);
    last_flush_ = std::chrono::steady_clock::now();
  }
  const Owner& self = self_;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  bool already = false;
  uint64_t evicted = 0;
  // Evicting needs pin_mu_ held exclusively from choosing the victims to
  // the commit (so a Get cannot pin a victim in between); the first try
  // runs without it and comes back if it has to evict.
  bool with_lock = false, need_lock = false;
  auto stage = [&](LmdbTxn& txn) -> Status {
    already = false;
    evicted = 0;
    JIGDOOFUS_RETURN_IF_ERROR(ApplyTouches(txn, touches));
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn, c));
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    if (m && m->state == kStateComplete) {
      already = true;
      return Status::OK();
    }
    if (m) {
      if (OtherLiveProcess(m->owner, self)) {
        return Status::Unavailable(env_->dir() + ": " + Describe(id) + " is being written by process " +
                                   std::to_string(m->owner.pid));
      }
      // A dead writer's staging (or an earlier store of this process): take over.
      JIGDOOFUS_RETURN_IF_ERROR(RemoveSlice(txn, c, key, *m, t));
    }
    // Evict least recently used complete slices until the slice fits.
    if (t.used + id.size > options_.capacity) {
      if (!with_lock) {
        // Commit nothing but the touches (failing would abort the other
        // callers' work grouped into this transaction); come back locked.
        need_lock = true;
        return StoreTotals(txn, c, t);
      }
      std::vector<std::pair<std::string, SliceMeta>> victims;
      uint64_t freed = 0;
      {
        JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, c.lru));
        MDB_val k, v;
        for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
             rc != MDB_NOTFOUND && t.used - freed + id.size > options_.capacity;
             rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
          if (rc != 0) return LmdbStatus(rc, c.dir + ": scanning the lru index");
          if (k.mv_size != kLruKeySize) continue;
          std::string vkey(static_cast<const char*>(k.mv_data) + 8, kSliceKeySize);
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (pins_.count(vkey) != 0) continue;
          }
          JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> vm, LoadMeta(txn, c, vkey));
          if (!vm || vm->state != kStateComplete) continue;
          freed += vm->charged;
          victims.emplace_back(std::move(vkey), *vm);
        }
      }
      if (t.used - freed + id.size > options_.capacity) {
        return Status::Unavailable(env_->dir() + ": no room for " + Describe(id) + " in a cache of " +
                                   std::to_string(options_.capacity) +
                                   " bytes: the rest is being written or read");
      }
      for (const auto& [vkey, vm] : victims) {
        JIGDOOFUS_RETURN_IF_ERROR(RemoveSlice(txn, c, vkey, vm, t));
        ++evicted;
      }
    }
    SliceMeta staged;
    staged.state = kStateStaging;
    staged.size = id.size;
    staged.charged = id.size;
    staged.owner = self;
    JIGDOOFUS_RETURN_IF_ERROR(PutMeta(txn, c, key, staged));
    t.used += id.size;
    ++t.staged;
    return StoreTotals(txn, c, t);
  };
  Status s;
  for (;;) {
    std::unique_lock<std::shared_mutex> evict_lock(pin_mu_, std::defer_lock);
    if (with_lock) evict_lock.lock();
    need_lock = false;
    // Grouped with other writers' commits: one flush to disk for all.
    s = env_->UpdateGrouped(stage);
    if (!s.ok() || !need_lock || with_lock) break;
    touches.clear();  // applied by the committed first try
    with_lock = true;
  }
  if (!s.ok() || already) {
    std::lock_guard<std::mutex> lock(mu_);
    writing_.erase(key);
  }
  if (!s.ok()) return s;
  evictions_ += evicted;
  return std::unique_ptr<Writer>(new Writer(this, id, key, already));
}

Status ChunkStore::ApplyTouches(LmdbTxn& txn, const std::vector<std::string>& keys) {
  if (keys.empty()) return Status::OK();
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn, c));
  for (const std::string& key : keys) {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    if (!m || m->state != kStateComplete) continue;  // evicted since
    JIGDOOFUS_RETURN_IF_ERROR(txn.Del(c.lru, LruKey(m->stamp, key)));
    m->stamp = ++t.clock;
    JIGDOOFUS_RETURN_IF_ERROR(PutMeta(txn, c, key, *m));
    JIGDOOFUS_RETURN_IF_ERROR(txn.Put(c.lru, LruKey(m->stamp, key), {}));
  }
  return StoreTotals(txn, c, t);
}

Status ChunkStore::FlushTouches() {
  std::vector<std::string> touches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    touches.swap(touched_);
    last_flush_ = std::chrono::steady_clock::now();
  }
  if (touches.empty()) return Status::OK();
  return env_->Update([&](LmdbTxn& txn) { return ApplyTouches(txn, touches); })
      .WithContext(env_->dir() + ": recording slice use");
}

void ChunkStore::NoteTouch(const std::string& key) {
  bool flush = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    touched_.push_back(key);
    flush = touched_.size() >= kMaxPendingTouches ||
            std::chrono::steady_clock::now() - last_flush_ >= kTouchFlushInterval;
  }
  if (flush) FlushTouches();  // best effort: recency is a hint
}

void ChunkStore::Pin(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  ++pins_[key];
}

void ChunkStore::Unpin(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(key);
  if (it != pins_.end() && --it->second == 0) pins_.erase(it);
}

Result<std::shared_ptr<const VerifiedSlice>> ChunkStore::Get(const SliceId& id) {
  const std::string key = SliceKey(id);
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  bool complete = false;
  {
    // Pin before looking: an eviction in this process either committed
    // before the pin (we see the slice gone) or sees the pin (see
    // BeginSlice); pin_mu_ is held exclusively across evicting commits.
    std::shared_lock<std::shared_mutex> lock(pin_mu_);
    Pin(key);
  }
  Status s = env_->View([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    complete = m && m->state == kStateComplete;
    return Status::OK();
  });
  if (!s.ok() || !complete) {
    Unpin(key);
    if (!s.ok()) return s;
    return Status::NotFound(env_->dir() + ": " + Describe(id) + " is not in the cache");
  }
  NoteTouch(key);
  return std::shared_ptr<const VerifiedSlice>(std::make_shared<Slice>(this, id, key));
}

bool ChunkStore::Contains(const SliceId& id) {
  const std::string key = SliceKey(id);
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  bool complete = false;
  env_->View([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    complete = m && m->state == kStateComplete;
    return Status::OK();
  });
  return complete;
}

Status ChunkStore::Visit(const SliceId& id, uint64_t offset, uint64_t length,
                         const std::function<void(std::span<const uint8_t>)>& fn) const {
  if (offset > id.size || length > id.size - offset) {
    return Status::InvalidArgument(env_->dir() + ": read of " + std::to_string(length) + " bytes at " +
                                   std::to_string(offset) + " past the end of " + Describe(id));
  }
  const std::string key = SliceKey(id);
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  return env_->View([&](LmdbTxn& txn) -> Status {
    // Chunks are trusted only under a complete record in the same snapshot
    // (a new writer may be staging unverified chunks under this key).
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    if (!m || m->state != kStateComplete) {
      return Status::NotFound(c.dir + ": " + Describe(id) + " was evicted from the cache");
    }
    uint64_t pos = offset, end = offset + length;
    while (pos < end) {
      uint32_t index = static_cast<uint32_t>(pos / kChunkSize);
      uint64_t chunk_start = uint64_t{index} * kChunkSize;
      uint64_t expect = std::min<uint64_t>(kChunkSize, id.size - chunk_start);
      auto got = txn.Get(c.chunks, ChunkKey(key, index));
      if (!got.ok()) {
        return Status::Corruption(c.dir + ": chunk " + std::to_string(index) + " of " + Describe(id) +
                                  " is missing (" + got.status().message() + ")");
      }
      if (got->size() != expect) {
        return Status::Corruption(c.dir + ": chunk " + std::to_string(index) + " of " + Describe(id) + " has " +
                                  std::to_string(got->size()) + " bytes, expected " + std::to_string(expect));
      }
      uint64_t in_chunk = pos - chunk_start;
      uint64_t n = std::min<uint64_t>(expect - in_chunk, end - pos);
      fn(got->subspan(in_chunk, n));
      pos += n;
    }
    return Status::OK();
  });
}

Status ChunkStore::ReadAt(const SliceId& id, uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  return Visit(id, offset, out.size(), [&](std::span<const uint8_t> part) {
    std::memcpy(out.data() + done, part.data(), part.size());
    done += part.size();
  });
}

ChunkStoreStats ChunkStore::Stats() {
  ChunkStoreStats st;
  st.capacity = options_.capacity;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  env_->View([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn, c));
    st.bytes_used = t.used;
    st.slices_complete = t.complete;
    st.slices_staged = t.staged;
    return Status::OK();
  });
  st.evictions = evictions_.load();
  st.gc_slices_at_open = gc_slices_;
  st.gc_bytes_at_open = gc_bytes_;
  st.gc_orphan_chunks_at_open = gc_orphans_;
  return st;
}

// Writer callbacks ----------------------------------------------------------

namespace {
Status CheckOwnStaging(LmdbTxn& txn, const Ctx& c, const std::string& key, const Owner& self) {
  JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
  if (!m || m->state != kStateStaging || !(m->owner == self)) {
    return Status::Unavailable(c.dir + ": the staging record of " + DescribeKey(key) + " disappeared");
  }
  return Status::OK();
}
}  // namespace

namespace {
// Puts `data` as consecutive chunks starting at `first_index`.
Status PutChunks(LmdbTxn& txn, MDB_dbi chunks, const std::string& key, uint32_t first_index,
                 std::span<const uint8_t> data) {
  for (uint32_t i = first_index; !data.empty(); ++i) {
    const size_t n = std::min<size_t>(kChunkSize, data.size());
    JIGDOOFUS_RETURN_IF_ERROR(txn.Put(chunks, ChunkKey(key, i), data.first(n)));
    data = data.subspan(n);
  }
  return Status::OK();
}
}  // namespace

Status ChunkStore::WriteChunks(const std::string& key, uint32_t first_index, std::span<const uint8_t> data) {
  const Owner& self = self_;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  return env_->UpdateGrouped([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_RETURN_IF_ERROR(CheckOwnStaging(txn, c, key, self));
    return PutChunks(txn, c.chunks, key, first_index, data);
  });
}

Status ChunkStore::Publish(const std::string& key, uint64_t size, uint32_t first_index,
                           std::span<const uint8_t> tail) {
  const Owner& self = self_;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  return env_->UpdateGrouped([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_RETURN_IF_ERROR(CheckOwnStaging(txn, c, key, self));
    JIGDOOFUS_RETURN_IF_ERROR(PutChunks(txn, c.chunks, key, first_index, tail));
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn, c));
    SliceMeta m;
    m.state = kStateComplete;
    m.size = size;
    m.charged = size;
    m.stamp = ++t.clock;
    JIGDOOFUS_RETURN_IF_ERROR(PutMeta(txn, c, key, m));
    JIGDOOFUS_RETURN_IF_ERROR(txn.Put(c.lru, LruKey(m.stamp, key), {}));
    t.staged -= std::min<uint64_t>(t.staged, 1);
    ++t.complete;
    return StoreTotals(txn, c, t);
  });
}

void ChunkStore::Discard(const std::string& key) {
  const Owner& self = self_;
  Ctx c{dbs_.slices, dbs_.chunks, dbs_.lru, dbs_.meta, env_->dir()};
  // Best effort: if this fails, the staging is collected when this process
  // is gone (next Open) or taken over by the next BeginSlice here.
  env_->Update([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, c, key));
    if (!m || m->state != kStateStaging || !(m->owner == self)) return Status::OK();
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn, c));
    JIGDOOFUS_RETURN_IF_ERROR(RemoveSlice(txn, c, key, *m, t));
    return StoreTotals(txn, c, t);
  });
}

void ChunkStore::EndWriter(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_.erase(key);
}

// ---------------------------------------------------------------------------
// Writer

ChunkStore::Writer::Writer(ChunkStore* store, SliceId id, std::string key, bool already_complete)
    : store_(store), id_(id), key_(std::move(key)), already_complete_(already_complete), hasher_(id.digest.algo) {
  if (!already_complete_) buf_.reserve(std::min<uint64_t>(kWriteBatchBytes, id_.size));
}

ChunkStore::Writer::~Writer() {
  if (done_) return;
  if (!already_complete_) {
    store_->Discard(key_);
    store_->EndWriter(key_);
  }
}

void ChunkStore::Writer::Fail(Status s) {
  error_ = std::move(s);
  if (done_) return;
  done_ = true;
  if (!already_complete_) {
    store_->Discard(key_);
    store_->EndWriter(key_);
  }
}

Status ChunkStore::Writer::Append(std::span<const uint8_t> bytes) {
  if (!error_.ok()) return error_;
  if (done_) return Status::InvalidArgument(Describe(id_) + ": Append after Commit");
  if (bytes.size() > id_.size - appended_) {
    Fail(Status::Corruption(Describe(id_) + ": more bytes than the slice size were appended"));
    return error_;
  }
  hasher_.Update(bytes);
  appended_ += bytes.size();
  if (already_complete_) return Status::OK();
  while (!bytes.empty()) {
    if (buf_.size() == kWriteBatchBytes) {
      // Full and more is coming: write it. The last batch waits for Commit.
      Status s = store_->WriteChunks(key_, next_index_, buf_);
      if (!s.ok()) {
        Fail(s);
        return error_;
      }
      next_index_ += kWriteBatchChunks;
      buf_.clear();
    }
    if (buf_.empty() && bytes.size() > kWriteBatchBytes) {
      // A whole batch with more behind it: write it from the caller's
      // bytes without copying it into buf_ first.
      Status s = store_->WriteChunks(key_, next_index_, bytes.first(kWriteBatchBytes));
      if (!s.ok()) {
        Fail(s);
        return error_;
      }
      next_index_ += kWriteBatchChunks;
      bytes = bytes.subspan(kWriteBatchBytes);
      continue;
    }
    size_t take = std::min<size_t>(kWriteBatchBytes - buf_.size(), bytes.size());
    buf_.insert(buf_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
  }
  return Status::OK();
}

Status ChunkStore::Writer::Commit() {
  if (!error_.ok()) return error_;
  if (done_) return Status::InvalidArgument(Describe(id_) + ": Commit called twice");
  if (appended_ != id_.size) {
    Fail(Status::Corruption(Describe(id_) + ": only " + std::to_string(appended_) + " bytes were appended"));
    return error_;
  }
  Digest got = hasher_.Finish();
  if (!(got == id_.digest)) {
    Fail(Status::Corruption(Describe(id_) + ": the bytes hash to " + got.ToHex()));
    return error_;
  }
  if (already_complete_) {
    done_ = true;
    return Status::OK();
  }
  Status s = store_->Publish(key_, id_.size, next_index_, buf_);
  if (!s.ok()) {
    Fail(s);
    return error_;
  }
  done_ = true;
  store_->EndWriter(key_);
  std::vector<uint8_t>().swap(buf_);
  return Status::OK();
}

}  // namespace jigdoofus
