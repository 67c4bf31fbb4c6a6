// SliceResolver: the SliceProvider of one .jigdo: computes a slice's
// locations from the .jigdo, tries each SliceSource in order, merges
// concurrent requests for the same slice into one (single flight), and
// keeps recently used verified slices open (bounded LRU).
//
// Counters (stats()) record each outcome by cause, for the status file.
// Failures are not cached: a later Get() tries the sources again. A
// request that waited on another's fetch, which failed with a source
// finding no file or a damaged one (even when the failure reported is
// another source's, e.g. "offline: not in the cache"), looks once more
// itself: that fetch began before the request did, and a file may have
// been put back in between. Not after other failures: a second round of
// unreachable servers would only double the wait.
// A reader (FetchContext::urgent) that joins a read-ahead fetch makes it
// urgent from then on (the leader's context sees reader_waits set).
// A waiter whose own deadline passes (or that is interrupted) gives up
// alone; the fetch goes on for the others. If the leader gave up
// (its ctx), waiters that still have time start a new fetch.
// Thread-safe. Lock order: mu_ is a leaf; never held while a source runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/jigdo_file.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

struct ResolverStats {
  std::atomic<uint64_t> opened{0};        // slices produced by a source
  std::atomic<uint64_t> lru_hits{0};      // served from the open-slice LRU
  std::atomic<uint64_t> merged_waits{0};  // requests that waited on another's fetch
  std::atomic<uint64_t> not_found{0};
  std::atomic<uint64_t> corrupt{0};
  std::atomic<uint64_t> unavailable{0};
  std::atomic<uint64_t> other_errors{0};
};

// Open verified slices kept by default: room for a read-ahead window of
// slices (core/prefetcher.h: ReadAheadOptions::max_slices_ahead) for a few
// readers at once, at one fd each.
inline constexpr size_t kDefaultMaxOpenSlices = 256;

class SliceResolver final : public SliceProvider {
 public:
  // Sources are tried in the given order; they must outlive the resolver.
  // `heads` (may be null): the templates' head sums, put into requests.
  SliceResolver(std::shared_ptr<const JigdoFile> jigdo, std::vector<SliceSource*> sources,
                size_t max_open = kDefaultMaxOpenSlices, std::shared_ptr<const SliceHeadMap> heads = nullptr);
  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& slice, const FetchContext& ctx) override;
  // Drops the open slice kept for `slice` (it went bad or was evicted).
  void Forget(const SliceId& slice) override;
  bool IsOpen(const SliceId& slice) const override;
  // Whether the slice can be served now without the network: kept open,
  // or a source holds it verified (SliceSource::HasVerified).
  bool Available(const SliceId& slice);
  // The request the sources get for `slice`: its locations in this .jigdo
  // and its head sum.
  SliceRequest RequestFor(const SliceId& slice) const;
  const ResolverStats& stats() const { return stats_; }

 private:
  struct Flight;
  using LruList = std::list<std::shared_ptr<const VerifiedSlice>>;
  // Runs the sources for `slice` (the leader's work; no lock held).
  // `saw_file_state`: set when a source found no file or a damaged one.
  Result<std::shared_ptr<const VerifiedSlice>> Fetch(const SliceId& slice, const FetchContext& ctx,
                                                     bool* saw_file_state);
  // LRU helpers. REQUIRES: mu_ held.
  std::shared_ptr<const VerifiedSlice> LruFind(const SliceId& slice);
  void LruInsert(std::shared_ptr<const VerifiedSlice> slice);

  std::shared_ptr<const JigdoFile> jigdo_;
  std::vector<SliceSource*> sources_;
  size_t max_open_;
  std::shared_ptr<const SliceHeadMap> heads_;
  mutable std::mutex mu_;
  std::unordered_map<Digest, std::shared_ptr<Flight>, DigestHash> flights_;  // GUARDED_BY(mu_)
  LruList lru_;                                                              // GUARDED_BY(mu_), front = newest
  std::unordered_map<Digest, LruList::iterator, DigestHash> lru_index_;     // GUARDED_BY(mu_)
  ResolverStats stats_;
};

}  // namespace jigdoofus
