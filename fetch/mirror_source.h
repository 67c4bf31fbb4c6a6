// MirrorSource: slices from the network, kept in the chunk cache.
//
// Open() first looks in the ChunkStore (a verified slice there is served
// at once, also with --offline). Otherwise it builds the candidate URLs of
// the slice: --mirror LABEL=URL servers first (in command-line order), then
// the .jigdo's own [Servers] and [Parts] URLs in their order, --try-last
// servers last; servers that failed recently are moved behind healthy
// ones (tried later, never dropped). Each candidate is downloaded through
// the Downloader straight into a ChunkStore::Writer, which hashes as the
// bytes arrive; only a Commit() whose checksum matched publishes the slice.
// A body that fails its checksum is the server's fault: the next candidate
// is tried. A slice larger than the whole cache is refused with a clear
// error (see README: raise --cache-size).
//
// Thread-safety: Open() may run concurrently (the SliceResolver already
// merges requests for one slice within this process; a slice being written
// by another process sharing the cache is waited for).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cache/chunk_store.h"
#include "fetch/downloader.h"
#include "fetch/slice_source.h"

namespace jigdoofus {

struct MirrorSourceOptions {
  // --mirror LABEL=URL, in order; tried before the .jigdo's servers.
  std::vector<std::pair<std::string, std::string>> mirrors;
  bool offline = false;  // serve from the cache only
  // A server that failed is moved behind healthy ones for this long
  // (doubling per consecutive failure, up to max_backoff).
  std::chrono::milliseconds base_backoff{2000};
  std::chrono::milliseconds max_backoff{60000};
};

struct MirrorSourceStats {
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> downloads_ok{0};
  std::atomic<uint64_t> downloads_failed{0};  // one per failed candidate
  std::atomic<uint64_t> bad_checksum{0};
  std::atomic<uint64_t> bytes_downloaded{0};
  std::atomic<uint64_t> offline_misses{0};
};

class MirrorSource final : public SliceSource {
 public:
  // `downloader` may be null (offline); `store` must not be. Both outlive this.
  MirrorSource(Downloader* downloader, ChunkStore* store, MirrorSourceOptions options);
  const char* name() const override { return "mirror"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;
  const MirrorSourceStats& stats() const { return stats_; }

  // The candidate URLs for a request, in the order they would be tried
  // (without the health reordering). Exposed for tests and the status file.
  std::vector<std::string> CandidateUrls(const SliceRequest& request) const;

 private:
  struct Candidate {
    std::string url;
    bool try_last = false;
  };
  std::vector<Candidate> Candidates(const SliceRequest& request) const;
  // Downloads `url` into the store. OK once the slice is committed.
  Status DownloadOne(const SliceRequest& request, const std::string& url, const FetchContext& ctx,
                     FetchError* error);
  void NoteResult(const std::string& url, FetchError error);
  bool InBackoff(const std::string& url);

  Downloader* downloader_;
  ChunkStore* store_;
  MirrorSourceOptions options_;
  MirrorSourceStats stats_;

  struct Health {
    int consecutive_failures = 0;
    std::chrono::steady_clock::time_point retry_after{};
  };
  std::mutex mu_;                                   // leaf lock
  std::map<std::string, Health> health_;            // GUARDED_BY(mu_), key: scheme://host:port
};

// "scheme://authority" of a URL ("" if it has none).
std::string UrlServerKey(const std::string& url);

}  // namespace jigdoofus
