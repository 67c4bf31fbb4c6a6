// ServerScores: the scheduler's decisions, from measured downloads given as
// numbers (no clock, no network).
#include "fetch/sources/server_scores.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace jigdoofus {
namespace {

constexpr double MB = 1e6;

// One finished download of `bytes` at `bps` per connection, `ttfb` first.
void Measure(ServerScores& s, const std::string& server, double bps, double ttfb = 0.01, uint64_t bytes = 4 << 20,
             int concurrent = 1) {
  // `concurrent` downloads that ran side by side from start to end.
  for (int i = 0; i < concurrent; ++i) s.Began(server);
  for (int i = 0; i < concurrent; ++i) {
    s.Ended(server, true, bytes, ttfb, static_cast<double>(bytes) / bps, bps * concurrent);
  }
}

std::vector<std::string> Ordered(ServerScores& s, const std::vector<std::string>& servers, uint64_t size,
                                 const ServerScores::Backlog& backlog = {}) {
  std::vector<std::string> out;
  for (size_t i : s.Order(servers, size, backlog)) out.push_back(servers[i]);
  return out;
}

TEST(ServerScores, NothingMeasuredKeepsTheListOrder) {
  ServerScores s;
  EXPECT_EQ(Ordered(s, {"http://c", "http://a", "http://b"}, 1 << 20),
            (std::vector<std::string>{"http://c", "http://a", "http://b"}));
}

TEST(ServerScores, TheFasterServerGoesFirstWhateverTheListSays) {
  ServerScores s;
  Measure(s, "http://slow", 1 * MB);
  Measure(s, "http://fast", 10 * MB);
  Measure(s, "http://mid", 4 * MB);
  EXPECT_EQ(Ordered(s, {"http://slow", "http://mid", "http://fast"}, 8 << 20),
            (std::vector<std::string>{"http://fast", "http://mid", "http://slow"}));
}

TEST(ServerScores, AServerWithALongQueueLosesTheNextSliceToAnIdleOne) {
  ServerScores s;
  // near: one connection gets 10 MB/s, and that is all its uplink gives.
  Measure(s, "http://near", 10 * MB, 0.01, 4 << 20, 1);
  // far: 4 MB/s a connection (latency), 16 MB/s for four at once.
  Measure(s, "http://far", 4 * MB, 0.1, 4 << 20, 4);
  const uint64_t size = 8 << 20;
  const std::vector<std::string> both = {"http://far", "http://near"};
  ServerScores::Backlog backlog;
  EXPECT_EQ(Ordered(s, both, size, backlog)[0], "http://near");  // 0.8 s against 2.2 s
  s.Began("http://near");                                         // one slice queued there
  backlog["http://near"] = size;
  EXPECT_EQ(Ordered(s, both, size, backlog)[0], "http://near");  // 1.7 s: still better
  s.Began("http://near");
  backlog["http://near"] = 2 * size;
  EXPECT_EQ(Ordered(s, both, size, backlog)[0], "http://far");  // 2.5 s: far's 2.2 s is better
  // far takes slices while its uplink has room: 4 MB/s more per connection
  // up to 16 MB/s.
  for (int i = 0; i < 3; ++i) s.Began("http://far");
  backlog["http://far"] = 3 * size;
  EXPECT_EQ(Ordered(s, both, size, backlog)[0], "http://far");  // 32 MB at 16 MB/s: 2.1 s
  s.Began("http://far");
  backlog["http://far"] = 4 * size;
  EXPECT_EQ(Ordered(s, both, size, backlog)[0], "http://near");  // 2.6 s: near's 2.5 s is better
}

TEST(ServerScores, ANewDownloadsFirstByteWaitsForNoBacklog) {
  // Downloads share the uplink side by side: what is queued there delays a
  // new one's last byte, not its first.
  ServerScores s;
  Measure(s, "http://a", 10 * MB, 0.04);
  s.Began("http://a");
  const ServerScores::Backlog backlog = {{"http://a", 40 << 20}};
  EXPECT_DOUBLE_EQ(s.ExpectedSeconds("http://a", 0, backlog), 0.04);
  EXPECT_GT(s.ExpectedSeconds("http://a", 1, backlog), 2.0);
}

TEST(ServerScores, SmallSlicesGoWhereTheFirstByteComesSoonest) {
  ServerScores s;
  Measure(s, "http://far-fat", 100 * MB, 0.2);
  Measure(s, "http://near-thin", 5 * MB, 0.01);
  EXPECT_EQ(Ordered(s, {"http://far-fat", "http://near-thin"}, 10 << 10)[0], "http://near-thin");
  EXPECT_EQ(Ordered(s, {"http://far-fat", "http://near-thin"}, 50 << 20)[0], "http://far-fat");
}

TEST(ServerScores, UnmeasuredServersAreProbedOnlyNowAndThenOnceEnoughAreKnown) {
  ServerScores s;
  Measure(s, "http://a", 5 * MB);
  Measure(s, "http://b", 4 * MB);
  Measure(s, "http://c", 3 * MB);
  std::vector<std::string> servers = {"http://new1", "http://a", "http://b", "http://c", "http://new2"};
  int probes = 0;
  for (int i = 0; i < 4 * ServerScores::kProbeEvery; ++i) {
    const std::string first = Ordered(s, servers, 1 << 20)[0];
    if (first.rfind("http://new", 0) == 0) ++probes;
  }
  EXPECT_EQ(probes, 4);
}

TEST(ServerScores, AFailedDownloadIsNotASample) {
  ServerScores s;
  s.Began("http://x");
  s.Ended("http://x", false, 100, 5.0, 10.0, 1000);
  EXPECT_EQ(s.Get("http://x").samples, 0u);
  EXPECT_EQ(s.Get("http://x").in_flight, 0);
}

TEST(ServerScores, AFarServerSendingSmallFilesGetsMoreConnections) {
  ServerScores s;
  // Unknown, or measured too little: the base.
  EXPECT_EQ(s.Connections("http://far", 16, 48), 16u);
  // 250 ms to the first byte, then 300 kB at 2.5 MB/s a connection
  // (0.12 s): a connection sends a third of the time.
  for (int i = 0; i < 7; ++i) Measure(s, "http://far", 2.5 * MB, 0.25, 300000);
  EXPECT_EQ(s.Connections("http://far", 16, 48), 16u);
  Measure(s, "http://far", 2.5 * MB, 0.25, 300000);
  EXPECT_EQ(s.Connections("http://far", 16, 48), 25u);  // 16 x 0.37 / 0.24, rounded up
  EXPECT_EQ(s.Connections("http://far", 16, 20), 20u);  // at most the ceiling
  // The first byte as long as the rest: still the base.
  for (int i = 0; i < 8; ++i) Measure(s, "http://mid", 2.5 * MB, 0.12, 300000);
  EXPECT_EQ(s.Connections("http://mid", 16, 48), 16u);
  // A busy uplink: first bytes late because of the queue at the server,
  // not the distance (at least 50 ms sometimes): the base.
  for (int i = 0; i < 8; ++i) Measure(s, "http://busy", 2.5 * MB, i % 4 ? 0.4 : 0.05, 300000);
  EXPECT_EQ(s.Connections("http://busy", 16, 48), 16u);
  // Far, but large files: 4 MiB at 2.5 MB/s is 1.7 s of sending.
  for (int i = 0; i < 8; ++i) Measure(s, "http://far-big", 2.5 * MB, 0.25, 4 << 20);
  EXPECT_EQ(s.Connections("http://far-big", 16, 48), 16u);
}

TEST(ServerScores, ScoresSurviveTheMountAndABadFileIsIgnored) {
  testing_util::TempDir dir;
  const std::string path = dir / "servers.json";
  {
    ServerScores s(path);
    Measure(s, "http://fast", 10 * MB);
    Measure(s, "http://slow", 1 * MB);
  }  // saved here
  {
    ServerScores s(path);
    EXPECT_NEAR(s.Get("http://fast").per_connection_bps, 10 * MB, 1);
    EXPECT_EQ(s.Get("http://fast").in_flight, 0);
    EXPECT_EQ(Ordered(s, {"http://slow", "http://fast"}, 1 << 20)[0], "http://fast");
    EXPECT_NEAR(s.Get("http://fast").body_s, (4 << 20) / (10 * MB), 1e-9);
  }
  std::ofstream(path) << "{\"servers\": {\"http://x\": {\"per_connection_bps\": -5}}, garbage";
  ServerScores s(path);
  EXPECT_TRUE(s.All().empty());
}

}  // namespace
}  // namespace jigdoofus

namespace jigdoofus {
namespace {

TEST(ServerScores, LargeSlicesAreNotUsedToProbe) {
  ServerScores s;
  Measure(s, "http://known", 2 * MB);
  // Nothing else known yet, so a small slice may probe the unknown server
  // (its guess: as fast as the best known, and idle) ...
  EXPECT_EQ(Ordered(s, {"http://known", "http://new"}, 100 << 10).size(), 2u);
  s.Began("http://known");
  const ServerScores::Backlog busy = {{"http://known", 4 << 20}};
  EXPECT_EQ(Ordered(s, {"http://known", "http://new"}, 100 << 10, busy)[0], "http://new");
  // ... a large one goes to the measured server, busy or not.
  EXPECT_EQ(Ordered(s, {"http://new", "http://known"}, 8 << 20, busy)[0], "http://known");
}

}  // namespace
}  // namespace jigdoofus
