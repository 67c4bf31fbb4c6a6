// Tests for fetch/downloader.h against tests/tools/fault_server.py, a real
// HTTP server on 127.0.0.1 (one per test, port learned from its port file,
// stopped by pid). No timing assertions: waits are bounded only so that a
// bug fails the test instead of hanging it.
#include "fetch/transport/downloader.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fetch/transport/server_url.h"
#include "tests/unit/fault_server_process.h"

extern char** environ;

namespace jigdoofus {
namespace {

using namespace testing_util;  // NOLINT: FaultServer, WriteFile, RandomBytes, kHangGuard

namespace fs = std::filesystem;
using std::chrono::seconds;

DownloadRequest Req(std::string url) {
  DownloadRequest r;
  r.url = std::move(url);
  return r;
}

// The outcome of one transfer, gathered from its callbacks.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  int done_calls = 0;
  DownloadResult result;
  std::string body;

  // Fills in the request's callbacks to record into this Outcome.
  DownloadRequest Wire(DownloadRequest req, std::shared_ptr<Outcome> self) {
    req.on_data = [self](std::span<const uint8_t> d) {
      std::lock_guard<std::mutex> lock(self->mu);
      self->body.append(reinterpret_cast<const char*>(d.data()), d.size());
      return DataAction::kContinue;
    };
    req.on_done = [self](const DownloadResult& r) {
      std::lock_guard<std::mutex> lock(self->mu);
      self->result = r;
      ++self->done_calls;
      self->cv.notify_all();
    };
    return req;
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kHangGuard, [&] { return done_calls > 0; });
  }
};

class DownloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tests talk to 127.0.0.1 directly even where a proxy is configured.
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    big_ = RandomBytes(3 << 20, 1);  // several write callbacks, several reads
    small_ = RandomBytes(5000, 2);
    WriteFile(server_.root() / "big.bin", big_);
    WriteFile(server_.root() / "small.bin", small_);
  }

  void StartServer(const std::vector<std::string>& faults = {}) { ASSERT_NO_FATAL_FAILURE(server_.Start(faults)); }

  std::unique_ptr<Downloader> MakeDownloader(DownloaderOptions opts = {}) {
    auto d = Downloader::Create(std::move(opts));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(d).value() : nullptr;
  }

  // Runs one transfer to completion.
  std::shared_ptr<Outcome> Run(Downloader& d, const std::string& url, uint64_t expected = UINT64_MAX,
                               uint64_t max_size = UINT64_MAX) {
    auto o = std::make_shared<Outcome>();
    DownloadRequest req;
    req.url = url;
    req.expected_size = expected;
    req.max_size = max_size;
    d.Submit(o->Wire(std::move(req), o));
    EXPECT_TRUE(o->Wait()) << "no on_done for " << url;
    return o;
  }

  FetchError RunError(const std::string& path, uint64_t expected = UINT64_MAX, DownloaderOptions opts = {}) {
    auto d = MakeDownloader(std::move(opts));
    auto o = Run(*d, server_.Url(path), expected);
    return o->result.error;
  }

  // Twelve downloads of 0.1 s each from one server, submitted at once
  // with `opts` (and `setup` run on the downloader first): the most the
  // server saw at once.
  int MostAtOnceOfTwelveSlow(DownloaderOptions opts, const std::function<void(Downloader&)>& setup = {}) {
    for (int i = 0; i < 12; ++i) WriteFile(server_.root() / "slow" / (std::to_string(i) + ".bin"), small_);
    StartServer({"/slow/*=slow:50000"});  // 0.1 s each: transfers overlap
    auto d = MakeDownloader(std::move(opts));
    if (setup) setup(*d);
    std::vector<std::shared_ptr<Outcome>> outcomes;
    for (int i = 0; i < 12; ++i) {
      auto o = std::make_shared<Outcome>();
      d->Submit(o->Wire(Req(server_.Url("/slow/" + std::to_string(i) + ".bin")), o));
      outcomes.push_back(o);
    }
    for (auto& o : outcomes) {
      EXPECT_TRUE(o->Wait());
      EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
      EXPECT_TRUE(o->body == small_);
    }
    return server_.Stats()["max_concurrent"].get<int>();
  }

  FaultServer server_;
  std::string big_, small_;
};

