#include "fetch/mount/image_prefetch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace jigdoofus {

Status PrefetchImage(const OpenImage& image, const JobWorkers& jobs, double fetch_timeout_s,
                     std::shared_ptr<CancelSignal> cancel, std::shared_ptr<CancelSignal> abort,
                     const std::function<void(const JobProgress&)>& progress) {
  std::vector<SliceId> missing;
  JobProgress p;
  for (const SliceId& id : image.reader->index().slices()) {
    if (image.resolver->Available(id)) continue;
    missing.push_back(id);
    p.total_bytes += id.size;
  }
  std::mutex mu;
  Status first_error;
  std::atomic<size_t> next{0};
  if (progress) progress(p);
  auto stopped = [&] { return (cancel && cancel->fired()) || (abort && abort->fired()); };
  const auto allowed = [&] { return WorkersAllowed(jobs.budget.get(), jobs.base, jobs.ceiling); };
  // Worker `me` works while the budget allows it (it may shrink again),
  // and looks again now and then (the budget changes without telling).
  auto work = [&](size_t me) {
    for (;;) {
      while (me >= allowed()) {
        if (stopped() || next.load() >= missing.size()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      const size_t i = next.fetch_add(1);
      if (i >= missing.size() || stopped()) return;
      // Not cancelled once started (unless aborted): a slice being fetched
      // when the user stops is finished and kept, so nothing is fetched twice.
      FetchContext ctx;
      ctx.deadline = DeadlineIn(fetch_timeout_s);
      ctx.cancel = abort;
      auto got = image.resolver->Get(missing[i], ctx);
      std::lock_guard<std::mutex> lock(mu);
      if (got.ok()) {
        p.done_bytes += missing[i].size;
      } else if (!stopped()) {
        ++p.failed;
        p.last_error = got.status().message();
        if (first_error.ok()) first_error = got.status();
      }
      if (progress) progress(p);
    }
  };
  // The workers that may fetch now are started; this thread starts more
  // as the budget grows, until every slice is handed out.
  std::vector<std::thread> workers;
  const size_t most = std::clamp<size_t>(std::max(jobs.base, jobs.budget ? jobs.ceiling : 0), 1,
                                         std::max<size_t>(missing.size(), 1));
  for (;;) {
    while (workers.size() < std::min(most, allowed())) workers.emplace_back(work, workers.size());
    if (workers.size() >= most || next.load() >= missing.size() || stopped()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (std::thread& t : workers) t.join();
  if (stopped()) {
    return Status::Cancelled(image.name + ": prefetch stopped");
  }
  if (!first_error.ok()) {
    return first_error.WithContext(image.name + ": " + std::to_string(p.failed) + " slice(s) could not be got");
  }
  return Status::OK();
}

}  // namespace jigdoofus
