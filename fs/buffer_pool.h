// BufferPool: reusable byte buffers with a bound on what stays allocated.
//
// The FUSE loop may run up to 64 worker threads; a buffer per thread for
// the replies the daemon copies would keep up to 64 of them (48 MiB at
// 768 KiB each) for the life of the mount. The pool keeps at most
// `max_kept` free buffers; more are allocated when more are in use at once
// and freed when returned to a full pool. A fresh allocation per read
// would fault in new pages every time, which is what this avoids.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace jigdoofus {

class BufferPool {
 public:
  BufferPool(size_t buffer_size, size_t max_kept);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of buffer_size() bytes (uninitialised), back to the pool when
  // the Lease goes. REQUIRES: the pool outlives its leases.
  class Lease {
   public:
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (buf_) pool_->Return(std::move(buf_));
    }
    uint8_t* data() const { return buf_.get(); }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, std::unique_ptr<uint8_t[]> buf) : pool_(pool), buf_(std::move(buf)) {}
    BufferPool* pool_;
    std::unique_ptr<uint8_t[]> buf_;
  };

  Lease Get();
  size_t buffer_size() const { return buffer_size_; }
  size_t kept() const;  // free buffers held now

 private:
  void Return(std::unique_ptr<uint8_t[]> buf);

  const size_t buffer_size_;
  const size_t max_kept_;
  mutable std::mutex mu_;  // a leaf
  std::vector<std::unique_ptr<uint8_t[]>> free_;  // GUARDED_BY(mu_)
};

}  // namespace jigdoofus
