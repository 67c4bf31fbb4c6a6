// MirrorSource against a real HTTP server (tests/tools/fault_server.py on
// 127.0.0.1) and a real LMDB chunk store in a temp directory.
#include "fetch/sources/mirror_source.h"

#include <atomic>

#include <gtest/gtest.h>

#include "cache/lmdb_env.h"
#include "core/digest.h"
#include "fetch/transport/server_url.h"
#include "tests/unit/fault_server_process.h"

namespace jigdoofus {
namespace {

using namespace testing_util;  // NOLINT: FaultServer, WriteFile, RandomBytes

SliceId IdOf(const std::string& bytes, HashAlgo algo = HashAlgo::kSha256) {
  return SliceId{HashBytes(algo, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}), bytes.size()};
}

std::string ReadAll(const VerifiedSlice& s) {
  std::string out(s.id().size, '\0');
  EXPECT_TRUE(s.ReadAt(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}).ok());
  return out;
}

class MirrorSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/jigdoofus-mirror-XXXXXX";
    cache_dir_ = mkdtemp(tmpl);
    auto env = LmdbEnv::Open(cache_dir_ + "/cache", LmdbOptions{.durable = false});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    auto store = ChunkStore::Open(env_.get(), ChunkStoreOptions{.capacity = 64 << 20});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    DownloaderOptions dopts;
    dopts.low_speed_time = seconds(3);
    auto dl = Downloader::Create(dopts);
    ASSERT_TRUE(dl.ok());
    downloader_ = std::move(dl).value();

    pkg_ = RandomBytes(700 * 1024, 7);
    weird_ = RandomBytes(3000, 8);
    WriteFile(good_.root() / "debian/pool/main/p/pkg.deb", pkg_);
    WriteFile(good_.root() / "debian/pool/main/b/we+ird name~1.deb", weird_);
    WriteFile(bad_.root() / "debian/pool/main/p/pkg.deb", pkg_);
    good_.Start();
    bad_.Start();
  }
  void TearDown() override {
    downloader_.reset();
    store_.reset();
    env_.reset();
    std::error_code ec;
    fs::remove_all(cache_dir_, ec);
  }

  // A .jigdo whose Debian label points at the good server, with a
  // --try-last fallback label pointing at the bad one.
  JigdoFile Jigdo(const std::string& servers) {
    std::string text = "[Jigdo]\nVersion=2.0\n[Parts]\n" + IdOf(pkg_).digest.ToBase64() +
                       "=Debian:pool/main/p/pkg.deb\n" + IdOf(weird_).digest.ToBase64() +
                       "='Debian:pool/main/b/we+ird name~1.deb'\n[Servers]\n" + servers;
    auto f = ParseJigdo(text, "/tmp/test.jigdo", nullptr);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return std::move(f).value();
  }
  SliceRequest Request(const JigdoFile& jigdo, const std::string& bytes) {
    SliceRequest r;
    r.id = IdOf(bytes);
    r.locations = jigdo.LocationsFor(r.id.digest);
    r.jigdo = &jigdo;
    return r;
  }
  MirrorSource Source(MirrorSourceOptions o = {}) { return MirrorSource(downloader_.get(), store_.get(), o); }

  std::string cache_dir_;
  std::unique_ptr<LmdbEnv> env_;
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<Downloader> downloader_;
  FaultServer good_, bad_;
  std::string pkg_, weird_;
};

TEST_F(MirrorSourceTest, DownloadsVerifiesAndCachesOnce) {
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  auto s = src.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), pkg_);
  auto again = src.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 1);  // the second came from the cache
  EXPECT_EQ(src.stats().cache_hits.load(), 1u);
  EXPECT_TRUE(*store_->Contains(IdOf(pkg_)));
}

TEST_F(MirrorSourceTest, FileNamesArePercentEncodedAndReachTheServerIntact) {
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  auto urls = src.CandidateUrls(Request(jigdo, weird_));
  ASSERT_EQ(urls.size(), 1u);
  EXPECT_EQ(urls[0], good_.Url("/debian/pool/main/b/we%2Bird%20name~1.deb"));
  auto s = src.Open(Request(jigdo, weird_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), weird_);
}

