#include "cache/cached_slice.h"

#include <cstring>

namespace jigdoofus {

void CachedSlice::NoteUse() const {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t last = last_use_note_.load(std::memory_order_relaxed);
  const int64_t interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kUseNoteInterval).count();
  if (now - last < interval) return;
  if (last_use_note_.compare_exchange_strong(last, now, std::memory_order_relaxed)) store_->NoteUse(key_, /*may_flush=*/false);
}

Status CachedSlice::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  NoteUse();
  JIGDOOFUS_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::Begin(*store_->env(), true));
  size_t done = 0;
  return store_->ReadInSnapshot(txn, id_, key_, offset, out.size(), [&](std::span<const uint8_t> bytes, int64_t) {
    std::memcpy(out.data() + done, bytes.data(), bytes.size());
    done += bytes.size();
  });
}

Status CachedSlice::AppendTo(uint64_t offset, size_t n, ReadPlan* plan) const {
  NoteUse();
  // One read snapshot per plan for all of this store's slices (a thread
  // holds at most one transaction: lmdb_env.h).
  auto* txn = static_cast<LmdbTxn*>(plan->HoldFor(store_));
  if (txn == nullptr) {
    JIGDOOFUS_ASSIGN_OR_RETURN(LmdbTxn t, LmdbTxn::Begin(*store_->env(), true));
    auto held = std::make_shared<LmdbTxn>(std::move(t));
    txn = held.get();
    plan->HoldFor(store_, std::move(held));
  }
  const int fd = store_->data_fd();
  return store_->ReadInSnapshot(*txn, id_, key_, offset, n, [&](std::span<const uint8_t> bytes, int64_t at) {
    if (at >= 0 && fd >= 0) {
      plan->AppendFile(fd, static_cast<uint64_t>(at), bytes.size());
    } else {
      std::memcpy(plan->AppendMemory(bytes.size()).data(), bytes.data(), bytes.size());
    }
  });
}

void CachedSlice::Discard() const { store_->DropCorrupt(id_, "a block checksum did not match"); }

}  // namespace jigdoofus
