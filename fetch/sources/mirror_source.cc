#include "fetch/sources/mirror_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/uri.h"
#include "fetch/sources/safe_path.h"
#include "fetch/transport/server_url.h"

namespace jigdoofus {

namespace {

std::string WithTrailingSlash(std::string url) {
  if (!url.empty() && url.back() != '/') url.push_back('/');
  return url;
}

std::string SliceName(const SliceId& id) {
  return id.digest.ToBase64() + " (" + std::to_string(id.size) + " bytes)";
}

// Admission is asked again after waiting for another writer at most this
// often per candidate (the other writer may fail, and the next one win).
constexpr int kAdmissionRounds = 4;

// A download is never abandoned for a faster server before this.
constexpr double kPaceMinSeconds = 1.0;
// ... nor unless what it has left would take this many times longer than
// the whole slice from the other server (plus a second).
constexpr double kOvertakeFactor = 1.5;

// --mirror servers come before every server of the .jigdo, whatever its
// --try-first weight.
constexpr double kCommandLineWeight = 1e9;

}  // namespace


MirrorSource::MirrorSource(Downloader* downloader, ChunkStore* store, MirrorSourceOptions options)
    : downloader_(downloader),
      store_(store),
      options_(std::move(options)),
      memory_(std::make_shared<MemoryBudget>(options_.memory_budget)),
      scores_(options_.scores_path) {}

std::vector<MirrorSource::Candidate> MirrorSource::Candidates(const SliceRequest& request) const {
  std::vector<Candidate> out;
  auto add = [&out](std::string url, double weight, bool listed = false) {
    for (const Candidate& c : out) {
      if (c.url == url) return;
    }
    out.push_back(Candidate{std::move(url), weight, listed});
  };
  for (const auto& [label, prefix] : options_.mirrors) {
    for (const SliceLocation& loc : request.locations) {
      // A path with '..' would leave the mirror's prefix (the server
      // resolves it): the .jigdo may come from anyone.
      if (loc.label == label && IsNetworkUrl(prefix) && IsSafeRelativePath(loc.path)) {
        add(ServerFileUrl(WithTrailingSlash(prefix), loc.path), kCommandLineWeight);
      }
    }
  }
  for (const SliceLocation& loc : request.locations) {
    if (!loc.label.empty()) continue;
    std::string url;
    if (loc.url_prefix_len != std::string::npos && loc.url_prefix_len <= loc.path.size()) {
      // A [Servers] URL (as written, maybe relative) + a file path to
      // encode, which must stay below that URL.
      if (!IsSafeRelativePath(loc.path.substr(loc.url_prefix_len))) continue;
      std::string prefix = ResolveReference(loc.base, loc.path.substr(0, loc.url_prefix_len));
      url = prefix + PercentEncodePath(loc.path.substr(loc.url_prefix_len));
    } else {
      url = ResolveReference(loc.base, loc.path);
    }
    if (!IsNetworkUrl(url)) continue;  // file: and local paths: LocalTreeSource
    add(std::move(url), loc.weight);
  }
  for (const auto& [label, prefix] : options_.listed) {
    for (const SliceLocation& loc : request.locations) {
      if (loc.label == label && IsNetworkUrl(prefix) && IsSafeRelativePath(loc.path)) {
        add(ServerFileUrl(WithTrailingSlash(prefix), loc.path), 0.0, true);
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.weight > b.weight; });
  return out;
}

std::vector<std::string> MirrorSource::CandidateUrls(const SliceRequest& request) const {
  std::vector<std::string> urls;
  for (Candidate& c : Candidates(request)) urls.push_back(std::move(c.url));
  return urls;
}

bool MirrorSource::InBackoff(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = health_.find(ServerKey(url));
  return it != health_.end() && std::chrono::steady_clock::now() < it->second.retry_after;
}

void MirrorSource::NoteServer(const std::string& url, FetchError error) {
  std::lock_guard<std::mutex> lock(mu_);
  Health& h = health_[ServerKey(url)];
  if (error == FetchError::kOk) {
    h = Health{};
    return;
  }
  if (!ShouldRetryServerLater(error)) return;  // says nothing about the server's health
  h.consecutive_failures = std::min(h.consecutive_failures + 1, 16);
  auto backoff = options_.base_backoff * (1 << std::min(h.consecutive_failures - 1, 10));
  h.retry_after = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(backoff, options_.max_backoff);
}

std::shared_ptr<const VerifiedSlice> MirrorSource::FindInMemory(const SliceId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = in_memory_.begin(); it != in_memory_.end(); ++it) {
    if ((*it)->id() == id) {
      in_memory_.splice(in_memory_.begin(), in_memory_, it);
      return in_memory_.front();
    }
  }
  return nullptr;
}

bool MirrorSource::DropOldestInMemory() {
  std::shared_ptr<const VerifiedSlice> oldest;  // released after the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (in_memory_.empty()) return false;
  oldest = std::move(in_memory_.back());
  in_memory_.pop_back();
  return true;
}

void MirrorSource::KeepInMemory(std::shared_ptr<const VerifiedSlice> slice) {
  std::lock_guard<std::mutex> lock(mu_);
  in_memory_.push_front(std::move(slice));
}

DownloadOutcome MirrorSource::Download(const SliceRequest& request, const std::string& url, SliceSink& sink,
                                       const FetchContext& ctx, const DownloadPace& pace) {
  const std::string server = ServerKey(url);
  auto transfer = transfers_.Begin(url, request.id.size);
  CountingSink counted(&sink, transfer);
  scores_.Began(server);
  const uint64_t server_bytes_before = transfers_.ServerBytes(server);
  DownloadOutcome out = DownloadSlice(*downloader_, url, request.id, counted, ctx, pace);
  const TransferLog::Transfer::Timing t = transfer->Times();
  // What the server sent to all of this mount's downloads meanwhile.
  const double span = t.ttfb_s + t.body_s;
  const double server_bps =
      span > 0 ? static_cast<double>(transfers_.ServerBytes(server) - server_bytes_before) / span : 0.0;
  scores_.Ended(server, out.kind == DownloadOutcome::Kind::kStored, t.bytes, t.ttfb_s, t.body_s, server_bps);
  return out;
}

DownloadPace MirrorSource::PaceAgainst(const std::vector<Candidate>& candidates, size_t current, uint64_t size) {
  // The later candidates on other servers; the best of them is looked up
  // at each check, as servers get measured while this download runs.
  const std::string server = ServerKey(candidates[current].url);
  std::vector<std::pair<std::string, std::string>> others;  // (server, url)
  for (size_t i = current + 1; i < candidates.size(); ++i) {
    std::string other = ServerKey(candidates[i].url);
    if (other != server) others.emplace_back(std::move(other), candidates[i].url);
  }
  if (others.empty()) return nullptr;
  return [this, others = std::move(others), size](uint64_t bytes, double seconds) {
    if (seconds < kPaceMinSeconds) return false;
    double best = -1;
    const ServerScores::Backlog backlog = transfers_.Backlog();
    for (const auto& [other, url] : others) {
      if (InBackoff(url)) continue;
      const ServerScore score = scores_.Get(other);
      if (score.samples == 0 || score.per_connection_bps <= 0) continue;  // a guess is no reason to give up
      const double t = scores_.ExpectedSeconds(other, size, backlog);
      if (best < 0 || t < best) best = t;
    }
    if (best < 0) return false;
    // Abandon when what is left would take more than one and a half times
    // what the other server needs for the whole slice, plus a second (not
    // for noise).
    const double left = bytes == 0 ? 1e9 : static_cast<double>(size - std::min(bytes, size)) * seconds /
                                               static_cast<double>(bytes);
    return left > kOvertakeFactor * best + 1.0;
  };
}

void MirrorSource::OrderByScores(std::vector<Candidate>* candidates, uint64_t size) {
  // Within each run of equal weight, the server expected to be done first.
  const ServerScores::Backlog backlog = transfers_.Backlog();
  for (size_t begin = 0; begin < candidates->size();) {
    size_t end = begin + 1;
    while (end < candidates->size() && (*candidates)[end].weight == (*candidates)[begin].weight) ++end;
    if (end - begin > 1) {
      std::vector<std::string> servers;
      for (size_t i = begin; i < end; ++i) servers.push_back(ServerKey((*candidates)[i].url));
      const std::vector<size_t> order = scores_.Order(servers, size, backlog);
      std::vector<Candidate> run;
      for (size_t i : order) run.push_back(std::move((*candidates)[begin + i]));
      std::move(run.begin(), run.end(), candidates->begin() + static_cast<std::ptrdiff_t>(begin));
    }
    begin = end;
  }
}

TransferSnapshot MirrorSource::Transfers() const { return transfers_.Snapshot(); }

std::vector<std::pair<std::string, double>> MirrorSource::ServersInBackoff() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [server, h] : health_) {
    if (h.retry_after > now) out.emplace_back(server, std::chrono::duration<double>(h.retry_after - now).count());
  }
  return out;
}