TEST_F(DownloaderTest, RangeRequestsGetExactlyTheirBytes) {
  StartServer({"/norange/*=norange", "/badrange/*=badrange"});
  WriteFile(server_.root() / "norange" / "big.bin", big_);
  WriteFile(server_.root() / "badrange" / "big.bin", big_);
  auto d = MakeDownloader();
  auto ranged = [&](const std::string& path, uint64_t begin, uint64_t end, uint64_t total) {
    auto o = std::make_shared<Outcome>();
    DownloadRequest req;
    req.url = server_.Url(path);
    req.expected_size = end - begin;
    req.range = DownloadRequest::ByteRange{begin, end, total};
    d->Submit(o->Wire(std::move(req), o));
    EXPECT_TRUE(o->Wait());
    return o;
  };
  // The middle, the first byte, the last byte.
  for (auto [b, e] : std::vector<std::pair<uint64_t, uint64_t>>{{1000, 2000000}, {0, 1}, {big_.size() - 1, big_.size()}}) {
    auto o = ranged("/big.bin", b, e, big_.size());
    EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
    EXPECT_EQ(o->result.http_status, 206);
    EXPECT_TRUE(o->body == big_.substr(b, e - b)) << b << "-" << e;
  }
  // A server that ignores Range, or answers with other bytes, or a file of
  // another size: kNoRange, and not one of its bytes reaches on_data.
  for (const auto& [path, total] : std::vector<std::pair<std::string, uint64_t>>{
           {"/norange/big.bin", big_.size()}, {"/badrange/big.bin", big_.size()}, {"/big.bin", big_.size() + 1}}) {
    auto o = ranged(path, 1000, 2000, total);
    EXPECT_EQ(o->result.error, FetchError::kNoRange) << path << ": " << o->result.message;
    EXPECT_TRUE(o->body.empty()) << path;
    EXPECT_NE(o->result.message.find("asked for bytes 1000-1999"), std::string::npos) << o->result.message;
  }
  EXPECT_FALSE(ShouldRetryServerLater(FetchError::kNoRange));
}

TEST_F(DownloaderTest, FetchesBodyByteExact) {
  StartServer();
  auto d = MakeDownloader();
  auto o = Run(*d, server_.Url("/big.bin"), big_.size());
  EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
  EXPECT_EQ(o->result.http_status, 200);
  EXPECT_EQ(o->result.bytes, big_.size());
  EXPECT_TRUE(o->result.message.empty());
  EXPECT_TRUE(o->body == big_);
  EXPECT_EQ(o->done_calls, 1);

  auto unknown = Run(*d, server_.Url("/small.bin"));  // size not known up front
  EXPECT_EQ(unknown->result.error, FetchError::kOk) << unknown->result.message;
  EXPECT_TRUE(unknown->body == small_);

  DownloaderStats st = d->stats();
  EXPECT_EQ(st.submitted, 2u);
  EXPECT_EQ(st.completed, 2u);
  EXPECT_EQ(st.succeeded, 2u);
  EXPECT_EQ(st.body_bytes, big_.size() + small_.size());
}

TEST_F(DownloaderTest, HttpStatusClasses) {
  StartServer({"/gone=404", "/boom=500", "/busy=503", "/denied=403"});
  auto d = MakeDownloader();
  auto missing = Run(*d, server_.Url("/gone"));
  EXPECT_EQ(missing->result.error, FetchError::kNotFound);
  EXPECT_EQ(missing->result.http_status, 404);
  EXPECT_TRUE(missing->body.empty()) << "an error page reached on_data";
  EXPECT_NE(missing->result.message.find(server_.Url("/gone")), std::string::npos) << missing->result.message;
  EXPECT_EQ(missing->result.message.find('\n'), std::string::npos);

  EXPECT_EQ(Run(*d, server_.Url("/no-such-file"))->result.error, FetchError::kNotFound);
  EXPECT_EQ(Run(*d, server_.Url("/boom"))->result.error, FetchError::kServerError);
  EXPECT_EQ(Run(*d, server_.Url("/busy"))->result.error, FetchError::kServerError);
  auto denied = Run(*d, server_.Url("/denied"));
  EXPECT_EQ(denied->result.error, FetchError::kClientError);
  EXPECT_EQ(denied->result.http_status, 403);

  DownloaderStats st = d->stats();
  EXPECT_EQ(st.failed(FetchError::kNotFound), 2u);
  EXPECT_EQ(st.failed(FetchError::kServerError), 2u);
  EXPECT_EQ(st.failed(FetchError::kClientError), 1u);
  EXPECT_EQ(st.succeeded, 0u);
}

