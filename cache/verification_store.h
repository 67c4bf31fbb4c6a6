// VerificationStore: remembers that a local file (identified by device,
// inode, size, mtime and ctime) was hashed to a digest, so a remount does
// not hash the same tree again. A record whose key no longer matches the
// file's stat (it changed) is simply never found.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <sys/stat.h>

#include "core/digest.h"
#include "core/status.h"

namespace jigdoofus {

struct FileKey {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  static FileKey FromStat(const struct stat& st);
  friend auto operator<=>(const FileKey&, const FileKey&) = default;
};

class VerificationStore {
 public:
  virtual ~VerificationStore() = default;
  virtual std::optional<Digest> Lookup(const FileKey& key, HashAlgo algo) = 0;
  virtual Status Record(const FileKey& key, const Digest& digest) = 0;
};

// In-memory store (tests, and --no-cache style use).
class MemoryVerificationStore final : public VerificationStore {
 public:
  std::optional<Digest> Lookup(const FileKey& key, HashAlgo algo) override;
  Status Record(const FileKey& key, const Digest& digest) override;

 private:
  std::mutex mu_;
  std::map<std::pair<FileKey, HashAlgo>, Digest> records_;  // GUARDED_BY(mu_)
};

}  // namespace jigdoofus
