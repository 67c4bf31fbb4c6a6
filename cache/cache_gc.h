// Garbage collection of the chunk cache at open (doc/cache_format.md,
// "Crash safety"): staging left by writers that are gone, records that do
// not decode, missing or stale lru entries, chunks without a record; the
// totals are recomputed from the records. One write transaction.
#pragma once

#include <cstdint>

#include "cache/chunk_tables.h"
#include "cache/writer_identity.h"

namespace jigdoofus {

struct CacheGcStats {
  uint64_t slices = 0;         // staging and bad records removed
  uint64_t bytes = 0;          // bytes they had charged
  uint64_t orphan_chunks = 0;  // chunks with no record
};

Result<CacheGcStats> CollectAtOpen(LmdbEnv* env, const ChunkTables& tables, const WriterIdentity& self);

}  // namespace jigdoofus
