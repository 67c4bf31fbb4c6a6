// ScanSource: --scan PATH. PATH is a directory tree (an old release, a
// mounted DVD) or an image file (an old ISO, a tar).
//
// Trees: any file anywhere under a tree whose size and checksum match a
// slice is used for it. Start() walks the trees in a background thread
// (stat only); Open() waits for the walk, then looks at the files whose
// size equals the slice's: where the template gives the slice's head sum,
// it reads the file's first blockLen bytes and hashes the whole file only
// if they match (a tree of many same-size files costs one small read per
// file, not a hash). Results are kept: matches in the VerificationStore,
// mismatches and head sums in memory for the mount's life. Symlinks are not
// followed at all (neither to files nor to directories), so the walk cannot
// loop or leave the trees; unreadable directories are skipped quietly.
//
// Image files: see fetch/sources/image_file_set.h. StartImageScan() gives
// them the head sums of every slice of the mount.
//
// Thread-safe. Lock order: mu_ is a leaf; never held while hashing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/image_scan_store.h"
#include "cache/verification_store.h"
#include "fetch/sources/image_file_set.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

struct ScanStats {
  uint64_t files_seen = 0;       // regular files under the trees (once walked)
  uint64_t heads_read = 0;       // candidates whose first bytes were read
  uint64_t heads_rejected = 0;   // ... and did not match: never hashed
  uint64_t files_checked = 0;    // candidates whose whole checksum was checked (or known from a record)
  bool walked = false;
  ImageFileStats images;
};

class ScanSource final : public SliceSource {
 public:
  // `paths`: directories and regular files, as given. `scans` may be null
  // (image files are then scanned at every mount).
  ScanSource(const std::vector<std::string>& paths, VerificationStore* store, ImageScanStore* scans = nullptr);
  ~ScanSource() override;
  void Start();  // begins the background walk of the trees; Open() calls it if needed
  // Begins the background scan of the image files for `wanted`.
  void StartImageScan(WantedHeads wanted);
  bool has_image_files() const { return images_ != nullptr; }
  const char* name() const override { return "scan"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;
  // Found in an image file, or a file of the slice's size with a matching
  // verification record (once the walk is done).
  bool HasVerified(const SliceRequest& request) override;
  ScanStats Stats() const;

 private:
  class MemoStore;
  void Walk();
  Status WaitForWalk(const FetchContext& ctx);
  Result<std::shared_ptr<const VerifiedSlice>> OpenFromTrees(const SliceRequest& request, const FetchContext& ctx);
  // Whether the file at `path` may hold a slice with head `head`: true
  // unless its first head.len bytes sum to something else.
  bool HeadMatches(const std::string& path, const SliceHead& head);
  std::vector<std::string> dirs_;
  VerificationStore* store_;
  std::unique_ptr<MemoStore> memo_;   // store_ plus digests of files that did not match
  std::unique_ptr<ImageFileSet> images_;  // null without image files
  std::atomic<bool> stop_{false};     // set by the destructor; ends the walk early
  std::atomic<uint64_t> files_seen_{0}, heads_read_{0}, heads_rejected_{0}, files_checked_{0};
  mutable std::mutex mu_;             // guards the fields below
  std::condition_variable walked_cv_;
  bool started_ = false;
  bool walked_ = false;
  std::multimap<uint64_t, std::string> by_size_;  // size -> path
  std::map<std::pair<FileKey, uint32_t>, uint64_t> head_sums_;  // (file, len) -> head sum
  std::thread walker_;
};

}  // namespace jigdoofus
