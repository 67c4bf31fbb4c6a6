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

DownloadOutcome Outcome(DownloadOutcome::Kind kind, Status status,
                        std::shared_ptr<const VerifiedSlice> slice = nullptr) {
  DownloadOutcome out;
  out.kind = kind;
  out.status = std::move(status);
  out.slice = std::move(slice);
  return out;
}

// A lane cancelled early is scored only if it brought this much (the
// scores' own threshold for measuring a rate).
constexpr uint64_t kMinBytesScored = 64 << 10;

// A server whose lane was cut for stalling is stalling now: its next
// slices go elsewhere for this long, then it is tried again. Not a
// failure: no doubling (a back-off of a failure's length kept the
// fastest mirror of figure 10, stalling 4 s in 8, out of use for tens of
// seconds: the stalling read took 75 s instead of 57 s).
constexpr std::chrono::milliseconds kStallBackoff{1000};

// Attempts per slice: a first one with every server, then one server at
// a time while servers sent bytes that do not verify.
constexpr int kAttempts = 4;

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

void MirrorSource::NoteStall(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  Health& h = health_[ServerKey(url)];
  h.retry_after = std::max(h.retry_after, std::chrono::steady_clock::now() + kStallBackoff);
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

namespace {

// One lane as the mirror source records it: listed in the transfer log
// while it runs, scored when it ends.
class MirrorLane final : public LaneObserver::Lane {
 public:
  MirrorLane(std::shared_ptr<TransferLog::Transfer> t, std::string key, uint64_t before)
      : transfer(std::move(t)), server(std::move(key)), server_bytes_before(before) {}
  void Bytes(uint64_t n) override { transfer->Add(n); }
  std::shared_ptr<TransferLog::Transfer> transfer;
  std::string server;
  uint64_t server_bytes_before;
};

}  // namespace

size_t MirrorSource::ConnectionLimit(const std::string& server) {
  const DownloaderOptions& d = downloader_->options();
  if (!options_.budget) return d.max_per_host;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = health_.find(server);
    if (it != health_.end() && it->second.held_to_base) return d.max_per_host;
  }
  return scores_.Connections(server, d.max_per_host, d.max_per_host_ceiling);
}

void MirrorSource::HoldToBase(const std::string& server) {
  if (!options_.budget) return;
  const DownloaderOptions& d = downloader_->options();
  if (ConnectionLimit(server) <= d.max_per_host) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    health_[server].held_to_base = true;
  }
  downloader_->SetHostLimit(server, d.max_per_host);
  options_.budget->Set(server, 0);
  spdlog::info("mirror: {} failed with more than {} connections: {} from now on", server, d.max_per_host,
               d.max_per_host);
}

void MirrorSource::AdaptConnections(const std::string& server) {
  if (!options_.budget) return;
  const DownloaderOptions& d = downloader_->options();
  const size_t want = ConnectionLimit(server);
  downloader_->SetHostLimit(server, want);
  options_.budget->Set(server, want - d.max_per_host);
}

std::unique_ptr<LaneObserver::Lane> MirrorSource::Began(const std::string& url, uint64_t bytes) {
  std::string server = ServerKey(url);
  scores_.Began(server);
  const uint64_t before = transfers_.ServerBytes(server);
  return std::make_unique<MirrorLane>(transfers_.Begin(url, bytes), std::move(server), before);
}

