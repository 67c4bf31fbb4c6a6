#include "fetch/sources/piece_plan.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace jigdoofus {

namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
// Lanes racing on one piece, at most.
constexpr size_t kMaxLanesPerPiece = 3;
// Lanes one server runs at once for one slice, at most (see Next).
constexpr size_t kMaxLanesPerServer = 4;

}  // namespace

PiecePlan::PiecePlan(uint64_t size, std::vector<PieceServer> servers, PiecePlanOptions options)
    : size_(size), options_(options) {
  for (const PieceServer& s : servers) {
    Server server;
    server.info = s;
    server.refuses_ranges = s.refuses_ranges;
    servers_.push_back(server);
  }
  // Pieces only pay when two servers of the first tier can serve them.
  size_t rangers = 0;
  const int tier = BestTier();
  for (const Server& s : servers_) rangers += s.info.tier == tier && !s.refuses_ranges ? 1 : 0;
  uint64_t count = 1;
  if (rangers >= 2 && options_.piece_size > 0 && size_ > 2 * options_.piece_size) {
    count = (size_ + options_.piece_size - 1) / options_.piece_size;
  }
  for (uint64_t i = 0; i < count; ++i) {
    Piece p;
    p.begin = size_ * i / count;
    p.end = size_ * (i + 1) / count;
    p.filled = p.begin;
    pieces_.push_back(std::move(p));
  }
}

PiecePlan::~PiecePlan() {
  for (const Piece& p : pieces_) {
    if (p.reserved > 0) options_.held_budget->Give(p.reserved);
  }
}

bool PiecePlan::MayHold(size_t piece) const {
  const Piece& p = pieces_[piece];
  if (piece == front_ || p.reserved > 0 || !options_.held_budget) return true;
  const uint64_t limit = options_.held_budget->limit(), used = options_.held_budget->used();
  return used < limit && p.end - p.filled <= limit - used;
}

void PiecePlan::AdvanceFront() {
  while (front_ < pieces_.size() && pieces_[front_].filled == pieces_[front_].end && pieces_[front_].held.empty()) {
    Piece& p = pieces_[front_];
    std::vector<uint8_t>().swap(p.held);  // done with: give the memory back
    if (p.reserved > 0) options_.held_budget->Give(std::exchange(p.reserved, 0));
    ++front_;
  }
}

int PiecePlan::BestTier() const {
  int best = std::numeric_limits<int>::max();
  for (const Server& s : servers_) {
    if (!s.dead) best = std::min(best, s.info.tier);
  }
  return best;
}

bool PiecePlan::Eligible(size_t server) const {
  const Server& s = servers_[server];
  return !s.dead && s.info.tier == BestTier();
}

bool PiecePlan::OnlyAGuess(size_t server) const {
  const Server& me = servers_[server];
  if (me.info.measured || server == 0) return false;
  for (const Server& s : servers_) {
    if (!s.dead && s.info.tier == me.info.tier && s.info.measured) return true;
  }
  return false;
}

size_t PiecePlan::running() const {
  size_t n = 0;
  for (const Lane& l : lanes_) n += l.running ? 1 : 0;
  return n;
}

double PiecePlan::BusyFor(size_t server, double now, const Estimator& estimate) const {
  double busy_for = 0;
  for (const Lane& l : lanes_) {
    if (l.running && l.server == server) busy_for = std::max(busy_for, LaneEta(l, now, estimate));
  }
  return busy_for;
}

double PiecePlan::StallAfter(const Lane& lane) const {
  if (lane.deliveries < 4) return options_.stall_s;
  const double gap = (lane.last_byte - lane.first_byte) / static_cast<double>(lane.deliveries - 1);
  return std::clamp(8 * gap, options_.stall_min_s, options_.stall_s);
}