TEST_F(DownloaderTest, ResetMidBodyIsNetworkError) {
  StartServer({"/big.bin=reset"});
  EXPECT_EQ(RunError("/big.bin", big_.size()), FetchError::kNetwork);
}

TEST_F(DownloaderTest, TruncatedBody) {
  StartServer({"/big.bin=truncate"});
  EXPECT_EQ(RunError("/big.bin", big_.size()), FetchError::kTruncated);
  EXPECT_EQ(RunError("/big.bin"), FetchError::kTruncated);  // Content-Length says more than came
}

TEST_F(DownloaderTest, ShorterThanExpectedIsTruncated) {
  StartServer();
  auto d = MakeDownloader();
  auto o = Run(*d, server_.Url("/small.bin"), small_.size() + 1);
  EXPECT_EQ(o->result.error, FetchError::kTruncated);
  EXPECT_NE(o->result.message.find("of " + std::to_string(small_.size() + 1)), std::string::npos)
      << o->result.message;
}

TEST_F(DownloaderTest, LongerThanExpectedIsTooLong) {
  StartServer({"/big.bin=long", "/small.bin=nolength"});
  EXPECT_EQ(RunError("/big.bin", big_.size()), FetchError::kTooLong);  // announced too long
  auto d = MakeDownloader();
  // No Content-Length: caught by counting bytes as they arrive.
  auto o = Run(*d, server_.Url("/small.bin"), UINT64_MAX, /*max_size=*/1000);
  EXPECT_EQ(o->result.error, FetchError::kTooLong) << o->result.message;
  EXPECT_LE(o->body.size(), 1000u);
  auto exact = Run(*d, server_.Url("/small.bin"), small_.size());
  EXPECT_EQ(exact->result.error, FetchError::kOk) << exact->result.message;
  EXPECT_TRUE(exact->body == small_);
}

TEST_F(DownloaderTest, CorruptBodyIsDeliveredForTheCallerToReject) {
  StartServer({"/big.bin=corrupt"});
  auto d = MakeDownloader();
  auto o = Run(*d, server_.Url("/big.bin"), big_.size());
  EXPECT_EQ(o->result.error, FetchError::kOk);
  EXPECT_EQ(o->body.size(), big_.size());
  EXPECT_FALSE(o->body == big_);
}

TEST_F(DownloaderTest, Redirects) {
  StartServer({"/loop=redirect-loop", "/moved=redirect:/small.bin"});
  auto d = MakeDownloader();
  auto loop = Run(*d, server_.Url("/loop"));
  EXPECT_EQ(loop->result.error, FetchError::kTooManyRedirects) << loop->result.message;
  EXPECT_LE(server_.Requests("/loop"), 12);  // max_redirects 10, plus the first
  auto moved = Run(*d, server_.Url("/moved"), small_.size());
  EXPECT_EQ(moved->result.error, FetchError::kOk) << moved->result.message;
  EXPECT_TRUE(moved->body == small_);
}

// An https:// transfer follows redirects only to https://: a document
// fetched over TLS is never quietly downgraded to plain HTTP.
TEST_F(DownloaderTest, HttpsRedirectsStayHttps) {
  StartServer();  // the plain server the downgrade would reach
  FaultServer tls;
  WriteFile(tls.root() / "small.bin", small_);
  tls.Start({"/to-http=redirect:" + server_.Url("/small.bin"), "/to-https=redirect:/small.bin"}, /*tls=*/true);
  DownloaderOptions opts;
  opts.ca_file = tls.ca_file();
  auto d = MakeDownloader(opts);
  auto same = Run(*d, tls.Url("/to-https"), small_.size());
  EXPECT_EQ(same->result.error, FetchError::kOk) << same->result.message;
  EXPECT_TRUE(same->body == small_);
  auto down = Run(*d, tls.Url("/to-http"));
  EXPECT_NE(down->result.error, FetchError::kOk);
  EXPECT_TRUE(down->body.empty());
  EXPECT_EQ(server_.Requests("/small.bin"), 0) << "the redirect to http:// was followed";
  // Plain http may still be redirected to http.
  auto plain = Run(*d, server_.Url("/small.bin"), small_.size());
  EXPECT_EQ(plain->result.error, FetchError::kOk) << plain->result.message;
}