TEST_F(MirrorSourceTest, CommandLineMirrorsComeFirstAndTryLastServersLast) {
  JigdoFile jigdo = Jigdo("Debian=" + bad_.Url("/debian/") + " --try-last\nDebian=" + good_.Url("/debian/") + "\n");
  MirrorSourceOptions o;
  o.mirrors = {{"Debian", good_.Url("/mirror")}};  // no trailing slash: added
  MirrorSource src = Source(o);
  EXPECT_EQ(src.CandidateUrls(Request(jigdo, pkg_)),
            (std::vector<std::string>{good_.Url("/mirror/pool/main/p/pkg.deb"), good_.Url("/debian/pool/main/p/pkg.deb"),
                                      bad_.Url("/debian/pool/main/p/pkg.deb")}));
}

// A [Parts] path with '..' would leave the server's (or --mirror's) prefix
// once the server resolves it: such a location gets no URL at all.
TEST_F(MirrorSourceTest, PathsWithDotDotNeverLeaveTheServerPrefix) {
  std::string text = "[Jigdo]\nVersion=2.0\n[Parts]\n" + IdOf(pkg_).digest.ToBase64() +
                     "=Debian:../../etc/passwd\n[Servers]\nDebian=" + good_.Url("/debian/") + "\n";
  auto jigdo = ParseJigdo(text, "/tmp/test.jigdo", nullptr);
  ASSERT_TRUE(jigdo.ok());
  MirrorSourceOptions o;
  o.mirrors = {{"Debian", good_.Url("/mirror/")}};
  EXPECT_TRUE(Source(o).CandidateUrls(Request(*jigdo, pkg_)).empty());
}

