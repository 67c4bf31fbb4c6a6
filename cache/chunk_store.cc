#include "cache/chunk_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include <unistd.h>

#include "cache/byte_order.h"
#include "cache/cached_slice.h"
#include "core/byte_source.h"

namespace jigdoofus {

using cache_bytes::Bytes;
using namespace cache_record;

ChunkStore::ChunkStore(LmdbEnv* env, ChunkTables tables, ChunkStoreOptions options)
    : env_(env),
      tables_(std::move(tables)),
      options_(options),
      quota_(options.capacity),
      self_(SelfWriterIdentity()),
      last_flush_(std::chrono::steady_clock::now()) {}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(LmdbEnv* env, ChunkStoreOptions options) {
  JIGDOOFUS_ASSIGN_OR_RETURN(ChunkTables tables, ChunkTables::Open(env));
  std::unique_ptr<ChunkStore> store(new ChunkStore(env, std::move(tables), options));
  JIGDOOFUS_ASSIGN_OR_RETURN(store->gc_, CollectAtOpen(env, store->tables_, store->self_));
  store->page_size_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  int rc = mdb_env_get_fd(env->env(), &store->data_fd_);
  if (rc != 0) return LmdbStatus(rc, env->dir() + ": the cache's data file");
  return store;
}

ChunkStore::~ChunkStore() { FlushTouches(); }

Status ChunkStore::Write(const std::function<Status(LmdbTxn&)>& fn) {
  uint64_t seen = no_space_gen_.load();
  Status s = env_->UpdateGrouped(fn);
  for (int attempt = 1; s.code() == Status::Code::kNoSpace && attempt < kNoSpaceRetries; ++attempt) {
    Status room = MakeRoomAfterNoSpace(seen);
    if (!room.ok()) return room;
    seen = no_space_gen_.load();
    s = env_->UpdateGrouped(fn);
  }
  return s;
}

Status ChunkStore::MakeRoomAfterNoSpace(uint64_t seen_generation) {
  std::lock_guard<std::mutex> lock(no_space_mu_);
  // Room was made since this write began (a burst of writes failing at
  // once lowers the bound once): just try again.
  if (no_space_gen_.load() != seen_generation) return Status::OK();
  uint64_t evicted = 0;
  Status s = env_->Update([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, tables_.LoadTotals(txn));
    const uint64_t target = quota_.LowerAfterNoSpace(t.used, env_->dir());
    JIGDOOFUS_ASSIGN_OR_RETURN(evicted, quota_.EvictTo(txn, tables_, target, t, false));
    return tables_.StoreTotals(txn, t);
  });
  no_space_gen_.fetch_add(1);
  if (s.ok() && evicted > 0) {
    spdlog::info("cache {}: evicted {} slices to make room on a full disk", env_->dir(), evicted);
  }
  return s.WithContext(env_->dir() + ": making room after the disk filled");
}

Result<ChunkStore::Admitted> ChunkStore::Admit(const SliceId& id) {
  Admitted out;
  if (!quota_.fits_at_all(id.size)) {
    out.admission = Admission::kTooLarge;
    return out;
  }
  std::string key = SliceKey(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_.insert(key).second) {
      out.admission = Admission::kBusyElsewhere;
      return out;
    }
  }
  std::vector<std::string> touches = TakeTouches();
  Status s = Write([&](LmdbTxn& txn) -> Status {
    // Recency first, so eviction sees it.
    JIGDOOFUS_RETURN_IF_ERROR(tables_.Touch(txn, touches));
    JIGDOOFUS_ASSIGN_OR_RETURN(out.admission, quota_.Admit(txn, tables_, id, key, self_));
    return Status::OK();
  });
  if (!s.ok() || out.admission != Admission::kWrite) EndWriter(key);
  if (!s.ok()) return s;
  if (out.admission == Admission::kWrite) out.writer.reset(new Writer(this, id, std::move(key)));
  return out;
}

std::shared_ptr<const VerifiedSlice> ChunkStore::MakeSlice(const SliceId& id, std::string key) {
  NoteUse(key, /*may_flush=*/true);
  return std::make_shared<CachedSlice>(this, id, std::move(key));
}

