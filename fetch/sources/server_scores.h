// ServerScores: what each download server has shown it can do, to choose
// where the next slice goes (MirrorSource) and to start the next mount
// informed.
//
// Per server (scheme://host:port): moving averages of the time to first
// byte, of the rate one connection gets, and of the rate the server gave all
// of this mount's downloads together while one of them ran (its uplink, once
// it is busy: a far server with a big uplink gives each connection little
// but many connections a lot; a near one behind a thin uplink gives one
// connection all it has). A server is a pipe: with k downloads running there
// and W of their bytes still to come, a slice of S bytes is expected to be
// done after
//     ttfb + (W + S) / min(aggregate, per_connection * (k + 1))
// so every server is kept busy in proportion to what it can deliver, and a
// fast server with a long queue loses the next slice to an idle slower one. A server never measured
// gets an optimistic guess (as fast as the best known), so it is tried; with
// several servers known, only every kProbeEvery-th choice may try an
// unknown one, so a list of hundreds is sampled, not hammered; and once any
// server is measured, only slices up to kProbeMaxSize are used to probe.
//
// Kept in a small JSON file in the cache dir (written atomically at most
// every 30 s while downloads finish, and when the mount ends).
//
// Thread-safe (one leaf mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

namespace jigdoofus {

struct ServerScore {
  double ttfb_s = 0;             // moving average
  double per_connection_bps = 0; // moving average
  double aggregate_bps = 0;      // moving average
  double body_s = 0;             // moving average of a download's first byte to last
  // The least time to first byte of late (a round trip with no queue at
  // the server): falls to a lower sample at once, rises by 1/32 of the gap
  // to each higher one. Not kept between mounts.
  double min_ttfb_s = 0;
  uint64_t samples = 0;          // downloads measured (0: a guess)
  int in_flight = 0;             // downloads running now (this mount)
  bool refuses_ranges = false;   // answered a Range request with other bytes
};

class ServerScores {
 public:
  static constexpr int kProbeEvery = 16;
  static constexpr size_t kEnoughKnown = 3;
  static constexpr uint64_t kProbeMaxSize = 1 << 20;
  // `path`: the file the scores are loaded from and saved to (empty: kept
  // in memory only).
  explicit ServerScores(std::string path = "");
  ~ServerScores();  // saves
  ServerScores(const ServerScores&) = delete;
  ServerScores& operator=(const ServerScores&) = delete;

  // A download from `server` started: returns how many run there now,
  // itself included; pass that to Ended.
  int Began(const std::string& server);
  // It ended. `ttfb_s`: seconds to its first body byte; `body_s`: seconds
  // from then to its end; `bytes`: body bytes; `server_bps`: what the
  // server delivered to all of this mount's downloads while this one ran
  // (0: unknown). A failed download only counts as ended (its health is
  // MirrorSource's back-off).
  void Ended(const std::string& server, bool ok, uint64_t bytes, double ttfb_s, double body_s, double server_bps);
  // Bytes still to come from the downloads running at each server.
  using Backlog = std::map<std::string, uint64_t>;
  // Expected seconds until `size` more bytes from `server` are in (for 0:
  // until a new download's first byte, which waits for no backlog).
  double ExpectedSeconds(const std::string& server, uint64_t size, const Backlog& backlog = {}) const;
  // Orders `servers` (one decision for one slice of `size` bytes): by
  // expected seconds, except that an unmeasured server is put after the
  // measured ones unless this decision may probe (see above). Stable.
  std::vector<size_t> Order(const std::vector<std::string>& servers, uint64_t size, const Backlog& backlog = {});
  // How many downloads to run at `server` at once: `base`, or more when
  // its downloads mostly wait for their first byte (a far server sending
  // small files: each request idles a round trip, so `base` of them leave
  // its uplink idle): enough that half of `base` are sending on average,
  // base x (ttfb + body) / (2 x body), with ttfb the least of late (a busy
  // uplink delays first bytes too, and more connections would not help
  // it) and body the moving average, at most
  // `ceiling`. `base` until kMinSamplesForConnections downloads were measured.
  static constexpr uint64_t kMinSamplesForConnections = 8;
  size_t Connections(const std::string& server, size_t base, size_t ceiling) const;
  // `server` answered a Range request with other bytes: it gets whole
  // slices only (kept with the scores).
  void RefusesRanges(const std::string& server);
  ServerScore Get(const std::string& server) const;
  std::map<std::string, ServerScore> All() const;
  Status Save() const;

 private:
  double ExpectedLocked(const ServerScore& s, uint64_t size, uint64_t backlog) const;
  void Load();
  std::string path_;
  mutable std::mutex save_mu_;  // one Save at a time (they share the .part file); taken before mu_
  mutable std::mutex mu_;
  std::map<std::string, ServerScore> scores_;  // GUARDED_BY(mu_)
  uint64_t decisions_ = 0;                      // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_save_{};  // GUARDED_BY(mu_)
};

}  // namespace jigdoofus
