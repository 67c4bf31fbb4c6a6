// PiecePlan: who fetches which bytes of a slice, on a simulated clock with
// simulated servers (no network): each server has a rate and a time to
// first byte; a tick moves every lane on by its server's rate.
#include "fetch/sources/piece_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <vector>

namespace jigdoofus {
namespace {

constexpr uint64_t MiB = 1 << 20;

struct SimServer {
  double bps = 1e6;
  double ttfb = 0.05;
  bool stalls = false;  // sends nothing at all
  double stall_from = 1e9;  // stops sending at this time
  bool refuses_ranges = false;
  double claimed_bps = 0;  // what its scores say (0: bps)
  bool unmeasured = false;  // its scores are a guess
};

// Runs a plan to its end with servers asked in list order every tick.
class Sim {
 public:
  Sim(uint64_t size, std::vector<SimServer> servers, PiecePlanOptions options = {})
      : servers_(std::move(servers)), plan_(size, PlanServers(servers_), options), bytes_(size) {
    std::iota(bytes_.begin(), bytes_.end(), 0);  // byte i is i mod 256
  }
  static std::vector<PieceServer> PlanServers(const std::vector<SimServer>& s) {
    std::vector<PieceServer> out;
    for (const SimServer& x : s) out.push_back(PieceServer{0, x.refuses_ranges, !x.unmeasured});
    return out;
  }
  PiecePlan::Estimator Estimate() {
    return [this](size_t s, uint64_t n) {
      const double bps = servers_[s].claimed_bps > 0 ? servers_[s].claimed_bps : servers_[s].bps;
      return servers_[s].ttfb + static_cast<double>(n) / bps;
    };
  }
  // One step of `dt` seconds; returns false once nothing more can happen.
  bool Step(double dt = 0.01) {
    for (size_t s = 0; s < servers_.size(); ++s) {
      if (auto w = plan_.Next(s, now_, Estimate())) {
        const PiecePlan::LaneId id = plan_.Start(*w, now_);
        lanes_[id] = Running{*w, now_, static_cast<double>(w->begin)};
        started_.push_back(*w);
      }
    }
    std::map<size_t, size_t> running;
    for (const auto& [id, r] : lanes_) ++running[r.work.server];
    for (const auto& [server, n] : running) most_lanes_[server] = std::max(most_lanes_[server], n);
    plan_.ShedStalled(now_, Estimate());
    if (plan_.Stuck(now_, Estimate())) return false;
    now_ += dt;
    // A server's rate is shared by its lanes that are past their first byte.
    std::map<size_t, int> sending;
    for (const auto& [id, r] : lanes_) {
      if (now_ >= r.since + servers_[r.work.server].ttfb) ++sending[r.work.server];
    }
    for (auto& [id, r] : lanes_) {
      const SimServer& sv = servers_[r.work.server];
      if (sv.stalls || now_ < r.since + sv.ttfb || now_ >= sv.stall_from) continue;
      const double to = std::min<double>(static_cast<double>(r.work.end), r.pos + sv.bps * dt / sending[r.work.server]);
      const auto from = static_cast<uint64_t>(r.pos), upto = static_cast<uint64_t>(to);
      if (upto > from) {
        const std::span<const uint8_t> direct =
            plan_.Deliver(id, std::span<const uint8_t>(bytes_.data() + from, upto - from), now_);
        out_.insert(out_.end(), direct.begin(), direct.end());
        direct_ += direct.size();
        per_server_[r.work.server] += upto - from;
      }
      r.pos = to;
    }
    for (PiecePlan::LaneId id : plan_.TakeSuperseded()) {
      stalled_ += plan_.stalled(id) ? 1 : 0;
      plan_.Ended(id, false);
      lanes_.erase(id);
      ++superseded_;
    }
    for (auto it = lanes_.begin(); it != lanes_.end();) {
      if (static_cast<uint64_t>(it->second.pos) == it->second.work.end) {
        plan_.Ended(it->first, false);
        it = lanes_.erase(it);
      } else {
        ++it;
      }
    }
    plan_.TakeReady(&out_);
    return !plan_.Complete();
  }
  double RunToEnd(double limit = 600) {
    while (now_ < limit && Step()) {
    }
    return now_;
  }
  // Fails the running lane of `server`.
  void Fail(size_t server, bool refused_range = false) {
    for (auto it = lanes_.begin(); it != lanes_.end(); ++it) {
      if (it->second.work.server == server) {
        plan_.Ended(it->first, true, refused_range);
        lanes_.erase(it);
        return;
      }
    }
  }
  bool Exact() const { return out_ == bytes_; }

