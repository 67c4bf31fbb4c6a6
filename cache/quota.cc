#include "cache/quota.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace jigdoofus {

using namespace cache_record;

Result<uint64_t> Quota::EvictTo(LmdbTxn& txn, const ChunkTables& t, uint64_t target, Totals& totals,
                                bool all_or_nothing) {
  if (totals.used <= target) return uint64_t{0};
  std::vector<std::pair<std::string, SliceMeta>> victims;
  uint64_t freed = 0;
  {
    JIGDOOFUS_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::Open(txn, t.lru));
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND && totals.used - freed > target;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      if (rc != 0) return LmdbStatus(rc, t.dir + ": scanning the lru index");
      if (k.mv_size != kLruKeySize) continue;
      std::string key(static_cast<const char*>(k.mv_data) + 8, kSliceKeySize);
      JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, t.LoadMeta(txn, key));
      if (!m || !m->complete()) continue;
      freed += m->charged;
      victims.emplace_back(std::move(key), *m);
    }
  }
  if (all_or_nothing && totals.used - freed > target) return uint64_t{0};
  for (const auto& [key, m] : victims) JIGDOOFUS_RETURN_IF_ERROR(t.RemoveSlice(txn, key, m, totals));
  evictions_.fetch_add(victims.size(), std::memory_order_relaxed);
  return uint64_t{victims.size()};
}

Result<Admission> Quota::Admit(LmdbTxn& txn, const ChunkTables& t, const SliceId& id, const std::string& key,
                               const WriterIdentity& self) {
  if (!fits_at_all(id.size)) return Admission::kTooLarge;
  JIGDOOFUS_ASSIGN_OR_RETURN(Totals totals, t.LoadTotals(txn));
  JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, t.LoadMeta(txn, key));
  if (m && m->complete()) return Admission::kAlreadyComplete;
  if (m) {
    if (IsOtherLiveProcess(m->owner, self)) return Admission::kBusyElsewhere;
    // A dead writer's staging (or an earlier store of this process): take it over.
    JIGDOOFUS_RETURN_IF_ERROR(t.RemoveSlice(txn, key, *m, totals));
  }
  const uint64_t limit = bound();
  if (totals.used + id.size > limit) {
    JIGDOOFUS_RETURN_IF_ERROR(EvictTo(txn, t, limit - id.size, totals, true).status());
    if (totals.used + id.size > limit) return Admission::kNoRoomNow;  // nothing was evicted
  }
  SliceMeta staged;
  staged.state = kStateStaging;
  staged.size = id.size;
  staged.charged = id.size;
  staged.owner = self;
  JIGDOOFUS_RETURN_IF_ERROR(t.PutMeta(txn, key, staged));
  totals.used += id.size;
  ++totals.staged;
  JIGDOOFUS_RETURN_IF_ERROR(t.StoreTotals(txn, totals));
  return Admission::kWrite;
}

uint64_t Quota::LowerAfterNoSpace(uint64_t used, const std::string& dir) {
  no_space_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t want = std::min(used, bound()) / 10 * 9;
  uint64_t cur = bound_.load();
  while (want < cur && !bound_.compare_exchange_weak(cur, want)) {
  }
  if (want < cur) {
    // Warned once per process; each lowering after that is in the status
    // file (no_space_events, effective_bound) and the debug log.
    const auto level = warned_.exchange(true) ? spdlog::level::debug : spdlog::level::warn;
    spdlog::log(level, "cache {}: the disk is full; keeping at most {} MiB of slices from now on (--cache-size {} MiB)",
                dir, want >> 20, capacity_ >> 20);
    return want;
  }
  return bound();
}

}  // namespace jigdoofus
