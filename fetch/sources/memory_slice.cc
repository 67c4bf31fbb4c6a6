#include "fetch/sources/memory_slice.h"

#include <cstring>
#include <string>

namespace jigdoofus {

MemorySlice::MemorySlice(SliceId id, std::vector<uint8_t> bytes, std::shared_ptr<MemoryBudget> budget)
    : id_(id), bytes_(std::move(bytes)), budget_(std::move(budget)) {}

MemorySlice::~MemorySlice() { budget_->Give(id_.size); }

Status MemorySlice::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset > bytes_.size() || out.size() > bytes_.size() - offset) {
    return Status::Internal("read past the end of in-memory slice " + id_.digest.ToBase64());
  }
  std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return Status::OK();
}

MemorySink::MemorySink(SliceId id, std::shared_ptr<MemoryBudget> budget)
    : id_(id), budget_(std::move(budget)), hasher_(id.digest.algo) {}

MemorySink::~MemorySink() {
  if (reserved_) budget_->Give(id_.size);
}

bool MemorySink::Reserve() {
  if (!reserved_ && budget_->TryTake(id_.size)) {
    reserved_ = true;
    bytes_.reserve(id_.size);
  }
  return reserved_;
}

Status MemorySink::Append(std::span<const uint8_t> bytes) {
  if (!reserved_) return Status::Internal("MemorySink::Append without Reserve");
  if (bytes.size() > id_.size - bytes_.size()) {
    return Status::Corruption("more bytes than the slice size arrived for " + id_.digest.ToBase64());
  }
  hasher_.Update(bytes);
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return Status::OK();
}

Result<std::shared_ptr<const VerifiedSlice>> MemorySink::Finish() {
  if (!reserved_) return Status::Internal("MemorySink::Finish without Reserve");
  if (bytes_.size() != id_.size) {
    return Status::Corruption("only " + std::to_string(bytes_.size()) + " of " + std::to_string(id_.size) +
                              " bytes arrived for " + id_.digest.ToBase64());
  }
  if (!(hasher_.Finish() == id_.digest)) {
    return Status::Corruption("the bytes of " + id_.digest.ToBase64() + " do not match its checksum");
  }
  reserved_ = false;  // the slice holds the share now
  return std::shared_ptr<const VerifiedSlice>(std::make_shared<MemorySlice>(id_, std::move(bytes_), budget_));
}

}  // namespace jigdoofus
