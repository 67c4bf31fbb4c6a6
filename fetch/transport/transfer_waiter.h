// TransferWaiter: where a transfer's end (on the downloader's I/O thread)
// meets the thread that waits for it. Shared by both sides through a
// shared_ptr, so a callback never outlives the state it writes.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "core/fetch_context.h"
#include "fetch/transport/downloader.h"

namespace jigdoofus {

struct TransferWaiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;      // GUARDED_BY(mu)
  DownloadResult result;  // GUARDED_BY(mu)

  // An on_done for the request: records the result and wakes the waiter.
  static std::function<void(const DownloadResult&)> OnDone(std::shared_ptr<TransferWaiter> w) {
    return [w = std::move(w)](const DownloadResult& r) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->result = r;
      w->done = true;
      w->cv.notify_all();
    };
  }
  // Wakes the waiter when `ctx` is cancelled, while the result lives.
  // REQUIRES: destroyed while `mu` is not held by the destroying thread.
  static CancelSignal::Subscription WakeOnCancel(const FetchContext& ctx, std::shared_ptr<TransferWaiter> w) {
    return ctx.OnCancel([w = std::move(w)] {
      std::lock_guard<std::mutex> lock(w->mu);
      w->cv.notify_all();
    });
  }
};

}  // namespace jigdoofus
