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
// A download that goes much slower than a measured alternative would
// (what is left takes more than 1.5 times its whole time plus a second) is
// abandoned for it (kOvertaken): a slow or stalling mirror does not hold a
// waiting reader for long. The bytes it got are dropped (the slice is
// verified whole).
//
// Server health follows one rule (fetch/fetch_error.h,
// ShouldRetryServerLater): a server whose failure was transient is backed
// off for base_backoff, doubling per consecutive failure up to
// max_backoff; a success clears it; other failures (404, wrong bytes)
// leave its health alone.
//
// Thread-safety: Open() may run concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cache/chunk_store.h"
#include "fetch/transport/downloader.h"
#include "fetch/sources/memory_slice.h"
#include "fetch/sources/server_scores.h"
#include "fetch/sources/slice_download.h"
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
  std::atomic<uint64_t> overtaken{0};         // abandoned for a server expected to be faster
};

class MirrorSource final : public SliceSource {
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

 private:
  struct Candidate {
    std::string url;
    double weight = 0;  // jigdo's --try-first/--try-last; --mirror servers above all
    bool listed = false;  // from a mirror list
  };
  std::vector<Candidate> Candidates(const SliceRequest& request) const;
  // Reorders each run of equal weight by the servers' expected time.
  void OrderByScores(std::vector<Candidate>* candidates, uint64_t size);
  // One candidate: admission, then the download into the cache or memory.
  DownloadOutcome FetchFrom(const SliceRequest& request, const std::string& url, const FetchContext& ctx,
                            const DownloadPace& pace);
  // DownloadSlice into `sink`, listed in transfers_ while it runs.
  DownloadOutcome Download(const SliceRequest& request, const std::string& url, SliceSink& sink,
                           const FetchContext& ctx, const DownloadPace& pace);
  DownloadOutcome FetchIntoMemory(const SliceRequest& request, const std::string& url, const FetchContext& ctx,
                                  const DownloadPace& pace);
  // When to abandon candidates[current] for a later candidate that the
  // scores say would finish the whole slice much sooner (null: never).
  DownloadPace PaceAgainst(const std::vector<Candidate>& candidates, size_t current, uint64_t size);
  void NoteServer(const std::string& url, FetchError error);
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
  };
  std::mutex mu_;                                        // leaf lock
  std::map<std::string, Health> health_;                 // GUARDED_BY(mu_), key: ServerKey
  std::list<std::shared_ptr<const VerifiedSlice>> in_memory_;  // GUARDED_BY(mu_), front = newest
};

}  // namespace jigdoofus