TEST_F(DownloaderTest, FlakyServerSucceedsAfterN) {
  StartServer({"/small.bin=flaky-2"});
  auto d = MakeDownloader();
  auto first = Run(*d, server_.Url("/small.bin"));
  EXPECT_EQ(first->result.error, FetchError::kServerError);
  EXPECT_TRUE(ShouldRetryServerLater(first->result.error));
  EXPECT_EQ(Run(*d, server_.Url("/small.bin"))->result.error, FetchError::kServerError);
  auto third = Run(*d, server_.Url("/small.bin"));
  EXPECT_EQ(third->result.error, FetchError::kOk);
  EXPECT_TRUE(third->body == small_);
  EXPECT_EQ(server_.Requests("/small.bin"), 3);
}

TEST_F(DownloaderTest, ConnectionRefused) {
  // A port that was free a moment ago: bind, learn it, close.
  StartServer();
  const std::string url = server_.Url("/small.bin");
  server_.Stop();
  auto d = MakeDownloader();
  auto o = Run(*d, url);
  EXPECT_EQ(o->result.error, FetchError::kConnect) << o->result.message;
  EXPECT_TRUE(ShouldRetryServerLater(o->result.error));
}

TEST_F(DownloaderTest, LowSpeedTimeoutEndsAStall) {
  StartServer({"/big.bin=stall:120"});
  DownloaderOptions opts;
  opts.low_speed_limit = 100;
  opts.low_speed_time = seconds(2);
  EXPECT_EQ(RunError("/big.bin", big_.size(), opts), FetchError::kTimeout);
}

TEST_F(DownloaderTest, BadUrls) {
  auto d = MakeDownloader();
  EXPECT_EQ(Run(*d, "nonsense://host/x")->result.error, FetchError::kBadUrl);
  EXPECT_EQ(Run(*d, "not a url at all")->result.error, FetchError::kBadUrl);
  EXPECT_EQ(Run(*d, "gopher://127.0.0.1:1/x")->result.error, FetchError::kBadUrl);
}

// Nothing the downloader fetches may read a local file: documents from the
// network name what is downloaded.
TEST_F(DownloaderTest, FileUrlsAreRefused) {
  auto d = MakeDownloader();
  auto local = Run(*d, "file://" + (server_.root() / "small.bin").string(), small_.size());
  EXPECT_EQ(local->result.error, FetchError::kBadUrl) << local->result.message;
  EXPECT_TRUE(local->body.empty());
}

TEST_F(DownloaderTest, AwkwardFileNamesReachTheServerIntact) {
  const std::string name = "pool/g++ 12/a b+c~d%e#f?g&h;i.deb";
  WriteFile(server_.root() / name, small_);
  StartServer();
  auto d = MakeDownloader();
  const std::string url = ServerFileUrl(server_.Url("/"), name);
  auto o = Run(*d, url, small_.size());
  EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
  EXPECT_TRUE(o->body == small_);
  EXPECT_EQ(server_.Requests("/" + name), 1);
}

TEST_F(DownloaderTest, ConsumerAbortIsCancelled) {
  StartServer();
  auto d = MakeDownloader();
  auto o = std::make_shared<Outcome>();
  DownloadRequest req = o->Wire(Req(server_.Url("/big.bin")), o);
  req.on_data = [](std::span<const uint8_t>) { return DataAction::kAbort; };
  d->Submit(std::move(req));
  ASSERT_TRUE(o->Wait());
  EXPECT_EQ(o->result.error, FetchError::kCancelled) << o->result.message;
}