double PiecePlan::LaneEta(const Lane& lane, double now, const Estimator& estimate) const {
  const uint64_t left = pieces_[lane.piece].end - std::min(lane.pos, pieces_[lane.piece].end);
  const double elapsed = now - lane.started;
  if (lane.last_byte < 0) {
    // Nothing yet: as the scores expect, unless it is late by stall_s.
    if (elapsed > options_.stall_s + estimate(lane.server, 0)) return kNever;
    return std::max(0.0, estimate(lane.server, left + lane.got) - elapsed);
  }
  if (now - lane.last_byte > StallAfter(lane)) return kNever;
  const double flowing = now - lane.first_byte;
  // Flowing, not yet long enough to measure: the scores' time for the
  // bytes left, without a time to first byte (that one is in).
  if (flowing < options_.observe_s) return std::max(0.0, estimate(lane.server, left) - estimate(lane.server, 0));
  // Bytes since the first delivery over the time since (the first
  // delivery's own bytes came in before its timestamp).
  const double rate = static_cast<double>(lane.got - lane.first_got) / flowing;
  return static_cast<double>(left) / std::max(rate, 1.0);
}

bool PiecePlan::Late(const Lane& lane, double now, const Estimator& estimate) const {
  return lane.running && lane.first_byte < 0 && now - lane.started > options_.late_s + estimate(lane.server, 0);
}

void PiecePlan::Supersede(LaneId id, bool stalled) {
  lanes_[id].shed = true;
  lanes_[id].stalled = lanes_[id].stalled || stalled;
  superseded_.push_back(id);
}

