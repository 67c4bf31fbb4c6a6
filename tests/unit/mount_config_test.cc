// ResolveMountConfig: the defaults, and what is derived from the user's
// options and the open-file limit, in one place for the mount and
// jigdoofus-cat.
#include "fetch/mount/mount_config.h"

#include <gtest/gtest.h>

namespace jigdoofus {
namespace {

using namespace mount_defaults;

TEST(MountConfigTest, DefaultsWhenNothingIsGiven) {
  ImageSetOptions user;
  user.sources = {"/x.jigdo"};
  MountConfig c = ResolveMountConfig(user, SystemLimits{1024});
  EXPECT_EQ(c.cache_capacity, kCacheSize);
  EXPECT_EQ(c.fetch_timeout_s, kFetchTimeoutS);
  // No --jobs: 16 by default; far servers may get more, up to 48 each and
  // 64 in all (the prefetcher's extra workers, on the budget).
  EXPECT_EQ(c.jobs, static_cast<size_t>(kJobs));
  EXPECT_EQ(c.downloader.max_parallel, kMaxAutoJobs);
  EXPECT_EQ(c.downloader.max_per_host, static_cast<size_t>(kJobs));
  EXPECT_EQ(c.downloader.max_per_host_ceiling, kMaxAutoConnectionsPerHost);
  ASSERT_NE(c.job_budget, nullptr);
  EXPECT_EQ(c.mirror.budget, c.job_budget);
  EXPECT_EQ(c.max_prefetch_threads, kMaxAutoJobs);
  EXPECT_EQ(c.downloader.low_speed_time, std::chrono::seconds(15));  // a quarter of 60 s
  EXPECT_EQ(c.document_timeout_s, kFetchTimeoutS);
  EXPECT_EQ(c.prefetch_threads, static_cast<size_t>(kJobs));
  EXPECT_EQ(c.max_open_slices, 256u);  // a quarter of 1024 fds
  EXPECT_EQ(c.read_ahead.max_slices_ahead, 128u);
  EXPECT_EQ(c.mirror.memory_budget, kMemorySliceBudget);
  EXPECT_GE(c.lmdb.map_size, kCacheSize + kCacheSize / 4);
}

TEST(MountConfigTest, DerivedFromTheUsersChoices) {
  ImageSetOptions user;
  user.sources = {"/a.jigdo", "/b.jigdo"};
  user.jobs = 40;
  user.fetch_timeout_s = 4;
  user.cache_size = uint64_t{100} << 30;
  user.offline = true;
  user.mirrors = {{"Debian", "http://m/"}};
  MountConfig c = ResolveMountConfig(user, SystemLimits{65536});
  EXPECT_EQ(c.downloader.max_parallel, 40u);
  EXPECT_EQ(c.downloader.max_per_host, kMaxConnectionsPerHost);
  // --jobs given: a hard bound, no extra for far servers.
  EXPECT_EQ(c.jobs, 40u);
  EXPECT_EQ(c.job_budget, nullptr);
  EXPECT_EQ(c.mirror.budget, nullptr);
  EXPECT_EQ(c.downloader.max_per_host_ceiling, 0u);
  EXPECT_EQ(c.downloader.low_speed_time, std::chrono::seconds(2));  // clamped below
  EXPECT_EQ(c.document_timeout_s, kMinDocumentTimeoutS);
  EXPECT_EQ(c.cache_capacity, uint64_t{100} << 30);
  EXPECT_GE(c.lmdb.map_size, c.cache_capacity);
  EXPECT_EQ(c.max_open_slices, 8192u);  // 65536 / 4 / 2, at the bound
  EXPECT_EQ(c.read_ahead.max_slices_ahead, kMaxSlicesAhead);
  EXPECT_TRUE(c.mirror.offline);
  ASSERT_EQ(c.mirror.mirrors.size(), 1u);
  user.fetch_timeout_s = 1000;
  EXPECT_EQ(ResolveMountConfig(user, {}).downloader.low_speed_time, std::chrono::seconds(30));  // clamped above
  user.max_open_slices = 7;
  EXPECT_EQ(ResolveMountConfig(user, {}).max_open_slices, 7u);
  EXPECT_EQ(ResolveMountConfig(user, {}).read_ahead.max_slices_ahead, kMinSlicesAhead);
}

TEST(MountConfigTest, FewFilesStillKeepSomeSlicesOpen) {
  ImageSetOptions user;
  user.sources = {"/a.jigdo"};
  EXPECT_EQ(ResolveMountConfig(user, SystemLimits{64}).max_open_slices, kMinOpenSlices);
}

}  // namespace
}  // namespace jigdoofus
