// LmdbImageScanStore (declared in cache/lmdb_env.h): the "scanned"
// database, layout in doc/cache_format.md.
#include "cache/byte_order.h"
#include "cache/lmdb_env.h"

namespace jigdoofus {

namespace {
constexpr const char* kScannedDb = "scanned";
constexpr size_t kScannedKeySize = 5 * 8;

std::array<uint8_t, kScannedKeySize> ScannedKey(const FileKey& key) {
  std::array<uint8_t, kScannedKeySize> k{};
  cache_bytes::PutLe(&k[0], key.dev, 8);
  cache_bytes::PutLe(&k[8], key.ino, 8);
  cache_bytes::PutLe(&k[16], key.size, 8);
  cache_bytes::PutLe(&k[24], static_cast<uint64_t>(key.mtime_ns), 8);
  cache_bytes::PutLe(&k[32], static_cast<uint64_t>(key.ctime_ns), 8);
  return k;
}
}  // namespace

Result<std::unique_ptr<LmdbImageScanStore>> LmdbImageScanStore::Open(LmdbEnv* env) {
  JIGDOOFUS_ASSIGN_OR_RETURN(MDB_dbi dbi, env->OpenDb(kScannedDb));
  return std::unique_ptr<LmdbImageScanStore>(new LmdbImageScanStore(env, dbi));
}

std::optional<ImageScanRecord> LmdbImageScanStore::Lookup(const FileKey& key) {
  auto k = ScannedKey(key);
  std::optional<ImageScanRecord> out;
  Status s = env_->View([&](LmdbTxn& txn) -> Status {
    auto got = txn.Get(dbi_, k);
    if (!got.ok()) return got.status();
    out = DecodeImageScanRecord(*got);  // malformed: nullopt, the file is scanned again
    return Status::OK();
  });
  if (!s.ok()) return std::nullopt;
  return out;
}

Status LmdbImageScanStore::Record(const FileKey& key, const ImageScanRecord& record) {
  auto k = ScannedKey(key);
  const std::string v = EncodeImageScanRecord(record);
  Status s = env_->Update([&](LmdbTxn& txn) { return txn.Put(dbi_, k, cache_bytes::Bytes(v)); });
  return s.WithContext(env_->dir() + ": recording what a scan of an image file found");
}

}  // namespace jigdoofus