// A consumer that refuses every other piece (kPause) gets the same bytes
// again after Resume(): the body is exact and nothing is counted twice.
TEST_F(DownloaderTest, PausedTransferResumesWithTheRefusedBytes) {
  StartServer();
  auto d = MakeDownloader();
  auto o = std::make_shared<Outcome>();
  auto pauses = std::make_shared<std::atomic<int>>(0);
  DownloadRequest req = o->Wire(Req(server_.Url("/big.bin")), o);
  req.on_data = [o, pauses, calls = 0](std::span<const uint8_t> bytes) mutable {
    if (++calls % 2 == 1) {
      ++*pauses;
      return DataAction::kPause;
    }
    std::lock_guard<std::mutex> lock(o->mu);
    o->body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return DataAction::kContinue;
  };
  TransferHandle h = d->Submit(std::move(req));
  std::atomic<bool> stop{false};
  std::thread resumer([&] {
    while (!stop) {
      d->Resume(h);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const bool finished = o->Wait();
  stop = true;
  resumer.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
  EXPECT_GT(pauses->load(), 2);
  EXPECT_EQ(o->result.bytes, big_.size());
  EXPECT_TRUE(o->body == big_);
  EXPECT_EQ(d->stats().body_bytes, big_.size());
  d->Resume(h);  // ended: a no-op
}

// 200 small transfers with --jobs 4, 2 per host: all byte-exact, never more
// than 2 requests in progress at the server, connections reused.
TEST_F(DownloaderTest, ManyTransfersStayWithinLimitsAndReuseConnections) {
  constexpr int kFiles = 200;
  std::vector<std::string> bodies;
  for (int i = 0; i < kFiles; ++i) {
    bodies.push_back(RandomBytes(200 + i * 37, 100 + i));
    WriteFile(server_.root() / "many" / (std::to_string(i) + ".bin"), bodies.back());
  }
  StartServer();
  DownloaderOptions opts;
  opts.max_parallel = 4;
  opts.max_per_host = 2;
  auto d = MakeDownloader(opts);
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < kFiles; ++i) {
    auto o = std::make_shared<Outcome>();
    DownloadRequest req;
    req.url = server_.Url("/many/" + std::to_string(i) + ".bin");
    req.expected_size = bodies[i].size();
    d->Submit(o->Wire(std::move(req), o));
    outcomes.push_back(o);
  }
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait());
    EXPECT_EQ(outcomes[i]->result.error, FetchError::kOk) << outcomes[i]->result.message;
    EXPECT_TRUE(outcomes[i]->body == bodies[i]) << i;
    EXPECT_EQ(outcomes[i]->done_calls, 1);
  }
  auto stats = server_.Stats();
  EXPECT_EQ(stats["total"].get<int>(), kFiles);
  EXPECT_GE(stats["max_concurrent"].get<int>(), 1);
  EXPECT_LE(stats["max_concurrent"].get<int>(), 2);
  DownloaderStats st = d->stats();
  EXPECT_EQ(st.succeeded, static_cast<uint64_t>(kFiles));
  EXPECT_GE(st.connections_opened, 1u);
  EXPECT_LE(st.connections_opened, 4u) << "connections are not being reused";
  EXPECT_GE(st.connections_reused, static_cast<uint64_t>(kFiles - 4));
  // The server saw its control connection(s) too; the downloader's are few.
  EXPECT_LE(stats["connections"].get<int>(), 4 + 4);
}

TEST_F(DownloaderTest, TotalLimitBoundsParallelTransfers) {
  DownloaderOptions opts;
  opts.max_parallel = 3;
  opts.max_per_host = 8;
  EXPECT_LE(MostAtOnceOfTwelveSlow(opts), 3);
}

TEST_F(DownloaderTest, AServersLimitCanBeRaisedUpToTheCeiling) {
  DownloaderOptions opts;
  opts.max_parallel = 8;
  opts.max_per_host = 2;
  opts.max_per_host_ceiling = 5;
  const int most = MostAtOnceOfTwelveSlow(opts, [&](Downloader& d) {
    d.SetHostLimit(ServerKey(server_.Url("/")), 100);  // clamped to 5
  });
  EXPECT_GE(most, 4);
  EXPECT_LE(most, 5);
}

