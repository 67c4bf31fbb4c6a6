#include "fetch/sources/file_slice.h"

#include "core/byte_source.h"
#include "core/md5_batcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace jigdoofus {
namespace {

// Bytes per pread while hashing: small enough that the buffer stays in the
// CPU cache between the copy and the hash.
constexpr size_t kHashChunk = size_t{256} << 10;

// One hashing buffer per thread, reused: a fresh buffer per file made every
// pread fault in new zeroed pages (a sixth of the daemon's CPU time on a
// first read of a local tree).
uint8_t* ThreadHashBuffer() {
  thread_local std::unique_ptr<uint8_t[]> buf = std::make_unique_for_overwrite<uint8_t[]>(kHashChunk);
  return buf.get();
}

std::string Describe(const SliceId& id) {
  return std::string(HashAlgoName(id.digest.algo)) + " " + id.digest.ToBase64() + ", " +
         std::to_string(id.size) + " bytes";
}

// Below this, a file's MD5 is not worth a lane (the handoff costs more).
constexpr uint64_t kMinBatchedMd5 = 16 << 10;
// Above this, a stream outlives its lane-mates and ends up alone in its
// lanes, on the batcher's one thread: hashed on the caller's own thread
// instead, so that several large files use several cores.
constexpr uint64_t kMaxBatchedMd5 = 8 << 20;

}  // namespace

Md5Stream FileRangeStream(int fd, const std::string& path, uint64_t offset, uint64_t size) {
  return {size, [fd, &path, offset](uint64_t at, std::span<uint8_t> out) -> Result<size_t> {
            return PreadFully(fd, offset + at, out, path);
          }};
}

Result<Digest> HashFileRange(int fd, const std::string& path, uint64_t offset, uint64_t size, HashAlgo algo,
                             const FetchContext& ctx) {
  (void)::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(size), POSIX_FADV_SEQUENTIAL);
  if (algo == HashAlgo::kMd5 && size >= kMinBatchedMd5 && size <= kMaxBatchedMd5) {
    // MD5 shares the vector lanes with whatever else is being hashed.
    return Md5Batcher::Shared().Hash(FileRangeStream(fd, path, offset, size), ctx);
  }
  Hasher hasher(algo);
  uint8_t* const buf = ThreadHashBuffer();
  uint64_t done = 0;
  while (done < size) {
    if (ctx.cancelled()) return Status::Cancelled(path + ": hashing cancelled");
    if (ctx.expired()) return Status::TimedOut(path + ": deadline passed while hashing");
    size_t want = static_cast<size_t>(std::min<uint64_t>(kHashChunk, size - done));
    ssize_t n = ::pread(fd, buf, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(path + ": read at offset " + std::to_string(offset + done), errno);
    }
    if (n == 0) {
      return Status::IOError(path + ": file shrank to " + std::to_string(offset + done) +
                             " bytes while hashing (expected " + std::to_string(offset + size) + ")");
    }
    hasher.Update(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
  }
  return hasher.Finish();
}

namespace {

Status Mismatch(const std::string& path, const SliceId& id, const Digest& actual, const char* how) {
  return Status::Corruption(path + ": " + HashAlgoName(id.digest.algo) + " mismatch (expected " +
                            id.digest.ToBase64() + ", got " + actual.ToBase64() + how + ")");
}

Result<std::shared_ptr<const VerifiedSlice>> MakeSlice(const SliceId& id, const std::string& path, int fd) {
  return std::shared_ptr<const VerifiedSlice>(std::make_shared<FileSlice>(id, path, fd));
}

}  // namespace

FileSlice::~FileSlice() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileSlice::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset > id_.size || out.size() > id_.size - offset) {
    return Status::InvalidArgument(path_ + ": read of " + std::to_string(out.size()) + " bytes at offset " +
                                   std::to_string(offset) + " is beyond the slice (" + std::to_string(id_.size) +
                                   " bytes)");
  }
  auto n = PreadFully(fd_, offset, out, path_);
  if (!n.ok()) return n.status();
  if (*n != out.size()) {
    return Status::IOError(path_ + ": short read at offset " + std::to_string(offset + *n) +
                           " (the file shrank after verification)");
  }
  return Status::OK();
}

