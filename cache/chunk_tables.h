// ChunkTables: the chunk cache's four LMDB databases (slices, chunks, lru,
// meta; doc/cache_format.md) and the operations on them inside one
// transaction. Every change keeps the invariants the format states
// (chunks only under a record, one lru entry per complete record, totals
// matching the records). Thread-safe: immutable handles; the caller owns
// the transaction.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "cache/lmdb_env.h"
#include "cache/record_codec.h"

namespace jigdoofus {

struct ChunkTables {
  MDB_dbi slices = 0, chunks = 0, lru = 0, meta = 0;
  std::string dir;  // for messages

  static Result<ChunkTables> Open(LmdbEnv* env);

  Result<cache_record::Totals> LoadTotals(LmdbTxn& txn) const;
  Status StoreTotals(LmdbTxn& txn, const cache_record::Totals& t) const;
  // nullopt if absent; kCorruption if undecodable.
  Result<std::optional<cache_record::SliceMeta>> LoadMeta(LmdbTxn& txn, const std::string& key) const;
  Status PutMeta(LmdbTxn& txn, const std::string& key, const cache_record::SliceMeta& m) const;
  // Deletes every chunk of a slice key; returns how many.
  Result<uint64_t> DeleteChunks(LmdbTxn& txn, const std::string& key) const;
  // Removes a slice (chunks, record, lru entry) and its charge from t.
  Status RemoveSlice(LmdbTxn& txn, const std::string& key, const cache_record::SliceMeta& m,
                     cache_record::Totals& t) const;
  // Writes `data` as chunks first_index, first_index + 1, ... with their
  // block sums, encoded in place (MDB_RESERVE).
  Status PutChunks(LmdbTxn& txn, const std::string& key, uint32_t first_index,
                   std::span<const uint8_t> data) const;
  // Makes a staging record complete: new stamp, lru entry, totals.
  Status Publish(LmdbTxn& txn, const std::string& key, uint64_t size) const;
  // Gives the complete slices in `keys` new recency stamps (skips the
  // ones that are gone).
  Status Touch(LmdbTxn& txn, std::span<const std::string> keys) const;
};

}  // namespace jigdoofus
