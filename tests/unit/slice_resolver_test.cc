// Tests of SliceResolver: source order and outcome classes, single flight,
// the open-slice LRU, failures not cached, deadlines and cancellation, and
// the locations it computes from a parsed .jigdo.
#include "fetch/sources/slice_resolver.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "fetch/sources/local_tree_source.h"
#include "tests/unit/fetch_test_util.h"

namespace jigdoofus {
namespace {

using testing_util::Content;
using testing_util::IdOf;
using testing_util::ReadAll;
using testing_util::TempDir;
using testing_util::WriteFile;
using SliceResult = Result<std::shared_ptr<const VerifiedSlice>>;

class MemSlice final : public VerifiedSlice {
 public:
  MemSlice(SliceId id, std::string data, bool keep = true)
      : id_(std::move(id)), data_(std::move(data)), keep_(keep) {}
  const SliceId& id() const override { return id_; }
  bool worth_keeping_open() const override { return keep_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    std::memcpy(out.data(), data_.data() + offset, out.size());
    return Status::OK();
  }

 private:
  SliceId id_;
  std::string data_;
  bool keep_;
};

std::shared_ptr<const VerifiedSlice> Slice(const std::string& data) {
  return std::make_shared<MemSlice>(IdOf(data), data);
}

// A source whose behaviour is a function; counts calls and keeps the last
// request it saw.
class FakeSource final : public SliceSource {
 public:
  using Fn = std::function<SliceResult(const SliceRequest&, const FetchContext&, int call)>;
  explicit FakeSource(Fn fn, const char* name = "fake") : fn_(std::move(fn)), name_(name) {}
  const char* name() const override { return name_; }
  SliceResult Open(const SliceRequest& request, const FetchContext& ctx) override {
    int call = ++calls_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = request;
    }
    return fn_(request, ctx, call);
  }
  int calls() const { return calls_.load(); }
  SliceRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  Fn fn_;
  const char* name_;
  std::atomic<int> calls_{0};
  std::mutex mu_;
  SliceRequest last_;
};

FakeSource::Fn Returns(Status st) {
  return [st](const SliceRequest&, const FetchContext&, int) -> SliceResult { return st; };
}

FakeSource::Fn Serves(const std::string& data) {
  return [data](const SliceRequest&, const FetchContext&, int) -> SliceResult { return Slice(data); };
}

// A one-shot gate the test opens; sources block on it.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `cond` until true; fails the test (instead of hanging) after a
// generous bound. Not a timing assertion: only a guard against deadlock.
template <typename Cond>
bool Eventually(Cond cond) {
  for (int i = 0; i < 30000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

FetchContext WithDeadline(std::chrono::milliseconds ms) {
  FetchContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + ms;
  return ctx;
}

TEST(SliceResolverTest, TriesSourcesInOrder) {
  const std::string data = Content(100, 1);
  FakeSource a(Returns(Status::NotFound("a: no")), "a");
  FakeSource b(Serves(data), "b");
  FakeSource c(Returns(Status::NotFound("c: no")), "c");
  SliceResolver resolver(nullptr, {&a, &b, &c});
  auto r = resolver.Get(IdOf(data), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
  EXPECT_EQ(a.calls(), 1);
  EXPECT_EQ(b.calls(), 1);
  EXPECT_EQ(c.calls(), 0);
  EXPECT_EQ(resolver.stats().opened.load(), 1u);
  // No jigdo: no locations, null jigdo pointer.
  EXPECT_TRUE(a.last().locations.empty());
  EXPECT_EQ(a.last().jigdo, nullptr);
  EXPECT_EQ(a.last().id, IdOf(data));
}

TEST(SliceResolverTest, AllNotFoundNamesTheSlice) {
  const std::string data = Content(100, 2);
  FakeSource a(Returns(Status::NotFound("a: no")), "local");
  FakeSource b(Returns(Status::NotFound("b: no")), "scan");
  SliceResolver resolver(nullptr, {&a, &b});
  auto r = resolver.Get(IdOf(data), FetchContext{});
  ASSERT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find("no local copy of slice " + IdOf(data).digest.ToBase64()), std::string::npos) << msg;
  EXPECT_NE(msg.find("100 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("local scan"), std::string::npos) << msg;
  EXPECT_EQ(resolver.stats().not_found.load(), 1u);
}

TEST(SliceResolverTest, CorruptionOnlyWhenNothingElseWentWrong) {
  const std::string data = Content(100, 3);
  {
    FakeSource a(Returns(Status::Corruption("x: SHA256 mismatch")));
    FakeSource b(Returns(Status::NotFound("no")));
    SliceResolver resolver(nullptr, {&a, &b});
    auto r = resolver.Get(IdOf(data), FetchContext{});
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("x: SHA256 mismatch"), std::string::npos);
    EXPECT_EQ(b.calls(), 1);  // corruption does not stop the search
    EXPECT_EQ(resolver.stats().corrupt.load(), 1u);
  }
  {
    FakeSource a(Returns(Status::Corruption("x: SHA256 mismatch")));
    FakeSource b(Returns(Status::Unavailable("all mirrors failed")));
    SliceResolver resolver(nullptr, {&a, &b});
    auto r = resolver.Get(IdOf(data), FetchContext{});
    EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
    EXPECT_EQ(resolver.stats().unavailable.load(), 1u);
  }
  {
    FakeSource a(Returns(Status::IOError("x: Permission denied")));
    FakeSource b(Serves(data));
    SliceResolver resolver(nullptr, {&a, &b});
    EXPECT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok());
  }
}

TEST(SliceResolverTest, SourceReturningAnotherSliceIsRejected) {
  const std::string data = Content(100, 4);
  FakeSource a(Serves(Content(100, 5)));
  SliceResolver resolver(nullptr, {&a});
  auto r = resolver.Get(IdOf(data), FetchContext{});
  EXPECT_FALSE(r.ok());
}

TEST(SliceResolverTest, SingleFlightSixteenThreadsOneSourceCall) {
  const std::string data = Content(1000, 6);
  Gate gate;
  FakeSource slow([&](const SliceRequest&, const FetchContext&, int) -> SliceResult {
    gate.Wait();
    return Slice(data);
  });
  SliceResolver resolver(nullptr, {&slow});
  constexpr int kThreads = 16;
  std::vector<std::shared_ptr<const VerifiedSlice>> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = resolver.Get(IdOf(data), FetchContext{});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) got[i] = *r;
    });
  }
  EXPECT_TRUE(Eventually([&] { return resolver.stats().merged_waits.load() == kThreads - 1; }));
  EXPECT_EQ(slow.calls(), 1);
  gate.Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(slow.calls(), 1);
  for (int i = 1; i < kThreads; ++i) EXPECT_EQ(got[i], got[0]);
  EXPECT_EQ(resolver.stats().opened.load(), 1u);
  EXPECT_EQ(resolver.stats().merged_waits.load(), static_cast<uint64_t>(kThreads - 1));
}

