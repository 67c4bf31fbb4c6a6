#include "fetch/sources/slice_fetch.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

namespace jigdoofus {

namespace {

// What a lane's callbacks (on the downloader's I/O thread) leave for the
// fetching thread.
struct LaneBox {
  std::vector<uint8_t> inbox;  // received, not yet taken
  bool paused = false;         // on_data refused bytes
  bool done = false;
  DownloadResult result;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<LaneBox> lanes;  // GUARDED_BY(mu); stable addresses
  bool news = false;          // GUARDED_BY(mu) something arrived since the last look
};

// The fetching thread's own view of a lane.
struct LaneState {
  std::string url;
  TransferHandle handle;
  std::unique_ptr<LaneObserver::Lane> record;
  bool superseded = false;
  bool ended = false;
};

}  // namespace

DownloadOutcome FetchSlice(Downloader& downloader, const std::vector<SliceFetchServer>& servers, const SliceId& id,
                           SliceSink& sink, const FetchContext& ctx, LaneObserver& observer,
                           const PiecePlanOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto now = [t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<PieceServer> plan_servers;
  std::vector<std::string> urls;
  for (const SliceFetchServer& s : servers) {
    plan_servers.push_back(s.plan);
    urls.push_back(s.url);
  }
  PiecePlan plan(id.size, std::move(plan_servers), options);
  auto shared = std::make_shared<Shared>();
  auto wake = ctx.OnCancel([shared] {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->cv.notify_all();
  });

  DownloadOutcome out;
  out.pieces = plan.pieces();
  std::vector<LaneState> lanes;
  bool gave_up = false;
  Status sink_error;
  std::string failures;
  int failed = 0;

  auto cancel_running = [&] {
    for (LaneState& l : lanes) {
      if (!l.ended) downloader.Cancel(l.handle);
    }
  };
  auto start = [&](const PiecePlan::Work& w, double at) {
    const PiecePlan::LaneId lane = plan.Start(w, at);
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->lanes.emplace_back();
    }
    DownloadRequest req;
    req.url = urls[w.server];
    req.expected_size = w.end - w.begin;
    if (w.ranged) req.range = DownloadRequest::ByteRange{w.begin, w.end, id.size};
    req.urgent = ctx.urgent();
    req.on_data = [shared, lane](std::span<const uint8_t> bytes) {
      std::lock_guard<std::mutex> lock(shared->mu);
      LaneBox& box = shared->lanes[lane];
      if (!box.inbox.empty() && box.inbox.size() + bytes.size() > kMaxInboxBytes) {
        box.paused = true;
        return DataAction::kPause;
      }
      box.inbox.insert(box.inbox.end(), bytes.begin(), bytes.end());
      shared->news = true;
      shared->cv.notify_all();
      return DataAction::kContinue;
    };
    req.on_done = [shared, lane](const DownloadResult& r) {
      std::lock_guard<std::mutex> lock(shared->mu);
      LaneBox& box = shared->lanes[lane];
      box.result = r;
      box.done = true;
      shared->news = true;
      shared->cv.notify_all();
    };
    LaneState state;
    state.url = urls[w.server];
    state.record = observer.Began(state.url, w.end - w.begin);
    lanes.push_back(std::move(state));
    lanes.back().handle = downloader.Submit(std::move(req));  // may end at once: the box is there
  };

  // Lanes whose piece another lane completed, or that a new lane took
  // over (stalled): cancelled now.
  auto cancel_superseded = [&] {
    for (PiecePlan::LaneId i : plan.TakeSuperseded()) {
      if (!lanes[i].ended && !lanes[i].superseded) {
        lanes[i].superseded = true;
        downloader.Cancel(lanes[i].handle);
      }
    }
  };

  double last_plan = -1;
  bool replan = true;
  std::vector<uint8_t> ready;
  struct Arrived {
    PiecePlan::LaneId lane;
    std::vector<uint8_t> bytes;
    bool resume = false;
    bool done = false;
    DownloadResult result;
  };
  std::vector<Arrived> arrived;
  for (;;) {
    if (!gave_up && (ctx.cancelled() || ctx.expired())) {
      gave_up = true;
      cancel_running();
    }
    const bool finishing = gave_up || !sink_error.ok() || plan.Complete();
    if (!plan.urgent() && ctx.urgent()) {
      // A reader joined this read-ahead fetch: it may take more lanes now.
      plan.SetUrgent(true);
      replan = true;
    }
    if (!finishing && (replan || now() - last_plan >= std::chrono::duration<double>(kPlanInterval).count())) {
      const double at = now();
      const PiecePlan::Estimator estimate = observer.Estimates(urls);
      for (size_t s = 0; s < servers.size(); ++s) {
        if (auto w = plan.Next(s, at, estimate)) start(*w, at);
      }
      plan.ShedStalled(at, estimate);
      cancel_superseded();
      last_plan = at;
      replan = false;
      if (plan.Stuck(at, estimate)) break;
    }
    if (finishing && std::all_of(lanes.begin(), lanes.end(), [](const LaneState& l) { return l.ended; })) break;

    // Wait for bytes, an end, the cancellation, the deadline or the next look.
    arrived.clear();
    {
      std::unique_lock<std::mutex> lock(shared->mu);
      auto until = std::chrono::steady_clock::now() + kPlanInterval;
      if (!gave_up) until = std::min(until, ctx.deadline);
      shared->cv.wait_until(lock, until, [&] { return shared->news || (!gave_up && ctx.cancelled()); });
      shared->news = false;
      for (PiecePlan::LaneId i = 0; i < lanes.size(); ++i) {
        LaneBox& box = shared->lanes[i];
        if (lanes[i].ended || (box.inbox.empty() && !box.done)) continue;
        Arrived a;
        a.lane = i;
        a.bytes.swap(box.inbox);
        a.resume = std::exchange(box.paused, false);
        a.done = box.done;
        a.result = box.result;
        arrived.push_back(std::move(a));
      }
    }
    const double at = now();
    auto store = [&](std::span<const uint8_t> bytes) {
      if (bytes.empty() || !sink_error.ok() || gave_up) return;
      sink_error = sink.Append(bytes);
      if (!sink_error.ok()) cancel_running();
    };
    for (Arrived& a : arrived) {
      LaneState& l = lanes[a.lane];
      if (!a.bytes.empty()) {
        l.record->Bytes(a.bytes.size());
        out.bytes += a.bytes.size();
        // What is next in slice order goes to the sink at once, uncopied.
        store(plan.Deliver(a.lane, a.bytes, at));
      }
      if (a.resume && !a.done) downloader.Resume(l.handle);
    }
    ready.clear();
    plan.TakeReady(&ready);
    store(ready);
    cancel_superseded();
    for (Arrived& a : arrived) {
      if (!a.done) continue;
      LaneState& l = lanes[a.lane];
      l.ended = true;
      replan = true;
      LaneObserver::End end;
      const FetchError error = a.result.error;
      if (l.superseded) {
        end = plan.stalled(a.lane) ? LaneObserver::End::kStalled : LaneObserver::End::kSuperseded;
      } else if (a.result.ok()) {
        end = LaneObserver::End::kDone;
      } else if (error == FetchError::kCancelled) {
        end = LaneObserver::End::kGaveUp;
      } else {
        end = LaneObserver::End::kFailed;
      }
      plan.Ended(a.lane, end == LaneObserver::End::kFailed, error == FetchError::kNoRange);
      if (end == LaneObserver::End::kFailed) {
        out.server = error;
        out.range_refused |= error == FetchError::kNoRange;
        if (failed++ < 3) failures += (failures.empty() ? "" : "; ") + a.result.message;
      }
      observer.Ended(std::move(l.record), l.url, end, error, a.result.message);
    }
    if (plan.Complete()) cancel_running();  // what still runs raced and lost
  }

  out.hedges = plan.hedges();
  for (size_t s = 0; s < servers.size(); ++s) {
    if (plan.contributed(s)) out.contributors.push_back(s);
  }
  if (gave_up) {
    out.kind = DownloadOutcome::Kind::kGaveUp;
    out.status = ctx.cancelled() ? Status::Cancelled("read interrupted while downloading " + urls.front())
                                 : Status::TimedOut("gave up waiting for " + urls.front());
    return out;
  }
  if (!sink_error.ok()) {
    out.kind = sink_error.IsCorruption() ? DownloadOutcome::Kind::kServerFailed : DownloadOutcome::Kind::kSinkFailed;
    out.status = sink_error;
    return out;
  }
  if (!plan.Complete()) {
    if (failed > 3) failures += "; and " + std::to_string(failed - 3) + " more";
    out.kind = DownloadOutcome::Kind::kServerFailed;
    out.status = FetchErrorToStatus(out.server == FetchError::kOk ? FetchError::kNetwork : out.server,
                                    failures.empty() ? "no server could be used" : failures);
    return out;
  }
  auto slice = sink.Finish();
  if (!slice.ok()) {
    const bool bad_bytes = slice.status().IsCorruption();
    out.kind = bad_bytes ? DownloadOutcome::Kind::kBadChecksum : DownloadOutcome::Kind::kSinkFailed;
    if (bad_bytes) out.server = FetchError::kBadChecksum;
    std::string from;
    for (size_t s : out.contributors) from += (from.empty() ? "" : ", ") + urls[s];
    out.status = slice.status().WithContext(from.empty() ? urls.front() : from);
    return out;
  }
  out.kind = DownloadOutcome::Kind::kStored;
  out.slice = std::move(slice).value();
  return out;
}

}  // namespace jigdoofus
