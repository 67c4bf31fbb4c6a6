#include "fetch/sources/slice_resolver.h"

#include "fetch/sources/failure_tally.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace jigdoofus {

// One fetch in progress; waiters share it. Fields GUARDED_BY(resolver mu_).
struct SliceResolver::Flight {
  bool done = false;
  // Set when a foreground request joins a read-ahead leader's fetch (null
  // when the leader is foreground itself).
  std::shared_ptr<std::atomic<bool>> reader_waits;
  Result<std::shared_ptr<const VerifiedSlice>> result{Status::Unavailable("fetch in progress")};
  // A source found no file or a damaged one (whatever the reported code):
  // an answer about what the files held when the fetch began.
  bool saw_file_state = false;
  std::condition_variable cv;
};

namespace {

constexpr size_t kTriedListMax = 3;

std::string LocationText(const SliceLocation& loc) {
  return loc.label.empty() ? loc.path : loc.label + ":" + loc.path;
}

std::string TriedList(const SliceRequest& req, const std::vector<SliceSource*>& sources) {
  std::string s;
  for (size_t i = 0; i < req.locations.size() && i < kTriedListMax; ++i) {
    if (i > 0) s += ", ";
    s += LocationText(req.locations[i]);
  }
  if (req.locations.size() > kTriedListMax) {
    s += " (+" + std::to_string(req.locations.size() - kTriedListMax) + " more)";
  }
  if (s.empty()) s = "no [Parts] location";
  s += "; sources:";
  for (SliceSource* src : sources) {
    s += " ";
    s += src->name();
  }
  if (sources.empty()) s += " none";
  return s;
}

}  // namespace

SliceResolver::SliceResolver(std::shared_ptr<const JigdoFile> jigdo, std::vector<SliceSource*> sources,
                             size_t max_open, std::shared_ptr<const SliceHeadMap> heads)
    : jigdo_(std::move(jigdo)), sources_(std::move(sources)), max_open_(max_open), heads_(std::move(heads)) {}

std::shared_ptr<const VerifiedSlice> SliceResolver::LruFind(const SliceId& slice) {
  auto it = lru_index_.find(slice.digest);
  if (it == lru_index_.end() || (*it->second)->id().size != slice.size) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);  // iterators stay valid
  return *it->second;
}

void SliceResolver::LruInsert(std::shared_ptr<const VerifiedSlice> slice) {
  if (max_open_ == 0 || !slice->worth_keeping_open()) return;
  const Digest digest = slice->id().digest;
  if (auto it = lru_index_.find(digest); it != lru_index_.end()) {
    lru_.erase(it->second);
    lru_index_.erase(it);
  }
  lru_.push_front(std::move(slice));
  lru_index_.emplace(digest, lru_.begin());
  while (lru_.size() > max_open_) {
    // The fd closes when the last reader drops its shared_ptr.
    lru_index_.erase(lru_.back()->id().digest);
    lru_.pop_back();
  }
}

bool SliceResolver::IsOpen(const SliceId& slice) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lru_index_.find(slice.digest);
  return it != lru_index_.end() && (*it->second)->id().size == slice.size;
}

void SliceResolver::Forget(const SliceId& slice) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lru_index_.find(slice.digest);
  if (it == lru_index_.end()) return;
  lru_.erase(it->second);
  lru_index_.erase(it);
}

