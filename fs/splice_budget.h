// SpliceBudget: how large FUSE read requests may be so that libfuse can
// splice our fd-backed replies instead of copying them.
//
// libfuse 3 (fuse_send_data_iov) splices a fuse_reply_data() reply only
// through a per-thread pipe of at least
//     page * (header iovecs + buffers + 1) + header + payload
// bytes. It grows the pipe with F_SETPIPE_SZ, which without
// CAP_SYS_RESOURCE stops at fs.pipe-max-size (1 MiB by default); one
// failure and it copies every reply that does not fit. With 1 MiB requests
// (max_pages 256) no reply ever fits, and each one is pread into a fresh
// malloc'ed buffer and written with writev: two copies plus page faults.
// So requests are sized to leave room for several buffers in a pipe of the
// system's maximum size, and a reply that still would not fit (many small
// parts) is copied by us into a reused per-thread buffer.
#pragma once

#include <cstddef>

namespace jigdoofus {

class SpliceBudget {
 public:
  // `pipe_max_size`: the largest pipe this process can have (bytes).
  explicit SpliceBudget(size_t pipe_max_size);
  // From /proc/sys/fs/pipe-max-size (1 MiB if unreadable).
  static SpliceBudget FromSystem();

  // Bytes per FUSE request (conn->max_write, which also sets max_pages):
  // three quarters of the pipe, whole pages, within [128 KiB, 1 MiB].
  size_t max_request_bytes() const { return max_request_; }
  // Whether libfuse can splice a reply of `payload` bytes in `buffers`
  // fuse_bufs (else it would copy).
  bool Fits(size_t payload, size_t buffers) const;

 private:
  size_t page_;  // sysconf(_SC_PAGESIZE), read once: Fits runs on every read
  size_t pipe_max_;
  size_t max_request_;
};

}  // namespace jigdoofus
