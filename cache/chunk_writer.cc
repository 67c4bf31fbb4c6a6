// ChunkStore::Writer: streams one slice into the store (cache/chunk_store.h).
#include <algorithm>

#include "cache/chunk_store.h"

namespace jigdoofus {

using namespace cache_record;

ChunkStore::Writer::Writer(ChunkStore* store, SliceId id, std::string key)
    : store_(store), id_(id), key_(std::move(key)), hasher_(id.digest.algo) {
  buf_.reserve(std::min<uint64_t>(kWriteBatchBytes, id_.size));
}

ChunkStore::Writer::~Writer() {
  if (!done_) Discard();
}

void ChunkStore::Writer::Discard() {
  done_ = true;
  ChunkTables& t = store_->tables_;
  const WriterIdentity& self = store_->self_;
  // Best effort: if this fails, the staging is collected when this process
  // is gone (next Open) or taken over by the next Admit here.
  (void)store_->env_->Update([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, t.LoadMeta(txn, key_));
    if (!m || m->complete() || !(m->owner == self)) return Status::OK();
    JIGDOOFUS_ASSIGN_OR_RETURN(Totals totals, t.LoadTotals(txn));
    JIGDOOFUS_RETURN_IF_ERROR(t.RemoveSlice(txn, key_, *m, totals));
    return t.StoreTotals(txn, totals);
  });
  store_->EndWriter(key_);
}

void ChunkStore::Writer::Fail(Status s) {
  error_ = std::move(s);
  if (!done_) Discard();
}

namespace {
Status CheckOwnStaging(LmdbTxn& txn, const ChunkTables& t, const std::string& key, const WriterIdentity& self) {
  JIGDOOFUS_ASSIGN_OR_RETURN(std::optional<SliceMeta> m, t.LoadMeta(txn, key));
  if (!m || m->complete() || !(m->owner == self)) {
    return Status::Internal(t.dir + ": the staging record of " + DescribeKey(key) + " disappeared");
  }
  return Status::OK();
}
}  // namespace

Status ChunkStore::Writer::WriteBatch(uint32_t first_index, std::span<const uint8_t> data) {
  const ChunkTables& t = store_->tables_;
  const WriterIdentity& self = store_->self_;
  Status s = store_->Write([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_RETURN_IF_ERROR(CheckOwnStaging(txn, t, key_, self));
    return t.PutChunks(txn, key_, first_index, data);
  });
  if (s.ok()) next_index_ = first_index + static_cast<uint32_t>((data.size() + kChunkSize - 1) / kChunkSize);
  return s;
}

Status ChunkStore::Writer::Append(std::span<const uint8_t> bytes) {
  if (!error_.ok()) return error_;
  if (done_) return Status::Internal(Describe(id_) + ": Append after Commit");
  if (bytes.size() > id_.size - appended_) {
    Fail(Status::Corruption(Describe(id_) + ": more bytes than the slice size were appended"));
    return error_;
  }
  hasher_.Update(bytes);
  appended_ += bytes.size();
  while (!bytes.empty()) {
    if (buf_.size() == kWriteBatchBytes) {
      // Full and more is coming: write it. The last batch waits for Commit.
      Status s = WriteBatch(next_index_, buf_);
      if (!s.ok()) {
        Fail(s);
        return error_;
      }
      buf_.clear();
    }
    if (buf_.empty() && bytes.size() > kWriteBatchBytes) {
      // A whole batch with more behind it: write it from the caller's
      // bytes without copying it into buf_ first.
      Status s = WriteBatch(next_index_, bytes.first(kWriteBatchBytes));
      if (!s.ok()) {
        Fail(s);
        return error_;
      }
      bytes = bytes.subspan(kWriteBatchBytes);
      continue;
    }
    const size_t take = std::min<size_t>(kWriteBatchBytes - buf_.size(), bytes.size());
    buf_.insert(buf_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
  }
  return Status::OK();
}

Result<std::shared_ptr<const VerifiedSlice>> ChunkStore::Writer::Commit() {
  if (!error_.ok()) return error_;
  if (done_) return Status::Internal(Describe(id_) + ": Commit called twice");
  if (appended_ != id_.size) {
    Fail(Status::Corruption(Describe(id_) + ": only " + std::to_string(appended_) + " bytes were appended"));
    return error_;
  }
  Digest got = hasher_.Finish();
  if (!(got == id_.digest)) {
    Fail(Status::Corruption(Describe(id_) + ": the bytes hash to " + got.ToHex()));
    return error_;
  }
  const ChunkTables& t = store_->tables_;
  const WriterIdentity& self = store_->self_;
  Status s = store_->Write([&](LmdbTxn& txn) -> Status {
    JIGDOOFUS_RETURN_IF_ERROR(CheckOwnStaging(txn, t, key_, self));
    JIGDOOFUS_RETURN_IF_ERROR(t.PutChunks(txn, key_, next_index_, buf_));
    return t.Publish(txn, key_, id_.size);
  });
  if (!s.ok()) {
    Fail(s);
    return error_;
  }
  done_ = true;
  store_->EndWriter(key_);
  std::vector<uint8_t>().swap(buf_);
  return store_->MakeSlice(id_, key_);
}

}  // namespace jigdoofus