Result<std::shared_ptr<const VerifiedSlice>> SliceResolver::Get(const SliceId& slice, const FetchContext& ctx) {
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock<std::mutex> lock(mu_);
    bool counted_wait = false;
    bool looked_again = false;
    for (;;) {
      if (auto hit = LruFind(slice)) {
        stats_.lru_hits.fetch_add(1, std::memory_order_relaxed);
        return hit;
      }
      auto it = flights_.find(slice.digest);
      if (it == flights_.end()) break;  // nobody is fetching it: lead
      std::shared_ptr<Flight> other = it->second;
      if (!counted_wait) {
        stats_.merged_waits.fetch_add(1, std::memory_order_relaxed);
        counted_wait = true;
      }
      if (!other->done) {
        // A reader waits on it now (the fetch may give it more lanes).
        if (ctx.urgent() && other->reader_waits) other->reader_waits->store(true, std::memory_order_relaxed);
        // Woken by the fetch's end or by this request's cancellation.
        lock.unlock();
        {
          auto wake = ctx.OnCancel([this, other] {
            std::lock_guard<std::mutex> l(mu_);
            other->cv.notify_all();
          });
          lock.lock();
          other->cv.wait_until(lock, ctx.deadline, [&] { return other->done || ctx.cancelled(); });
          lock.unlock();
        }  // unsubscribed without mu_ held (the wake-up takes it)
        lock.lock();
        if (!other->done) {
          if (ctx.cancelled()) return Status::Cancelled("slice " + slice.digest.ToBase64() + ": request cancelled");
          return Status::TimedOut("slice " + slice.digest.ToBase64() +
                                  ": deadline passed while waiting for another request's fetch");
        }
      }
      Result<std::shared_ptr<const VerifiedSlice>> r = other->result;
      const Status::Code code = r.ok() ? Status::Code::kOk : r.status().code();
      if (code == Status::Code::kCancelled || code == Status::Code::kTimedOut) {
        continue;  // the leader gave up for its own reasons; go again (LRU, flights, lead)
      }
      // A missing or damaged copy is what that fetch saw when it began,
      // before this request came: the file may have been put back since
      // (a read-ahead that opened it a moment before a package manager's
      // rename). Look once more, as a request of its own would.
      if (r.ok() || !other->saw_file_state || looked_again || ctx.cancelled() || ctx.expired()) return r;
      looked_again = true;
    }
    flight = std::make_shared<Flight>();
    if (!ctx.urgent()) flight->reader_waits = std::make_shared<std::atomic<bool>>(false);
    flights_.emplace(slice.digest, flight);
  }

  Result<std::shared_ptr<const VerifiedSlice>> result = Status::Unavailable("internal: fetch did not finish");
  bool saw_file_state = false;
  {
    // Publish whatever happens (even if a source throws), or waiters hang.
    struct Publisher {
      SliceResolver* self;
      const SliceId& slice;
      Flight* flight;
      Result<std::shared_ptr<const VerifiedSlice>>* result;
      const bool* saw_file_state;
      ~Publisher() {
        std::lock_guard<std::mutex> lock(self->mu_);
        self->flights_.erase(slice.digest);
        if (result->ok()) self->LruInsert(result->value());
        flight->result = *result;
        flight->saw_file_state = *saw_file_state;
        flight->done = true;
        flight->cv.notify_all();
      }
    } publisher{this, slice, flight.get(), &result, &saw_file_state};
    FetchContext leader = ctx;
    if (flight->reader_waits) leader.reader_waits = flight->reader_waits;
    result = Fetch(slice, leader, &saw_file_state);
  }

  if (result.ok()) {
    stats_.opened.fetch_add(1, std::memory_order_relaxed);
  } else {
    switch (result.status().code()) {
      case Status::Code::kNotFound: stats_.not_found.fetch_add(1, std::memory_order_relaxed); break;
      case Status::Code::kCorruption: stats_.corrupt.fetch_add(1, std::memory_order_relaxed); break;
      case Status::Code::kUnavailable: stats_.unavailable.fetch_add(1, std::memory_order_relaxed); break;
      default: stats_.other_errors.fetch_add(1, std::memory_order_relaxed); break;
    }
    spdlog::debug("resolver: {}", result.status().ToString());
  }
  return result;
}

SliceRequest SliceResolver::RequestFor(const SliceId& slice) const {
  SliceRequest request;
  request.id = slice;
  request.jigdo = jigdo_.get();
  if (jigdo_ != nullptr) request.locations = jigdo_->LocationsFor(slice.digest);
  if (heads_ != nullptr) {
    if (auto it = heads_->find(slice); it != heads_->end()) request.head = it->second;
  }
  return request;
}

bool SliceResolver::Available(const SliceId& slice) {
  if (IsOpen(slice)) return true;
  const SliceRequest request = RequestFor(slice);
  for (SliceSource* source : sources_) {
    if (source->HasVerified(request)) return true;
  }
  return false;
}

Result<std::shared_ptr<const VerifiedSlice>> SliceResolver::Fetch(const SliceId& slice, const FetchContext& ctx,
                                                                  bool* saw_file_state) {
  const SliceRequest request = RequestFor(slice);
  const std::string what = "slice " + slice.digest.ToBase64() + " (" + std::to_string(slice.size) + " bytes)";

  FailureTally failures;
  for (SliceSource* source : sources_) {
    if (ctx.cancelled()) return Status::Cancelled(what + ": request cancelled");
    if (ctx.expired()) return Status::TimedOut(what + ": deadline passed");
    Result<std::shared_ptr<const VerifiedSlice>> r = source->Open(request, ctx);
    if (r.ok()) {
      if (r.value() != nullptr && r.value()->id() == slice) return r;
      failures.Note(Status::Internal(what + ": source " + source->name() + " returned another slice"));
      continue;
    }
    const Status& st = r.status();
    // This read gave up: stop. A source's own limit: try the next one.
    const bool gave_up = st.code() == Status::Code::kCancelled || st.code() == Status::Code::kTimedOut;
    if (gave_up && (ctx.cancelled() || ctx.expired())) return st.WithContext(what);
    failures.Note(st);
  }
  *saw_file_state = !failures.not_found.ok() || !failures.corruption.ok();
  // Servers that could not be reached say most (the read may work later);
  // then other failures; a damaged copy only when nothing else went wrong.
  if (!failures.unavailable.ok()) {
    // "offline: not in the cache" alone hides where the local sources
    // looked: say that too.
    const Status& u = failures.unavailable;
    if (failures.not_found.ok()) return u.WithContext(what);
    return Status::Unavailable(u.message() + "; " + failures.not_found.message()).WithContext(what);
  }
  if (!failures.other.ok()) return failures.other.WithContext(what);
  if (!failures.corruption.ok()) return failures.corruption.WithContext(what);
  return Status::NotFound("no local copy of " + what + "; tried: " + TriedList(request, sources_));
}

}  // namespace jigdoofus
