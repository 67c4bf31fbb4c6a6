#include "fetch/sources/slice_download.h"

#include "fetch/transport/transfer_waiter.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

namespace jigdoofus {

namespace {

// State shared between the storing thread and the downloader's I/O thread.
struct Transfer : TransferWaiter {
  std::vector<uint8_t> inbox;  // GUARDED_BY(mu) received, not yet stored
  bool paused = false;         // GUARDED_BY(mu) on_data refused bytes
};

}  // namespace

DownloadOutcome DownloadSlice(Downloader& downloader, const std::string& url, const SliceId& id, SliceSink& sink,
                              const FetchContext& ctx, const DownloadPace& pace) {
  const auto started = std::chrono::steady_clock::now();
  auto transfer = std::make_shared<Transfer>();
  DownloadRequest req;
  req.url = url;
  req.expected_size = id.size;
  req.urgent = ctx.foreground;
  req.on_data = [transfer](std::span<const uint8_t> bytes) {
    std::lock_guard<std::mutex> lock(transfer->mu);
    if (!transfer->inbox.empty() && transfer->inbox.size() + bytes.size() > kMaxInboxBytes) {
      transfer->paused = true;
      return DataAction::kPause;
    }
    transfer->inbox.insert(transfer->inbox.end(), bytes.begin(), bytes.end());
    transfer->cv.notify_all();
    return DataAction::kContinue;
  };
  req.on_done = TransferWaiter::OnDone(transfer);
  TransferHandle handle = downloader.Submit(std::move(req));
  auto wake = TransferWaiter::WakeOnCancel(ctx, transfer);

  // Store what arrives until the transfer ends.
  Status sink_error;
  bool gave_up = false;
  bool overtaken = false;
  uint64_t stored = 0;
  std::vector<uint8_t> batch;
  auto check_pace = [&] {
    if (!pace || overtaken || gave_up || !sink_error.ok()) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (pace(stored, seconds)) {
      overtaken = true;
      downloader.Cancel(handle);
    }
  };
  std::unique_lock<std::mutex> lock(transfer->mu);
  for (;;) {
    if (!gave_up && (ctx.cancelled() || ctx.expired())) {
      gave_up = true;
      downloader.Cancel(handle);  // on_done follows promptly
    }
    if (!transfer->inbox.empty()) {
      batch.swap(transfer->inbox);  // the inbox gets the emptied batch's capacity
      const bool resume = std::exchange(transfer->paused, false);
      lock.unlock();
      if (resume) downloader.Resume(handle);  // refill while we store
      if (sink_error.ok() && !gave_up && !overtaken) {
        sink_error = sink.Append(batch);
        stored += batch.size();
        if (!sink_error.ok()) downloader.Cancel(handle);
      }
      batch.clear();
      check_pace();
      lock.lock();
      continue;
    }
    if (transfer->done) break;
    auto until = gave_up ? std::chrono::steady_clock::time_point::max() : ctx.deadline;
    if (pace && !overtaken && !gave_up) until = std::min(until, std::chrono::steady_clock::now() + kPaceInterval);
    transfer->cv.wait_until(lock, until, [&] {
      return transfer->done || !transfer->inbox.empty() || (!gave_up && ctx.cancelled());
    });
    if (pace && !transfer->done && transfer->inbox.empty()) {
      lock.unlock();
      check_pace();
      lock.lock();
    }
  }
  const DownloadResult result = transfer->result;
  lock.unlock();

  DownloadOutcome out;
  out.bytes = result.bytes;
  if (gave_up) {
    out.kind = DownloadOutcome::Kind::kGaveUp;
    out.status = ctx.cancelled() ? Status::Cancelled("read interrupted while downloading " + url)
                                 : Status::TimedOut("gave up waiting for " + url);
    return out;
  }
  if (overtaken) {
    out.kind = DownloadOutcome::Kind::kOvertaken;
    out.status = Status::Unavailable("abandoned " + url + " after " + std::to_string(stored) + " bytes: " +
                                     "another server is expected to finish the slice sooner");
    return out;
  }
  if (!sink_error.ok()) {
    out.kind = sink_error.IsCorruption() ? DownloadOutcome::Kind::kServerFailed : DownloadOutcome::Kind::kSinkFailed;
    out.server = sink_error.IsCorruption() ? FetchError::kTooLong : FetchError::kOk;
    out.status = sink_error.WithContext(url);
    return out;
  }
  if (!result.ok()) {
    out.kind = DownloadOutcome::Kind::kServerFailed;
    out.server = result.error;
    out.status = FetchErrorToStatus(result.error, result.message);
    return out;
  }
  auto slice = sink.Finish();
  if (!slice.ok()) {
    const bool bad_bytes = slice.status().IsCorruption();
    out.kind = bad_bytes ? DownloadOutcome::Kind::kBadChecksum : DownloadOutcome::Kind::kSinkFailed;
    out.server = bad_bytes ? FetchError::kBadChecksum : FetchError::kOk;
    out.status = slice.status().WithContext(url);
    return out;
  }
  out.kind = DownloadOutcome::Kind::kStored;
  out.slice = std::move(slice).value();
  return out;
}

}  // namespace jigdoofus