// Waits until the server has seen `n` requests for `path`.
void WaitForRequests(FaultServer& server, const std::string& path, int n) {
  auto give_up = std::chrono::steady_clock::now() + kHangGuard;
  while (server.Requests(path) < n) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "server never saw " << path;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST_F(DownloaderTest, CancelStalledTransferAndQueuedOne) {
  StartServer({"/big.bin=stall:300"});
  DownloaderOptions opts;
  opts.max_parallel = 1;
  auto d = MakeDownloader(opts);
  auto stalled = std::make_shared<Outcome>();
  auto queued = std::make_shared<Outcome>();
  TransferHandle h1 = d->Submit(stalled->Wire(Req(server_.Url("/big.bin")), stalled));
  TransferHandle h2 = d->Submit(queued->Wire(Req(server_.Url("/small.bin")), queued));
  EXPECT_NE(h1.id, h2.id);
  ASSERT_NO_FATAL_FAILURE(WaitForRequests(server_, "/big.bin", 1));

  d->Cancel(h2);  // still waiting for the only slot
  ASSERT_TRUE(queued->Wait());
  EXPECT_EQ(queued->result.error, FetchError::kCancelled);
  EXPECT_EQ(stalled->done_calls, 0);

  d->Cancel(h1);  // mid-transfer
  ASSERT_TRUE(stalled->Wait());
  EXPECT_EQ(stalled->result.error, FetchError::kCancelled);
  EXPECT_EQ(server_.Requests("/small.bin"), 0);

  d->Cancel(h1);  // already over: a no-op
  auto after = Run(*d, server_.Url("/small.bin"));  // the slot is free again
  EXPECT_EQ(after->result.error, FetchError::kOk);
  EXPECT_EQ(stalled->done_calls, 1);
  EXPECT_EQ(queued->done_calls, 1);
  EXPECT_EQ(d->stats().failed(FetchError::kCancelled), 2u);
}

TEST_F(DownloaderTest, UrgentTransfersStartBeforeQueuedOthers) {
  // One slot, held by a slow transfer; then three background transfers and
  // two urgent ones queue. The urgent ones run next, in their order.
  for (int i = 0; i < 5; ++i) WriteFile(server_.root() / "q" / (std::to_string(i) + ".bin"), small_);
  StartServer({"/big.bin=slow:3000000"});
  DownloaderOptions opts;
  opts.max_parallel = 1;
  auto d = MakeDownloader(opts);
  std::mutex order_mu;
  std::vector<int> order;
  auto first = std::make_shared<Outcome>();
  d->Submit(first->Wire(Req(server_.Url("/big.bin")), first));
  ASSERT_NO_FATAL_FAILURE(WaitForRequests(server_, "/big.bin", 1));
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < 5; ++i) {
    auto o = std::make_shared<Outcome>();
    DownloadRequest req = o->Wire(Req(server_.Url("/q/" + std::to_string(i) + ".bin")), o);
    req.urgent = i >= 3;
    auto done = req.on_done;
    req.on_done = [done, i, &order_mu, &order](const DownloadResult& r) {
      {
        std::lock_guard<std::mutex> lock(order_mu);
        order.push_back(i);
      }
      done(r);
    };
    d->Submit(std::move(req));
    outcomes.push_back(o);
  }
  for (auto& o : outcomes) ASSERT_TRUE(o->Wait());
  ASSERT_TRUE(first->Wait());
  EXPECT_EQ(order, (std::vector<int>{3, 4, 0, 1, 2}));
}

// Two transfers to a plain HTTP server not seen before run at once: the
// second does not wait for the first to end (curl's PIPEWAIT would park
// it until then, waiting to learn whether the server multiplexes).
TEST_F(DownloaderTest, TransfersToAFreshHttpServerRunAtOnce) {
  WriteFile(server_.root() / "slow" / "a.bin", big_);
  WriteFile(server_.root() / "slow" / "b.bin", big_);
  StartServer({"/slow/*=slow:1500000"});  // about 2 s each
  auto d = MakeDownloader();
  auto a = std::make_shared<Outcome>(), b = std::make_shared<Outcome>();
  d->Submit(a->Wire(Req(server_.Url("/slow/a.bin")), a));
  d->Submit(b->Wire(Req(server_.Url("/slow/b.bin")), b));
  ASSERT_NO_FATAL_FAILURE(WaitForRequests(server_, "/slow/b.bin", 1));
  {
    std::lock_guard<std::mutex> lock(a->mu);
    EXPECT_EQ(a->done_calls, 0) << "the second request reached the server only after the first ended";
  }
  ASSERT_TRUE(a->Wait());
  ASSERT_TRUE(b->Wait());
  EXPECT_TRUE(a->body == big_ && b->body == big_);
}

// Submits four transfers of /c/0.bin .. /c/3.bin (big_, slow) at once and
// checks that all four reach `server` before any has ended, and that each
// arrives exact.
void ExpectFourAtOnce(Downloader& d, FaultServer& server, const std::string& big) {
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < 4; ++i) {
    auto o = std::make_shared<Outcome>();
    d.Submit(o->Wire(Req(server.Url("/c/" + std::to_string(i) + ".bin")), o));
    outcomes.push_back(o);
  }
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(WaitForRequests(server, "/c/" + std::to_string(i) + ".bin", 1));
  int ended = 0;
  for (auto& o : outcomes) {
    std::lock_guard<std::mutex> lock(o->mu);
    ended += o->done_calls;
  }
  EXPECT_EQ(ended, 0) << "a request reached the server only after another had ended";
  for (auto& o : outcomes) {
    ASSERT_TRUE(o->Wait());
    EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
    EXPECT_TRUE(o->body == big);
  }
}

