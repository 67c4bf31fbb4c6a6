// MountConfig: every setting of a mount, resolved once from what the user
// asked for (ImageSetOptions: the command line) and what the system allows
// (SystemLimits), by ResolveMountConfig. The mount (fs/daemon.cc) and
// jigdoofus-cat use the same function, so jigdoofus-cat reads an image
// exactly as the mount would serve it.
//
// The defaults are in core/mount_defaults.h, the only copies, each with
// its reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cache/lmdb_env.h"
#include "core/mount_defaults.h"
#include "core/prefetcher.h"
#include "fetch/sources/mirror_source.h"
#include "fetch/transport/downloader.h"

namespace jigdoofus {



// What the user asked for: the command line's image options (fs/options.h).
struct ImageSetOptions {
  std::vector<std::string> sources;                // .jigdo paths, URLs, or directories of .jigdo files
  std::string cache_dir;                           // empty: no persistent cache (memory only)
  uint64_t cache_size = 0;                         // 0: mount_defaults::kCacheSize
  std::map<std::string, std::string> local;        // --local LABEL=DIR
  std::vector<std::string> scan;                   // --scan DIR
  std::vector<std::pair<std::string, std::string>> mirrors;  // --mirror LABEL=URL, in order
  // --mirror-list LABEL=SOURCE: an absolute path or a network URL, in order
  std::vector<std::pair<std::string, std::string>> mirror_lists;
  bool offline = false;
  bool trust_file_urls = false;                    // file: URLs of local .jigdo files may name any path
  int jobs = 0;                                    // --jobs; 0: mount_defaults::kJobs, more for far servers
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;  // bound on one read's wait for a slice
  std::string proxy;                               // --proxy URL; empty: curl's environment (http_proxy, ...)
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
  size_t jobs = mount_defaults::kJobs;  // --jobs, or its default
  size_t prefetch_threads = 0;
  // Without --jobs: far servers' wish for more downloads at once (shared
  // by the mirror sources and the prefetcher), and the prefetcher's ceiling.
  std::shared_ptr<JobBudget> job_budget;
  size_t max_prefetch_threads = 0;
  ReadAheadOptions read_ahead;
};

MountConfig ResolveMountConfig(const ImageSetOptions& user, const SystemLimits& limits);

}  // namespace jigdoofus