std::optional<PiecePlan::Work> PiecePlan::Next(size_t server, double now, const Estimator& estimate) const {
  if (server >= servers_.size() || !Eligible(server) || running() >= options_.max_lanes) return std::nullopt;
  const Server& me = servers_[server];
  if (OnlyAGuess(server)) return std::nullopt;
  // A server busy here takes another piece only to keep its pipe full: its
  // lanes will have brought their bytes before a new request's first byte
  // would come (a far server would otherwise sit idle for a round trip
  // between pieces), or while a reader waits on the slice: more lanes are
  // more of the server's uplink, shared with other slices' transfers. It
  // races nothing.
  if (me.lanes > 0 &&
      (me.lanes >= kMaxLanesPerServer || (!urgent_ && BusyFor(server, now, estimate) > estimate(server, 0)))) {
    return std::nullopt;
  }
  // The free pieces: nobody on them, not complete, within the window.
  std::vector<size_t> free;
  for (size_t i = front_; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    if (p.lanes > 0 || p.filled == p.end) continue;
    if (i != front_ && (p.begin >= taken_ + options_.window || !MayHold(i))) break;
    free.push_back(i);
  }
  if (!free.empty()) {
    // Only a plan of one piece has an unranged one (its only piece).
    const bool ranged = !(pieces_.size() == 1 && pieces_[free[0]].filled == 0);
    auto work = [&](size_t i) -> std::optional<Work> {
      const Piece& p = pieces_[i];
      if (ranged && me.refuses_ranges) return std::nullopt;
      return Work{server, i, p.filled, p.end, ranged, false};
    };
    // The others of this tier that would take a piece, and when each could
    // have its first byte of a new one in (a server whose lanes here can
    // be followed by another starts a round trip before they end).
    std::vector<std::pair<size_t, double>> others;
    for (size_t o = 0; o < servers_.size(); ++o) {
      const Server& s = servers_[o];
      if (o == server || s.dead || s.info.tier != me.info.tier || (ranged && s.refuses_ranges)) continue;
      if (OnlyAGuess(o)) continue;  // it would not take it
      const double busy = BusyFor(o, now, estimate);
      const bool follows = s.lanes > 0 && s.lanes < kMaxLanesPerServer;
      others.emplace_back(o, follows ? std::max(0.0, busy - estimate(o, 0)) : busy);
    }
    // Earliest completion: leave the first free piece to another server
    // that would have it sooner, even after finishing what it fetches here
    // now (it takes the next free piece then).
    const uint64_t left = pieces_[free[0]].end - pieces_[free[0]].filled;
    const double mine = estimate(server, left);
    bool sooner = false;
    for (const auto& [o, starts] : others) sooner = sooner || starts + estimate(o, left) < mine;
    if (!sooner) return work(free[0]);
    // A slower server still takes the last free piece (the one a reader
    // needs last) when it would have it before the others, each taking
    // the next free piece as it can, would have brought them all. A slow
    // mirror thus gets a piece only when the fast ones are that far behind.
    std::vector<std::pair<size_t, double>> at = others;  // when each would have its pieces in
    std::vector<bool> fetching(others.size(), false);
    double others_done = 0;
    for (size_t i : free) {
      const uint64_t n = pieces_[i].end - pieces_[i].filled;
      size_t best = 0;
      double best_at = kNever;
      for (size_t k = 0; k < at.size(); ++k) {
        const size_t o = at[k].first;
        // Its first piece pays the time to first byte; the next follow on.
        const double done = at[k].second + (fetching[k] ? estimate(o, 2 * n) - estimate(o, n) : estimate(o, n));
        if (done < best_at) {
          best = k;
          best_at = done;
        }
      }
      if (best_at == kNever) break;
      at[best].second = best_at;
      fetching[best] = true;
      others_done = std::max(others_done, best_at);
    }
    const Piece& last = pieces_[free.back()];
    if (free.size() > 1 && estimate(server, last.end - last.filled) < others_done) return work(free.back());
    return std::nullopt;
  }
  if (!options_.hedge || me.refuses_ranges || me.lanes > 0) return std::nullopt;
  // No free piece: race the running lane expected to take longest, if this
  // server would be done much sooner.
  std::optional<Work> best;
  double best_gain = 0;
  for (size_t i = front_; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    if (p.lanes == 0 || p.lanes >= kMaxLanesPerPiece || p.filled == p.end) continue;
    double eta = kNever;
    bool late = p.end - p.filled <= options_.late_race_max;  // ... and every lane on it late
    for (const Lane& l : lanes_) {
      if (!l.running || l.piece != i) continue;
      eta = std::min(eta, LaneEta(l, now, estimate));
      late = late && Late(l, now, estimate);
    }
    const double mine = estimate(server, p.end - p.filled);
    const bool slow = eta > options_.hedge_factor * mine && eta - mine > options_.hedge_min_gain_s;
    if (slow || late) {
      // Stalled before late before merely slow.
      const double gain = eta == kNever ? 1e9 : late ? 1e6 : eta - mine;
      // The frontier first (a reader waits on it), then the largest gain.
      if (!best || (i == front_ && best->piece != front_) || (best->piece != front_ && gain > best_gain)) {
        best = Work{server, i, p.filled, p.end, true, true, eta == kNever, late && eta != kNever};
        best_gain = gain;
      }
    }
  }
  return best;
}

PiecePlan::LaneId PiecePlan::Start(const Work& work, double now) {
  Lane lane;
  lane.server = work.server;
  lane.piece = work.piece;
  lane.pos = work.begin;
  lane.started = now;
  lanes_.push_back(lane);
  Piece& p = pieces_[work.piece];
  ++p.lanes;
  if (work.piece != front_ && p.reserved == 0 && options_.held_budget) {
    // Next saw room for it (MayHold); another plan may have taken some
    // since: this one piece may go over.
    p.reserved = p.end - p.filled;
    options_.held_budget->Take(p.reserved);
  }
  ++servers_[work.server].lanes;
  if (work.hedge) ++hedges_;
  for (LaneId other = 0; other + 1 < lanes_.size(); ++other) {
    Lane& l = lanes_[other];
    if (!l.running || l.piece != work.piece || l.shed) continue;
    if (work.takeover) {
      Supersede(other, true);
    } else if (work.late && l.first_byte < 0) {
      l.late = true;
    }
  }
  if (work.takeover) ++takeovers_;
  return lanes_.size() - 1;
}