// A server that closes every connection (no keep-alive) still gets its
// transfers at once, not one after another: four slow ones all reach it
// before the first has ended. (With PIPEWAIT on plain http, curl waited
// on each new connection in turn to learn whether it multiplexes.)
TEST_F(DownloaderTest, ServerWithoutKeepAliveGetsTransfersInParallel) {
  for (int i = 0; i < 4; ++i) WriteFile(server_.root() / "c" / (std::to_string(i) + ".bin"), big_);
  StartServer({"/c/*=close:1500000"});  // about 2 s each
  auto d = MakeDownloader();
  ExpectFourAtOnce(*d, server_, big_);
}

// Over https PIPEWAIT stays: curl learns from the TLS handshake (ALPN)
// that a server will not multiplex, so transfers to a fresh https server
// that closes every connection still run at once.
TEST_F(DownloaderTest, HttpsServerWithoutKeepAliveGetsTransfersInParallel) {
  FaultServer tls;
  for (int i = 0; i < 4; ++i) WriteFile(tls.root() / "c" / (std::to_string(i) + ".bin"), big_);
  ASSERT_NO_FATAL_FAILURE(tls.Start({"/c/*=close:1500000"}, /*tls=*/true));
  DownloaderOptions opts;
  opts.ca_file = tls.ca_file();
  auto d = MakeDownloader(opts);
  ExpectFourAtOnce(*d, tls, big_);
}

TEST_F(DownloaderTest, DestructorCancelsEverythingInFlight) {
  for (int i = 0; i < 10; ++i) WriteFile(server_.root() / "stall" / (std::to_string(i) + ".bin"), small_);
  StartServer({"/stall/*=stall:300"});
  std::vector<std::shared_ptr<Outcome>> outcomes;
  {
    DownloaderOptions opts;
    opts.max_parallel = 4;
    opts.max_per_host = 4;
    auto d = MakeDownloader(opts);
    for (int i = 0; i < 10; ++i) {
      auto o = std::make_shared<Outcome>();
      d->Submit(o->Wire(Req(server_.Url("/stall/" + std::to_string(i) + ".bin")), o));
      outcomes.push_back(o);
    }
    ASSERT_NO_FATAL_FAILURE(WaitForRequests(server_, "/stall/0.bin", 1));
  }  // ~Downloader: 4 running, 6 queued
  for (auto& o : outcomes) {
    EXPECT_EQ(o->done_calls, 1);
    EXPECT_EQ(o->result.error, FetchError::kCancelled);
  }
}

TEST_F(DownloaderTest, CallbacksMaySubmitMore) {
  StartServer();
  auto d = MakeDownloader();
  auto second = std::make_shared<Outcome>();
  auto first = std::make_shared<Outcome>();
  DownloadRequest req = first->Wire(Req(server_.Url("/small.bin")), first);
  Downloader* raw = d.get();
  std::string url2 = server_.Url("/big.bin");
  auto inner_done = req.on_done;
  req.on_done = [=](const DownloadResult& r) {
    raw->Submit(second->Wire(Req(url2), second));
    inner_done(r);
  };
  d->Submit(std::move(req));
  ASSERT_TRUE(first->Wait());
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(second->result.error, FetchError::kOk);
  EXPECT_TRUE(second->body == big_);
}

TEST_F(DownloaderTest, ProxyEnvironmentIsHonoured) {
  StartServer();
  auto d = MakeDownloader();
  // The fault server answers absolute-form requests too, so it can stand
  // in for a proxy; the host name below is never resolved.
  setenv("http_proxy", server_.Url("").c_str(), 1);
  auto o = Run(*d, "http://mirror.example.invalid/small.bin", small_.size());
  unsetenv("http_proxy");
  EXPECT_EQ(o->result.error, FetchError::kOk) << o->result.message;
  EXPECT_TRUE(o->body == small_);
  EXPECT_EQ(server_.Requests("/small.bin"), 1);
}

TEST_F(DownloaderTest, RuntimeFaultControl) {
  StartServer();
  ASSERT_NO_FATAL_FAILURE(server_.AddFault("/small.bin", "404"));
  auto d = MakeDownloader();
  EXPECT_EQ(Run(*d, server_.Url("/small.bin"))->result.error, FetchError::kNotFound);
  ASSERT_NO_FATAL_FAILURE(server_.AddFault("/small.bin", "none"));
  EXPECT_EQ(Run(*d, server_.Url("/small.bin"))->result.error, FetchError::kOk);
  EXPECT_EQ(server_.Requests("/small.bin"), 2);
}