DownloadOutcome MirrorSource::FetchIntoMemory(const SliceRequest& request, const std::string& url,
                                              const FetchContext& ctx, const DownloadPace& pace) {
  MemorySink sink(request.id, memory_);
  // Make room by letting go of the oldest slices kept in memory (their
  // bytes return to the budget once no reader holds them).
  while (!sink.Reserve() && DropOldestInMemory()) {
  }
  if (!sink.Reserve()) {
    DownloadOutcome out;
    out.kind = DownloadOutcome::Kind::kSinkFailed;
    out.status = Status::Unavailable("slice " + SliceName(request.id) + " fits neither the cache (bound " +
                                     std::to_string(store_->options().capacity) + " bytes) nor the " +
                                     std::to_string(memory_->limit()) +
                                     " bytes for slices held in memory now; raise --cache-size to read it");
    return out;
  }
  DownloadOutcome out = Download(request, url, sink, ctx, pace);
  if (out.kind == DownloadOutcome::Kind::kStored) {
    ++stats_.kept_in_memory;
    KeepInMemory(out.slice);
  }
  return out;
}

DownloadOutcome MirrorSource::FetchFrom(const SliceRequest& request, const std::string& url,
                                        const FetchContext& ctx, const DownloadPace& pace) {
  for (int round = 0; round < kAdmissionRounds; ++round) {
    auto admitted = store_->Admit(request.id);
    if (!admitted.ok()) {
      if (admitted.status().code() == Status::Code::kNoSpace) return FetchIntoMemory(request, url, ctx, pace);
      return DownloadOutcome{DownloadOutcome::Kind::kSinkFailed, FetchError::kOk, admitted.status(), nullptr};
    }
    switch (admitted->admission) {
      case Admission::kWrite: {
        CacheSink sink(std::move(admitted->writer));
        DownloadOutcome out = Download(request, url, sink, ctx, pace);
        if (out.kind == DownloadOutcome::Kind::kSinkFailed && out.status.code() == Status::Code::kNoSpace) {
          // The disk stayed full although the cache evicted: this reader
          // still gets the slice, from memory.
          return FetchIntoMemory(request, url, ctx, pace);
        }
        return out;
      }
      case Admission::kAlreadyComplete: {
        auto got = store_->Get(request.id);
        if (got.ok()) return DownloadOutcome{DownloadOutcome::Kind::kStored, FetchError::kOk, Status::OK(), *got};
        continue;  // evicted in between: ask again
      }
      case Admission::kBusyElsewhere: {
        Status waited = store_->WaitWhileBusy(request.id, ctx.deadline);
        if (!waited.ok()) return DownloadOutcome{DownloadOutcome::Kind::kGaveUp, FetchError::kOk, waited, nullptr};
        auto got = store_->Get(request.id);
        if (got.ok()) return DownloadOutcome{DownloadOutcome::Kind::kStored, FetchError::kOk, Status::OK(), *got};
        continue;  // the other writer failed: ask again
      }
      case Admission::kTooLarge:
      case Admission::kNoRoomNow:
        return FetchIntoMemory(request, url, ctx, pace);
    }
  }
  return FetchIntoMemory(request, url, ctx, pace);
}

