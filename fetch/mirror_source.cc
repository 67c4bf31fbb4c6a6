#include "fetch/mirror_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include "core/uri.h"
#include "fetch/server_url.h"

namespace jigdoofus {

namespace {

bool IsNetworkScheme(const std::string& scheme) {
  return scheme == "http" || scheme == "https" || scheme == "ftp";
}

std::string WithTrailingSlash(std::string url) {
  if (!url.empty() && url.back() != '/') url.push_back('/');
  return url;
}

// How long to wait for another process that is writing the same slice.
constexpr auto kMaxWaitForOtherWriter = std::chrono::seconds(30);

std::string SliceName(const SliceId& id) {
  return id.digest.ToBase64() + " (" + std::to_string(id.size) + " bytes)";
}

// Bytes received but not yet stored, per transfer: past this, the
// transfer is paused until the storing thread catches up. Two of these per
// running download at most (the inbox and the batch being stored).
// 1 MiB reads as fast as 4 MiB did (cold read of the 1 GB bench image from
// nginx on 127.0.0.1: 3.06-3.30 s against 3.09-3.34 s) and holds less.
constexpr size_t kMaxInboxBytes = size_t{1} << 20;

// State shared between the storing thread (the one in DownloadOne) and the
// downloader's I/O thread. The I/O thread only queues bytes: hashing and
// LMDB writes (whose commits wait for the disk) happen on the storing
// thread, so they never hold up the other transfers.
struct Transfer {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;               // GUARDED_BY(mu)
  DownloadResult result;           // GUARDED_BY(mu)
  std::vector<uint8_t> inbox;      // GUARDED_BY(mu) received, not yet stored
  bool paused = false;             // GUARDED_BY(mu) on_data refused bytes
};

}  // namespace

std::string UrlServerKey(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  size_t path_start = url.find('/', scheme_end + 3);
  return url.substr(0, path_start);
}

MirrorSource::MirrorSource(Downloader* downloader, ChunkStore* store, MirrorSourceOptions options)
    : downloader_(downloader), store_(store), options_(std::move(options)) {}

std::vector<MirrorSource::Candidate> MirrorSource::Candidates(const SliceRequest& request) const {
  std::vector<Candidate> out;
  auto add = [&out](std::string url, bool try_last) {
    for (const Candidate& c : out) {
      if (c.url == url) return;
    }
    out.push_back(Candidate{std::move(url), try_last});
  };
  for (const auto& [label, prefix] : options_.mirrors) {
    for (const SliceLocation& loc : request.locations) {
      if (loc.label == label) add(ServerFileUrl(WithTrailingSlash(prefix), loc.path), false);
    }
  }
  for (const SliceLocation& loc : request.locations) {
    if (!loc.label.empty()) continue;
    std::string url;
    if (loc.url_prefix_len != std::string::npos && loc.url_prefix_len <= loc.path.size()) {
      // A [Servers] URL (as written, maybe relative) + a file path to encode.
      std::string prefix = ResolveReference(loc.base, loc.path.substr(0, loc.url_prefix_len));
      url = prefix + PercentEncodePath(loc.path.substr(loc.url_prefix_len));
    } else {
      url = ResolveReference(loc.base, loc.path);
    }
    if (!IsNetworkScheme(UriScheme(url))) continue;  // file: and local paths: LocalTreeSource
    add(std::move(url), loc.try_last);
  }
  std::stable_partition(out.begin(), out.end(), [](const Candidate& c) { return !c.try_last; });
  return out;
}

std::vector<std::string> MirrorSource::CandidateUrls(const SliceRequest& request) const {
  std::vector<std::string> urls;
  for (Candidate& c : Candidates(request)) urls.push_back(std::move(c.url));
  return urls;
}

bool MirrorSource::InBackoff(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = health_.find(UrlServerKey(url));
  return it != health_.end() && std::chrono::steady_clock::now() < it->second.retry_after;
}

void MirrorSource::NoteResult(const std::string& url, FetchError error) {
  std::lock_guard<std::mutex> lock(mu_);
  Health& h = health_[UrlServerKey(url)];
  if (error == FetchError::kOk) {
    h = Health{};
    return;
  }
  // A 404 says nothing about the server's health; everything else does.
  if (error == FetchError::kNotFound || error == FetchError::kCancelled) return;
  h.consecutive_failures = std::min(h.consecutive_failures + 1, 16);
  auto backoff = options_.base_backoff * (1 << std::min(h.consecutive_failures - 1, 10));
  h.retry_after = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(backoff, options_.max_backoff);
}

Status MirrorSource::DownloadOne(const SliceRequest& request, const std::string& url, const FetchContext& ctx,
                                 FetchError* error) {
  *error = FetchError::kInternal;
  auto writer = store_->BeginSlice(request.id);
  if (!writer.ok()) {
    if (writer.status().code() == Status::Code::kInvalidArgument) {
      *error = FetchError::kCancelled;  // not the server's fault
      return Status::Unavailable(writer.status().message() + "; raise --cache-size to read this slice");
    }
    return writer.status();  // kUnavailable: being written elsewhere; caller waits
  }
  std::unique_ptr<ChunkStore::Writer> owned = std::move(writer).value();
  auto transfer = std::make_shared<Transfer>();

  DownloadRequest req;
  req.url = url;
  req.expected_size = request.id.size;
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
  req.on_done = [transfer](const DownloadResult& result) {
    std::lock_guard<std::mutex> lock(transfer->mu);
    transfer->result = result;
    transfer->done = true;
    transfer->cv.notify_all();
  };
  TransferHandle handle = downloader_->Submit(std::move(req));

  // Store what arrives until the transfer ends; the writer never leaves
  // this thread (so it never outlives this call).
  Status append_error;
  std::vector<uint8_t> batch;
  std::unique_lock<std::mutex> lock(transfer->mu);
  bool gave_up = false;
  for (;;) {
    if (!gave_up && (ctx.cancelled() || ctx.expired())) {
      gave_up = true;
      downloader_->Cancel(handle);  // on_done follows promptly
    }
    if (!transfer->inbox.empty()) {
      batch.swap(transfer->inbox);  // the inbox gets the emptied batch's capacity
      const bool resume = transfer->paused;
      transfer->paused = false;
      lock.unlock();
      if (resume) downloader_->Resume(handle);  // refill while we store
      if (append_error.ok() && !gave_up) {
        append_error = owned->Append(batch);
        if (!append_error.ok()) downloader_->Cancel(handle);
      }
      batch.clear();
      lock.lock();
      continue;
    }
    if (transfer->done) break;
    transfer->cv.wait_for(lock, std::chrono::milliseconds(100));
  }
  DownloadResult result = transfer->result;
  lock.unlock();

  if (!append_error.ok()) {
    *error = FetchError::kInternal;
    return append_error.WithContext(url);
  }
  if (!result.ok()) {
    *error = result.error;
    if (gave_up) {
      return ctx.cancelled() ? Status::Cancelled("read interrupted while downloading " + url)
                             : Status::TimedOut("gave up waiting for " + url);
    }
    return FetchErrorToStatus(result.error, result.message);
  }
  stats_.bytes_downloaded += result.bytes;
  Status st = owned->Commit();
  if (!st.ok()) {
    *error = st.IsCorruption() ? FetchError::kBadChecksum : FetchError::kInternal;
    return st.WithContext(url);
  }
  *error = FetchError::kOk;
  return Status::OK();
}

Result<std::shared_ptr<const VerifiedSlice>> MirrorSource::Open(const SliceRequest& request,
                                                                const FetchContext& ctx) {
  auto cached = store_->Get(request.id);
  if (cached.ok()) {
    ++stats_.cache_hits;
    return cached;
  }
  if (!cached.status().IsNotFound()) return cached.status();
  if (options_.offline || downloader_ == nullptr) {
    ++stats_.offline_misses;
    return Status::Unavailable("offline: slice " + SliceName(request.id) + " is not in the cache");
  }

  std::vector<Candidate> candidates = Candidates(request);
  if (candidates.empty()) return Status::NotFound("no server known for slice " + SliceName(request.id));
  // Servers in back-off go behind the others (tried later, never dropped).
  std::stable_partition(candidates.begin(), candidates.end(),
                        [this](const Candidate& c) { return !InBackoff(c.url); });

  std::string failures;
  int failed = 0;
  for (const Candidate& c : candidates) {
    if (ctx.cancelled()) return Status::Cancelled("read interrupted");
    if (ctx.expired()) return Status::TimedOut("gave up on slice " + SliceName(request.id) + " after: " + failures);
    FetchError error;
    Status st = DownloadOne(request, c.url, ctx, &error);
    if (st.code() == Status::Code::kUnavailable && error == FetchError::kInternal) {
      // Another process is writing this slice into the shared cache, or
      // the cache has no room now (the rest is pinned by reads or taken by
      // writers in progress): wait, boundedly, for the slice to appear or
      // for room to write it.
      const auto give_up = std::min(ctx.deadline, std::chrono::steady_clock::now() + kMaxWaitForOtherWriter);
      while (st.code() == Status::Code::kUnavailable && error == FetchError::kInternal) {
        if (ctx.cancelled()) return Status::Cancelled("read interrupted: " + st.message());
        if (std::chrono::steady_clock::now() >= give_up) return Status::TimedOut(st.message());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto again = store_->Get(request.id);
        if (again.ok()) return again;
        st = DownloadOne(request, c.url, ctx, &error);
      }
    }
    if (st.ok()) {
      NoteResult(c.url, FetchError::kOk);
      ++stats_.downloads_ok;
      return store_->Get(request.id);
    }
    // This read gave up (interrupted, or its deadline passed). A server's
    // own timeout (a stall cut by the low-speed limit) is its fault: next.
    if ((st.code() == Status::Code::kCancelled || st.code() == Status::Code::kTimedOut) &&
        (ctx.cancelled() || ctx.expired())) {
      return st;
    }
    NoteResult(c.url, error);
    ++stats_.downloads_failed;
    if (error == FetchError::kBadChecksum) ++stats_.bad_checksum;
    spdlog::info("mirror: {}", st.message());
    if (failed++ < 3) failures += (failures.empty() ? "" : "; ") + st.message();
    if (error == FetchError::kCancelled) return st;  // too large for the cache: no server helps
  }
  if (failed > 3) failures += "; and " + std::to_string(failed - 3) + " more";
  return Status::Unavailable("every server failed for slice " + SliceName(request.id) + ": " + failures);
}

}  // namespace jigdoofus