TEST_F(MirrorSourceTest, CorruptOrFailingServerFallsBackToTheNextOne) {
  bad_.AddFault("/debian/*", "corrupt");
  JigdoFile jigdo = Jigdo("Debian=" + bad_.Url("/debian/") + "\nDebian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  auto s = src.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), pkg_);
  EXPECT_EQ(src.stats().bad_checksum.load(), 1u);
  EXPECT_EQ(bad_.Requests("/debian/pool/main/p/pkg.deb"), 1);
}

TEST_F(MirrorSourceTest, AFarServerThatFailsWithMoreConnectionsIsHeldToTheBase) {
  // Its scores from a last mount: 300 ms to the first byte, 50 ms of
  // sending: 16 x 0.35 / 0.1 = 56 connections wanted, 48 allowed.
  const std::string key = ServerKey(bad_.Url("/"));
  const std::string scores = cache_dir_ + "/servers.json";
  WriteFile(scores, "{\"version\": 1, \"servers\": {\"" + key +
                        "\": {\"ttfb_s\": 0.3, \"per_connection_bps\": 1e7, \"aggregate_bps\": 1e7, "
                        "\"body_s\": 0.05, \"samples\": 20}}}");
  DownloaderOptions dopts;
  dopts.max_per_host = 16;
  dopts.max_per_host_ceiling = 48;
  auto dl = Downloader::Create(dopts);
  ASSERT_TRUE(dl.ok());
  MirrorSourceOptions o;
  o.scores_path = scores;
  o.budget = std::make_shared<JobBudget>();
  MirrorSource src((*dl).get(), store_.get(), o);
  EXPECT_EQ(src.ConnectionLimit(key), 48u);
  // It refuses (a mirror's limit per client): 16 from now on.
  bad_.AddFault("/debian/*", "503");
  JigdoFile jigdo = Jigdo("Debian=" + bad_.Url("/debian/") + "\n");
  EXPECT_FALSE(src.Open(Request(jigdo, pkg_), {}).ok());
  EXPECT_EQ(src.ConnectionLimit(key), 16u);
  EXPECT_EQ(o.budget->Total(), 0u);
}

TEST_F(MirrorSourceTest, EveryServerFailingIsUnavailableAndNothingIsCached) {
  bad_.AddFault("/debian/*", "truncate");
  good_.AddFault("/debian/*", "503");
  JigdoFile jigdo = Jigdo("Debian=" + bad_.Url("/debian/") + "\nDebian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  auto s = src.Open(Request(jigdo, pkg_), {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kUnavailable) << s.status().ToString();
  EXPECT_NE(s.status().message().find("every server failed"), std::string::npos) << s.status().ToString();
  EXPECT_FALSE(*store_->Contains(IdOf(pkg_)));
  EXPECT_EQ(store_->Stats()->slices_staged, 0u);
}

TEST_F(MirrorSourceTest, FailedServerIsTriedLaterNotNever) {
  bad_.AddFault("/debian/*", "500");
  JigdoFile jigdo = Jigdo("Debian=" + bad_.Url("/debian/") + "\nDebian=" + good_.Url("/debian/") + "\n");
  MirrorSourceOptions o;
  o.base_backoff = std::chrono::milliseconds(60000);
  MirrorSource src = Source(o);
  ASSERT_TRUE(src.Open(Request(jigdo, pkg_), {}).ok());
  EXPECT_EQ(bad_.Requests("/debian/pool/main/p/pkg.deb"), 1);
  // The bad server is in back-off: the next slice goes to the good one first...
  ASSERT_TRUE(src.Open(Request(jigdo, weird_), {}).ok());
  EXPECT_EQ(bad_.Requests("/debian/pool/main/b/we+ird name~1.deb"), 0);
  EXPECT_EQ(good_.Requests("/debian/pool/main/b/we+ird name~1.deb"), 1);
}

TEST_F(MirrorSourceTest, OfflineServesTheCacheAndNeverTouchesTheNetwork) {
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  MirrorSourceOptions offline;
  offline.offline = true;
  MirrorSource off = Source(offline);
  auto miss = off.Open(Request(jigdo, pkg_), {});
  ASSERT_FALSE(miss.ok());
  EXPECT_EQ(miss.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 0);
  ASSERT_TRUE(Source().Open(Request(jigdo, pkg_), {}).ok());
  auto hit = off.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  EXPECT_EQ(ReadAll(**hit), pkg_);
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 1);
}

// A slice the cache cannot hold is still served to its reader, verified in
// memory (kept there for the next read), never stored; with too little
// memory budget it is refused clearly, without a download.
TEST_F(MirrorSourceTest, SliceLargerThanTheCacheIsServedFromMemory) {
  store_.reset();
  auto store = ChunkStore::Open(env_.get(), ChunkStoreOptions{.capacity = 64 * 1024});
  ASSERT_TRUE(store.ok());
  store_ = std::move(store).value();
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  auto s = src.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), pkg_);
  EXPECT_FALSE((*s)->worth_keeping_open());
  EXPECT_FALSE(*store_->Contains(IdOf(pkg_)));
  EXPECT_EQ(src.stats().kept_in_memory.load(), 1u);
  auto again = src.Open(Request(jigdo, pkg_), {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(src.stats().memory_hits.load(), 1u);
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 1);

  MirrorSourceOptions tight;
  tight.memory_budget = 1024;
  auto refused = Source(tight).Open(Request(jigdo, pkg_), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--cache-size"), std::string::npos) << refused.status().ToString();
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 1);
}

// The one health rule (ShouldRetryServerLater): a 5xx backs the server
// off (healthy servers go first for the next slice), a 404 does not.
TEST_F(MirrorSourceTest, OnlyTransientFailuresBackAServerOff) {
  WriteFile(bad_.root() / "debian/pool/main/b/we+ird name~1.deb", weird_);
  const std::string weird_path = "/debian/pool/main/b/we+ird name~1.deb";
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\nDebian=" + bad_.Url("/debian/") + "\n");
  MirrorSourceOptions o;
  o.base_backoff = std::chrono::milliseconds(60000);
  for (const char* fault : {"404", "503"}) {
    SCOPED_TRACE(fault);
    store_.reset();
    fs::remove_all(cache_dir_ + "/c2");
    env_.reset();
    auto env = LmdbEnv::Open(cache_dir_ + "/c2", LmdbOptions{.durable = false});
    ASSERT_TRUE(env.ok());
    env_ = std::move(env).value();
    store_ = std::move(ChunkStore::Open(env_.get(), ChunkStoreOptions{.capacity = 64 << 20})).value();
    good_.AddFault("/debian/pool/main/p/*", fault);
    const int before = good_.Requests(weird_path);
    MirrorSource src = Source(o);
    ASSERT_TRUE(src.Open(Request(jigdo, pkg_), {}).ok());  // good fails, bad serves
    ASSERT_TRUE(src.Open(Request(jigdo, weird_), {}).ok());
    const bool backed_off = std::string(fault) == "503";
    EXPECT_EQ(good_.Requests(weird_path) - before, backed_off ? 0 : 1);
  }
}

