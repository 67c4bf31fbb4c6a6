// Tests of Prefetcher and ReadAhead (core/prefetcher.cc): dedupe of queued
// and running slices, the bounded queue, shutdown while a Get() is busy,
// failures not remembered, and the read-ahead window policy over a real
// ImageMap built from a synthetic template.
#include "core/prefetcher.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "core/byte_source.h"
#include "core/image_reader.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

PrefetcherOptions Opts(size_t threads, size_t max_queue) {
  PrefetcherOptions o;
  o.threads = threads;
  o.max_queue = max_queue;
  o.fetch_timeout_s = 60;
  return o;
}

using testing_util::TemplateBuilder;

SliceId IdFor(uint32_t n) {
  std::string s = "slice-" + std::to_string(n);
  SliceId id;
  id.size = s.size();
  id.digest = HashBytes(HashAlgo::kMd5, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  return id;
}

// A provider whose Get() can be held until released, that counts calls per
// digest and can be told to fail. It never returns a slice (the prefetcher
// drops results anyway): success is a null-free dummy.
class GateProvider final : public SliceProvider {
 public:
  class Dummy final : public VerifiedSlice {
   public:
    explicit Dummy(SliceId id) : id_(id) {}
    const SliceId& id() const override { return id_; }
    Status ReadAt(uint64_t, std::span<uint8_t>) const override { return Status::IOError("dummy"); }

   private:
    SliceId id_;
  };

  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& id, const FetchContext& ctx) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++calls_[id.digest.ToBase64()];
    ++running_;
    cv_.notify_all();
    while (held_) {
      lock.unlock();
      const bool cancelled = ctx.cancelled();
      lock.lock();
      if (cancelled) {
        ++saw_cancel_;
        --running_;
        return Status::Cancelled("gate: cancelled");
      }
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
    --running_;
    if (fail_) return Status::NotFound("gate: told to fail");
    return std::shared_ptr<const VerifiedSlice>(std::make_shared<Dummy>(id));
  }

  void Hold() {
    std::lock_guard<std::mutex> l(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    held_ = false;
    cv_.notify_all();
  }
  void SetFail(bool f) {
    std::lock_guard<std::mutex> l(mu_);
    fail_ = f;
  }
  // Waits until `n` Get()s are running at once.
  void AwaitRunning(int n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return running_ >= n; });
  }
  int Calls(const SliceId& id) {
    std::lock_guard<std::mutex> l(mu_);
    return calls_[id.digest.ToBase64()];
  }
  int TotalCalls() {
    std::lock_guard<std::mutex> l(mu_);
    int t = 0;
    for (auto& [k, v] : calls_) t += v;
    return t;
  }
  std::set<std::string> Digests() {
    std::lock_guard<std::mutex> l(mu_);
    std::set<std::string> s;
    for (auto& [k, v] : calls_) s.insert(k);
    return s;
  }
  int saw_cancel() {
    std::lock_guard<std::mutex> l(mu_);
    return saw_cancel_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> calls_;
  bool held_ = false;
  bool fail_ = false;
 public:
  bool all_open = false;  // IsOpen answers this for every slice
  bool IsOpen(const SliceId&) const override { return all_open; }

 private:
  int running_ = 0;
  int saw_cancel_ = 0;
};

TEST(Prefetcher, DedupesQueuedAndRunningSlices) {
  GateProvider p;
  p.Hold();
  Prefetcher pf(Opts(1, 16));
  EXPECT_EQ(pf.Enqueue(&p, IdFor(1)), Prefetcher::Outcome::kQueued);
  p.AwaitRunning(1);  // slice 1 is running now
  EXPECT_EQ(pf.Enqueue(&p, IdFor(1)), Prefetcher::Outcome::kDuplicate);
  EXPECT_EQ(pf.Enqueue(&p, IdFor(2)), Prefetcher::Outcome::kQueued);
  EXPECT_EQ(pf.Enqueue(&p, IdFor(2)), Prefetcher::Outcome::kDuplicate);  // queued
  // Same digest, other provider: separate work.
  GateProvider other;
  EXPECT_EQ(pf.Enqueue(&other, IdFor(1)), Prefetcher::Outcome::kQueued);
  EXPECT_EQ(pf.pending(), 3u);
  p.Release();
  pf.Drain();
  EXPECT_EQ(pf.pending(), 0u);
  EXPECT_EQ(p.Calls(IdFor(1)), 1);
  EXPECT_EQ(p.Calls(IdFor(2)), 1);
  EXPECT_EQ(other.Calls(IdFor(1)), 1);
  PrefetcherStats st = pf.stats();
  EXPECT_EQ(st.queued, 3u);
  EXPECT_EQ(st.deduped, 2u);
  EXPECT_EQ(st.fetched, 3u);
  // Done work may be queued again (the provider's LRU makes it cheap).
  EXPECT_EQ(pf.Enqueue(&p, IdFor(1)), Prefetcher::Outcome::kQueued);
  pf.Drain();
  EXPECT_EQ(p.Calls(IdFor(1)), 2);
}

