// LmdbVerificationStore (declared in cache/lmdb_env.h): the "verified"
// database, layout in doc/cache_format.md.
#include <cstring>
#include <ctime>

#include "cache/byte_order.h"
#include "cache/lmdb_env.h"

namespace jigdoofus {

using cache_bytes::PutLe;

namespace {
constexpr const char* kVerifiedDb = "verified";
constexpr size_t kVerifiedKeySize = 5 * 8 + 1;

std::array<uint8_t, kVerifiedKeySize> VerifiedKey(const FileKey& key, HashAlgo algo) {
  std::array<uint8_t, kVerifiedKeySize> k{};
  PutLe(&k[0], key.dev, 8);
  PutLe(&k[8], key.ino, 8);
  PutLe(&k[16], key.size, 8);
  PutLe(&k[24], static_cast<uint64_t>(key.mtime_ns), 8);
  PutLe(&k[32], static_cast<uint64_t>(key.ctime_ns), 8);
  k[40] = static_cast<uint8_t>(algo);
  return k;
}
}  // namespace

Result<std::unique_ptr<LmdbVerificationStore>> LmdbVerificationStore::Open(LmdbEnv* env) {
  JIGDOOFUS_ASSIGN_OR_RETURN(MDB_dbi dbi, env->OpenDb(kVerifiedDb));
  return std::unique_ptr<LmdbVerificationStore>(new LmdbVerificationStore(env, dbi));
}

std::optional<Digest> LmdbVerificationStore::Lookup(const FileKey& key, HashAlgo algo) {
  auto k = VerifiedKey(key, algo);
  std::optional<Digest> out;
  Status s = env_->View([&](LmdbTxn& txn) -> Status {
    auto got = txn.Get(dbi_, k);
    if (!got.ok()) return got.status();
    // Value: digest bytes, u64 LE time. Anything else is ignored (never found).
    if (got->size() == DigestSize(algo) + 8) out = Digest::FromBytes(algo, got->first(DigestSize(algo)));
    return Status::OK();
  });
  if (!s.ok()) return std::nullopt;
  return out;
}

Status LmdbVerificationStore::Record(const FileKey& key, const Digest& digest) {
  auto k = VerifiedKey(key, digest.algo);
  std::array<uint8_t, kSha256Size + 8> v{};
  std::memcpy(v.data(), digest.bytes.data(), digest.size());
  PutLe(v.data() + digest.size(), static_cast<uint64_t>(std::time(nullptr)), 8);
  // Grouped: the threads hashing a tree at the same time share one commit
  // (one flush) instead of one each.
  Status s = env_->UpdateGrouped([&](LmdbTxn& txn) {
    return txn.Put(dbi_, k, std::span<const uint8_t>(v.data(), digest.size() + 8));
  });
  return s.WithContext(env_->dir() + ": recording a verified file");
}

}  // namespace jigdoofus
