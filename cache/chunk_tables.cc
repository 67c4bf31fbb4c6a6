#include "cache/chunk_tables.h"

#include <algorithm>
#include <cstring>

#include "cache/byte_order.h"

namespace jigdoofus {

using cache_bytes::Bytes;
using namespace cache_record;

Result<ChunkTables> ChunkTables::Open(LmdbEnv* env) {
  ChunkTables t;
  t.dir = env->dir();
  JIGDOOFUS_ASSIGN_OR_RETURN(t.slices, env->OpenDb("slices"));
  JIGDOOFUS_ASSIGN_OR_RETURN(t.chunks, env->OpenDb("chunks"));
  JIGDOOFUS_ASSIGN_OR_RETURN(t.lru, env->OpenDb("lru"));
  JIGDOOFUS_ASSIGN_OR_RETURN(t.meta, env->OpenDb("meta"));
  return t;
}

Result<Totals> ChunkTables::LoadTotals(LmdbTxn& txn) const {
  auto got = txn.Get(meta, Bytes(kTotalsKey));
  if (!got.ok()) {
    if (got.status().IsNotFound()) return Totals{};
    return got.status();
  }
  auto t = Totals::Decode(*got);
  if (!t) return Status::Corruption(dir + ": chunk_totals record of " + std::to_string(got->size()) + " bytes");
  return *t;
}

Status ChunkTables::StoreTotals(LmdbTxn& txn, const Totals& t) const {
  return txn.Put(meta, Bytes(kTotalsKey), t.Encode());
}

Result<std::optional<SliceMeta>> ChunkTables::LoadMeta(LmdbTxn& txn, const std::string& key) const {
  auto got = txn.Get(slices, Bytes(key));
  if (!got.ok()) {
    if (got.status().IsNotFound()) return std::optional<SliceMeta>();
    return got.status();
  }
  auto m = SliceMeta::Decode(*got);
  if (!m) return Status::Corruption(dir + ": bad metadata record for " + DescribeKey(key));
  return m;
}

Status ChunkTables::PutMeta(LmdbTxn& txn, const std::string& key, const SliceMeta& m) const {
  return txn.Put(slices, Bytes(key), m.Encode());
}

Result<uint64_t> ChunkTables::DeleteChunks(LmdbTxn& txn, const std::string& key) const {
  JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, chunks));
  auto first = ChunkKey(key, 0);
  uint64_t n = 0;
  for (;;) {
    MDB_val k = ToVal(first), v;
    int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) break;
    if (rc != 0) return LmdbStatus(rc, dir + ": seeking chunks");
    if (k.mv_size != kChunkKeySize || std::memcmp(k.mv_data, key.data(), kSliceKeySize) != 0) break;
    rc = mdb_cursor_del(cur.get(), 0);
    txn.NoteRc(rc);
    if (rc != 0) return LmdbStatus(rc, dir + ": deleting a chunk");
    ++n;
  }
  return n;
}

Status ChunkTables::RemoveSlice(LmdbTxn& txn, const std::string& key, const SliceMeta& m, Totals& t) const {
  JIGDOOFUS_RETURN_IF_ERROR(DeleteChunks(txn, key).status());
  JIGDOOFUS_RETURN_IF_ERROR(txn.Del(slices, Bytes(key)));
  if (m.complete()) {
    JIGDOOFUS_RETURN_IF_ERROR(txn.Del(lru, LruKey(m.stamp, key)));
    t.complete -= std::min<uint64_t>(t.complete, 1);
  } else {
    t.staged -= std::min<uint64_t>(t.staged, 1);
  }
  t.used -= std::min(t.used, m.charged);
  return Status::OK();
}

Status ChunkTables::PutChunks(LmdbTxn& txn, const std::string& key, uint32_t first_index,
                              std::span<const uint8_t> data) const {
  for (uint32_t i = first_index; !data.empty(); ++i) {
    const size_t n = std::min<size_t>(kChunkSize, data.size());
    // Encoded straight into the database page: no staging copy.
    JIGDOOFUS_ASSIGN_OR_RETURN(std::span<uint8_t> value, txn.Reserve(chunks, ChunkKey(key, i), ChunkValueSize(n)));
    EncodeChunk(i, data.first(n), value);
    data = data.subspan(n);
  }
  return Status::OK();
}

Status ChunkTables::Publish(LmdbTxn& txn, const std::string& key, uint64_t size) const {
  JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn));
  SliceMeta m;
  m.state = kStateComplete;
  m.size = size;
  m.charged = size;
  m.stamp = ++t.clock;
  JIGDOOFUS_RETURN_IF_ERROR(PutMeta(txn, key, m));
  JIGDOOFUS_RETURN_IF_ERROR(txn.Put(lru, LruKey(m.stamp, key), {}));
  t.staged -= std::min<uint64_t>(t.staged, 1);
  ++t.complete;
  return StoreTotals(txn, t);
}

Status ChunkTables::Touch(LmdbTxn& txn, std::span<const std::string> keys) const {
  if (keys.empty()) return Status::OK();
  JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, LoadTotals(txn));
  for (const std::string& key : keys) {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, LoadMeta(txn, key));
    if (!m || !m->complete()) continue;  // evicted since
    JIGDOOFUS_RETURN_IF_ERROR(txn.Del(lru, LruKey(m->stamp, key)));
    m->stamp = ++t.clock;
    JIGDOOFUS_RETURN_IF_ERROR(PutMeta(txn, key, *m));
    JIGDOOFUS_RETURN_IF_ERROR(txn.Put(lru, LruKey(m->stamp, key), {}));
  }
  return StoreTotals(txn, t);
}

}  // namespace jigdoofus
