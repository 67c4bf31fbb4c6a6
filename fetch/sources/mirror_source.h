// MirrorSource: slices from the network, kept in the chunk cache.
//
// Open() first looks in the ChunkStore (a verified slice there is served
// at once, also with --offline), then among the slices it holds in memory.
// Otherwise it builds the candidate URLs of the slice: --mirror LABEL=URL
// servers first, then the .jigdo's own [Servers] and [Parts] URLs by
// jigdo's weight (--try-first[=W] before, --try-last[=W] after); among
// candidates of equal weight the server expected to deliver the slice
// first, given what it is already doing, goes first (ServerScores); servers
// in back-off are moved behind healthy ones (tried later, never dropped).
//
// Where the bytes go is the cache's admission (cache/quota.h): kWrite
// streams them into the cache; kBusyElsewhere waits for the other writer
// (bounded by the request's deadline); kTooLarge and kNoRoomNow, and a
// disk that stays full while writing, download the slice into memory
// within a MemoryBudget instead (fetch/memory_slice.h), so the waiting
// reader is still served. Each download is verified as a whole before a
// byte is served.
//
// The download itself is a SliceFetch (fetch/sources/slice_fetch.h): a
// large slice comes in Range pieces from every server of the first tier
// that is worth it, a lane that fails is resumed elsewhere where it
// stopped, and a lane much slower than an idle server would be is raced by
// it (hedging): a slow or stalling mirror does not hold a waiting reader
// for long. Tiers: --mirror servers, then the .jigdo's by weight, servers
// in back-off last. A slice whose bytes do not verify is fetched again
// from one server at a time, so the server that sent bad bytes is found
// and left out.
//
// Server health follows one rule (fetch/fetch_error.h,
// ShouldRetryServerLater): a server whose failure was transient is backed
// off for base_backoff, doubling per consecutive failure up to
// max_backoff; a success clears it; other failures (404, wrong bytes)
// leave its health alone. A server whose lane was cut for stalling
// (PiecePlan::stalled) is backed off for one second, not doubled: a stall
// is what it does now, not a failure.
//
// Thread-safety: Open() may run concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cache/chunk_store.h"
#include "core/job_budget.h"
#include "fetch/transport/downloader.h"
#include "fetch/sources/memory_slice.h"
#include "fetch/sources/server_scores.h"
#include "fetch/sources/slice_fetch.h"
#include "fetch/sources/slice_source.h"
#include "fetch/sources/transfer_log.h"