bool MirrorSource::HasVerified(const SliceRequest& request) {
  Result<bool> cached = store_->Contains(request.id);
  if (cached.ok() && *cached) return true;
  return FindInMemory(request.id) != nullptr;
}

Result<std::shared_ptr<const VerifiedSlice>> MirrorSource::Open(const SliceRequest& request,
                                                                const FetchContext& ctx) {
  auto cached = store_->Get(request.id);
  if (cached.ok()) {
    ++stats_.cache_hits;
    return cached;
  }
  if (!cached.status().IsNotFound()) return cached.status();
  if (auto kept = FindInMemory(request.id)) {
    ++stats_.memory_hits;
    return kept;
  }
  if (options_.offline || downloader_ == nullptr) {
    ++stats_.offline_misses;
    return Status::Unavailable("offline: slice " + SliceName(request.id) + " is not in the cache");
  }

  std::vector<Candidate> candidates = Candidates(request);
  if (candidates.empty()) return Status::NotFound("no server known for slice " + SliceName(request.id));
  OrderByScores(&candidates, request.id.size);
  size_t listed = 0;
  std::erase_if(candidates, [&listed](const Candidate& c) { return c.listed && ++listed > kMaxListedTried; });
  // Servers in back-off go behind the others (tried later, never dropped).
  std::stable_partition(candidates.begin(), candidates.end(),
                        [this](const Candidate& c) { return !InBackoff(c.url); });

  std::string failures;
  int failed = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (ctx.cancelled()) return Status::Cancelled("read interrupted");
    if (ctx.expired()) return Status::TimedOut("gave up on slice " + SliceName(request.id) + " after: " + failures);
    DownloadOutcome out = FetchFrom(request, c.url, ctx, PaceAgainst(candidates, i, request.id.size));
    stats_.bytes_downloaded += out.bytes;
    switch (out.kind) {
      case DownloadOutcome::Kind::kStored:
        transfers_.Finished(c.url, true, "");
        NoteServer(c.url, FetchError::kOk);
        ++stats_.downloads_ok;
        return out.slice;
      case DownloadOutcome::Kind::kGaveUp:
      case DownloadOutcome::Kind::kSinkFailed:
        return out.status;  // no other server changes that
      case DownloadOutcome::Kind::kOvertaken:
        // Not the server's fault: no back-off; the next candidate is the
        // one expected to be faster.
        transfers_.Finished(c.url, false, out.status.message());
        ++stats_.overtaken;
        spdlog::info("mirror: {}", out.status.message());
        if (failed++ < 3) failures += (failures.empty() ? "" : "; ") + out.status.message();
        break;
      case DownloadOutcome::Kind::kBadChecksum:
        ++stats_.bad_checksum;
        [[fallthrough]];
      case DownloadOutcome::Kind::kServerFailed:
        transfers_.Finished(c.url, false, out.status.message());
        NoteServer(c.url, out.server);
        ++stats_.downloads_failed;
        spdlog::info("mirror: {}", out.status.message());
        if (failed++ < 3) failures += (failures.empty() ? "" : "; ") + out.status.message();
        break;
    }
  }
  if (failed > 3) failures += "; and " + std::to_string(failed - 3) + " more";
  return Status::Unavailable("every server failed for slice " + SliceName(request.id) + ": " + failures);
}

}  // namespace jigdoofus
