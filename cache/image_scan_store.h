// ImageScanStore: remembers what a scan of an image file (an old ISO, a
// tar; `--scan FILE`) found, so the next mount does not read it again.
//
// A record is keyed by the file's FileKey (device, inode, size, mtime,
// ctime): a file that changed has another key, and its old record is never
// found. It says which head sums the scan looked for and where in the file
// it found (and verified) which slices. A later mount that wants only head
// sums already looked for uses the record as it is; one that wants more
// scans for the rest and records the union.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/verification_store.h"
#include "core/result.h"
#include "core/slice_id.h"

namespace jigdoofus {

struct FoundSlice {
  uint64_t offset = 0;  // of the slice's first byte in the image file
  SliceId id;
  friend bool operator==(const FoundSlice&, const FoundSlice&) = default;
};

struct ImageScanRecord {
  std::vector<SliceHead> looked_for;  // sorted by (len, sum), no duplicates
  std::vector<FoundSlice> found;      // verified: the whole range hashed to id
  friend bool operator==(const ImageScanRecord&, const ImageScanRecord&) = default;
};

// The record's bytes (doc/cache_format.md, "scanned"), and back. Decode
// returns nullopt for anything malformed (it is then ignored: the file is
// scanned again).
std::string EncodeImageScanRecord(const ImageScanRecord& record);
std::optional<ImageScanRecord> DecodeImageScanRecord(std::span<const uint8_t> bytes);

class ImageScanStore {
 public:
  virtual ~ImageScanStore() = default;
  virtual std::optional<ImageScanRecord> Lookup(const FileKey& key) = 0;
  virtual Status Record(const FileKey& key, const ImageScanRecord& record) = 0;
};

class MemoryImageScanStore final : public ImageScanStore {
 public:
  std::optional<ImageScanRecord> Lookup(const FileKey& key) override;
  Status Record(const FileKey& key, const ImageScanRecord& record) override;

 private:
  std::mutex mu_;
  std::map<FileKey, std::string> records_;  // GUARDED_BY(mu_); encoded, as LMDB keeps them
};

}  // namespace jigdoofus