TEST_F(MirrorSourceTest, InterruptedReadAbandonsAStalledDownload) {
  good_.AddFault("/debian/*", "stall");
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  MirrorSource src = Source();
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  std::thread ctrl_c([&] {
    while (good_.Requests("/debian/pool/main/p/pkg.deb") == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ctx.cancel->Fire();  // as FUSE's interrupt does: the waiting read wakes at once
  });
  auto s = src.Open(Request(jigdo, pkg_), ctx);
  ctrl_c.join();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kCancelled) << s.status().ToString();
  EXPECT_FALSE(*store_->Contains(IdOf(pkg_)));
}

TEST_F(MirrorSourceTest, DeadlineBoundsTheWait) {
  good_.AddFault("/debian/*", "stall");
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\n");
  FetchContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  auto s = Source().Open(Request(jigdo, pkg_), ctx);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kTimedOut) << s.status().ToString();
}

// Large slices: Range pieces from several servers, races, servers that
// cannot do ranges or send bad bytes. The file's name holds a '+', which
// every piece must send as %2B.
class MirrorPiecesTest : public MirrorSourceTest {
 protected:
  void SetUp() override {
    MirrorSourceTest::SetUp();
    big_ = RandomBytes(6 << 20, 11);
    for (FaultServer* s : {&good_, &bad_, &third_}) WriteFile(s->root() / "debian/pool/main/b/big+1.deb", big_);
    third_.Start();
  }
  JigdoFile BigJigdo(const std::vector<FaultServer*>& servers) {
    std::string text = "[Jigdo]\nVersion=2.0\n[Parts]\n" + IdOf(big_).digest.ToBase64() +
                       "=Debian:pool/main/b/big+1.deb\n[Servers]\n";
    for (FaultServer* s : servers) text += "Debian=" + s->Url("/debian/") + "\n";
    auto f = ParseJigdo(text, "/tmp/test.jigdo", nullptr);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return std::move(f).value();
  }
  MirrorSourceOptions Pieces(uint64_t piece = 1 << 20) {
    MirrorSourceOptions o;
    o.plan.piece_size = piece;
    return o;
  }
  static constexpr const char* kPath = "/debian/pool/main/b/big+1.deb";
  static constexpr const char* kRaw = "/debian/pool/main/b/big%2B1.deb";
  FaultServer third_;
  std::string big_;
};

TEST_F(MirrorPiecesTest, ALargeSliceComesInRangePiecesFromEveryServer) {
  JigdoFile jigdo = BigJigdo({&good_, &bad_, &third_});
  MirrorSource src = Source(Pieces());
  auto s = src.Open(Request(jigdo, big_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), big_);
  EXPECT_TRUE(*store_->Contains(IdOf(big_)));
  EXPECT_EQ(src.stats().pieced.load(), 1u);
  EXPECT_EQ(src.stats().pieces.load(), 6u);
  int ranged = 0;
  for (FaultServer* server : {&good_, &bad_, &third_}) {
    EXPECT_GE(server->RangedRequests(kPath), 1) << server->Url("/");
    EXPECT_EQ(server->RawRequests(kRaw), server->Requests(kPath)) << "'+' not sent as %2B";
    ranged += server->RangedRequests(kPath);
  }
  EXPECT_GE(ranged, 6);
}

