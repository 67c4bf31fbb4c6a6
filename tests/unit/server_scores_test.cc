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
  for (int i = 0; i < concurrent; ++i) s.Ended(server, true, bytes, ttfb, static_cast<double>(bytes) / bps, concurrent);
}

std::vector<std::string> Ordered(ServerScores& s, const std::vector<std::string>& servers, uint64_t size) {
  std::vector<std::string> out;
  for (size_t i : s.Order(servers, size)) out.push_back(servers[i]);
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

TEST(ServerScores, ABusyServerBehindAThinUplinkPassesTheNextSliceOn) {
  ServerScores s;
  // near: one connection gets 10 MB/s, and that is all its uplink gives.
  Measure(s, "http://near", 10 * MB, 0.01, 4 << 20, 1);
  Measure(s, "http://near", 5 * MB, 0.01, 4 << 20, 2);  // two at once: 5 each, 10 in all
  // far: 4 MB/s a connection (latency), 16 MB/s for four at once.
  Measure(s, "http://far", 4 * MB, 0.1, 4 << 20, 4);
  const uint64_t size = 8 << 20;
  EXPECT_EQ(Ordered(s, {"http://far", "http://near"}, size)[0], "http://near");
  s.Began("http://near");  // one running there: 5 MB/s left for the next
  EXPECT_EQ(Ordered(s, {"http://far", "http://near"}, size)[0], "http://near");
  s.Began("http://near");  // two: 3.3 MB/s left, far's 4 MB/s is better
  EXPECT_EQ(Ordered(s, {"http://far", "http://near"}, size)[0], "http://far");
  // far keeps taking slices while 16 MB/s shared still gives 4 MB/s each.
  for (int i = 0; i < 3; ++i) s.Began("http://far");
  EXPECT_EQ(Ordered(s, {"http://far", "http://near"}, size)[0], "http://far");
  s.Began("http://far");  // a fifth would get 3.2 MB/s: near's 3.3 is better
  EXPECT_EQ(Ordered(s, {"http://far", "http://near"}, size)[0], "http://near");
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
  const int with = s.Began("http://x");
  s.Ended("http://x", false, 100, 5.0, 10.0, with);
  EXPECT_EQ(s.Get("http://x").samples, 0u);
  EXPECT_EQ(s.Get("http://x").in_flight, 0);
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
  EXPECT_EQ(Ordered(s, {"http://known", "http://new"}, 100 << 10)[0], "http://new");
  // ... a large one goes to the measured server.
  EXPECT_EQ(Ordered(s, {"http://new", "http://known"}, 8 << 20)[0], "http://known");
}

}  // namespace
}  // namespace jigdoofus
