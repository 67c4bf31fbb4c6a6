// FetchToString / FetchToFile (declared in fetch/transport/downloader.h): a blocking
// wait on one Downloader transfer, with deadline and interruption.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "fetch/transport/downloader.h"
#include "fetch/transport/transfer_waiter.h"
#include "core/unique_fd.h"

namespace jigdoofus {
namespace {


// Submits `request` (its on_done is replaced) and waits for the outcome.
// On deadline or interruption, cancels and still waits for on_done (which
// then comes promptly), so callbacks never outlive the caller's state.
Status RunAndWait(Downloader& downloader, DownloadRequest request, const FetchContext& ctx) {
  auto w = std::make_shared<TransferWaiter>();
  const std::string url = request.url;
  request.on_done = TransferWaiter::OnDone(w);
  TransferHandle h = downloader.Submit(std::move(request));
  Status gave_up;
  {
    auto wake = TransferWaiter::WakeOnCancel(ctx, w);
    std::unique_lock<std::mutex> lock(w->mu);
    w->cv.wait_until(lock, ctx.deadline, [&] { return w->done || ctx.cancelled(); });
    if (!w->done) {
      gave_up = ctx.cancelled() ? Status::Cancelled(url + ": interrupted")
                                : Status::TimedOut(url + ": no answer before the deadline");
    }
  }
  if (!gave_up.ok()) {
    downloader.Cancel(h);
    std::unique_lock<std::mutex> lock(w->mu);
    w->cv.wait(lock, [&] { return w->done; });
    // It may have finished on its own meanwhile; then its result stands.
    if (w->result.error == FetchError::kCancelled) return gave_up;
  }
  std::lock_guard<std::mutex> lock(w->mu);
  if (w->result.ok()) return Status::OK();
  return FetchErrorToStatus(w->result.error, w->result.message);
}

}  // namespace

Result<std::string> FetchToString(Downloader& downloader, const std::string& url, uint64_t max_size,
                                  const FetchContext& ctx) {
  // Written only on the I/O thread, read only after on_done (the Waiter's
  // mutex orders the two).
  auto body = std::make_shared<std::string>();
  DownloadRequest req;
  req.url = url;
  req.max_size = max_size;
  req.on_data = [body](std::span<const uint8_t> d) {
    body->append(reinterpret_cast<const char*>(d.data()), d.size());
    return DataAction::kContinue;
  };
  JIGDOOFUS_RETURN_IF_ERROR(RunAndWait(downloader, std::move(req), ctx));
  return std::move(*body);
}

Result<uint64_t> FetchToFile(Downloader& downloader, const std::string& url, const std::string& path,
                             uint64_t max_size, const FetchContext& ctx) {
  const std::string part = path + ".part";
  // A fresh private file: never through a symlink or into a file someone
  // else prepared (a stale .part of ours is removed first).
  if (::unlink(part.c_str()) != 0 && errno != ENOENT) return Status::FromErrno(part + ": cannot remove", errno);
  UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::FromErrno(part + ": cannot create", errno);
  struct Sink {
    int fd;
    uint64_t written = 0;
    int write_errno = 0;  // set on the I/O thread, read after on_done
  };
  auto sink = std::make_shared<Sink>(Sink{fd.get()});
  DownloadRequest req;
  req.url = url;
  req.max_size = max_size;
  req.on_data = [sink](std::span<const uint8_t> d) {
    while (!d.empty()) {
      ssize_t n = ::write(sink->fd, d.data(), d.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        sink->write_errno = n < 0 ? errno : EIO;
        return DataAction::kAbort;
      }
      d = d.subspan(static_cast<size_t>(n));
      sink->written += static_cast<uint64_t>(n);
    }
    return DataAction::kContinue;
  };
  Status st = RunAndWait(downloader, std::move(req), ctx);
  if (sink->write_errno != 0) st = Status::FromErrno(part + ": write failed", sink->write_errno);
  if (st.ok() && ::close(fd.release()) != 0) st = Status::FromErrno(part + ": close failed", errno);
  if (st.ok() && ::rename(part.c_str(), path.c_str()) != 0) {
    st = Status::FromErrno(path + ": cannot rename " + part + " to it", errno);
  }
  if (!st.ok()) {
    fd.reset();
    ::unlink(part.c_str());
    return st;
  }
  return sink->written;
}

}  // namespace jigdoofus
