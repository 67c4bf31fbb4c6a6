// FetchContext: the limits of one request for bytes: when to give up, and
// whether the caller still cares (a FUSE read that was interrupted, a
// process shutting down). Both are optional. A value type, copied freely.
//
// CancelSignal wakes waiters instead of making them poll: a wait
// subscribes a wake-up (OnCancel) and waits on its own condition variable
// until its condition, its deadline or the signal.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <utility>

namespace jigdoofus {

class CancelSignal {
 public:
  // Marks the signal fired and runs every subscribed wake-up once.
  void Fire();
  bool fired() const;

  // Runs `wake` when the signal fires (at once if it already has) until the
  // subscription is destroyed. The destructor waits for a running wake-up.
  // REQUIRES: `wake` takes no lock the subscriber holds while destroying
  // the subscription.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& o) noexcept : signal_(std::exchange(o.signal_, nullptr)), it_(o.it_) {}
    Subscription& operator=(Subscription&&) = delete;
    ~Subscription();

   private:
    friend class CancelSignal;
    Subscription(CancelSignal* s, std::list<std::function<void()>>::iterator it) : signal_(s), it_(it) {}
    CancelSignal* signal_ = nullptr;
    std::list<std::function<void()>>::iterator it_;
  };
  Subscription Subscribe(std::function<void()> wake);

 private:
  mutable std::mutex mu_;
  bool fired_ = false;                       // GUARDED_BY(mu_)
  std::list<std::function<void()>> wakers_;  // GUARDED_BY(mu_)
};

struct FetchContext {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::shared_ptr<CancelSignal> cancel;  // may be null: nobody cancels
  // A reader is blocked on this request (a FUSE read, jigdoofus-cat): its
  // downloads start before queued read-ahead and prefetch ones.
  bool foreground = false;
  // Set when a reader starts to wait on this request after it began as
  // read-ahead (SliceResolver: a foreground request joined its fetch).
  // May be null: nobody will join.
  std::shared_ptr<std::atomic<bool>> reader_waits;
  // A reader waits on it now.
  bool urgent() const { return foreground || (reader_waits && reader_waits->load(std::memory_order_relaxed)); }
  bool expired() const { return std::chrono::steady_clock::now() >= deadline; }
  bool cancelled() const { return cancel && cancel->fired(); }
  // Runs `wake` when this request is cancelled (see CancelSignal).
  CancelSignal::Subscription OnCancel(std::function<void()> wake) const {
    return cancel ? cancel->Subscribe(std::move(wake)) : CancelSignal::Subscription();
  }
};

// A deadline `seconds` from now (time_point::max() for a huge value: no
// deadline; now for a non-positive one).
std::chrono::steady_clock::time_point DeadlineIn(double seconds);

}  // namespace jigdoofus