TEST_F(MirrorPiecesTest, AStalledServerIsRacedAndTheReaderDoesNotWaitForIt) {
  good_.AddFault("/debian/*", "stall");
  // The stall would end a transfer after 60 s; the race ends it at once.
  DownloaderOptions slow_to_give_up;
  slow_to_give_up.low_speed_time = seconds(60);
  auto dl = Downloader::Create(slow_to_give_up);
  ASSERT_TRUE(dl.ok());
  JigdoFile jigdo = Jigdo("Debian=" + good_.Url("/debian/") + "\nDebian=" + bad_.Url("/debian/") + "\n");
  MirrorSource src(dl->get(), store_.get(), {});
  const auto t0 = std::chrono::steady_clock::now();
  auto s = src.Open(Request(jigdo, pkg_), {});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), pkg_);
  EXPECT_EQ(good_.Requests("/debian/pool/main/p/pkg.deb"), 1);  // listed first: it got the slice
  EXPECT_EQ(bad_.RangedRequests("/debian/pool/main/p/pkg.deb"), 1);  // the race, by Range
  EXPECT_EQ(src.stats().hedges.load(), 1u);
  EXPECT_EQ(src.stats().overtaken.load(), 1u);  // the stalled lane, cancelled
  EXPECT_EQ(src.stats().stalled.load(), 1u);    // ... for stalling: its server is backed off briefly
  const auto backoff = src.ServersInBackoff();
  ASSERT_EQ(backoff.size(), 1u);
  EXPECT_NE(good_.Url("/").find(backoff[0].first), std::string::npos);
  EXPECT_LE(backoff[0].second, 1.0);  // a second: stalling is not failing (no doubling)
  EXPECT_LT(took, 30.0);  // not the transfer's own timeout
}

TEST_F(MirrorPiecesTest, AServerThatIgnoresRangesIsLeftWholeSlices) {
  bad_.AddFault("/debian/*", "norange");
  JigdoFile jigdo = BigJigdo({&good_, &bad_});
  MirrorSource src = Source(Pieces());
  auto s = src.Open(Request(jigdo, big_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), big_);
  // Refused once, or for each of the pieces it was asked for before its
  // first answer came (a server starts its next piece a round trip early,
  // at most 4 at once).
  EXPECT_GE(src.stats().range_refused.load(), 1u);
  EXPECT_LE(src.stats().range_refused.load(), 4u);
  EXPECT_TRUE(src.scores().Get(ServerKey(bad_.Url("/"))).refuses_ranges);
  // The next large slice is not cut for one server that can do ranges.
  std::string other = RandomBytes(6 << 20, 12);
  WriteFile(good_.root() / "debian/pool/main/b/big+1.deb", other);
  WriteFile(bad_.root() / "debian/pool/main/b/big+1.deb", other);
  const std::string saved = big_;
  big_ = other;
  JigdoFile jigdo2 = BigJigdo({&bad_, &good_});
  auto s2 = src.Open(Request(jigdo2, other), {});
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  EXPECT_EQ(ReadAll(**s2), other);
  EXPECT_EQ(src.stats().pieced.load(), 1u);  // the first slice only
  big_ = saved;
}

TEST_F(MirrorPiecesTest, BadBytesInOnePieceAreFoundAndThatServerLeftOut) {
  bad_.AddFault("/debian/*", "corrupt");
  JigdoFile jigdo = BigJigdo({&good_, &bad_, &third_});
  MirrorSource src = Source(Pieces());
  auto s = src.Open(Request(jigdo, big_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), big_);
  EXPECT_GE(src.stats().bad_checksum.load(), 1u);
  // Fetched again one server at a time: a pass that went to the corrupt
  // server failed alone, so it was named.
  EXPECT_TRUE(*store_->Contains(IdOf(big_)));
}

TEST_F(MirrorPiecesTest, AServerThatAnswersAnotherRangeIsNotBelieved) {
  bad_.AddFault("/debian/*", "badrange");
  JigdoFile jigdo = BigJigdo({&bad_, &good_});
  MirrorSource src = Source(Pieces());
  auto s = src.Open(Request(jigdo, big_), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ReadAll(**s), big_);
  // Once, or for each piece asked of it before its first answer came.
  EXPECT_GE(src.stats().range_refused.load(), 1u);
  EXPECT_LE(src.stats().range_refused.load(), 4u);
  EXPECT_EQ(src.stats().bad_checksum.load(), 0u);  // refused before a byte was taken
}

}  // namespace
}  // namespace jigdoofus