Status FileRangeSlice::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset > id_.size || out.size() > id_.size - offset) {
    return Status::InvalidArgument(path_ + ": read of " + std::to_string(out.size()) + " bytes at offset " +
                                   std::to_string(offset) + " is beyond the slice (" + std::to_string(id_.size) +
                                   " bytes)");
  }
  auto n = PreadFully(file_->get(), base_ + offset, out, path_);
  if (!n.ok()) return n.status();
  if (*n != out.size()) {
    return Status::IOError(path_ + ": short read at offset " + std::to_string(base_ + offset + *n) +
                           " (the file shrank after the scan)");
  }
  return Status::OK();
}

Result<std::shared_ptr<const VerifiedSlice>> VerifyOpenFile(const SliceId& id, const std::string& path, UniqueFd fd,
                                                            VerificationStore* store, const FetchContext& ctx,
                                                            VerifyDetail* detail) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(path + ": fstat", errno);
  if (!S_ISREG(st.st_mode)) return Status::NotFound(path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) != id.size) {
    return Status::NotFound(path + ": size is " + std::to_string(st.st_size) + " bytes, slice needs " +
                            std::to_string(id.size));
  }
  // Reads must block normally from here on (the open used O_NONBLOCK).
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) != 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);

  FileKey key = FileKey::FromStat(st);
  if (detail != nullptr) detail->key = key;
  if (store != nullptr) {
    if (std::optional<Digest> known = store->Lookup(key, id.digest.algo)) {
      if (detail != nullptr) detail->actual = *known;
      if (*known == id.digest) return MakeSlice(id, path, fd.release());
      return Mismatch(path, id, *known, ", from an earlier verification");
    }
  }
  JIGDOOFUS_ASSIGN_OR_RETURN(Digest actual, HashFileRange(fd.get(), path, 0, id.size, id.digest.algo, ctx));
  if (detail != nullptr) detail->actual = actual;
  if (actual != id.digest) return Mismatch(path, id, actual, "");
  if (store != nullptr) {
    // A failed record only costs a re-hash next time; the slice is good.
    (void)store->Record(key, actual);
  }
  return MakeSlice(id, path, fd.release());
}

Result<std::shared_ptr<const VerifiedSlice>> VerifyLocalFile(const SliceId& id, const std::string& path,
                                                             VerificationStore* store, const FetchContext& ctx,
                                                             VerifyDetail* detail) {
  // Opening a device node can itself do something (a tape rewinds): look
  // first, open only what looks like a regular file (VerifyOpenFile
  // checks the opened file again).
  struct stat pre;
  if (::stat(path.c_str(), &pre) == 0 && !S_ISREG(pre.st_mode)) {
    return Status::NotFound(path + ": not a regular file (looking for " + Describe(id) + ")");
  }
  UniqueFd fd(::open(path.c_str(), kSliceOpenFlags));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ELOOP || err == ENXIO) {
      return Status::NotFound(path + ": " + std::strerror(err) + " (looking for " + Describe(id) + ")");
    }
    return Status::FromErrno(path, err);
  }
  return VerifyOpenFile(id, path, std::move(fd), store, ctx, detail);
}

Result<std::shared_ptr<const VerifiedSlice>> VerifyLocalFile(const SliceId& id, const std::string& path,
                                                             VerificationStore* store, const FetchContext& ctx) {
  return VerifyLocalFile(id, path, store, ctx, nullptr);
}

bool HasVerificationRecord(const SliceId& id, int fd, VerificationStore* store) {
  if (store == nullptr) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != id.size) return false;
  std::optional<Digest> known = store->Lookup(FileKey::FromStat(st), id.digest.algo);
  return known && *known == id.digest;
}

}  // namespace jigdoofus
