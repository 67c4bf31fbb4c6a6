// MountConfig: every setting of a mount, resolved once from what the user
// asked for (ImageSetOptions: the command line) and what the system allows
// (SystemLimits), by ResolveMountConfig. The mount (fs/daemon.cc) and
// jigdoofus-cat use the same function, so jigdoofus-cat reads an image
// exactly as the mount would serve it.
//
// The defaults below are the only copies; each says why it is what it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cache/lmdb_env.h"
#include "core/prefetcher.h"
#include "fetch/sources/mirror_source.h"
#include "fetch/transport/downloader.h"

namespace jigdoofus {

namespace mount_defaults {
// --cache-size: a DVD image's slices (4.7 GB) twice over, so two point
// releases' images share one cache without evicting each other.
inline constexpr uint64_t kCacheSize = uint64_t{10} << 30;
// --jobs: parallel downloads and slice read-ahead. 8 keep a loopback or
// LAN mirror busy and hash ahead of a local reader (8 threads beat 2 and
// 0 on a 2-core machine: read-ahead waits on I/O as much as on hashing).
inline constexpr int kJobs = 8;
// --fetch-timeout: a read waiting longer than this for its slice is EIO
// (the mount stays up); long enough for a slow mirror to deliver a large
// package, short enough that a burner or a loop mount does not hang.
inline constexpr double kFetchTimeoutS = 60;
// Connections to one mirror: all of --jobs, up to this. Every slice is one
// request and libcurl has no HTTP/1.1 pipelining, so over a link with
// latency a connection mostly waits for the first byte of small slices:
// with +20 ms RTT on the bench corpus, 6 connections read at 91 MB/s, 8 at
// 126 MB/s, 16 at 180 MB/s. (HTTP/2 mirrors multiplex over one connection.)
inline constexpr size_t kMaxConnectionsPerHost = 16;
// Documents (.jigdo, template) get at least this long: they come before
// the mount exists, and a template is megabytes.
inline constexpr double kMinDocumentTimeoutS = 30;
// Slices the cache cannot keep (larger than its bound, a full disk) are
// held in memory for their readers, this many bytes at once: the largest
// packages on Debian's DVDs are a few hundred MB.
inline constexpr uint64_t kMemorySliceBudget = uint64_t{512} << 20;
// Open files wanted: a DVD's few thousand slices stay open (one fd each)
// instead of being looked up again per read.
inline constexpr uint64_t kWantOpenFiles = 65536;
// Verified slices each resolver keeps open: a quarter of the open-file
// limit shared by the .jigdo files, within these bounds.
inline constexpr size_t kMinOpenSlices = 64;
inline constexpr size_t kMaxOpenSlices = 8192;
// Read-ahead keeps half the open-slice LRU queued (prefetched slices are
// still open when the reader arrives), within these bounds. Small slices
// come in the hundreds per window; with only 96 a big slice's hash started
// too late (first read of the 1 GB bench image, 5 alternating runs:
// 1.53-1.68 s with 96, 1.44-1.53 s with 1024).
inline constexpr size_t kMinSlicesAhead = 16;
inline constexpr size_t kMaxSlicesAhead = 1024;
}  // namespace mount_defaults

// What the user asked for: the command line's image options (fs/options.h).
struct ImageSetOptions {
  std::vector<std::string> sources;                // .jigdo paths, URLs, or directories of .jigdo files
  std::string cache_dir;                           // empty: no persistent cache (memory only)
  uint64_t cache_size = 0;                         // 0: mount_defaults::kCacheSize
  std::map<std::string, std::string> local;        // --local LABEL=DIR
  std::vector<std::string> scan;                   // --scan DIR
  std::vector<std::pair<std::string, std::string>> mirrors;  // --mirror LABEL=URL, in order
  bool offline = false;
  int jobs = mount_defaults::kJobs;
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;  // bound on one read's wait for a slice
  size_t max_open_slices = 0;                      // 0: from the open-file limit
};

struct SystemLimits {
  uint64_t open_files = 1024;  // RLIMIT_NOFILE (soft) in force
};

// Raises the soft RLIMIT_NOFILE to the hard limit (at most kWantOpenFiles)
// and returns what is in force afterwards.
SystemLimits RaiseOpenFileLimit();

struct MountConfig {
  ImageSetOptions user;  // as asked (sources, directories, labels, flags)
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;
  uint64_t cache_capacity = mount_defaults::kCacheSize;
  LmdbOptions lmdb;
  size_t max_open_slices = 0;
  DownloaderOptions downloader;
  double document_timeout_s = mount_defaults::kMinDocumentTimeoutS;
  MirrorSourceOptions mirror;
  size_t prefetch_threads = 0;
  ReadAheadOptions read_ahead;
};

MountConfig ResolveMountConfig(const ImageSetOptions& user, const SystemLimits& limits);

}  // namespace jigdoofus