std::span<const uint8_t> PiecePlan::Deliver(LaneId id, std::span<const uint8_t> bytes, double now) {
  Lane& lane = lanes_[id];
  if (!lane.running || bytes.empty()) return {};
  Piece& p = pieces_[lane.piece];
  const uint64_t n = std::min<uint64_t>(bytes.size(), p.end - std::min(lane.pos, p.end));
  const bool was_complete = p.filled == p.end;
  std::span<const uint8_t> direct;
  if (lane.pos + n > p.filled) {
    // lane.pos <= p.filled always: the new bytes start at p.filled.
    const uint64_t skip = p.filled - lane.pos;
    const std::span<const uint8_t> fresh = bytes.subspan(skip, n - skip);
    if (lane.piece == front_ && p.held.empty()) {
      // Next in slice order, nothing held before them: straight through.
      direct = fresh;
      taken_ += fresh.size();
    } else {
      p.held.insert(p.held.end(), fresh.begin(), fresh.end());
    }
    p.filled = lane.pos + n;
    servers_[lane.server].contributed = true;
  }
  lane.pos += n;
  lane.got += n;
  if (lane.first_byte < 0) {
    lane.first_byte = now;
    lane.first_got = n;
  }
  lane.last_byte = now;
  ++lane.deliveries;
  if (!was_complete && p.filled == p.end) {
    for (LaneId other = 0; other < lanes_.size(); ++other) {
      const Lane& o = lanes_[other];
      // A lane that was raced for want of a first byte and still has none
      // lost to its server's stall, not to a faster server.
      if (other != id && o.running && o.piece == lane.piece) Supersede(other, o.late && o.first_byte < 0);
    }
    AdvanceFront();
  }
  return direct;
}

void PiecePlan::Ended(LaneId id, bool server_dead, bool refused_range) {
  Lane& lane = lanes_[id];
  if (!lane.running) return;
  lane.running = false;
  --pieces_[lane.piece].lanes;
  Server& s = servers_[lane.server];
  --s.lanes;
  if (refused_range) s.refuses_ranges = true;
  // A server that cannot do ranges is no help once pieces are in play.
  if (server_dead || refused_range) s.dead = true;
}

void PiecePlan::ShedStalled(double now, const Estimator& estimate) {
  for (size_t i = front_; i < pieces_.size(); ++i) {
    if (pieces_[i].lanes < 2) continue;
    std::vector<LaneId> stalled;
    bool moving = false;
    for (LaneId id = 0; id < lanes_.size(); ++id) {
      const Lane& l = lanes_[id];
      if (!l.running || l.piece != i || l.shed) continue;
      if (LaneEta(l, now, estimate) == kNever) {
        stalled.push_back(id);
      } else {
        moving = true;
      }
    }
    if (!moving) continue;
    for (LaneId id : stalled) Supersede(id, true);
  }
}

std::vector<PiecePlan::LaneId> PiecePlan::TakeSuperseded() {
  std::vector<LaneId> out;
  out.swap(superseded_);
  return out;
}

size_t PiecePlan::TakeReady(std::vector<uint8_t>* out) {
  size_t n = 0;
  while (front_ < pieces_.size()) {
    Piece& p = pieces_[front_];
    if (!p.held.empty()) {
      out->insert(out->end(), p.held.begin(), p.held.end());
      n += p.held.size();
      taken_ += p.held.size();
      p.held.clear();
    }
    if (p.filled != p.end) break;
    AdvanceFront();
  }
  return n;
}

bool PiecePlan::Stuck(double now, const Estimator& estimate) const {
  if (Complete() || running() > 0) return false;
  for (size_t s = 0; s < servers_.size(); ++s) {
    if (Next(s, now, estimate)) return false;
  }
  return true;
}

}  // namespace jigdoofus
