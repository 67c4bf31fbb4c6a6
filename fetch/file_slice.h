// FileSlice: a VerifiedSlice backed by an open local file (owns the fd).
// Construct only after the file's checksum matched (see VerifyLocalFile).
#pragma once

#include <string>

#include "cache/verification_store.h"
#include "core/slice_provider.h"

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

// Opens `path` (a regular file), checks its size against `id`, and
// verifies its checksum, using/recording `store` keyed by the file's stat.
// kNotFound if missing or wrong size; kCorruption if the checksum differs.
// The returned slice keeps the fd that was hashed (no re-open race).
Result<std::shared_ptr<const VerifiedSlice>> VerifyLocalFile(const SliceId& id, const std::string& path,
                                                             VerificationStore* store,
                                                             const FetchContext& ctx);

}  // namespace jigdoofus
