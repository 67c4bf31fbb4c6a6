#include "core/fetch_context.h"

#include <iterator>

namespace jigdoofus {

std::chrono::steady_clock::time_point DeadlineIn(double seconds) {
  using Clock = std::chrono::steady_clock;
  // Past ~100 years (or not a number) means "no deadline": no overflow.
  if (!(seconds > 0)) return Clock::now();
  if (seconds > 3.0e9) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace jigdoofus

namespace jigdoofus {

void CancelSignal::Fire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fired_) return;
  fired_ = true;
  for (auto& wake : wakers_) wake();
}

bool CancelSignal::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

CancelSignal::Subscription CancelSignal::Subscribe(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fired_) wake();
  wakers_.push_back(std::move(wake));
  return Subscription(this, std::prev(wakers_.end()));
}

CancelSignal::Subscription::~Subscription() {
  if (signal_ == nullptr) return;
  std::lock_guard<std::mutex> lock(signal_->mu_);
  signal_->wakers_.erase(it_);
}

}  // namespace jigdoofus
