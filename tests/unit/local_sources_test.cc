// Tests of the local slice sources: VerifyLocalFile/FileSlice, safe paths,
// LocalTreeSource (--local and file: URLs) and ScanSource (--scan).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "cache/verification_store.h"
#include "fetch/sources/file_slice.h"
#include "fetch/sources/local_tree_source.h"
#include "fetch/sources/safe_path.h"
#include "fetch/sources/scan_source.h"
#include "tests/unit/fetch_test_util.h"

namespace jigdoofus {
namespace {

using testing_util::Content;
using testing_util::IdOf;
using testing_util::ReadAll;
using testing_util::TempDir;
using testing_util::WriteFile;

FileKey KeyOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return FileKey::FromStat(st);
}

const FileSlice& AsFile(const std::shared_ptr<const VerifiedSlice>& s) {
  return dynamic_cast<const FileSlice&>(*s);
}

// Bytes this process has read through read(2)-like calls so far.
uint64_t ReadCharsSoFar() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  ADD_FAILURE() << "no rchar in /proc/self/io";
  return 0;
}

// ---------------------------------------------------------------- VerifyLocalFile

TEST(VerifyLocalFileTest, MatchingFileIsServedAndRecorded) {
  TempDir dir;
  const std::string data = Content(3 << 20, 1);  // several hash chunks
  WriteFile(dir / "a.bin", data);
  MemoryVerificationStore store;
  auto r = VerifyLocalFile(IdOf(data), dir / "a.bin", &store, FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
  EXPECT_GE((*r)->fd(), 0);
  EXPECT_EQ(AsFile(*r).path(), dir / "a.bin");
  std::string part(100, '\0');
  ASSERT_TRUE((*r)->ReadAt(12345, std::span<uint8_t>(reinterpret_cast<uint8_t*>(part.data()), part.size())).ok());
  EXPECT_EQ(part, data.substr(12345, 100));
  auto rec = store.Lookup(KeyOf(dir / "a.bin"), HashAlgo::kSha256);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(*rec, IdOf(data).digest);
}

TEST(VerifyLocalFileTest, Md5SlicesWork) {
  TempDir dir;
  const std::string data = Content(5000, 2);
  WriteFile(dir / "a.bin", data);
  auto r = VerifyLocalFile(IdOf(data, HashAlgo::kMd5), dir / "a.bin", nullptr, FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
}

TEST(VerifyLocalFileTest, MissingFileIsNotFound) {
  TempDir dir;
  auto r = VerifyLocalFile(IdOf("x"), dir / "nope", nullptr, FetchContext{});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST(VerifyLocalFileTest, WrongSizeIsNotFoundWithMessage) {
  TempDir dir;
  WriteFile(dir / "a.bin", "hello world");
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", nullptr, FetchContext{});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(dir / "a.bin"), std::string::npos);
  EXPECT_NE(r.status().message().find("size"), std::string::npos);
}

TEST(VerifyLocalFileTest, NonRegularFilesAreNotFound) {
  TempDir dir;
  std::filesystem::create_directory(dir / "d");
  auto r = VerifyLocalFile(IdOf("x"), dir / "d", nullptr, FetchContext{});
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  // A FIFO must not block the open.
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  r = VerifyLocalFile(IdOf("x"), dir / "fifo", nullptr, FetchContext{});
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST(VerifyLocalFileTest, ChecksumMismatchIsCorruption) {
  TempDir dir;
  WriteFile(dir / "a.bin", "hellp");
  MemoryVerificationStore store;
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", &store, FetchContext{});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(dir / "a.bin"), std::string::npos);
  EXPECT_NE(r.status().message().find("SHA256 mismatch"), std::string::npos);
  EXPECT_NE(r.status().message().find(IdOf("hello").digest.ToBase64()), std::string::npos);
  EXPECT_FALSE(store.Lookup(KeyOf(dir / "a.bin"), HashAlgo::kSha256).has_value());
}

TEST(VerifyLocalFileTest, DetailReportsKeyAndActualDigest) {
  TempDir dir;
  WriteFile(dir / "a.bin", "hellp");
  VerifyDetail detail;
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", nullptr, FetchContext{}, &detail);
  ASSERT_TRUE(r.status().IsCorruption());
  ASSERT_TRUE(detail.key.has_value());
  EXPECT_EQ(*detail.key, KeyOf(dir / "a.bin"));
  ASSERT_TRUE(detail.actual.has_value());
  EXPECT_EQ(*detail.actual, IdOf("hellp").digest);
}

TEST(VerifyLocalFileTest, StoreRecordIsTrustedWithoutReading) {
  TempDir dir;
  // The file's bytes do NOT match the slice, but a record for its exact
  // stat key says they do: success proves the file was not hashed.
  WriteFile(dir / "a.bin", "XXXXX");
  MemoryVerificationStore store;
  ASSERT_TRUE(store.Record(KeyOf(dir / "a.bin"), IdOf("hello").digest).ok());
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", &store, FetchContext{});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  // The record is per algorithm: an MD5 slice of the same bytes is hashed.
  auto md5 = VerifyLocalFile(IdOf("hello", HashAlgo::kMd5), dir / "a.bin", &store, FetchContext{});
  EXPECT_TRUE(md5.status().IsCorruption()) << md5.status().ToString();
}

TEST(VerifyLocalFileTest, DifferingStoreRecordIsCorruptionWithoutReading) {
  TempDir dir;
  WriteFile(dir / "a.bin", "hello");
  MemoryVerificationStore store;
  ASSERT_TRUE(store.Record(KeyOf(dir / "a.bin"), IdOf("other").digest).ok());
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", &store, FetchContext{});
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
}

TEST(VerifyLocalFileTest, ChangedFileIsHashedAgain) {
  TempDir dir;
  WriteFile(dir / "a.bin", "hello");
  MemoryVerificationStore store;
  ASSERT_TRUE(VerifyLocalFile(IdOf("hello"), dir / "a.bin", &store, FetchContext{}).ok());
  WriteFile(dir / "a.bin", "jello");  // same size; ctime (and so the key) changes
  auto r = VerifyLocalFile(IdOf("hello"), dir / "a.bin", &store, FetchContext{});
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
}

TEST(VerifyLocalFileTest, CancelledAndExpiredContextsStopHashing) {
  TempDir dir;
  const std::string data = Content(1 << 20, 3);
  WriteFile(dir / "a.bin", data);
  FetchContext cancelled;
  cancelled.cancel = std::make_shared<CancelSignal>();
  cancelled.cancel->Fire();
  auto r = VerifyLocalFile(IdOf(data), dir / "a.bin", nullptr, cancelled);
  EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << r.status().ToString();
  FetchContext expired;
  expired.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  r = VerifyLocalFile(IdOf(data), dir / "a.bin", nullptr, expired);
  EXPECT_EQ(r.status().code(), Status::Code::kTimedOut) << r.status().ToString();
}

TEST(FileSliceTest, ShrunkFileIsIOErrorNamingIt) {
  TempDir dir;
  const std::string data = Content(10000, 4);
  WriteFile(dir / "a.bin", data);
  auto r = VerifyLocalFile(IdOf(data), dir / "a.bin", nullptr, FetchContext{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(::truncate((dir / "a.bin").c_str(), 5000), 0);
  std::string buf(100, '\0');
  Status st = (*r)->ReadAt(9000, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  EXPECT_EQ(st.code(), Status::Code::kIOError) << st.ToString();
  EXPECT_NE(st.message().find(dir / "a.bin"), std::string::npos);
  // Reads past the slice are refused outright.
  st = (*r)->ReadAt(9950, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
}

// ---------------------------------------------------------------- safe paths

TEST(SafePathTest, RelativePathRules) {
  EXPECT_TRUE(IsSafeRelativePath("pool/main/x.deb"));
  EXPECT_TRUE(IsSafeRelativePath("a..b/..c/x"));
  EXPECT_TRUE(IsSafeRelativePath("./x"));
  EXPECT_FALSE(IsSafeRelativePath(""));
  EXPECT_FALSE(IsSafeRelativePath("/etc/passwd"));
  EXPECT_FALSE(IsSafeRelativePath(".."));
  EXPECT_FALSE(IsSafeRelativePath("../x"));
  EXPECT_FALSE(IsSafeRelativePath("a/../../x"));
  EXPECT_FALSE(IsSafeRelativePath("a/.."));
}

TEST(SafePathTest, WithinIsComponentWise) {
  EXPECT_TRUE(IsPathWithin("/a/b", "/a/b"));
  EXPECT_TRUE(IsPathWithin("/a/b", "/a/b/c"));
  EXPECT_TRUE(IsPathWithin("/a/b/", "/a/b/c"));
  EXPECT_FALSE(IsPathWithin("/a/b", "/a/bc"));
  EXPECT_FALSE(IsPathWithin("/a/b", "/a"));
  EXPECT_TRUE(IsPathWithin("/", "/anything"));
}

class OpenBeneathTest : public ::testing::TestWithParam<bool> {
 protected:
  Result<UniqueFd> Open(const std::string& dir, const std::string& rel) {
    return GetParam() ? OpenBeneathByRealpath(dir, rel, kSliceOpenFlags) : OpenBeneath(dir, rel, kSliceOpenFlags);
  }
};

TEST_P(OpenBeneathTest, RefusesEscapesAllowsInsideLinks) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFile(root + "/pool/x.deb", "inside");
  WriteFile(tmp / "secret", "outside");
  ASSERT_EQ(::symlink("../secret", (root + "/out").c_str()), 0);
  ASSERT_EQ(::symlink((tmp / "secret").c_str(), (root + "/abs-out").c_str()), 0);
  ASSERT_EQ(::symlink("pool/x.deb", (root + "/in").c_str()), 0);
  ASSERT_EQ(::symlink("../pool", (root + "/pool/up").c_str()), 0);  // ../ that stays inside

  EXPECT_TRUE(Open(root, "pool/x.deb").ok());
  EXPECT_TRUE(Open(root, "in").ok());
  EXPECT_TRUE(Open(root, "pool/up/x.deb").ok());
  for (const char* bad : {"../secret", "pool/../../secret", "out", "abs-out"}) {
    auto r = Open(root, bad);
    EXPECT_TRUE(r.status().IsNotFound()) << bad << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("refused"), std::string::npos) << bad << ": " << r.status().ToString();
  }
  auto abs = Open(root, tmp / "secret");
  EXPECT_TRUE(abs.status().IsNotFound()) << abs.status().ToString();
  EXPECT_TRUE(Open(root, "pool/missing").status().IsNotFound());
}

INSTANTIATE_TEST_SUITE_P(Openat2AndRealpath, OpenBeneathTest, ::testing::Bool());

// ---------------------------------------------------------------- LocalTreeSource

SliceLocation Loc(std::string label, std::string path) {
  SliceLocation loc;
  loc.label = std::move(label);
  loc.path = std::move(path);
  return loc;
}

SliceRequest RequestFor(const std::string& content, std::vector<SliceLocation> locs) {
  SliceRequest req;
  req.id = IdOf(content);
  req.locations = std::move(locs);
  return req;
}

TEST(LocalTreeSourceTest, LabelMapsToDirectory) {
  TempDir tmp;
  const std::string data = Content(4000, 5);
  WriteFile(tmp / "mirror/pool/x.deb", data);
  MemoryVerificationStore store;
  LocalTreeSource src({{"Debian", tmp / "mirror"}}, FileUrlScope::kBeneathJigdo, &store);
  auto r = src.Open(RequestFor(data, {Loc("Other", "pool/x.deb"), Loc("Debian", "pool/x.deb")}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
  EXPECT_EQ(AsFile(*r).path(), tmp / "mirror/pool/x.deb");
  EXPECT_TRUE(store.Lookup(KeyOf(tmp / "mirror/pool/x.deb"), HashAlgo::kSha256).has_value());
}

TEST(LocalTreeSourceTest, UnknownLabelOrMissingFileIsNotFound) {
  TempDir tmp;
  const std::string data = Content(4000, 6);
  WriteFile(tmp / "mirror/pool/x.deb", data);
  LocalTreeSource src({{"Debian", tmp / "mirror"}}, FileUrlScope::kBeneathJigdo, nullptr);
  EXPECT_TRUE(src.Open(RequestFor(data, {Loc("Other", "pool/x.deb")}), FetchContext{}).status().IsNotFound());
  EXPECT_TRUE(src.Open(RequestFor(data, {Loc("Debian", "pool/y.deb")}), FetchContext{}).status().IsNotFound());
  EXPECT_TRUE(src.Open(RequestFor(data, {}), FetchContext{}).status().IsNotFound());
}

TEST(LocalTreeSourceTest, PathsNeverEscapeTheDirectory) {
  TempDir tmp;
  const std::string data = Content(4000, 7);
  std::filesystem::create_directories(tmp / "mirror/pool");
  WriteFile(tmp / "outside.deb", data);  // matching bytes, but outside DIR
  ASSERT_EQ(::symlink("../../outside.deb", (tmp / "mirror/pool/link.deb").c_str()), 0);
  LocalTreeSource src({{"Debian", tmp / "mirror"}}, FileUrlScope::kBeneathJigdo, nullptr);
  for (const std::string& bad : {std::string("../outside.deb"), std::string("pool/../../outside.deb"),
                                 tmp / "outside.deb", std::string("pool/link.deb")}) {
    auto r = src.Open(RequestFor(data, {Loc("Debian", bad)}), FetchContext{});
    EXPECT_TRUE(r.status().IsNotFound()) << bad << ": " << r.status().ToString();
  }
}

TEST(LocalTreeSourceTest, SymlinkInsideTreeIsFine) {
  TempDir tmp;
  const std::string data = Content(4000, 8);
  WriteFile(tmp / "mirror/real/x.deb", data);
  ASSERT_EQ(::symlink("real", (tmp / "mirror/pool").c_str()), 0);
  LocalTreeSource src({{"Debian", tmp / "mirror"}}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = src.Open(RequestFor(data, {Loc("Debian", "pool/x.deb")}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
}

TEST(LocalTreeSourceTest, FirstVerifiedCandidateWinsAndMismatchesAreCorruption) {
  TempDir tmp;
  const std::string data = Content(4000, 9);
  const std::string impostor = Content(4000, 10);
  WriteFile(tmp / "a/x.deb", impostor);
  WriteFile(tmp / "b/x.deb", data);
  LocalTreeSource src({{"A", tmp / "a"}, {"B", tmp / "b"}}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = src.Open(RequestFor(data, {Loc("A", "x.deb"), Loc("B", "x.deb")}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(AsFile(*r).path(), tmp / "b/x.deb");

  auto bad = src.Open(RequestFor(data, {Loc("A", "x.deb"), Loc("B", "missing.deb")}), FetchContext{});
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find(tmp / "a/x.deb"), std::string::npos);
}

// The request a resolver makes for `data` (an MD5 slice) of `jigdo`.
SliceRequest RequestFromJigdo(const JigdoFile& jigdo, const std::string& data) {
  SliceRequest req;
  req.id = IdOf(data, HashAlgo::kMd5);
  req.locations = jigdo.LocationsFor(req.id.digest);
  req.jigdo = &jigdo;
  return req;
}

// A whole file: URL in [Parts] of a local .jigdo: read beneath the
// .jigdo's directory; elsewhere only with kAnywhere (--trust-file-urls).
TEST(LocalTreeSourceTest, AbsoluteFileUrlsStayBeneathTheJigdoUnlessTrusted) {
  TempDir tmp;
  const std::string data = Content(4000, 11);
  WriteFile(tmp / "tree/x.deb", data);
  SliceLocation loc = Loc("", "file:" + (tmp / "tree/x.deb"));
  LocalTreeSource confined({}, FileUrlScope::kBeneathJigdo, nullptr);
  LocalTreeSource anywhere({}, FileUrlScope::kAnywhere, nullptr);
  for (const std::string& jigdo : {tmp / "img.jigdo", tmp / "tree/img.jigdo"}) {
    loc.base = jigdo;
    auto r = confined.Open(RequestFor(data, {loc}), FetchContext{});
    ASSERT_TRUE(r.ok()) << jigdo << ": " << r.status().ToString();
    EXPECT_EQ(ReadAll(**r), data);
  }
  // From a sibling directory, or with '..' leading out: refused, unless trusted.
  for (const std::string& jigdo : {tmp / "elsewhere/img.jigdo", tmp / "tree/sub/img.jigdo"}) {
    loc.base = jigdo;
    EXPECT_TRUE(confined.Open(RequestFor(data, {loc}), FetchContext{}).status().IsNotFound()) << jigdo;
    auto r = anywhere.Open(RequestFor(data, {loc}), FetchContext{});
    ASSERT_TRUE(r.ok()) << jigdo << ": " << r.status().ToString();
    EXPECT_EQ(ReadAll(**r), data);
  }
  loc.base = tmp / "tree/sub/img.jigdo";
  loc.path = "file:../x.deb";
  EXPECT_TRUE(confined.Open(RequestFor(data, {loc}), FetchContext{}).status().IsNotFound());
  // No defining .jigdo on disk: nothing to be beneath.
  loc.base.clear();
  loc.path = "file:" + (tmp / "tree/x.deb");
  EXPECT_TRUE(confined.Open(RequestFor(data, {loc}), FetchContext{}).status().IsNotFound());
  // http URLs are not ours.
  EXPECT_TRUE(
      anywhere.Open(RequestFor(data, {Loc("", "http://127.0.0.1:1/x.deb")}), FetchContext{}).status().IsNotFound());
}

// What jigdo-file writes for an absolute tree ("A=file:/abs/tree/" with
// "A:name" parts): read when the tree is beneath the .jigdo, else refused,
// reported at mount time (FileServersOutsideJigdoDir), and read when trusted.
TEST(LocalTreeSourceTest, AbsoluteFileServerOutsideTheJigdoDirNeedsTrust) {
  TempDir tmp;
  const std::string data = Content(5000, 12);
  WriteFile(tmp / "tree/pool/x.deb", data);
  const std::string b64 = IdOf(data, HashAlgo::kMd5).digest.ToBase64();
  const std::string text = "[Image]\nFilename=img.iso\nTemplate=img.template\n[Servers]\nA=file:" +
                           (tmp / "tree") + "/\n[Parts]\n" + b64 + "=A:pool/x.deb\n";
  auto inside = ParseJigdo(text, tmp / "img.jigdo", nullptr);
  ASSERT_TRUE(inside.ok()) << inside.status().ToString();
  EXPECT_TRUE(FileServersOutsideJigdoDir(*inside).empty());
  LocalTreeSource confined({}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = confined.Open(RequestFromJigdo(*inside, data), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(AsFile(*r).path(), tmp / "tree/pool/x.deb");

  auto outside = ParseJigdo(text, tmp / "jigdos/img.jigdo", nullptr);
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  ASSERT_EQ(FileServersOutsideJigdoDir(*outside).size(), 1u);
  EXPECT_EQ(FileServersOutsideJigdoDir(*outside)[0], "A=file:" + (tmp / "tree") + "/");
  EXPECT_TRUE(confined.Open(RequestFromJigdo(*outside, data), FetchContext{}).status().IsNotFound());
  LocalTreeSource anywhere({}, FileUrlScope::kAnywhere, nullptr);
  r = anywhere.Open(RequestFromJigdo(*outside, data), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
}

TEST(LocalTreeSourceTest, RelativeFileUrlUsesTheDefiningJigdo) {
  TempDir tmp;
  const std::string data = Content(4000, 27);
  WriteFile(tmp / "inc/tree/x.deb", data);
  SliceLocation loc = Loc("", "file:tree/x.deb");
  loc.base = tmp / "inc/included.jigdo";  // an [Include]d file in another directory
  LocalTreeSource src({}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = src.Open(RequestFor(data, {loc}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(AsFile(*r).path(), tmp / "inc/tree/x.deb");
  // From a .jigdo fetched over HTTP, file: URLs are not honoured.
  loc.path = "file:" + (tmp / "inc/tree/x.deb");
  loc.base = "http://127.0.0.1:1/remote.jigdo";
  EXPECT_TRUE(src.Open(RequestFor(data, {loc}), FetchContext{}).status().IsNotFound());
}

TEST(LocalTreeSourceTest, CancelledRequestStops) {
  TempDir tmp;
  const std::string data = Content(4000, 12);
  WriteFile(tmp / "m/x.deb", data);
  LocalTreeSource src({{"D", tmp / "m"}}, FileUrlScope::kBeneathJigdo, nullptr);
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  ctx.cancel->Fire();
  auto r = src.Open(RequestFor(data, {Loc("D", "x.deb")}), ctx);
  EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << r.status().ToString();
}

// A .jigdo as jigdo-file writes it for `--uri A=file:tree/`: the relative
// file: URL resolves against the .jigdo's own directory.
TEST(LocalTreeSourceTest, RelativeFileUrlFromParsedJigdo) {
  TempDir tmp;
  const std::string data = Content(20000, 13);
  WriteFile(tmp / "tree/sub/a b+c%d.bin", data);
  const std::string b64 = IdOf(data, HashAlgo::kMd5).digest.ToBase64();
  const std::string text =
      "[Jigdo]\nVersion=1.2\nGenerator=jigdo-file/0.8.0\n\n"
      "[Image]\nFilename=img.iso\nTemplate=img.template\n\n"
      "[Servers]\nA=file:tree/\n\n"
      "[Parts]\n" + b64 + "='A:sub/a b+c%d.bin'\n";
  auto jigdo = ParseJigdo(text, tmp / "img.jigdo", nullptr);
  ASSERT_TRUE(jigdo.ok()) << jigdo.status().ToString();
  SliceRequest req = RequestFromJigdo(*jigdo, data);
  ASSERT_FALSE(req.locations.empty());

  LocalTreeSource src({}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = src.Open(req, FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
  // The same through a --local mapping of label A.
  LocalTreeSource local({{"A", tmp / "tree"}}, FileUrlScope::kBeneathJigdo, nullptr);
  r = local.Open(req, FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(AsFile(*r).path(), tmp / "tree/sub/a b+c%d.bin");
}

// A file: server is confined like --local: a [Parts] path with '..' (an
// include written by someone else, say) never leaves the server's directory.
TEST(LocalTreeSourceTest, FileServerPathsStayBelowTheServer) {
  TempDir tmp;
  const std::string data = Content(3000, 31);
  WriteFile(tmp / "outside.bin", data);  // what an escaping path would reach
  const std::string b64 = IdOf(data, HashAlgo::kMd5).digest.ToBase64();
  const std::string text =
      "[Image]\nFilename=img.iso\nTemplate=img.template\n"
      "[Servers]\nA=file:tree/\n"
      "[Parts]\n" + b64 + "=A:../outside.bin\n";
  WriteFile(tmp / "tree/keep", "x");
  auto jigdo = ParseJigdo(text, tmp / "img.jigdo", nullptr);
  ASSERT_TRUE(jigdo.ok()) << jigdo.status().ToString();
  SliceRequest req = RequestFromJigdo(*jigdo, data);
  LocalTreeSource src({}, FileUrlScope::kBeneathJigdo, nullptr);
  auto r = src.Open(req, FetchContext{});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

// ---------------------------------------------------------------- ScanSource

TEST(ScanSourceTest, FindsFilesAnywhereByChecksum) {
  TempDir tmp;
  const std::string data = Content(7000, 14);
  WriteFile(tmp / "scan1/a/b/c/renamed.bin", data);
  WriteFile(tmp / "scan1/impostor.bin", Content(7000, 15));  // same size, other bytes
  WriteFile(tmp / "scan2/z/impostor2.bin", Content(7000, 16));
  WriteFile(tmp / "scan2/other-size.bin", Content(7001, 17));
  MemoryVerificationStore store;
  ScanSource src({tmp / "scan2", tmp / "scan1"}, &store);
  src.Start();
  auto r = src.Open(RequestFor(data, {}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), data);
  EXPECT_EQ(AsFile(*r).path(), tmp / "scan1/a/b/c/renamed.bin");

  auto none = src.Open(RequestFor(Content(7000, 18), {}), FetchContext{});
  EXPECT_TRUE(none.status().IsNotFound()) << none.status().ToString();
  auto no_size = src.Open(RequestFor(Content(123, 19), {}), FetchContext{});
  EXPECT_TRUE(no_size.status().IsNotFound()) << no_size.status().ToString();
}

TEST(ScanSourceTest, OpenWithoutStartWalksFirst) {
  TempDir tmp;
  const std::string data = Content(3000, 20);
  WriteFile(tmp / "s/x", data);
  ScanSource src({tmp / "s"}, nullptr);
  auto r = src.Open(RequestFor(data, {}), FetchContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST(ScanSourceTest, FollowsNoSymlinksAndSurvivesLoops) {
  TempDir tmp;
  const std::string data = Content(3000, 21);
  const std::string data2 = Content(3000, 22);
  WriteFile(tmp / "elsewhere/x", data);
  WriteFile(tmp / "elsewhere/y", data2);
  std::filesystem::create_directories(tmp / "s/d");
  ASSERT_EQ(::symlink((tmp / "elsewhere").c_str(), (tmp / "s/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink((tmp / "elsewhere/y").c_str(), (tmp / "s/filelink").c_str()), 0);
  ASSERT_EQ(::symlink("..", (tmp / "s/d/loop").c_str()), 0);
  ScanSource src({tmp / "s"}, nullptr);
  src.Start();
  EXPECT_TRUE(src.Open(RequestFor(data, {}), FetchContext{}).status().IsNotFound());
  EXPECT_TRUE(src.Open(RequestFor(data2, {}), FetchContext{}).status().IsNotFound());
  // A named tree may itself be a symlink.
  ASSERT_EQ(::symlink((tmp / "elsewhere").c_str(), (tmp / "top").c_str()), 0);
  ScanSource top({tmp / "top"}, nullptr);
  EXPECT_TRUE(top.Open(RequestFor(data, {}), FetchContext{}).ok());
}

TEST(ScanSourceTest, EachFileIsHashedAtMostOnce) {
  TempDir tmp;
  constexpr size_t kSize = 4 << 20;
  const std::string data = Content(kSize, 23);
  WriteFile(tmp / "s/real.bin", data);
  WriteFile(tmp / "s/impostor.bin", Content(kSize, 24));
  MemoryVerificationStore store;
  ScanSource src({tmp / "s"}, &store);
  src.Start();
  ASSERT_TRUE(src.Open(RequestFor(data, {}), FetchContext{}).ok());
  // Both files are known now (one by the store, one by the memo): asking
  // for another slice of the same size reads (almost) nothing.
  const uint64_t before = ReadCharsSoFar();
  EXPECT_TRUE(src.Open(RequestFor(Content(kSize, 25), {}), FetchContext{}).status().IsNotFound());
  EXPECT_TRUE(src.Open(RequestFor(data, {}), FetchContext{}).ok());
  const uint64_t read = ReadCharsSoFar() - before;
  EXPECT_LT(read, kSize / 4) << "bytes read while every file was already known";
}

TEST(ScanSourceTest, ExpiredDeadlineOrCancelStops) {
  TempDir tmp;
  const std::string data = Content(3000, 26);
  WriteFile(tmp / "s/x", data);
  ScanSource src({tmp / "s"}, nullptr);
  FetchContext cancelled;
  cancelled.cancel = std::make_shared<CancelSignal>();
  cancelled.cancel->Fire();
  auto r = src.Open(RequestFor(data, {}), cancelled);
  EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << r.status().ToString();
}

TEST(ScanSourceTest, DestroyingDuringTheWalkIsSafe) {
  TempDir tmp;
  for (int i = 0; i < 50; ++i) WriteFile(tmp / ("s/d" + std::to_string(i) + "/f"), "x");
  for (int i = 0; i < 5; ++i) {
    ScanSource src({tmp / "s"}, nullptr);
    src.Start();
  }  // no hang, no leak (ASan)
  SUCCEED();
}

}  // namespace
}  // namespace jigdoofus