namespace jigdoofus {

struct MirrorSourceOptions {
  // --mirror LABEL=URL, in order; tried before the .jigdo's servers.
  std::vector<std::pair<std::string, std::string>> mirrors;
  bool offline = false;  // serve from the cache only
  std::chrono::milliseconds base_backoff{2000};
  std::chrono::milliseconds max_backoff{60000};
  // Bytes of slices held in memory at once (those the cache cannot keep).
  uint64_t memory_budget = mount_defaults::kMemorySliceBudget;
  // Where the servers' scores are kept between mounts (empty: not kept).
  std::string scores_path;
  // Servers from --mirror-list LABEL=...: candidates like the .jigdo's own
  // (weight 0), of which the best kMaxListedTried are tried per slice.
  std::vector<std::pair<std::string, std::string>> listed;
  // How slices are split across servers and raced (piece size 0: never).
  PiecePlanOptions plan;
  // Told how many downloads beyond the downloader's per-host limit each
  // far server wants (ServerScores::Connections), which the downloader is
  // told too; may be null (then the downloader's limit is not changed).
  std::shared_ptr<JobBudget> budget;
};

// Servers from mirror lists tried for one slice, at most (a list of
// hundreds is sampled, never tried in full for a slice nobody has).
inline constexpr size_t kMaxListedTried = 6;

struct MirrorSourceStats {
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> memory_hits{0};       // served from slices held in memory
  std::atomic<uint64_t> downloads_ok{0};
  std::atomic<uint64_t> downloads_failed{0};  // one per failed candidate
  std::atomic<uint64_t> bad_checksum{0};
  std::atomic<uint64_t> bytes_downloaded{0};
  std::atomic<uint64_t> offline_misses{0};
  std::atomic<uint64_t> kept_in_memory{0};    // downloads the cache could not keep
  std::atomic<uint64_t> overtaken{0};         // lanes cancelled: another server finished their bytes first
  std::atomic<uint64_t> stalled{0};           // ... of them because they stalled (the server backed off)
  std::atomic<uint64_t> pieced{0};            // slices fetched in Range pieces
  std::atomic<uint64_t> pieces{0};            // ... in so many pieces
  std::atomic<uint64_t> hedges{0};            // lanes started to race a slow one
  std::atomic<uint64_t> range_refused{0};     // Range requests answered with other bytes
};

class MirrorSource final : public SliceSource, private LaneObserver {
 public:
  // `downloader` may be null (offline); `store` must not be. Both outlive this.
  MirrorSource(Downloader* downloader, ChunkStore* store, MirrorSourceOptions options);
  const char* name() const override { return "mirror"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;
  // Complete in the cache, or held in memory.
  bool HasVerified(const SliceRequest& request) override;
  const MirrorSourceStats& stats() const { return stats_; }
  uint64_t memory_used() const { return memory_->used(); }

  // The candidate URLs for a request, in the order they would be tried
  // (without the health reordering). Exposed for tests and the status file.
  std::vector<std::string> CandidateUrls(const SliceRequest& request) const;
  // Downloads in flight, rates, per server totals (fetch/transfer_log.h).
  TransferSnapshot Transfers() const;
  // Servers backed off now, with the seconds until they are tried first again.
  std::vector<std::pair<std::string, double>> ServersInBackoff();
  // What each server has shown (fetch/sources/server_scores.h).
  const ServerScores& scores() const { return scores_; }
  const MirrorSourceOptions& options() const { return options_; }
  // How many downloads may run at `server` at once now (AdaptConnections).
  size_t ConnectionLimit(const std::string& server);

 private:
  struct Candidate {
    std::string url;
    double weight = 0;  // jigdo's --try-first/--try-last; --mirror servers above all
    bool listed = false;  // from a mirror list
    bool backoff = false;  // its server is backed off now
  };
  std::vector<Candidate> Candidates(const SliceRequest& request) const;
  // Reorders each run of equal weight by the servers' expected time.
  void OrderByScores(std::vector<Candidate>* candidates, uint64_t size);
  // The servers of one attempt, with their tiers.
  std::vector<SliceFetchServer> FetchServers(const std::vector<Candidate>& candidates) const;
  // One attempt: admission, then the fetch into the cache or memory.
  DownloadOutcome FetchFrom(const SliceRequest& request, const std::vector<SliceFetchServer>& servers,
                            const FetchContext& ctx, const PiecePlanOptions& plan);
  // FetchSlice into `sink`.
  DownloadOutcome Download(const SliceRequest& request, const std::vector<SliceFetchServer>& servers,
                           SliceSink& sink, const FetchContext& ctx, const PiecePlanOptions& plan);
  DownloadOutcome FetchIntoMemory(const SliceRequest& request, const std::vector<SliceFetchServer>& servers,
                                  const FetchContext& ctx, const PiecePlanOptions& plan);
  // LaneObserver: each lane is listed in transfers_ and scored.
  std::unique_ptr<LaneObserver::Lane> Began(const std::string& url, uint64_t bytes) override;
  void Ended(std::unique_ptr<LaneObserver::Lane> lane, const std::string& url, LaneObserver::End end,
             FetchError error, const std::string& message) override;
  PiecePlan::Estimator Estimates(const std::vector<std::string>& urls) override;
  void NoteServer(const std::string& url, FetchError error);
  // Moves a server that is stalling now behind the others for a second.
  void NoteStall(const std::string& url);
  // A download from `server` was measured: how many may run there at once
  // (options_.budget).
  void AdaptConnections(const std::string& server);
  // A download from `server` failed: if it had more connections than the
  // base, it gets the base from now on.
  void HoldToBase(const std::string& server);
  bool InBackoff(const std::string& url);
  std::shared_ptr<const VerifiedSlice> FindInMemory(const SliceId& id);
  void KeepInMemory(std::shared_ptr<const VerifiedSlice> slice);
  bool DropOldestInMemory();  // false if none is kept

  Downloader* downloader_;
  ChunkStore* store_;
  MirrorSourceOptions options_;
  std::shared_ptr<MemoryBudget> memory_;
  MirrorSourceStats stats_;
  TransferLog transfers_;
  ServerScores scores_;

  struct Health {
    int consecutive_failures = 0;
    std::chrono::steady_clock::time_point retry_after{};
    // It failed while it had more connections than the base (a mirror's
    // limit per client, most likely): the base for the rest of the mount.
    bool held_to_base = false;
  };
  std::mutex mu_;                                        // leaf lock
  std::map<std::string, Health> health_;                 // GUARDED_BY(mu_), key: ServerKey
  std::list<std::shared_ptr<const VerifiedSlice>> in_memory_;  // GUARDED_BY(mu_), front = newest
};

}  // namespace jigdoofus