TEST_F(DownloaderTest, RangeRequestsAreServed) {
  // fault_server.py is used by integration tests for ranges; check it here.
  StartServer();
  CurlEasy e(curl_easy_init());
  ASSERT_TRUE(e);
  std::string got;
  const std::string url = server_.Url("/small.bin");
  curl_easy_setopt(e.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.get(), CURLOPT_RANGE, "100-199");
  curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* u) {
    static_cast<std::string*>(u)->append(p, s * n);
    return s * n;
  });
  curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &got);
  ASSERT_EQ(curl_easy_perform(e.get()), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &status);
  EXPECT_EQ(status, 206);
  EXPECT_TRUE(got == small_.substr(100, 100));
}

TEST_F(DownloaderTest, FetchToStringAndFile) {
  WriteFile(server_.root() / "stuck", small_);
  StartServer({"/gone=404", "/stuck=stall:300"});
  auto d = MakeDownloader();
  auto s = FetchToString(*d, server_.Url("/small.bin"), 1 << 20);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(*s == small_);

  auto too_big = FetchToString(*d, server_.Url("/small.bin"), 100);
  EXPECT_EQ(too_big.status().code(), Status::Code::kCorruption) << too_big.status().ToString();
  auto missing = FetchToString(*d, server_.Url("/gone"), 1 << 20);
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  FetchContext deadline;
  deadline.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  auto late = FetchToString(*d, server_.Url("/stuck"), 1 << 20, deadline);
  EXPECT_EQ(late.status().code(), Status::Code::kTimedOut) << late.status().ToString();

  FetchContext interrupted;
  interrupted.cancel = std::make_shared<CancelSignal>();
  interrupted.cancel->Fire();
  auto gone = FetchToString(*d, server_.Url("/stuck"), 1 << 20, interrupted);
  EXPECT_EQ(gone.status().code(), Status::Code::kCancelled) << gone.status().ToString();

  const fs::path out = server_.dir() / "out.bin";
  auto n = FetchToFile(*d, server_.Url("/big.bin"), out.string(), 1 << 30);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, big_.size());
  std::ifstream in(out, std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(written == big_);
  EXPECT_FALSE(fs::exists(out.string() + ".part"));

  const fs::path bad = server_.dir() / "bad.bin";
  auto failed = FetchToFile(*d, server_.Url("/gone"), bad.string(), 1 << 30);
  EXPECT_TRUE(failed.status().IsNotFound());
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(bad.string() + ".part"));
}

TEST(FetchErrorTest, NamesAndRetryAdvice) {
  std::map<std::string, int> names;
  for (size_t i = 0; i < kFetchErrorCount; ++i) names[ToString(static_cast<FetchError>(i))]++;
  EXPECT_EQ(names.size(), kFetchErrorCount) << "ToString names must be distinct";
  EXPECT_STREQ(ToString(FetchError::kTooLong), "too-long");

  EXPECT_TRUE(ShouldRetryServerLater(FetchError::kTimeout));
  EXPECT_TRUE(ShouldRetryServerLater(FetchError::kNetwork));
  EXPECT_TRUE(ShouldRetryServerLater(FetchError::kTruncated));
  EXPECT_FALSE(ShouldRetryServerLater(FetchError::kNotFound));
  EXPECT_FALSE(ShouldRetryServerLater(FetchError::kBadChecksum));
  EXPECT_FALSE(ShouldRetryServerLater(FetchError::kTooManyRedirects));
  EXPECT_FALSE(ShouldRetryServerLater(FetchError::kCancelled));

  EXPECT_TRUE(FetchErrorToStatus(FetchError::kNotFound, "x").IsNotFound());
  EXPECT_TRUE(FetchErrorToStatus(FetchError::kBadChecksum, "x").IsCorruption());
  EXPECT_EQ(FetchErrorToStatus(FetchError::kConnect, "x").code(), Status::Code::kUnavailable);
  EXPECT_EQ(FetchErrorToStatus(FetchError::kTimeout, "x").code(), Status::Code::kTimedOut);
  EXPECT_EQ(FetchErrorToStatus(FetchError::kCancelled, "x").code(), Status::Code::kCancelled);
}

TEST(DownloaderCreateTest, RejectsZeroLimits) {
  DownloaderOptions opts;
  opts.max_parallel = 0;
  EXPECT_EQ(Downloader::Create(opts).status().code(), Status::Code::kInvalidArgument);
  opts.max_parallel = 1;
  opts.max_per_host = 0;
  EXPECT_EQ(Downloader::Create(opts).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace jigdoofus
