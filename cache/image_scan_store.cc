#include "cache/image_scan_store.h"

#include <cstring>

#include "cache/byte_order.h"

namespace jigdoofus {

using cache_bytes::GetLe;
using cache_bytes::PutLe;

namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kHeadSize = 4 + 8;                  // u32 len, u64 sum
constexpr size_t kFoundSize = 8 + 8 + 1 + kSha256Size;  // offset, size, algo, digest (zero padded)

void Append(std::string* out, uint64_t v, int n) {
  uint8_t b[8];
  PutLe(b, v, n);
  out->append(reinterpret_cast<const char*>(b), n);
}

}  // namespace

std::string EncodeImageScanRecord(const ImageScanRecord& record) {
  std::string out;
  out.reserve(1 + 8 + record.looked_for.size() * kHeadSize + record.found.size() * kFoundSize);
  out.push_back(static_cast<char>(kRecordVersion));
  Append(&out, record.looked_for.size(), 4);
  Append(&out, record.found.size(), 4);
  for (const SliceHead& h : record.looked_for) {
    Append(&out, h.len, 4);
    Append(&out, h.sum, 8);
  }
  for (const FoundSlice& f : record.found) {
    Append(&out, f.offset, 8);
    Append(&out, f.id.size, 8);
    out.push_back(static_cast<char>(f.id.digest.algo));
    out.append(reinterpret_cast<const char*>(f.id.digest.bytes.data()), kSha256Size);
  }
  return out;
}

std::optional<ImageScanRecord> DecodeImageScanRecord(std::span<const uint8_t> b) {
  if (b.size() < 9 || b[0] != kRecordVersion) return std::nullopt;
  const uint64_t heads = GetLe(&b[1], 4), found = GetLe(&b[5], 4);
  if (b.size() != 9 + heads * kHeadSize + found * kFoundSize) return std::nullopt;
  ImageScanRecord r;
  r.looked_for.reserve(heads);
  r.found.reserve(found);
  const uint8_t* p = b.data() + 9;
  for (uint64_t i = 0; i < heads; ++i, p += kHeadSize) {
    r.looked_for.push_back({GetLe(p + 4, 8), static_cast<uint32_t>(GetLe(p, 4))});
  }
  for (uint64_t i = 0; i < found; ++i, p += kFoundSize) {
    const uint8_t algo = p[16];
    if (algo != static_cast<uint8_t>(HashAlgo::kMd5) && algo != static_cast<uint8_t>(HashAlgo::kSha256)) {
      return std::nullopt;
    }
    FoundSlice f;
    f.offset = GetLe(p, 8);
    f.id.size = GetLe(p + 8, 8);
    f.id.digest = Digest::FromBytes(static_cast<HashAlgo>(algo), {p + 17, DigestSize(static_cast<HashAlgo>(algo))});
    r.found.push_back(f);
  }
  return r;
}

std::optional<ImageScanRecord> MemoryImageScanStore::Lookup(const FileKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(key);
  if (it == records_.end()) return std::nullopt;
  return DecodeImageScanRecord(cache_bytes::Bytes(it->second));
}

Status MemoryImageScanStore::Record(const FileKey& key, const ImageScanRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  records_[key] = EncodeImageScanRecord(record);
  return Status::OK();
}

}  // namespace jigdoofus
