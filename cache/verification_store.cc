#include "cache/verification_store.h"

namespace jigdoofus {

FileKey FileKey::FromStat(const struct stat& st) {
  FileKey key;
  key.dev = static_cast<uint64_t>(st.st_dev);
  key.ino = static_cast<uint64_t>(st.st_ino);
  key.size = static_cast<uint64_t>(st.st_size);
  key.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  key.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return key;
}

std::optional<Digest> MemoryVerificationStore::Lookup(const FileKey& key, HashAlgo algo) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find({key, algo});
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

Status MemoryVerificationStore::Record(const FileKey& key, const Digest& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  records_[{key, digest.algo}] = digest;
  return Status::OK();
}

}  // namespace jigdoofus