Result<bool> ChunkStore::IsComplete(const std::string& key) const {
  bool complete = false;
  JIGDOOFUS_RETURN_IF_ERROR(env_->View([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, tables_.LoadMeta(txn, key));
    complete = m && m->complete();
    return Status::OK();
  }));
  return complete;
}

Result<std::shared_ptr<const VerifiedSlice>> ChunkStore::Get(const SliceId& id) {
  std::string key = SliceKey(id);
  JIGDOOFUS_ASSIGN_OR_RETURN(bool complete, IsComplete(key));
  if (!complete) return Status::NotFound(env_->dir() + ": " + Describe(id) + " is not in the cache");
  return MakeSlice(id, std::move(key));
}

Result<bool> ChunkStore::Contains(const SliceId& id) { return IsComplete(SliceKey(id)); }

Status ChunkStore::WaitWhileBusy(const SliceId& id, std::chrono::steady_clock::time_point deadline) {
  const std::string key = SliceKey(id);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!writers_cv_.wait_until(lock, deadline, [&] { return writing_.count(key) == 0; })) {
      return Status::TimedOut(Describe(id) + " is still being written by another reader of this mount");
    }
  }
  for (;;) {  // another process may have it staged
    bool staged_elsewhere = false;
    JIGDOOFUS_RETURN_IF_ERROR(env_->View([&](LmdbTxn& txn) -> Status {
      JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, tables_.LoadMeta(txn, key));
      staged_elsewhere = m && !m->complete() && IsOtherLiveProcess(m->owner, self_);
      return Status::OK();
    }));
    if (!staged_elsewhere) return Status::OK();
    if (std::chrono::steady_clock::now() + kOtherProcessPoll > deadline) {
      return Status::TimedOut(Describe(id) + " is still being written by another process sharing " + env_->dir());
    }
    std::this_thread::sleep_for(kOtherProcessPoll);
  }
}

void ChunkStore::DropCorrupt(const SliceId& id, const std::string& why) {
  const std::string key = SliceKey(id);
  bool dropped = false;
  Status s = Write([&](LmdbTxn& txn) -> Status {
    dropped = false;
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, tables_.LoadMeta(txn, key));
    if (!m || !m->complete()) return Status::OK();  // dropped or evicted already
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, tables_.LoadTotals(txn));
    JIGDOOFUS_RETURN_IF_ERROR(tables_.RemoveSlice(txn, key, *m, t));
    dropped = true;
    return tables_.StoreTotals(txn, t);
  });
  if (dropped) {
    corrupt_dropped_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("cache {}: {} no longer matches what was verified ({}); dropped, it will be fetched again",
                  env_->dir(), Describe(id), why);
  } else if (!s.ok()) {
    spdlog::error("cache {}: could not drop damaged {}: {}", env_->dir(), Describe(id), s.ToString());
  }
}

Status ChunkStore::FlushTouches() {
  std::vector<std::string> touches = TakeTouches();
  if (touches.empty()) return Status::OK();
  return env_->Update([&](LmdbTxn& txn) { return tables_.Touch(txn, touches); })
      .WithContext(env_->dir() + ": recording slice use");
}

std::vector<std::string> ChunkStore::TakeTouches() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(touched_);
  touched_set_.clear();
  last_flush_ = std::chrono::steady_clock::now();
  return out;
}

void ChunkStore::NoteUse(const std::string& key, bool may_flush) {
  bool flush = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool full = touched_.size() >= kMaxPendingTouches;
    if (!full && touched_set_.insert(key).second) touched_.push_back(key);
    // Notes past the limit are dropped when they cannot be written now:
    // recency is a hint.
    flush = may_flush && (full || std::chrono::steady_clock::now() - last_flush_ >= kTouchFlushInterval);
  }
  if (flush) {
    Status s = FlushTouches();
    if (!s.ok()) spdlog::warn("{}", s.ToString());  // recency is a hint: reads go on
  }
}

void ChunkStore::EndWriter(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_.erase(key);
  }
  writers_cv_.notify_all();
}