TEST(Prefetcher, MoreWorkersFetchWhileTheBudgetAsksForThem) {
  GateProvider p;
  p.Hold();
  auto budget = std::make_shared<JobBudget>();
  PrefetcherOptions o = Opts(2, 100);
  o.budget = budget;
  o.max_threads = 5;
  Prefetcher pf(o);
  EXPECT_EQ(pf.workers(), 3u);  // the base and one that looks at the budget
  for (uint32_t i = 0; i < 10; ++i) ASSERT_EQ(pf.Enqueue(&p, IdFor(i)), Prefetcher::Outcome::kQueued);
  p.AwaitRunning(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(p.TotalCalls(), 2);  // the base only
  EXPECT_EQ(pf.workers(), 3u);   // none started for nothing (each costs memory)
  budget->Set("http://far", 10);  // more than the ceiling allows
  p.AwaitRunning(5);               // started within its look-again interval
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(p.TotalCalls(), 5);
  EXPECT_EQ(pf.workers(), 5u);
  budget->Set("http://far", 0);
  EXPECT_EQ(budget->Total(), 0u);
  p.Release();
  pf.Drain();
  EXPECT_EQ(p.TotalCalls(), 10);
}

TEST(Prefetcher, QueueIsBounded) {
  GateProvider p;
  p.Hold();
  Prefetcher pf(Opts(1, 2));
  EXPECT_EQ(pf.Enqueue(&p, IdFor(1)), Prefetcher::Outcome::kQueued);
  p.AwaitRunning(1);  // off the queue
  EXPECT_EQ(pf.Enqueue(&p, IdFor(2)), Prefetcher::Outcome::kQueued);
  EXPECT_EQ(pf.Enqueue(&p, IdFor(3)), Prefetcher::Outcome::kQueued);
  EXPECT_EQ(pf.Enqueue(&p, IdFor(4)), Prefetcher::Outcome::kFull);
  EXPECT_EQ(pf.stats().rejected, 1u);
  p.Release();
  pf.Drain();
  EXPECT_EQ(p.Calls(IdFor(4)), 0);
  EXPECT_EQ(p.TotalCalls(), 3);
}

TEST(Prefetcher, ShutdownWhileBusyCancelsAndDropsQueue) {
  GateProvider p;
  p.Hold();  // never released: only cancellation ends the running Get()s
  {
    Prefetcher pf(Opts(2, 100));
    for (uint32_t i = 0; i < 20; ++i) pf.Enqueue(&p, IdFor(i));
    p.AwaitRunning(2);
  }  // the destructor must return
  EXPECT_EQ(p.saw_cancel(), 2);
  EXPECT_EQ(p.TotalCalls(), 2);  // the 18 queued were dropped
}

TEST(Prefetcher, FailuresAreNotRemembered) {
  GateProvider p;
  p.SetFail(true);
  Prefetcher pf(Opts(1, 16));
  EXPECT_EQ(pf.Enqueue(&p, IdFor(7)), Prefetcher::Outcome::kQueued);
  pf.Drain();
  EXPECT_EQ(pf.stats().failed, 1u);
  EXPECT_EQ(pf.Enqueue(&p, IdFor(7)), Prefetcher::Outcome::kQueued);  // tried again
  pf.Drain();
  EXPECT_EQ(p.Calls(IdFor(7)), 2);
}

// ---------------------------------------------------------------- ReadAhead

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

struct MapFixture {
  TemplateBuilder builder;
  std::shared_ptr<const TemplateIndex> index;
  std::unique_ptr<ImageMap> map;
  std::vector<uint64_t> slice_starts;  // image offset of each slice extent
};

// `count` slices of `slice_size` bytes, each after a 100-byte literal.
std::unique_ptr<MapFixture> MakeMap(int count, size_t slice_size) {
  auto f = std::make_unique<MapFixture>();
  for (int i = 0; i < count; ++i) f->builder.Literal(Bytes(100, 1000 + i)).Slice(Bytes(slice_size, i));
  auto file = std::make_shared<MemoryByteSource>("t.template", f->builder.Build());
  auto idx = ReadTemplateIndex(*file);
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  if (!idx.ok()) return nullptr;
  f->index = std::make_shared<const TemplateIndex>(std::move(idx).value());
  f->map = std::make_unique<ImageMap>(f->index);
  for (const ImageExtent& e : f->index->extents()) {
    if (e.kind == ImageExtent::Kind::kSlice) f->slice_starts.push_back(e.image_offset);
  }
  return f;
}

TEST(ReadAhead, SequentialReaderQueuesTheWindowAhead) {
  auto f = MakeMap(100, 10000);  // ~1 MB image, 100 slices
  ASSERT_TRUE(f);
  GateProvider p;
  Prefetcher pf(Opts(2, 1000));
  ReadAheadOptions o;
  o.initial_window = 50000;  // ~5 slices
  o.max_window = 400000;
  o.max_slices_ahead = 1000;
  o.sequential_slack = 0;
  ReadAhead ra(f->map.get(), &p, &pf, o);
  ra.OnRead(0, 4096);
  pf.Drain();
  EXPECT_EQ(p.TotalCalls(), 0);  // one read proves nothing yet
  ra.OnRead(4096, 4096);
  pf.Drain();
  // Slices starting within [8192, 8192 + 50000) and the one being read.
  const uint64_t until = ra.prefetched_until();
  EXPECT_GE(until, 8192u + 50000u);
  int expected = 0;
  for (uint64_t s : f->slice_starts) expected += s < until ? 1 : 0;
  EXPECT_EQ(p.TotalCalls(), expected);
  EXPECT_GE(expected, 5);
  // Keep reading sequentially: the window grows, and never past max_window.
  uint64_t off = 8192;
  for (int i = 0; i < 100; ++i, off += 4096) ra.OnRead(off, 4096);
  EXPECT_GT(ra.window(), o.initial_window);
  EXPECT_LE(ra.window(), o.max_window);
  EXPECT_LE(ra.prefetched_until(), off + o.max_window + 10100);
  pf.Drain();
  EXPECT_EQ(static_cast<int>(p.Digests().size()), p.TotalCalls());  // nothing fetched twice
}

// Slices the provider already holds open (a warm cache, a re-read) wake no
// worker: the window moves on without queuing them.
TEST(ReadAhead, SlicesAlreadyOpenAreNotQueued) {
  auto f = MakeMap(100, 10000);
  ASSERT_TRUE(f);
  GateProvider p;
  p.all_open = true;
  Prefetcher pf(Opts(2, 1000));
  ReadAheadOptions o;
  o.initial_window = 50000;
  o.sequential_slack = 0;
  ReadAhead ra(f->map.get(), &p, &pf, o);
  for (uint64_t off = 0; off < 40000; off += 4096) ra.OnRead(off, 4096);
  pf.Drain();
  EXPECT_EQ(p.TotalCalls(), 0);
  EXPECT_EQ(pf.stats().queued, 0u);
  EXPECT_GE(ra.prefetched_until(), 40000u + 50000u);
}

TEST(ReadAhead, RandomReaderQueuesNothingAndResetsTheWindow) {
  auto f = MakeMap(100, 10000);
  ASSERT_TRUE(f);
  GateProvider p;
  Prefetcher pf(Opts(1, 1000));
  ReadAheadOptions o;
  o.initial_window = 50000;
  o.max_slices_ahead = 1000;
  o.sequential_slack = 0;
  ReadAhead ra(f->map.get(), &p, &pf, o);
  ra.OnRead(600000, 4096);  // a jump from 0: not sequential
  ra.OnRead(300000, 4096);
  ra.OnRead(900000, 4096);
  pf.Drain();
  EXPECT_EQ(p.TotalCalls(), 0);
  EXPECT_EQ(ra.window(), o.initial_window);
  ra.OnRead(904096, 4096);  // one read on from 900000: could be chance
  pf.Drain();
  EXPECT_EQ(p.TotalCalls(), 0);
  ra.OnRead(908192, 4096);  // two: sequential
  pf.Drain();
  EXPECT_GT(p.TotalCalls(), 0);
}

TEST(ReadAhead, NeverMoreThanMaxSlicesAhead) {
  auto f = MakeMap(200, 2000);
  ASSERT_TRUE(f);
  GateProvider p;
  p.Hold();
  Prefetcher pf(Opts(1, 1000));
  ReadAheadOptions o;
  o.initial_window = 1 << 20;  // the whole image
  o.max_slices_ahead = 6;
  o.sequential_slack = 0;
  ReadAhead ra(f->map.get(), &p, &pf, o);
  ra.OnRead(0, 100);
  ra.OnRead(100, 100);
  // Extents between the reader and prefetched_until bound the slices ahead.
  EXPECT_LE(pf.stats().queued, 6u);
  EXPECT_GE(pf.stats().queued, 3u);
  const uint64_t first_until = ra.prefetched_until();
  ra.OnRead(200, 100);  // the reader hardly moved: nothing new
  EXPECT_EQ(ra.prefetched_until(), first_until);
  p.Release();
  pf.Drain();
}

}  // namespace
}  // namespace jigdoofus
