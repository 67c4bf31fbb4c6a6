#include "fs/buffer_pool.h"

namespace jigdoofus {

BufferPool::BufferPool(size_t buffer_size, size_t max_kept) : buffer_size_(buffer_size), max_kept_(max_kept) {}

BufferPool::Lease BufferPool::Get() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      std::unique_ptr<uint8_t[]> buf = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(buf));
    }
  }
  return Lease(this, std::make_unique_for_overwrite<uint8_t[]>(buffer_size_));
}

void BufferPool::Return(std::unique_ptr<uint8_t[]> buf) {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.size() < max_kept_) free_.push_back(std::move(buf));
  // else: freed here (under the lock: a leaf, and free() is quick)
}

size_t BufferPool::kept() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}

}  // namespace jigdoofus
