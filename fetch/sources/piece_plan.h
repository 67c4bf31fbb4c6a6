// PiecePlan: who fetches which bytes of one slice, from which server, and
// when a second server races a slow one. Pure state: no I/O, no threads,
// no clock of its own (the caller passes `now`, in seconds, so the tests
// run it on a simulated clock). SliceFetch (fetch/sources/slice_fetch.h)
// runs it on the Downloader.
//
// The slice [0, size) is cut into pieces (one piece if it is small). A
// lane is one transfer from one server, over a range of one piece:
//  - a fresh piece is fetched whole by one lane (by HTTP Range unless the
//    plan has a single piece and nothing of it is in yet); a server starts
//    its next piece a round trip before its running lane ends;
//  - a lane that fails leaves its piece at what it got (`filled`): the next
//    lane resumes there (Range), from another server;
//  - hedging: when no piece is free, an idle server starts a second lane on
//    the piece whose lane is expected to end last, from its `filled`, if it
//    would be done much sooner (hedge_factor); the two race on the same
//    bytes, each byte is taken from whichever lane brings it first, and the
//    piece's other lanes are cancelled when it is complete. A stalled lane
//    (nothing for stall_s) is not raced but taken over: it is cancelled
//    when the new lane starts, so it does not hold a connection slot while
//    the new one waits for one. A small piece whose lanes are all late for
//    their first byte (late_s) is raced at once, before the stall rule;
//  - stalled(): which cancelled lanes were cut for stalling (taken over,
//    shed, or beaten by a race they were late for, with nothing sent), so
//    the caller can tell a stalling server from a slower one.
// Every lane's position in its piece is at most the piece's `filled`, so a
// piece is always one contiguous run of bytes from its start: a lane's
// bytes below `filled` are dropped, the rest extend it.
//
// A server runs one lane, and starts its next piece early only to keep its
// pipe full; while a reader waits on the slice (SetUrgent), it may run up
// to 4 pieces at once, so the slice gets more of a shared uplink.
//
// Bytes leave in slice order (TakeReady): the first incomplete piece's
// bytes as they come, later pieces' bytes are held until the frontier
// reaches them. No piece more than `window` bytes past the frontier is
// started, so a plan holds at most window + piece_size bytes; and with a
// held_budget shared by the plans, a piece past the frontier starts only
// once its bytes are set aside there (the frontier's piece always may, so
// every plan goes on, one piece at a time when the budget is spent).
//
// Servers are indexes into the caller's candidate list, in preference
// order, each with a tier (jigdo's weights: only the best tier still
// alive gets work; lower tiers are the fallback) and whether it is known
// to refuse Range requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fetch/sources/memory_budget.h"

namespace jigdoofus {

struct PiecePlanOptions {
  // Slices of more than 2 x piece_size bytes are cut into pieces of about
  // this size (when more than one server can do ranges).
  uint64_t piece_size = uint64_t{4} << 20;
  // Pieces start at most this far past the first byte not yet taken.
  uint64_t window = uint64_t{32} << 20;
  // Bytes held past the frontier by all plans sharing it (nullptr: only
  // the window bounds them). A piece started past the frontier takes its
  // size from it until the frontier passes the piece. Plans that decide
  // at the same moment may each take one piece over it.
  std::shared_ptr<MemoryBudget> held_budget = nullptr;
  // Lanes running at once for one slice. A server runs one, and starts
  // the next free piece while it still runs (at most 4 at once) only when
  // its lanes will be done before the new one's first byte: a far server
  // keeps its pipe full instead of idling a round trip between pieces.
  size_t max_lanes = 8;
  // A second lane starts on a piece when its running lane needs more than
  // hedge_factor times what an idle server would, and at least
  // hedge_min_gain_s longer.
  bool hedge = true;
  double hedge_factor = 2.0;
  double hedge_min_gain_s = 0.5;
  // A lane that got nothing for this long is counted as stalled; once
  // bytes flow, already after 8 of its usual gaps between deliveries, but
  // never sooner than stall_min_s.
  double stall_s = 1.0;
  double stall_min_s = 0.3;
  // A lane still without its first byte late_s after its server's usual
  // time to first byte is late: a piece of at most late_race_max bytes
  // left is raced at once by an idle server (cheap, and a reader may wait
  // on it), before the lane counts as stalled.
  double late_s = 0.3;
  uint64_t late_race_max = uint64_t{1} << 20;
  // A lane's own pace counts once its bytes have flowed this long; before,
  // the scores' expectation stands in.
  double observe_s = 0.5;
};

struct PieceServer {
  int tier = 0;               // 0 first; higher tiers only when all lower ones are dead
  bool refuses_ranges = false;
  // Its estimates come from measured downloads. An unmeasured server's are
  // a guess (as good as the best known): it gets work only as the first
  // server (the caller chose to probe it) or while no measured server of
  // its tier is alive, and no piece is left to it on that guess.
  bool measured = true;
};

class PiecePlan {
 public:
  // Expected seconds for `bytes` more bytes from `server`, given what it
  // does now (ServerScores' pipe model); for 0 bytes, until a new lane's
  // first byte.
  using Estimator = std::function<double(size_t server, uint64_t bytes)>;

  struct Work {
    size_t server = 0;
    size_t piece = 0;
    uint64_t begin = 0;  // of the slice
    uint64_t end = 0;
    bool ranged = true;  // false: the whole slice, no Range header
    bool hedge = false;  // races a running lane
    bool takeover = false;  // ... that is stalled: which is cancelled at Start
    bool late = false;      // ... that is late for its first byte
  };
  using LaneId = size_t;

