// ImageFileSet: the image files given to --scan (old ISOs, tars): scans
// them in a background thread for the slices the mount's templates name
// (fetch/sources/image_file_scan.h) and serves what it found as byte ranges
// of them (FileRangeSlice).
//
// What a scan found is recorded in an ImageScanStore under the file's stat
// key; a remount of the same templates over the same unchanged files reads
// none of them again. A record that lacks some of the wanted head sums
// (other templates) makes the scan look for those only, then record the
// union.
//
// A read of a slice the scan has not reached yet waits for it (until the
// read's deadline; then the next source is asked). Files are scanned one
// after the other, in the order given.
//
// Thread-safe. Lock order: mu_ is a leaf; never held while reading files.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/image_scan_store.h"
#include "core/unique_fd.h"
#include "fetch/sources/image_file_scan.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

struct ImageFileStats {
  uint64_t files = 0;
  uint64_t files_done = 0;       // scanned, or answered by a record
  uint64_t files_from_record = 0;
  uint64_t bytes_total = 0;      // of all the image files
  uint64_t bytes_done = 0;       // scanned, or known from a record
  uint64_t bytes_read = 0;       // by the scan
  uint64_t candidates = 0;
  uint64_t bytes_hashed = 0;
  uint64_t slices_found = 0;     // distinct slices served from image files
  bool done = false;
};

class ImageFileSet {
 public:
  ImageFileSet(std::vector<std::string> files, ImageScanStore* store);
  ~ImageFileSet();  // stops a running scan (nothing is recorded for it) and joins
  ImageFileSet(const ImageFileSet&) = delete;
  ImageFileSet& operator=(const ImageFileSet&) = delete;

  // Starts the background scan for `wanted`. Once only.
  void Start(WantedHeads wanted);
  // The slice if an image file holds it. Waits while a scan that may still
  // find it runs. kNotFound otherwise.
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request, const FetchContext& ctx);
  bool HasFound(const SliceId& id) const;
  ImageFileStats Stats() const;
  // Blocks until the scan is done (tests, plan).
  void WaitUntilDone();

 private:
  struct Place {
    std::shared_ptr<const UniqueFd> file;
    const std::string* path;
    uint64_t offset;
  };
  void Run();
  void ScanOne(size_t i);
  void Found(size_t file, std::shared_ptr<const UniqueFd> fd, const FoundSlice& f);

  std::vector<std::string> files_;
  ImageScanStore* store_;
  WantedHeads wanted_;  // set by Start, read-only afterwards
  std::shared_ptr<CancelSignal> stop_ = std::make_shared<CancelSignal>();
  ImageScanCounters counters_;
  std::atomic<uint64_t> files_done_{0}, files_from_record_{0}, bytes_total_{0}, bytes_known_{0};
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool started_ = false;  // GUARDED_BY(mu_)
  bool done_ = false;     // GUARDED_BY(mu_)
  std::unordered_map<SliceId, Place, SliceIdHash> found_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace jigdoofus
