#include "core/prefetcher.h"

#include <algorithm>
#include <chrono>

namespace jigdoofus {

Prefetcher::Prefetcher(PrefetcherOptions options) : options_(options) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t base = std::max<size_t>(1, options_.threads);
  for (size_t i = 0; i < base; ++i) workers_.emplace_back([this] { Work(); });
  Grow();
}

void Prefetcher::Grow() {
  if (!options_.budget || stop_.load()) return;
  // One worker more than may fetch, up to max_threads: it looks again at
  // the budget while the others fetch, and starts more when it grew.
  const size_t want = std::min(std::max(options_.max_threads, workers_.size()), Limit() + 1);
  while (workers_.size() < want) workers_.emplace_back([this] { Work(); });
}

size_t Prefetcher::workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.size();
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    for (const Task& t : queue_) pending_.erase(Key{t.provider, t.slice.digest});
    queue_.clear();
  }
  stop_signal_->Fire();  // outside mu_: wake-ups take other locks
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

Prefetcher::Outcome Prefetcher::Enqueue(SliceProvider* provider, const SliceId& slice) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_.load() || queue_.size() >= options_.max_queue) {
      ++stats_.rejected;
      return Outcome::kFull;
    }
    if (!pending_.insert(Key{provider, slice.digest}).second) {
      ++stats_.deduped;
      return Outcome::kDuplicate;
    }
    queue_.push_back(Task{provider, slice});
    ++stats_.queued;
    Grow();
  }
  work_cv_.notify_one();
  return Outcome::kQueued;
}

size_t Prefetcher::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

PrefetcherStats Prefetcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Prefetcher::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return pending_.empty(); });
}

size_t Prefetcher::Limit() const {
  return WorkersAllowed(options_.budget.get(), options_.threads, options_.max_threads);
}

void Prefetcher::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // A worker beyond the limit looks again now and then: the budget
    // changes without telling anyone.
    while (!stop_.load() && (queue_.empty() || running_ >= Limit())) {
      if (queue_.empty() || !options_.budget) {
        work_cv_.wait(lock);
      } else {
        work_cv_.wait_for(lock, std::chrono::milliseconds(100));
        Grow();
      }
    }
    if (stop_.load()) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();

    FetchContext ctx;
    ctx.deadline = DeadlineIn(options_.fetch_timeout_s);
    ctx.cancel = stop_signal_;
    bool ok = false;
    try {
      ok = task.provider->Get(task.slice, ctx).ok();  // the result is dropped: the provider keeps it
    } catch (...) {
      ok = false;  // a prefetch must never take the process down
    }

    lock.lock();
    --running_;
    ++(ok ? stats_.fetched : stats_.failed);
    pending_.erase(Key{task.provider, task.slice.digest});
    if (pending_.empty()) idle_cv_.notify_all();
  }
}

// ---------------------------------------------------------------- ReadAhead

ReadAhead::ReadAhead(const ImageMap* map, SliceProvider* provider, Prefetcher* prefetcher, ReadAheadOptions options)
    : map_(map), provider_(provider), prefetcher_(prefetcher), options_(options), window_(options.initial_window) {}

uint64_t ReadAhead::window() const {
  std::lock_guard<std::mutex> lock(mu_);
  return window_;
}

uint64_t ReadAhead::prefetched_until() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prefetched_until_;
}

size_t ReadAhead::SlicesBetween(uint64_t from, uint64_t to) const {
  if (from >= to) return 0;
  // Extents, an upper bound on the slices among them.
  return map_->FindExtent(to - 1) - map_->FindExtent(from) + 1;
}

void ReadAhead::OnRead(uint64_t offset, uint64_t length) {
  const uint64_t size = map_->size();
  if (offset >= size) return;
  const uint64_t end = offset + std::min(length, size - offset);
  std::lock_guard<std::mutex> lock(mu_);
  const bool sequential = offset <= next_ + options_.sequential_slack && offset + options_.sequential_slack >= next_;
  if (!sequential) {
    // A jump: start over, prefetch nothing until the reader proves sequential.
    window_ = options_.initial_window;
    next_ = end;
    prefetched_until_ = end;
    grow_at_ = end + window_ / 2;
    streak_ = 0;
    return;
  }
  next_ = std::max(next_, end);
  // One read near the last one's end proves nothing: a random reader
  // lands there now and then (with 4 MiB of slack, 1 read in 140 on a
  // 1 GB image), and each time queued a window of slices it never read.
  // Two in a row after a jump (or from the start of a handle) do.
  if (++streak_ < options_.min_sequential_reads) {
    prefetched_until_ = std::max(prefetched_until_, next_);
    return;
  }
  if (next_ >= grow_at_ && prefetched_until_ > next_) {
    // The reader keeps consuming what was prefetched: widen the window.
    window_ = std::min(window_ * 2, options_.max_window);
    grow_at_ = next_ + window_ / 2;
  }
  if (prefetched_until_ < next_) prefetched_until_ = next_;
  const uint64_t target = std::min(size, next_ + window_);
  if (prefetched_until_ >= target) return;
  size_t ahead = SlicesBetween(next_, prefetched_until_);
  map_->ForEachPiece(prefetched_until_, target - prefetched_until_, [&](const ImagePiece& p) {
    // Counts pieces (literal or slice), a bound on the slices ahead that
    // matches SlicesBetween's extent count.
    if (ahead >= options_.max_slices_ahead) return false;
    uint64_t piece_end = p.image_offset + p.length;
    if (p.kind == ImageExtent::Kind::kSlice) {
      const SliceId& id = map_->index().slices()[p.slice];
      // A slice already open needs no worker woken for it (a warm cache
      // or a re-read: nothing to verify or download).
      if (!provider_->IsOpen(id) && prefetcher_->Enqueue(provider_, id) == Prefetcher::Outcome::kFull) return false;
      piece_end = p.image_offset - p.source_offset + id.size;  // the whole slice is queued
    }
    ++ahead;
    prefetched_until_ = std::max(prefetched_until_, piece_end);
    return true;
  });
}

}  // namespace jigdoofus
