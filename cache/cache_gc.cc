#include "cache/cache_gc.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cache/byte_order.h"

namespace jigdoofus {

using cache_bytes::Bytes;
using cache_bytes::GetBe;
using namespace cache_record;

namespace {

// Calls fn(key, value) for every entry of `dbi`.
template <typename Fn>
Status ForEach(LmdbTxn& txn, MDB_dbi dbi, const std::string& what, Fn&& fn) {
  JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, dbi));
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    if (rc != 0) return LmdbStatus(rc, what);
    fn(FromVal(k), FromVal(v));
  }
  return Status::OK();
}

std::optional<SliceMeta> MetaIn(LmdbTxn& txn, const ChunkTables& t, std::span<const uint8_t> key) {
  MDB_val mk = ToVal(key), mv;
  if (mdb_get(txn.get(), t.slices, &mk, &mv) != 0) return std::nullopt;
  return SliceMeta::Decode(FromVal(mv));
}

}  // namespace

Result<CacheGcStats> CollectAtOpen(LmdbEnv* env, const ChunkTables& t, const WriterIdentity& self) {
  CacheGcStats gc;
  Status s = env->Update([&](LmdbTxn& txn) -> Status {
    gc = CacheGcStats{};
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals old, t.LoadTotals(txn));
    Totals totals;
    totals.clock = old.clock;
    std::vector<std::string> dead;                          // dead writers' staging, bad records
    std::vector<std::pair<std::string, uint64_t>> relink;  // complete records without an lru entry
    JIGDOOFUS_RETURN_IF_ERROR(ForEach(txn, t.slices, t.dir + ": scanning slice metadata", [&](auto k, auto v) {
      std::string key(reinterpret_cast<const char*>(k.data()), k.size());
      auto m = SliceMeta::Decode(v);
      if (key.size() != kSliceKeySize || !m || m->size != SizeFromSliceKey(k.data())) {
        dead.push_back(std::move(key));
        return;
      }
      if (!m->complete() && !IsOtherLiveProcess(m->owner, self)) {
        gc.bytes += m->charged;
        dead.push_back(std::move(key));
        return;
      }
      totals.used += m->charged;
      if (!m->complete()) {
        ++totals.staged;
        return;
      }
      ++totals.complete;
      totals.clock = std::max(totals.clock, m->stamp);
      auto lk = LruKey(m->stamp, key);
      MDB_val lv, lkv = ToVal(lk);
      if (mdb_get(txn.get(), t.lru, &lkv, &lv) != 0) relink.emplace_back(key, m->stamp);
    }));
    for (const std::string& key : dead) {
      JIGDOOFUS_RETURN_IF_ERROR(t.DeleteChunks(txn, key).status());
      JIGDOOFUS_RETURN_IF_ERROR(txn.Del(t.slices, Bytes(key)));
      ++gc.slices;
    }
    for (const auto& [key, stamp] : relink) JIGDOOFUS_RETURN_IF_ERROR(txn.Put(t.lru, LruKey(stamp, key), {}));

    // lru entries that match no complete record with their stamp.
    std::vector<std::array<uint8_t, kLruKeySize>> stale;
    JIGDOOFUS_RETURN_IF_ERROR(ForEach(txn, t.lru, t.dir + ": scanning the lru index", [&](auto k, auto) {
      if (k.size() != kLruKeySize) return;
      std::array<uint8_t, kLruKeySize> lk{};
      std::memcpy(lk.data(), k.data(), kLruKeySize);
      auto m = MetaIn(txn, t, std::span<const uint8_t>(lk).subspan(8));
      if (!(m && m->complete() && m->stamp == GetBe(lk.data(), 8))) stale.push_back(lk);
    }));
    for (const auto& lk : stale) JIGDOOFUS_RETURN_IF_ERROR(txn.Del(t.lru, lk));

    // Chunks whose slice has no record (defensive: chunks and records are
    // written in one transaction).
    std::vector<std::string> orphans;
    std::string last;
    JIGDOOFUS_RETURN_IF_ERROR(ForEach(txn, t.chunks, t.dir + ": scanning chunks", [&](auto k, auto) {
      if (k.size() < kSliceKeySize) return;
      std::string prefix(reinterpret_cast<const char*>(k.data()), kSliceKeySize);
      if (prefix == last) return;
      last = prefix;
      if (!MetaIn(txn, t, Bytes(prefix)).has_value()) orphans.push_back(prefix);
    }));
    for (const std::string& key : orphans) {
      JIGDOOFUS_ASSIGN_OR_RETURN(uint64_t n, t.DeleteChunks(txn, key));
      gc.orphan_chunks += n;
    }
    return t.StoreTotals(txn, totals);
  });
  if (!s.ok()) return s.WithContext(env->dir() + ": opening the chunk cache");
  return gc;
}

}  // namespace jigdoofus