void MirrorSource::Ended(std::unique_ptr<LaneObserver::Lane> base, const std::string& url, LaneObserver::End end,
                         FetchError error, const std::string& message) {
  auto* lane = static_cast<MirrorLane*>(base.get());
  const TransferLog::Transfer::Timing t = lane->transfer->Times();
  // What the server sent to all of this mount's downloads meanwhile.
  const double span = t.ttfb_s + t.body_s;
  const double server_bps =
      span > 0 ? static_cast<double>(transfers_.ServerBytes(lane->server) - lane->server_bytes_before) / span : 0.0;
  // A lane that lost a race or was taken over shows the server's pace only
  // when enough bytes came to measure a rate (a stall within it lowers
  // that rate). A lane cut before its first byte is no sample: scoring its
  // wait as a time to first byte would keep a mirror that stalled once
  // looking far away long after (nothing would measure it again).
  const bool cut = end == LaneObserver::End::kSuperseded || end == LaneObserver::End::kStalled;
  const bool scored = end == LaneObserver::End::kDone || (cut && t.bytes >= kMinBytesScored);
  scores_.Ended(lane->server, scored, t.bytes, t.ttfb_s, t.body_s, server_bps);
  if (scored) AdaptConnections(lane->server);
  lane->transfer.reset();  // no longer in flight
  switch (end) {
    case LaneObserver::End::kDone:
      transfers_.Finished(url, true, "");
      NoteServer(url, FetchError::kOk);
      break;
    case LaneObserver::End::kSuperseded:
      ++stats_.overtaken;
      break;
    case LaneObserver::End::kStalled:
      ++stats_.overtaken;
      ++stats_.stalled;
      NoteStall(url);
      break;
    case LaneObserver::End::kFailed:
      transfers_.Finished(url, false, message);
      NoteServer(url, error);
      if (ShouldRetryServerLater(error)) HoldToBase(lane->server);
      ++stats_.downloads_failed;
      if (error == FetchError::kNoRange) {
        ++stats_.range_refused;
        scores_.RefusesRanges(lane->server);
      }
      spdlog::info("mirror: {}", message);
      break;
    case LaneObserver::End::kGaveUp:
      break;
  }
}

PiecePlan::Estimator MirrorSource::Estimates(const std::vector<std::string>& urls) {
  std::vector<std::string> servers;
  for (const std::string& url : urls) servers.push_back(ServerKey(url));
  return [this, servers = std::move(servers), backlog = transfers_.Backlog()](size_t i, uint64_t bytes) {
    return scores_.ExpectedSeconds(servers[i], bytes, backlog);
  };
}

DownloadOutcome MirrorSource::Download(const SliceRequest& request, const std::vector<SliceFetchServer>& servers,
                                       SliceSink& sink, const FetchContext& ctx, const PiecePlanOptions& plan) {
  DownloadOutcome out = FetchSlice(*downloader_, servers, request.id, sink, ctx, *this, plan);
  stats_.bytes_downloaded += out.bytes;
  stats_.hedges += out.hedges;
  if (out.pieces > 1) {
    ++stats_.pieced;
    stats_.pieces += out.pieces;
  }
  return out;
}

std::vector<SliceFetchServer> MirrorSource::FetchServers(const std::vector<Candidate>& candidates) const {
  // Tiers: runs of equal weight, healthy servers before those in back-off
  // (the candidates come in that order).
  std::vector<SliceFetchServer> out;
  int tier = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (i == 0 || c.weight != candidates[i - 1].weight || c.backoff != candidates[i - 1].backoff) ++tier;
    SliceFetchServer s;
    s.url = c.url;
    s.plan.tier = tier;
    const ServerScore score = scores_.Get(ServerKey(c.url));
    s.plan.refuses_ranges = score.refuses_ranges;
    s.plan.measured = score.per_connection_bps > 0;
    out.push_back(std::move(s));
  }
  return out;
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

DownloadOutcome MirrorSource::FetchIntoMemory(const SliceRequest& request,
                                              const std::vector<SliceFetchServer>& servers, const FetchContext& ctx,
                                              const PiecePlanOptions& plan) {
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
  DownloadOutcome out = Download(request, servers, sink, ctx, plan);
  if (out.kind == DownloadOutcome::Kind::kStored) {
    ++stats_.kept_in_memory;
    KeepInMemory(out.slice);
  }
  return out;
}

