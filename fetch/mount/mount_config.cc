#include "fetch/mount/mount_config.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>

namespace jigdoofus {

using namespace mount_defaults;

SystemLimits RaiseOpenFileLimit() {
  SystemLimits out;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return out;
  const rlim_t want = rl.rlim_max == RLIM_INFINITY ? kWantOpenFiles : std::min<rlim_t>(rl.rlim_max, kWantOpenFiles);
  if (want > rl.rlim_cur) {
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  out.open_files = rl.rlim_cur == RLIM_INFINITY ? kWantOpenFiles : static_cast<uint64_t>(rl.rlim_cur);
  return out;
}

MountConfig ResolveMountConfig(const ImageSetOptions& user, const SystemLimits& limits) {
  MountConfig c;
  c.user = user;
  c.fetch_timeout_s = user.fetch_timeout_s > 0 ? user.fetch_timeout_s : kFetchTimeoutS;
  const size_t jobs = static_cast<size_t>(std::max(1, user.jobs > 0 ? user.jobs : kJobs));

  c.cache_capacity = user.cache_size ? user.cache_size : kCacheSize;
  // Address space for the map: the bound plus B-tree overhead; growing it
  // later means waiting for every transaction of the process.
  c.lmdb.map_size = std::max<uint64_t>(c.lmdb.map_size, c.cache_capacity + c.cache_capacity / 4 + (uint64_t{1} << 30));

  const uint64_t per_jigdo = limits.open_files / 4 / std::max<size_t>(1, user.sources.size());
  c.max_open_slices = user.max_open_slices
                          ? user.max_open_slices
                          : std::clamp<size_t>(static_cast<size_t>(per_jigdo), kMinOpenSlices, kMaxOpenSlices);

  c.jobs = jobs;
  c.downloader.max_parallel = jobs;
  c.downloader.max_per_host = std::min(jobs, kMaxConnectionsPerHost);
  if (user.jobs <= 0) {
    // No --jobs: far servers may get more (see kMaxAutoJobs).
    c.job_budget = std::make_shared<JobBudget>();
    c.max_prefetch_threads = kMaxAutoJobs;
    c.downloader.max_parallel = kMaxAutoJobs;
    c.downloader.max_per_host_ceiling = kMaxAutoConnectionsPerHost;
    c.mirror.budget = c.job_budget;
  }
  c.downloader.proxy = user.proxy;
  // A transfer below the low-speed limit for a quarter of --fetch-timeout
  // (2 to 30 s) is abandoned for the next server, so a stalled first
  // mirror leaves time for the others within the read's deadline.
  c.downloader.low_speed_time =
      std::chrono::seconds(static_cast<int64_t>(std::clamp(c.fetch_timeout_s / 4, 2.0, 30.0)));
  c.document_timeout_s = std::max(c.fetch_timeout_s, kMinDocumentTimeoutS);

  c.mirror.mirrors = user.mirrors;
  c.mirror.offline = user.offline;
  c.mirror.memory_budget = kMemorySliceBudget;
  c.mirror.plan.held_budget = std::make_shared<MemoryBudget>(kHeldPieceBytes);
  if (!user.cache_dir.empty()) c.mirror.scores_path = user.cache_dir + "/servers.json";

  c.prefetch_threads = jobs;
  c.read_ahead.max_slices_ahead = std::clamp<size_t>(c.max_open_slices / 2, kMinSlicesAhead, kMaxSlicesAhead);
  return c;
}

}  // namespace jigdoofus