TEST(SliceResolverTest, LruServesRepeatsAndEvictsOldest) {
  const std::string d1 = Content(10, 7), d2 = Content(10, 8), d3 = Content(10, 9);
  FakeSource src([&](const SliceRequest& req, const FetchContext&, int) -> SliceResult {
    for (const std::string* d : {&d1, &d2, &d3}) {
      if (req.id == IdOf(*d)) return Slice(*d);
    }
    return Status::NotFound("?");
  });
  SliceResolver resolver(nullptr, {&src}, /*max_open=*/2);
  auto first = resolver.Get(IdOf(d1), FetchContext{});
  ASSERT_TRUE(first.ok());
  auto again = resolver.Get(IdOf(d1), FetchContext{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(src.calls(), 1);
  EXPECT_EQ(resolver.stats().lru_hits.load(), 1u);

  ASSERT_TRUE(resolver.Get(IdOf(d2), FetchContext{}).ok());
  ASSERT_TRUE(resolver.Get(IdOf(d1), FetchContext{}).ok());  // d1 newest again
  ASSERT_TRUE(resolver.Get(IdOf(d3), FetchContext{}).ok());  // evicts d2
  EXPECT_EQ(src.calls(), 3);
  ASSERT_TRUE(resolver.Get(IdOf(d1), FetchContext{}).ok());
  EXPECT_EQ(src.calls(), 3);
  ASSERT_TRUE(resolver.Get(IdOf(d2), FetchContext{}).ok());
  EXPECT_EQ(src.calls(), 4);
}

// Slices held in memory (those the cache could not keep) are not kept open
// by the resolver: their memory is the mirror source's to manage.
TEST(SliceResolverTest, SlicesNotWorthKeepingOpenStayOutOfTheLru) {
  const std::string d1 = Content(10, 12);
  std::weak_ptr<const VerifiedSlice> handed_out;
  FakeSource src([&](const SliceRequest&, const FetchContext&, int) -> SliceResult {
    auto s = std::make_shared<MemSlice>(IdOf(d1), d1, /*keep=*/false);
    handed_out = s;
    return std::shared_ptr<const VerifiedSlice>(s);
  });
  SliceResolver resolver(nullptr, {&src}, /*max_open=*/8);
  {
    auto first = resolver.Get(IdOf(d1), FetchContext{});
    ASSERT_TRUE(first.ok());
  }
  EXPECT_TRUE(handed_out.expired());  // nobody holds it: its memory is free
  ASSERT_TRUE(resolver.Get(IdOf(d1), FetchContext{}).ok());
  EXPECT_EQ(src.calls(), 2);
  EXPECT_EQ(resolver.stats().lru_hits.load(), 0u);
}

TEST(SliceResolverTest, EvictedSliceStaysUsableByItsHolder) {
  const std::string d1 = Content(10, 10), d2 = Content(10, 11);
  FakeSource src([&](const SliceRequest& req, const FetchContext&, int) -> SliceResult {
    return Slice(req.id == IdOf(d1) ? d1 : d2);
  });
  SliceResolver resolver(nullptr, {&src}, /*max_open=*/1);
  auto held = resolver.Get(IdOf(d1), FetchContext{});
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(resolver.Get(IdOf(d2), FetchContext{}).ok());
  EXPECT_EQ(ReadAll(**held), d1);
}

TEST(SliceResolverTest, FailuresAreNotCached) {
  const std::string data = Content(100, 12);
  FakeSource src([&](const SliceRequest&, const FetchContext&, int call) -> SliceResult {
    if (call == 1) return Status::NotFound("not yet");
    return Slice(data);
  });
  SliceResolver resolver(nullptr, {&src});
  EXPECT_TRUE(resolver.Get(IdOf(data), FetchContext{}).status().IsNotFound());
  EXPECT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok());
  EXPECT_EQ(src.calls(), 2);
  EXPECT_EQ(resolver.stats().not_found.load(), 1u);
  EXPECT_EQ(resolver.stats().opened.load(), 1u);
}

TEST(SliceResolverTest, DeadlineIsRespected) {
  const std::string data = Content(100, 13);
  FakeSource blocking([&](const SliceRequest&, const FetchContext& ctx, int) -> SliceResult {
    while (!ctx.expired()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::TimedOut("fake: deadline passed");
  });
  FakeSource after(Serves(data));
  SliceResolver resolver(nullptr, {&blocking, &after});
  auto r = resolver.Get(IdOf(data), WithDeadline(std::chrono::milliseconds(50)));
  EXPECT_EQ(r.status().code(), Status::Code::kTimedOut) << r.status().ToString();
  EXPECT_EQ(after.calls(), 0);  // no point trying further once the caller's time is up
  EXPECT_EQ(resolver.stats().other_errors.load(), 1u);
}

TEST(SliceResolverTest, CancellationStopsTheLeader) {
  const std::string data = Content(100, 14);
  std::atomic<bool> entered{false};
  FakeSource blocking([&](const SliceRequest&, const FetchContext& ctx, int) -> SliceResult {
    entered = true;
    while (!ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Cancelled("fake: cancelled");
  });
  SliceResolver resolver(nullptr, {&blocking});
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  std::thread t([&] {
    ASSERT_TRUE(Eventually([&] { return entered.load(); }));
    ctx.cancel->Fire();
  });
  auto r = resolver.Get(IdOf(data), ctx);
  t.join();
  EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << r.status().ToString();
}

TEST(SliceResolverTest, WaiterThatGivesUpDoesNotCancelTheFetch) {
  const std::string data = Content(100, 15);
  Gate gate;
  FakeSource slow([&](const SliceRequest&, const FetchContext&, int) -> SliceResult {
    gate.Wait();
    return Slice(data);
  });
  SliceResolver resolver(nullptr, {&slow});
  SliceResult leader_result = Status::NotFound("unset");
  std::thread leader([&] { leader_result = resolver.Get(IdOf(data), FetchContext{}); });
  ASSERT_TRUE(Eventually([&] { return slow.calls() == 1; }));

  auto timed_out = resolver.Get(IdOf(data), WithDeadline(std::chrono::milliseconds(20)));
  EXPECT_EQ(timed_out.status().code(), Status::Code::kTimedOut) << timed_out.status().ToString();
  FetchContext cancelled;
  cancelled.cancel = std::make_shared<CancelSignal>();
  cancelled.cancel->Fire();
  auto c = resolver.Get(IdOf(data), cancelled);
  EXPECT_EQ(c.status().code(), Status::Code::kCancelled) << c.status().ToString();

  gate.Open();
  leader.join();
  ASSERT_TRUE(leader_result.ok()) << leader_result.status().ToString();
  EXPECT_EQ(slow.calls(), 1);
}

TEST(SliceResolverTest, AReaderJoiningAReadAheadFetchMakesItUrgent) {
  // The read-ahead leader's fetch sees, through its context, that a
  // reader now waits on it; a second read-ahead request does not do that.
  const std::string data = Content(100, 16);
  Gate gate;
  std::atomic<const FetchContext*> fetching{nullptr};  // the leader's, while its fetch runs
  FakeSource slow([&](const SliceRequest&, const FetchContext& ctx, int) -> SliceResult {
    fetching = &ctx;
    gate.Wait();
    return Slice(data);
  });
  SliceResolver resolver(nullptr, {&slow});
  std::thread leader([&] { EXPECT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok()); });
  ASSERT_TRUE(Eventually([&] { return slow.calls() == 1; }));
  std::thread read_ahead([&] { EXPECT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok()); });
  ASSERT_TRUE(Eventually([&] { return resolver.stats().merged_waits.load() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(fetching.load()->urgent());
  FetchContext reader;
  reader.foreground = true;
  std::thread joined([&] { EXPECT_TRUE(resolver.Get(IdOf(data), reader).ok()); });
  EXPECT_TRUE(Eventually([&] { return fetching.load()->urgent(); }));
  gate.Open();
  leader.join();
  read_ahead.join();
  joined.join();
  EXPECT_EQ(slow.calls(), 1);
}

TEST(SliceResolverTest, WaitersRetryWhenTheLeaderGaveUp) {
  const std::string data = Content(100, 16);
  FakeSource src([&](const SliceRequest&, const FetchContext& ctx, int call) -> SliceResult {
    if (call == 1) {
      while (!ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return Status::Cancelled("fake: leader cancelled");
    }
    return Slice(data);
  });
  SliceResolver resolver(nullptr, {&src});
  FetchContext leader_ctx;
  leader_ctx.cancel = std::make_shared<CancelSignal>();
  SliceResult leader_result = Status::NotFound("unset");
  std::thread leader([&] { leader_result = resolver.Get(IdOf(data), leader_ctx); });
  ASSERT_TRUE(Eventually([&] { return src.calls() == 1; }));
  SliceResult waiter_result = Status::NotFound("unset");
  std::thread waiter([&] { waiter_result = resolver.Get(IdOf(data), FetchContext{}); });
  ASSERT_TRUE(Eventually([&] { return resolver.stats().merged_waits.load() == 1; }));
  leader_ctx.cancel->Fire();
  leader.join();
  waiter.join();
  EXPECT_EQ(leader_result.status().code(), Status::Code::kCancelled) << leader_result.status().ToString();
  ASSERT_TRUE(waiter_result.ok()) << waiter_result.status().ToString();
  EXPECT_EQ(src.calls(), 2);
}

// The fetch a waiter joins began before the waiter came; a file put back
// in between is found by the waiter's own look, once. Also when another
// source's failure is the one reported (an offline cache's "not in the
// cache" says more than a local tree's "not found").
TEST(SliceResolverTest, AWaiterLooksAgainAfterAFetchThatBeganBeforeItFoundNoFile) {
  const std::string data = Content(100, 18);
  FakeSource offline(Returns(Status::Unavailable("fake: offline, not in the cache")), "cache");
  for (bool behind_offline : {false, true})
  for (Status first : {Status::NotFound("fake: not there yet"), Status::Corruption("fake: old bytes")}) {
    SCOPED_TRACE(first.ToString() + (behind_offline ? " behind an offline cache" : ""));
    Gate gate;
    FakeSource src([&](const SliceRequest&, const FetchContext&, int call) -> SliceResult {
      if (call == 1) {
        gate.Wait();
        return first;
      }
      return Slice(data);
    });
    std::vector<SliceSource*> sources{&src};
    if (behind_offline) sources.insert(sources.begin(), &offline);
    SliceResolver resolver(nullptr, sources);
    SliceResult leader_result = Status::OK();
    std::thread leader([&] { leader_result = resolver.Get(IdOf(data), FetchContext{}); });
    ASSERT_TRUE(Eventually([&] { return src.calls() == 1; }));
    SliceResult waiter_result = Status::NotFound("unset");
    std::thread waiter([&] { waiter_result = resolver.Get(IdOf(data), FetchContext{}); });
    ASSERT_TRUE(Eventually([&] { return resolver.stats().merged_waits.load() == 1; }));
    gate.Open();
    leader.join();
    waiter.join();
    const Status::Code reported = behind_offline ? Status::Code::kUnavailable : first.code();
    EXPECT_EQ(leader_result.status().code(), reported) << leader_result.status().ToString();
    ASSERT_TRUE(waiter_result.ok()) << waiter_result.status().ToString();
    EXPECT_EQ(src.calls(), 2);
  }
}

// ...but only once, and not for a failure the network gave (the mirror
// source has its own retries; a second round would double the wait).
TEST(SliceResolverTest, AWaiterLooksAgainOnlyOnceAndNotAfterAnUnreachableServer) {
  const std::string data = Content(100, 19);
  for (Status always : {Status::NotFound("fake: missing"), Status::Unavailable("fake: unreachable")}) {
    Gate gate;
    FakeSource src([&](const SliceRequest&, const FetchContext&, int call) -> SliceResult {
      if (call == 1) gate.Wait();
      return always;
    });
    SliceResolver resolver(nullptr, {&src});
    std::thread leader([&] { (void)resolver.Get(IdOf(data), FetchContext{}); });
    ASSERT_TRUE(Eventually([&] { return src.calls() == 1; }));
    SliceResult waiter_result = Status::OK();
    std::thread waiter([&] { waiter_result = resolver.Get(IdOf(data), FetchContext{}); });
    ASSERT_TRUE(Eventually([&] { return resolver.stats().merged_waits.load() == 1; }));
    gate.Open();
    leader.join();
    waiter.join();
    EXPECT_EQ(waiter_result.status().code(), always.code()) << waiter_result.status().ToString();
    EXPECT_EQ(src.calls(), always.IsNotFound() ? 2 : 1);
  }
}

TEST(SliceResolverTest, ZeroMaxOpenCachesNothing) {
  const std::string data = Content(100, 17);
  FakeSource src(Serves(data));
  SliceResolver resolver(nullptr, {&src}, /*max_open=*/0);
  ASSERT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok());
  ASSERT_TRUE(resolver.Get(IdOf(data), FetchContext{}).ok());
  EXPECT_EQ(src.calls(), 2);
}

// The resolver computes locations from the .jigdo ([Parts] + [Servers])
// and passes the .jigdo along; a LocalTreeSource then finds the file.
TEST(SliceResolverTest, UsesLocationsFromParsedJigdo) {
  TempDir tmp;
  const std::string data = Content(5000, 18);
  WriteFile(tmp / "mirror/pool/main/x.deb", data);
  const SliceId id = IdOf(data, HashAlgo::kMd5);
  const std::string text =
      "[Jigdo]\nVersion=1.1\n\n[Image]\nFilename=x.iso\nTemplate=x.template\n\n"
      "[Parts]\n" + id.digest.ToBase64() + "=Debian:pool/main/x.deb\n\n"
      "[Servers]\nDebian=http://127.0.0.1:9/debian/\n";
  auto parsed = ParseJigdo(text, tmp / "x.jigdo", nullptr);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto jigdo = std::make_shared<const JigdoFile>(std::move(parsed).value());

  FakeSource spy(Returns(Status::NotFound("spy")), "spy");
  LocalTreeSource local({{"Debian", tmp / "mirror"}}, FileUrlScope::kBeneathJigdo, nullptr);
  SliceResolver resolver(jigdo, {&spy, &local});
  auto r = resolver.Get(id, FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);

  SliceRequest seen = spy.last();
  EXPECT_EQ(seen.jigdo, jigdo.get());
  bool label_form = false, url_form = false;
  for (const SliceLocation& loc : seen.locations) {
    if (loc.label == "Debian" && loc.path == "pool/main/x.deb") label_form = true;
    if (loc.label.empty() && loc.path == "http://127.0.0.1:9/debian/pool/main/x.deb") url_form = true;
  }
  EXPECT_TRUE(label_form);
  EXPECT_TRUE(url_form);

  // An unknown slice: the message lists what was tried.
  const std::string other = Content(5000, 19);
  auto missing = resolver.Get(IdOf(other, HashAlgo::kMd5), FetchContext{});
  ASSERT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("MD5Sum:"), std::string::npos) << missing.status().ToString();
}

}  // namespace
}  // namespace jigdoofus