DownloadOutcome MirrorSource::FetchFrom(const SliceRequest& request, const std::vector<SliceFetchServer>& servers,
                                        const FetchContext& ctx, const PiecePlanOptions& plan) {
  for (int round = 0; round < kAdmissionRounds; ++round) {
    auto admitted = store_->Admit(request.id);
    if (!admitted.ok()) {
      if (admitted.status().code() == Status::Code::kNoSpace) return FetchIntoMemory(request, servers, ctx, plan);
      return Outcome(DownloadOutcome::Kind::kSinkFailed, admitted.status());
    }
    switch (admitted->admission) {
      case Admission::kWrite: {
        CacheSink sink(std::move(admitted->writer));
        DownloadOutcome out = Download(request, servers, sink, ctx, plan);
        if (out.kind == DownloadOutcome::Kind::kSinkFailed && out.status.code() == Status::Code::kNoSpace) {
          // The disk stayed full although the cache evicted: this reader
          // still gets the slice, from memory.
          return FetchIntoMemory(request, servers, ctx, plan);
        }
        return out;
      }
      case Admission::kAlreadyComplete: {
        auto got = store_->Get(request.id);
        if (got.ok()) return Outcome(DownloadOutcome::Kind::kStored, Status::OK(), *got);
        continue;  // evicted in between: ask again
      }
      case Admission::kBusyElsewhere: {
        Status waited = store_->WaitWhileBusy(request.id, ctx.deadline);
        if (!waited.ok()) return Outcome(DownloadOutcome::Kind::kGaveUp, waited);
        auto got = store_->Get(request.id);
        if (got.ok()) return Outcome(DownloadOutcome::Kind::kStored, Status::OK(), *got);
        continue;  // the other writer failed: ask again
      }
      case Admission::kTooLarge:
      case Admission::kNoRoomNow:
        return FetchIntoMemory(request, servers, ctx, plan);
    }
  }
  return FetchIntoMemory(request, servers, ctx, plan);
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

  for (Candidate& c : candidates) c.backoff = InBackoff(c.url);

  // The first attempt uses every server as the plan sees fit. A slice that
  // does not verify is fetched again one server at a time (no pieces, no
  // races), so that a server sending bad bytes shows itself and is left
  // out; a server that refused a Range request gets whole slices only.
  PiecePlanOptions plan = options_.plan;
  std::string failures;
  for (int attempt = 0; attempt < kAttempts && !candidates.empty(); ++attempt) {
    if (ctx.cancelled()) return Status::Cancelled("read interrupted");
    if (ctx.expired()) return Status::TimedOut("gave up on slice " + SliceName(request.id) + " after: " + failures);
    const std::vector<SliceFetchServer> servers = FetchServers(candidates);
    DownloadOutcome out = FetchFrom(request, servers, ctx, plan);
    switch (out.kind) {
      case DownloadOutcome::Kind::kStored:
        ++stats_.downloads_ok;
        return out.slice;
      case DownloadOutcome::Kind::kGaveUp:
      case DownloadOutcome::Kind::kSinkFailed:
        return out.status;  // no other server changes that
      case DownloadOutcome::Kind::kBadChecksum: {
        ++stats_.bad_checksum;
        spdlog::info("mirror: {}", out.status.message());
        failures += (failures.empty() ? "" : "; ") + out.status.message();
        if (out.contributors.size() == 1) {
          const std::string bad = servers[out.contributors.front()].url;
          NoteServer(bad, FetchError::kBadChecksum);
          ++stats_.downloads_failed;
          std::erase_if(candidates, [&bad](const Candidate& c) { return c.url == bad; });
        }
        plan.piece_size = 0;
        plan.hedge = false;
        plan.max_lanes = 1;
        continue;
      }
      case DownloadOutcome::Kind::kServerFailed:
        failures += (failures.empty() ? "" : "; ") + out.status.message();
        // Servers that refused a range are now known to: they get the
        // whole slice on the next attempt.
        if (out.range_refused) continue;
        attempt = kAttempts;
        break;
    }
  }
  return Status::Unavailable("every server failed for slice " + SliceName(request.id) + ": " + failures);
}

}  // namespace jigdoofus
