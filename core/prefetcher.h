// Prefetcher and ReadAhead: warm the slices a sequential reader is about
// to need, on a small pool of threads, so that hashing (local files) or
// downloading (mirrors) happens before the read arrives.
//
// The prefetcher only calls SliceProvider::Get() and drops the result: the
// provider (SliceResolver) keeps recently verified slices open, records
// verifications, or stores downloads in its chunk cache. It never hands
// out bytes, so it cannot weaken "only verified bytes are served"; a
// failed prefetch is forgotten and the reader's own Get() tries again and
// reports the error.
//
// Prefetcher: a pool of `threads` workers over a bounded FIFO queue (and
// up to `max_threads` while a JobBudget asks for more: far servers; those
// threads are started when it first asks, not before);
// a slice already queued or being fetched (same provider, same digest) is
// not queued again. The destructor stops the workers: queued work is
// dropped, running Get()s see their FetchContext cancelled and are
// awaited. Thread-safe.
//
// ReadAhead: the per-open-file policy. OnRead(offset, length) after each
// read; when reads are sequential (min_sequential_reads in a row) it
// queues the slices of the window past the read's end (whole slices: a slice that crosses the window's end is
// queued whole). The window starts at `initial_window` and doubles up to
// `max_window` while the reader stays sequential; a jump resets it. At most
// `max_slices_ahead` slices are kept in flight ahead of the reader (keep it
// below the resolver's open-slice LRU so prefetched slices are still open
// when the reader gets there). Thread-safe (one mutex; Enqueue never
// blocks).
// REQUIRES: the map, the provider and the Prefetcher outlive the ReadAhead.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/image_map.h"
#include "core/job_budget.h"
#include "core/mount_defaults.h"
#include "core/slice_provider.h"

namespace jigdoofus {

struct PrefetcherOptions {
  size_t threads = 2;
  size_t max_queue = 1024;         // queued (not yet running) slices
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;  // deadline of one prefetch Get()
  // With a budget, up to max_threads fetch at once: threads + budget->Total().
  std::shared_ptr<const JobBudget> budget;
  size_t max_threads = 0;
};

struct PrefetcherStats {
  uint64_t queued = 0;      // accepted by Enqueue
  uint64_t deduped = 0;     // refused: already queued or in flight
  uint64_t rejected = 0;    // refused: queue full or stopping
  uint64_t fetched = 0;     // Get() succeeded
  uint64_t failed = 0;      // Get() failed (the reader will retry)
};

class Prefetcher {
 public:
  explicit Prefetcher(PrefetcherOptions options);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  enum class Outcome { kQueued, kDuplicate, kFull };
  // Queues a Get(slice) on `provider`. Never blocks.
  Outcome Enqueue(SliceProvider* provider, const SliceId& slice);
  // Queued plus running.
  size_t pending() const;
  PrefetcherStats stats() const;
  // Blocks until nothing is queued or running (tests, shutdown).
  void Drain();
  // Threads started: `threads`, and with a budget one more than may fetch
  // now (up to max_threads), started as the budget grows.
  size_t workers() const;

 private:
  struct Key {
    SliceProvider* provider;
    Digest digest;
    bool operator==(const Key& o) const { return provider == o.provider && digest == o.digest; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return DigestHash{}(k.digest) ^ (std::hash<const void*>{}(k.provider) * 31);
    }
  };
  struct Task {
    SliceProvider* provider;
    SliceId slice;
  };
  void Work();
  // Workers that may fetch at once now. REQUIRES mu_.
  size_t Limit() const;
  // Starts workers up to Limit() + 1 (see workers()). REQUIRES mu_.
  void Grow();

  const PrefetcherOptions options_;
  mutable std::mutex mu_;  // a leaf: never held while Get() runs
  std::condition_variable work_cv_;   // tasks or stop
  std::condition_variable idle_cv_;   // pending() became 0
  std::deque<Task> queue_;                     // GUARDED_BY(mu_)
  std::unordered_set<Key, KeyHash> pending_;   // GUARDED_BY(mu_): queued or running
  size_t running_ = 0;                         // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};              // set under mu_; read anywhere
  // Fired with stop_: cancels the fetches the workers are waiting on.
  std::shared_ptr<CancelSignal> stop_signal_ = std::make_shared<CancelSignal>();
  PrefetcherStats stats_;                      // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;  // grown under mu_ (Grow), joined once stop_ is set
};

struct ReadAheadOptions {
  uint64_t initial_window = uint64_t{8} << 20;
  uint64_t max_window = uint64_t{128} << 20;
  // Bound on template pieces (slices and literal runs, so also on slices)
  // queued between the reader and prefetched_until().
  size_t max_slices_ahead = 96;
  // A read that starts within this distance of the previous read's end
  // still counts as sequential (the kernel's read-ahead and a
  // multi-threaded FUSE loop reorder requests a little).
  uint64_t sequential_slack = uint64_t{4} << 20;
  // Prefetching starts with this many sequential reads in a row, not
  // counting the jump before them (a handle starts at offset 0, so a reader
  // from the start prefetches from its second read on).
  unsigned min_sequential_reads = 2;
};

class ReadAhead {
 public:
  ReadAhead(const ImageMap* map, SliceProvider* provider, Prefetcher* prefetcher, ReadAheadOptions options = {});
  void OnRead(uint64_t offset, uint64_t length);
  // For tests and the status file.
  uint64_t window() const;
  uint64_t prefetched_until() const;

 private:
  // Number of slice extents in [from, to). REQUIRES to <= map size.
  size_t SlicesBetween(uint64_t from, uint64_t to) const;

  const ImageMap* map_;
  SliceProvider* provider_;
  Prefetcher* prefetcher_;
  const ReadAheadOptions options_;
  // Lock order: ReadAhead::mu_, then Prefetcher::mu_ (Enqueue).
  mutable std::mutex mu_;
  uint64_t next_ = 0;              // GUARDED_BY(mu_): end of the last read
  bool sequential_ = false;        // GUARDED_BY(mu_)
  uint64_t window_;                // GUARDED_BY(mu_)
  uint64_t prefetched_until_ = 0;  // GUARDED_BY(mu_): slices before this are queued
  uint64_t grow_at_ = 0;           // GUARDED_BY(mu_): reader position that doubles the window
  unsigned streak_ = 0;            // GUARDED_BY(mu_): sequential reads in a row
};

}  // namespace jigdoofus