Status ChunkStore::ReadInSnapshot(LmdbTxn& txn, const SliceId& id, const std::string& key, uint64_t offset,
                                  uint64_t n, const std::function<void(std::span<const uint8_t>, int64_t)>& fn) const {
  if (offset > id.size || n > id.size - offset) {
    return Status::Internal(env_->dir() + ": read of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                            " past the end of " + Describe(id));
  }
  // Chunks are trusted only under a complete record in the same snapshot
  // (a new writer may be staging unverified chunks under this key).
  JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, tables_.LoadMeta(txn, key));
  if (!m || !m->complete()) return Status::NotFound(env_->dir() + ": " + Describe(id) + " was evicted from the cache");
  uint64_t pos = offset;
  const uint64_t end = offset + n;
  while (pos < end) {
    const auto index = static_cast<uint32_t>(pos / kChunkSize);
    const uint64_t chunk_start = uint64_t{index} * kChunkSize;
    const size_t expect = ChunkDataSize(id.size, index);
    auto value = txn.Get(tables_.chunks, ChunkKey(key, index));
    if (!value.ok()) {
      return Status::Corruption(env_->dir() + ": chunk " + std::to_string(index) + " of " + Describe(id) +
                                " is missing (" + value.status().message() + ")");
    }
    auto chunk = DecodeChunk(*value, expect);
    if (!chunk) {
      return Status::Corruption(env_->dir() + ": chunk " + std::to_string(index) + " of " + Describe(id) + " has " +
                                std::to_string(value->size()) + " bytes, expected " +
                                std::to_string(ChunkValueSize(expect)));
    }
    const size_t in_chunk = static_cast<size_t>(pos - chunk_start);
    const size_t len = static_cast<size_t>(std::min<uint64_t>(expect - in_chunk, end - pos));
    if (!BlocksMatch(*chunk, index, in_chunk, len)) {
      return Status::Corruption(env_->dir() + ": chunk " + std::to_string(index) + " of " + Describe(id) +
                                " fails its block checksum");
    }
    const auto bytes = chunk->data.subspan(in_chunk, len);
    const int64_t at = FileOffsetOf(*value);
    fn(bytes, at < 0 ? -1 : at + static_cast<int64_t>(bytes.data() - value->data()));
    pos += len;
  }
  return Status::OK();
}

int64_t ChunkStore::FileOffsetOf(std::span<const uint8_t> value) const {
  if (!file_ranges_ok_.load(std::memory_order_relaxed)) return -1;
  const int64_t at = LmdbValueFileOffset(value, page_size_);
  if (at < 0 || file_ranges_checked_.load(std::memory_order_acquire)) return at;
  // Once per process: the derived offset must hold the very bytes the map
  // shows, or replies are copied from the map instead.
  std::vector<uint8_t> probe(std::min<size_t>(value.size(), 4096));
  auto got = PreadFully(data_fd_, static_cast<uint64_t>(at), probe, env_->dir() + "/data.mdb");
  const bool same = got.ok() && *got == probe.size() && std::equal(probe.begin(), probe.end(), value.begin());
  if (!same) {
    spdlog::warn("cache {}: cannot locate values in data.mdb; cache reads are copied", env_->dir());
    file_ranges_ok_.store(false);
    return -1;
  }
  file_ranges_checked_.store(true, std::memory_order_release);
  return at;
}

Result<ChunkStoreStats> ChunkStore::Stats() {
  ChunkStoreStats st;
  st.capacity = options_.capacity;
  st.bound = quota_.bound();
  JIGDOOFUS_RETURN_IF_ERROR(env_->View([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals t, tables_.LoadTotals(txn));
    st.bytes_used = t.used;
    st.slices_complete = t.complete;
    st.slices_staged = t.staged;
    return Status::OK();
  }));
  st.evictions = quota_.evictions();
  st.no_space_events = quota_.no_space_events();
  st.corrupt_dropped = corrupt_dropped_.load();
  st.gc_at_open = gc_;
  return st;
}

}  // namespace jigdoofus