  PiecePlan(uint64_t size, std::vector<PieceServer> servers, PiecePlanOptions options = {});
  ~PiecePlan();  // gives back what its pieces took of the held_budget
  PiecePlan(const PiecePlan&) = delete;
  PiecePlan& operator=(const PiecePlan&) = delete;

  // What `server` should fetch now, or nothing (its lanes here will not be
  // done before a new one's first byte would come, it is dead, of a lower
  // tier, another server would finish the next free piece sooner even
  // after its current one, or no running lane is slow enough to race).
  std::optional<Work> Next(size_t server, double now, const Estimator& estimate) const;
  LaneId Start(const Work& work, double now);
  // `bytes` arrived on `lane`, continuing where it was. Returns the part
  // of them that comes next in slice order, counted as taken: the caller
  // hands it on (to the sink) before anything else, without the plan
  // copying it. The rest of the new bytes the plan holds for TakeReady.
  std::span<const uint8_t> Deliver(LaneId lane, std::span<const uint8_t> bytes, double now);
  // The lane's transfer ended. `server_dead`: give its server no more work
  // in this plan (it failed; not when it was cancelled by the plan).
  // `refused_range`: it answered a Range request with other bytes.
  void Ended(LaneId lane, bool server_dead, bool refused_range = false);

  // A reader waits on the slice from now on: a server may run up to 4 of
  // its pieces at once (more of its uplink), not only to keep its pipe full.
  void SetUrgent(bool urgent) { urgent_ = urgent; }
  bool urgent() const { return urgent_; }

  // Marks superseded the stalled lanes of pieces that another lane, not
  // stalled, is fetching too (a race whose first lane then stopped).
  void ShedStalled(double now, const Estimator& estimate);
  // Lanes whose piece is complete while they still run, or that were taken
  // over or shed: cancel them.
  std::vector<LaneId> TakeSuperseded();
  // Appends the bytes ready in slice order to `out`; returns how many.
  size_t TakeReady(std::vector<uint8_t>* out);

  bool Complete() const { return taken_ == size_; }
  // Nothing runs and no live server can do what is left: the slice fails.
  bool Stuck(double now, const Estimator& estimate) const;

  uint64_t size() const { return size_; }
  size_t pieces() const { return pieces_.size(); }
  size_t running() const;
  size_t hedges() const { return hedges_; }
  size_t takeovers() const { return takeovers_; }
  bool server_dead(size_t server) const { return servers_[server].dead; }
  bool server_refused_ranges(size_t server) const { return servers_[server].refuses_ranges; }
  // The lane was cut because it stalled: taken over, shed, or beaten by a
  // race it was late for (its server is stalling now, not just slower).
  bool stalled(LaneId lane) const { return lanes_[lane].stalled; }
  // Lanes of the server that brought at least one byte that was kept.
  bool contributed(size_t server) const { return servers_[server].contributed; }
  uint64_t taken() const { return taken_; }

 private:
  struct Piece {
    uint64_t begin = 0, end = 0;
    uint64_t filled = 0;          // absolute: bytes [begin, filled) are in
    std::vector<uint8_t> held;    // the last held.size() bytes before filled, not yet taken
    uint64_t reserved = 0;        // taken of the held_budget (started past the frontier)
    size_t lanes = 0;             // running lanes on it
  };
  struct Lane {
    size_t server = 0;
    size_t piece = 0;
    uint64_t pos = 0;             // absolute: next byte this lane delivers
    double started = 0;
    double first_byte = -1;       // -1: none yet
    double last_byte = -1;
    uint64_t got = 0;
    uint64_t first_got = 0;       // bytes of the first delivery
    uint64_t deliveries = 0;
    bool running = true;
    bool shed = false;            // superseded already (taken over or shed)
    bool late = false;            // raced for want of a first byte
    bool stalled = false;         // superseded for stalling (see stalled())
  };
  struct Server {
    PieceServer info;
    bool dead = false;
    bool refuses_ranges = false;
    size_t lanes = 0;             // running lanes here
    bool contributed = false;
  };

  bool Eligible(size_t server) const;
  // The server is not measured, not the one chosen to probe (index 0), and
  // a measured server of its tier is alive: its guess takes no work.
  bool OnlyAGuess(size_t server) const;
  int BestTier() const;
  // Seconds until the server's running lanes here are expected to be done.
  double BusyFor(size_t server, double now, const Estimator& estimate) const;
  // How long `lane` may go without bytes before it counts as stalled.
  double StallAfter(const Lane& lane) const;
  // Seconds until `lane` is expected to have brought its piece's remaining
  // bytes (infinite when stalled).
  double LaneEta(const Lane& lane, double now, const Estimator& estimate) const;
  // Whether the lane waits for its first byte late_s past its server's usual.
  bool Late(const Lane& lane, double now, const Estimator& estimate) const;
  // Marks `lane` superseded (cancelled by the caller); `stalled`: for that.
  void Supersede(LaneId lane, bool stalled);
  // Whether piece i may start: the frontier's always, another once its
  // bytes fit the held_budget (or took their share of it already).
  bool MayHold(size_t piece) const;
  // Moves the frontier past complete pieces whose bytes are all taken,
  // giving back what they took of the held_budget.
  void AdvanceFront();

  uint64_t size_;
  PiecePlanOptions options_;
  std::vector<Server> servers_;
  std::vector<Piece> pieces_;
  std::vector<Lane> lanes_;
  std::vector<LaneId> superseded_;
  uint64_t taken_ = 0;  // bytes handed out by TakeReady
  size_t front_ = 0;    // the first piece not fully taken
  bool urgent_ = false;
  size_t hedges_ = 0;
  size_t takeovers_ = 0;
};

}  // namespace jigdoofus
