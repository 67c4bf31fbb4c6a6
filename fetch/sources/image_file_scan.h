// ScanImageFile: finds slices inside one image file (an old ISO, a tar, a
// dd of a DVD) without understanding its filesystem.
//
// Files in ISO 9660 and UDF start on 2048-byte sectors, tar members on
// 512-byte blocks: the scan computes, in one sequential pass, the head sum
// (core/rsync_sum.h) of the window at every `stride`-aligned offset and
// looks it up among the wanted slices' head sums. A hit is only a
// candidate: the slice's whole byte range is then hashed, and only a match
// is reported. Formats that do not keep a file's bytes contiguous and
// aligned (compressed or fragmented: squashfs, zip, a fragmented ext4) are
// not found this way.
//
// Thread-compatible: one call per thread; `on_found` is called on the
// calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/image_scan_store.h"
#include "core/fetch_context.h"
#include "core/result.h"
#include "core/slice_id.h"

namespace jigdoofus {

// Default alignment: 512 covers tar (512) and ISO/UDF (2048) alike.
inline constexpr uint32_t kImageScanStride = 512;

// What a scan looks for: slices grouped by head (length, then sum).
class WantedHeads {
 public:
  void Add(const SliceId& id, const SliceHead& head);  // ignored unless head.known()
  bool empty() const { return by_len_.empty(); }
  size_t size() const { return count_; }
  // Every (len, sum) wanted, sorted: what a record's looked_for holds.
  std::vector<SliceHead> Heads() const;
  // The slices with this head, or null.
  const std::vector<SliceId>* Find(uint32_t len, uint64_t sum) const;
  const std::unordered_map<uint32_t, std::unordered_map<uint64_t, std::vector<SliceId>>>& by_len() const {
    return by_len_;
  }

 private:
  std::unordered_map<uint32_t, std::unordered_map<uint64_t, std::vector<SliceId>>> by_len_;
  size_t count_ = 0;
};

struct ImageScanCounters {
  std::atomic<uint64_t> bytes_read{0};     // of the sequential pass
  std::atomic<uint64_t> candidates{0};     // head sums that matched
  std::atomic<uint64_t> bytes_hashed{0};   // hashing candidates' ranges
  std::atomic<uint64_t> found{0};          // candidates whose checksum matched
};

// Scans `fd` (`size` bytes; `path` for messages) for `wanted`. Each slice
// is reported once, at its first verified offset, through on_found. The
// pass checks ctx between reads (kCancelled / kTimedOut); a read error is
// returned as it is. `skip`: slices already known (not looked for again).
Status ScanImageFile(int fd, const std::string& path, uint64_t size, const WantedHeads& wanted, uint32_t stride,
                     const FetchContext& ctx, ImageScanCounters* counters,
                     const std::function<bool(const SliceId&)>& skip,
                     const std::function<void(const FoundSlice&)>& on_found);

}  // namespace jigdoofus