  struct Running {
    PiecePlan::Work work;
    double since = 0;
    double pos = 0;
  };
  std::vector<SimServer> servers_;
  PiecePlan plan_;
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> out_;
  std::map<PiecePlan::LaneId, Running> lanes_;
  std::vector<PiecePlan::Work> started_;
  std::map<size_t, uint64_t> per_server_;
  std::map<size_t, size_t> most_lanes_;  // per server, lanes at once
  size_t superseded_ = 0;
  size_t stalled_ = 0;  // of them, cut for stalling
  uint64_t direct_ = 0;  // bytes the plan passed straight through
  double now_ = 0;
};

TEST(PiecePlan, ASmallSliceIsOneWholeRequestToTheFirstServer) {
  Sim sim(1 * MiB, {{.bps = 10e6}, {.bps = 10e6}});
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  ASSERT_EQ(sim.started_.size(), 1u);
  EXPECT_EQ(sim.started_[0].server, 0u);
  EXPECT_FALSE(sim.started_[0].ranged);  // no Range header: any server can
  EXPECT_EQ(sim.plan_.pieces(), 1u);
  EXPECT_EQ(sim.direct_, 1 * MiB);  // one lane in order: never copied
}

TEST(PiecePlan, ALargeSliceGoesToTheServersThatFinishItsPiecesFirst) {
  // 40 MiB over 2 + 4 + 8 + 16 MB/s, the slowest listed first. Each free
  // piece goes to the server expected to have it soonest, counting what
  // each does now: the 8 and 16 MB/s ones share it; a piece on the 2 MB/s
  // one would take 2.1 s, longer than the others need for all of it.
  Sim sim(40 * MiB, {{.bps = 2e6}, {.bps = 4e6}, {.bps = 8e6}, {.bps = 16e6}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.plan_.pieces(), 10u);
  EXPECT_EQ(sim.per_server_[0], 0u);
  EXPECT_GT(sim.per_server_[2], 0u);
  EXPECT_GT(sim.per_server_[3], sim.per_server_[2]);
  // The fast server alone: 2.6 s; the two: 1.75 s.
  EXPECT_LT(t, 2.2);
}

TEST(PiecePlan, AFarServerStartsItsNextPieceARoundTripEarly) {
  // 80 MiB from a server 250 ms away with a 30 MB/s uplink, beside a near
  // 5 MB/s one. One lane at a time, the far one idles a round trip per
  // 4 MiB piece (0.25 + 0.14 s each: 10.7 MB/s, 16 MB/s with the near
  // one: 5.3 s). Asking for its next piece a round trip before its lane
  // ends keeps its uplink full: about 30 + 5 MB/s, 2.4 s and a first byte
  // (3.46 s while a flowing lane's expected end still counted a time to
  // first byte for its first observe_s).
  Sim sim(80 * MiB, {{.bps = 30e6, .ttfb = 0.25}, {.bps = 5e6, .ttfb = 0.01}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_LT(t, 2.8) << "far " << sim.per_server_[0] << " near " << sim.per_server_[1];
  EXPECT_GE(sim.most_lanes_[0], 2u);
  EXPECT_LE(sim.most_lanes_[0], 4u);
  EXPECT_GT(sim.per_server_[1], 0u);
}

TEST(PiecePlan, ANearServerRunsOneLaneAtATimeUntilItsPieceIsNearlyIn) {
  // Time to first byte 10 ms, 4 MiB pieces at 10 MB/s: the next lane
  // starts only in the last 10 ms of the one before.
  Sim sim(40 * MiB, {{.bps = 10e6, .ttfb = 0.01}, {.bps = 10e6, .ttfb = 0.01}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_LE(sim.most_lanes_[0], 2u);
  EXPECT_LE(sim.most_lanes_[1], 2u);
  EXPECT_LT(t, 2.3) << sim.most_lanes_[0];  // 20 MB/s: 2.1 s
  EXPECT_EQ(sim.plan_.hedges(), 0u);
}

TEST(PiecePlan, WhileAReaderWaitsAServerRunsUpToFourOfItsPiecesAtOnce) {
  // As above, but a reader waits on the slice: each server's lanes share
  // its uplink with other slices' transfers, so more lanes are a larger
  // share of it. Four at most, and the bytes still leave in order.
  Sim sim(40 * MiB, {{.bps = 10e6, .ttfb = 0.01}, {.bps = 10e6, .ttfb = 0.01}});
  sim.plan_.SetUrgent(true);
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.most_lanes_[0], 4u);
  EXPECT_EQ(sim.most_lanes_[1], 4u);
  EXPECT_EQ(sim.plan_.hedges(), 0u);
}

TEST(PiecePlan, AStalledLaneIsRacedAndTheSliceDoesNotWaitForIt) {
  // The stalling server is first in the list: it gets the slice.
  Sim sim(2 * MiB, {{.bps = 10e6, .stall_from = 0.1}, {.bps = 10e6}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.plan_.hedges(), 1u);
  ASSERT_EQ(sim.started_.size(), 2u);
  EXPECT_TRUE(sim.started_[1].ranged);
  EXPECT_GT(sim.started_[1].begin, 0u);  // the race starts where the stalled lane was
  EXPECT_EQ(sim.superseded_, 1u);        // which is cancelled (shed once stalled, or when the piece is done)
  // 0.1 s of bytes, the stall noticed after stall_s (1 s), then the rest at
  // 10 MB/s: well under twice the 0.26 s the good server needs, plus the
  // stall bound.
  EXPECT_LT(t, 0.1 + 1.0 + 0.5);
}

TEST(PiecePlan, ALaneThatStopsMidwayIsCountedStalledAfterAFewOfItsGaps) {
  // Bytes every 10 ms, then nothing: stalled after stall_min_s (0.3 s),
  // not the full second a lane gets before its first bytes.
  PiecePlanOptions o;
  o.hedge_factor = 1e9;  // no race while it moves: only the stall counts
  Sim sim(2 * MiB, {{.bps = 2e6, .stall_from = 0.3, .claimed_bps = 20e6}, {.bps = 10e6}}, o);
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  ASSERT_EQ(sim.started_.size(), 2u);
  EXPECT_TRUE(sim.started_[1].takeover);
  EXPECT_LT(t, 0.3 + 0.35 + 0.25);  // the stall noticed within 0.35 s, then 1.5 MB at 10 MB/s
}

TEST(PiecePlan, ALaneThatNeverSendsIsTakenOverNotRaced) {
  Sim sim(2 * MiB, {{.bps = 10e6, .stalls = true}, {.bps = 10e6}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  ASSERT_EQ(sim.started_.size(), 2u);
  EXPECT_TRUE(sim.started_[1].takeover);
  // 2 MiB is more than late_race_max: a race would duplicate much, so the
  // lane got until stall_s before anyone else started on it.
  EXPECT_FALSE(sim.started_[1].late);
  EXPECT_EQ(sim.plan_.takeovers(), 1u);
  EXPECT_EQ(sim.superseded_, 1u);
  EXPECT_EQ(sim.stalled_, 1u);  // its server is stalling, not merely slower
  // Cancelled when the new lane started, not when it finished: the sim
  // ends it in the step the new lane starts.
  EXPECT_EQ(sim.per_server_[0], 0u);
  EXPECT_LT(t, 1.0 + 0.05 + 0.5);  // stall_s + its expected first byte + the good server's time
}

TEST(PiecePlan, ASmallSliceLateForItsFirstByteIsRacedBeforeItCountsAsStalled) {
  // 512 KiB (a reader may be waiting on it): no first byte late_s (0.3 s)
  // past the server's usual 0.05 s, so the idle server races it then, not
  // after stall_s; the late lane, still silent when the race wins, counts
  // as stalled.
  Sim sim(MiB / 2, {{.bps = 10e6, .stalls = true}, {.bps = 10e6}});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  ASSERT_EQ(sim.started_.size(), 2u);
  EXPECT_TRUE(sim.started_[1].hedge);
  EXPECT_TRUE(sim.started_[1].late);
  EXPECT_FALSE(sim.started_[1].takeover);
  EXPECT_EQ(sim.stalled_, 1u);
  EXPECT_LT(t, 0.05 + 0.3 + 0.02 + 0.05 + 0.06);  // late + a step + its first byte + 512 KiB
}

TEST(PiecePlan, ASlowButMovingLaneIsRacedByAMuchFasterIdleServer) {
  // One piece; the first server's scores say 20 MB/s, it gives 4.
  Sim sim(8 * MiB, {{.bps = 4e6, .claimed_bps = 20e6}, {.bps = 20e6}}, PiecePlanOptions{.piece_size = 64 * MiB});
  const double t = sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.plan_.hedges(), 1u);
  EXPECT_EQ(sim.plan_.takeovers(), 0u);  // it was moving: a race
  EXPECT_EQ(sim.superseded_, 1u);
  EXPECT_EQ(sim.stalled_, 0u);  // it lost a race: slower, not stalling
  EXPECT_EQ(sim.started_[0].server, 0u);
  EXPECT_LT(t, 1.3);  // the slow one alone: 2.1 s
}

TEST(PiecePlan, NoRaceWhenTheRunningLaneIsAboutAsFast) {
  Sim sim(8 * MiB, {{.bps = 10e6}, {.bps = 12e6}}, PiecePlanOptions{.piece_size = 64 * MiB});
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_EQ(sim.plan_.hedges(), 0u);
  EXPECT_EQ(sim.started_.size(), 1u);
}

TEST(PiecePlan, AFailedLaneIsResumedElsewhereWhereItStopped) {
  Sim sim(3 * MiB, {{.bps = 10e6}, {.bps = 10e6}});
  for (int i = 0; i < 20; ++i) sim.Step();  // 0.2 s: about 1.4 MB in
  const uint64_t got = sim.per_server_[0];
  ASSERT_GT(got, 0u);
  sim.Fail(0);
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  ASSERT_EQ(sim.started_.size(), 2u);
  EXPECT_EQ(sim.started_[1].server, 1u);
  EXPECT_TRUE(sim.started_[1].ranged);
  EXPECT_EQ(sim.started_[1].begin, got);
  EXPECT_TRUE(sim.plan_.server_dead(0));
}

TEST(PiecePlan, EveryServerDeadIsStuck) {
  Sim sim(3 * MiB, {{.bps = 10e6}, {.bps = 10e6}});
  sim.Step();
  sim.Fail(0);
  sim.Step();
  sim.Fail(1);
  EXPECT_FALSE(sim.Step());
  EXPECT_TRUE(sim.plan_.Stuck(sim.now_, sim.Estimate()));
  EXPECT_FALSE(sim.plan_.Complete());
}

TEST(PiecePlan, AServerThatRefusesRangesGetsOnlyWholeSlices) {
  // Known to refuse: a large slice is not cut for one ranger alone...
  Sim whole(40 * MiB, {{.bps = 10e6, .refuses_ranges = true}, {.bps = 10e6}});
  EXPECT_EQ(whole.plan_.pieces(), 1u);
  whole.RunToEnd();
  EXPECT_TRUE(whole.Exact());
  EXPECT_FALSE(whole.started_[0].ranged);
  // ... and found out while cutting: its piece goes to the others.
  Sim sim(40 * MiB, {{.bps = 10e6}, {.bps = 10e6}, {.bps = 10e6}});
  sim.Step();
  sim.Fail(1, /*refused_range=*/true);
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_TRUE(sim.plan_.server_refused_ranges(1));
  EXPECT_EQ(sim.per_server_[1], 0u);
}

TEST(PiecePlan, PiecesStayWithinTheWindowPastTheFrontier) {
  // The first server is slower: the others may run ahead of it by the
  // window and no more.
  PiecePlanOptions o;
  o.piece_size = 1 * MiB;
  o.window = 4 * MiB;
  Sim sim(32 * MiB, {{.bps = 3e6}, {.bps = 20e6}, {.bps = 20e6}}, o);
  bool window_full = false;
  for (int i = 0; i < 30; ++i) {
    sim.Step();
    for (const PiecePlan::Work& w : sim.started_) {
      EXPECT_LT(w.begin, sim.plan_.taken() + o.window) << "piece started too far ahead";
      window_full |= w.begin + o.piece_size >= o.window;
    }
  }
  EXPECT_TRUE(window_full);  // they did run ahead, up to it
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
}

TEST(PiecePlan, PlansSharingAHeldBudgetStayWithinItAndAllFinish) {
  // Two slices, each with a slow first server (its piece is the frontier)
  // and two fast ones that run ahead: what they hold out of order stays
  // within the shared budget, which they do fill, and both finish.
  PiecePlanOptions o;
  o.piece_size = 1 * MiB;
  o.window = 16 * MiB;
  o.held_budget = std::make_shared<MemoryBudget>(3 * MiB);
  uint64_t most = 0;
  {
    Sim a(24 * MiB, {{.bps = 2e6}, {.bps = 20e6}, {.bps = 20e6}}, o);
    Sim b(24 * MiB, {{.bps = 2e6}, {.bps = 20e6}, {.bps = 20e6}}, o);
    bool more_a = true, more_b = true;
    for (int i = 0; i < 60000 && (more_a || more_b); ++i) {
      if (more_a) more_a = a.Step();
      if (more_b) more_b = b.Step();
      most = std::max(most, o.held_budget->used());
      ASSERT_LE(o.held_budget->used(), o.held_budget->limit());
    }
    ASSERT_TRUE(a.plan_.Complete());
    ASSERT_TRUE(b.plan_.Complete());
    EXPECT_TRUE(a.Exact());
    EXPECT_TRUE(b.Exact());
    // Each plan started pieces past its frontier while the budget let it.
    EXPECT_GT(a.per_server_[1] + a.per_server_[2], 0u);
    EXPECT_GT(b.per_server_[1] + b.per_server_[2], 0u);
  }
  EXPECT_EQ(most, 3 * MiB);  // it was the bound
  EXPECT_EQ(o.held_budget->used(), 0u);  // all given back
}

TEST(PiecePlan, ASpentHeldBudgetStillLetsTheFrontierPieceRun) {
  PiecePlanOptions o;
  o.piece_size = 1 * MiB;
  o.held_budget = std::make_shared<MemoryBudget>(0);
  Sim sim(8 * MiB, {{.bps = 10e6}, {.bps = 10e6}}, o);
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.direct_, 8 * MiB);  // nothing was held: every piece began at the frontier
  EXPECT_EQ(o.held_budget->used(), 0u);
}

TEST(PiecePlan, OnlyTheBestTierGetsWorkUntilItIsDead) {
  std::vector<PieceServer> servers = {{1, false}, {0, false}, {1, false}};
  PiecePlan plan(40 * MiB, servers);
  auto est = [](size_t, uint64_t n) { return 0.01 + static_cast<double>(n) / 1e7; };
  EXPECT_FALSE(plan.Next(0, 0, est));
  EXPECT_FALSE(plan.Next(2, 0, est));
  auto w = plan.Next(1, 0, est);
  ASSERT_TRUE(w);
  const PiecePlan::LaneId id = plan.Start(*w, 0);
  plan.Ended(id, /*server_dead=*/true);
  EXPECT_TRUE(plan.Next(0, 0, est));
}

TEST(PiecePlan, AnUnmeasuredServerTakesNoPieceFromMeasuredOnesOnItsGuess) {
  // Its guess says 50 MB/s; large slices are not probes.
  Sim sim(40 * MiB, {{.bps = 10e6}, {.bps = 1e6, .claimed_bps = 50e6, .unmeasured = true}});
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_TRUE(sim.Exact());
  EXPECT_EQ(sim.per_server_[1], 0u);
  // Nor is a small slice left to it by the measured server listed first.
  Sim small(MiB / 2, {{.bps = 10e6}, {.bps = 1e6, .claimed_bps = 50e6, .unmeasured = true}});
  small.RunToEnd();
  ASSERT_EQ(small.started_.size(), 1u);
  EXPECT_EQ(small.started_[0].server, 0u);
}

TEST(PiecePlan, UnmeasuredServersWorkWhenChosenOrWhenNothingIsMeasured) {
  // Listed first: the caller chose to probe it.
  Sim probe(MiB / 2, {{.bps = 10e6, .unmeasured = true}, {.bps = 10e6}});
  probe.RunToEnd();
  ASSERT_FALSE(probe.started_.empty());
  EXPECT_EQ(probe.started_[0].server, 0u);
  // A fresh mount: every server a guess, all of them share the pieces.
  Sim fresh(40 * MiB, {{.bps = 10e6, .unmeasured = true}, {.bps = 10e6, .unmeasured = true}});
  fresh.RunToEnd();
  ASSERT_TRUE(fresh.plan_.Complete());
  EXPECT_TRUE(fresh.Exact());
  EXPECT_GT(fresh.per_server_[0], 0u);
  EXPECT_GT(fresh.per_server_[1], 0u);
}

TEST(PiecePlan, ASmallSliceGoesToTheIdleServerThatIsFasterThoughListedLater) {
  Sim sim(1 * MiB, {{.bps = 1e6}, {.bps = 10e6}});
  sim.RunToEnd();
  ASSERT_EQ(sim.started_.size(), 1u);
  EXPECT_EQ(sim.started_[0].server, 1u);
}

TEST(PiecePlan, AServerFarSlowerThanTheBestIsNotGivenAPiece) {
  PiecePlanOptions o;
  o.hedge = false;
  Sim sim(40 * MiB, {{.bps = 50e6}, {.bps = 50e6}, {.bps = 0.1e6}}, o);
  sim.RunToEnd();
  ASSERT_TRUE(sim.plan_.Complete());
  EXPECT_EQ(sim.per_server_[2], 0u);
}

}  // namespace
}  // namespace jigdoofus
