// FileSlice: a VerifiedSlice backed by an open local file (owns the fd).
// Construct only after the file's checksum matched (see VerifyLocalFile).
//
// Thread-safety: FileSlice is immutable; concurrent ReadAt() calls are fine
// (pread). VerifyLocalFile/VerifyOpenFile are thread-safe if `store` is.
#pragma once

#include <fcntl.h>

#include <memory>
#include <optional>
#include <string>

#include "cache/verification_store.h"
#include "core/md5_lanes.h"
#include "core/slice_provider.h"
#include "core/unique_fd.h"

namespace jigdoofus {

class FileSlice final : public VerifiedSlice {
 public:
  FileSlice(SliceId id, std::string path, int fd) : id_(std::move(id)), path_(std::move(path)), fd_(fd) {}
  ~FileSlice() override;
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  int fd() const override { return fd_; }
  const std::string& path() const { return path_; }

 private:
  SliceId id_;
  std::string path_;
  int fd_;
};

// A VerifiedSlice that is a byte range of a larger file (a slice found
// inside an image file by a scan). Many share one open file.
class FileRangeSlice final : public VerifiedSlice {
 public:
  FileRangeSlice(SliceId id, std::string path, std::shared_ptr<const UniqueFd> file, uint64_t base)
      : id_(std::move(id)), path_(std::move(path)), file_(std::move(file)), base_(base) {}
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  int fd() const override { return file_->get(); }
  uint64_t fd_offset() const override { return base_; }

 private:
  SliceId id_;
  std::string path_;
  std::shared_ptr<const UniqueFd> file_;
  uint64_t base_;
};

// Opens `path` (a regular file), checks its size against `id`, and
// verifies its checksum, using/recording `store` keyed by the file's stat.
// kNotFound if missing or wrong size; kCorruption if the checksum differs.
// The returned slice keeps the fd that was hashed (no re-open race).
// A recorded digest equal to the slice's proves it without reading; a
// recorded digest that differs is kCorruption without reading (the record
// is for this exact stat key, so hashing again would give the same answer).
// The hash reads the fd in 1 MiB chunks, checking ctx between chunks
// (kCancelled / kTimedOut). `store` may be null.
Result<std::shared_ptr<const VerifiedSlice>> VerifyLocalFile(const SliceId& id, const std::string& path,
                                                             VerificationStore* store,
                                                             const FetchContext& ctx);

// What a verification attempt learned, for callers that memoise results
// (ScanSource remembers files that did not match).
struct VerifyDetail {
  std::optional<FileKey> key;    // the file's stat key, once fstat succeeded
  std::optional<Digest> actual;  // the file's digest, if hashed or known from `store`
};

// Flags for opening a candidate slice file: O_NONBLOCK so that a FIFO
// cannot block the open (it is cleared again once the fd is known to be a
// regular file).
inline constexpr int kSliceOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

// VerifyLocalFile, also filling `detail` (may be null).
Result<std::shared_ptr<const VerifiedSlice>> VerifyLocalFile(const SliceId& id, const std::string& path,
                                                             VerificationStore* store,
                                                             const FetchContext& ctx, VerifyDetail* detail);

// Same checks on an fd the caller already opened (e.g. with openat2 under
// a tree root, using kSliceOpenFlags). Takes ownership of `fd`; `path`
// names the file in messages and in the returned FileSlice.
Result<std::shared_ptr<const VerifiedSlice>> VerifyOpenFile(const SliceId& id, const std::string& path,
                                                            UniqueFd fd, VerificationStore* store,
                                                            const FetchContext& ctx,
                                                            VerifyDetail* detail = nullptr);

// The digest of bytes [offset, offset + size) of `fd`, read in 256 KiB
// preads, checking ctx between them. kIOError if the file ends first.
// MD5 of 16 KiB to 8 MiB goes through the shared Md5Batcher (lanes shared
// with the other threads hashing at the time); the rest through OpenSSL.
Result<Digest> HashFileRange(int fd, const std::string& path, uint64_t offset, uint64_t size, HashAlgo algo,
                             const FetchContext& ctx);

// Bytes [offset, offset + size) of `fd` as an Md5Stream (`path` names it
// in errors and must outlive the stream).
Md5Stream FileRangeStream(int fd, const std::string& path, uint64_t offset, uint64_t size);

// Whether the file open at `fd` is a regular file of the slice's size
// with a verification record in `store` (still matching its stat) that
// says it holds the slice: no hashing. False without a store.
bool HasVerificationRecord(const SliceId& id, int fd, VerificationStore* store);

}  // namespace jigdoofus
