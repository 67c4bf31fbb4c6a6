// In-process tests of the FUSE handlers (fs/jigdo_fs.cc) without a mount:
// a JigdoFs over a real ImageSet (a synthetic template, a .jigdo with a
// relative file: server, slice files in a temp tree), calling Lookup,
// GetAttr, Open, Read, PlanRead, ReadDir, Release directly.
#include "fs/jigdo_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstring>
#include <random>
#include <set>

#include "tests/unit/fetch_test_util.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

using testing_util::TempDir;
using testing_util::TemplateBuilder;
using testing_util::WriteFile;

constexpr fuse_ino_t kImageIno = kFirstImageIno;

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// One read as OpRead answers it (PlanRead, then the reply builder), with
// the reply's bytes copied out.
int ReadVia(JigdoFs& fs, fuse_ino_t ino, uint64_t fh, uint64_t off, size_t size, uint8_t* out, size_t* n) {
  *n = 0;
  ReadPlan plan;
  int err = fs.PlanRead(ino, fh, off, size, &plan, fs.MakeFetchContext());
  if (err != 0) return err;
  auto reply = BuildReadReply(plan, fs.reply_policy());
  err = fs.CountReply(reply);
  if (err != 0) return err;
  if (reply->kind == ReadReply::Kind::kMemory) {
    std::memcpy(out, reply->data, reply->size);
  } else if (reply->kind == ReadReply::Kind::kFileBacked) {
    if (!CopyPlan(plan, out).ok()) return EIO;
  }
  *n = reply->size;
  return 0;
}

// An image of `kSlices` slices (one per file under tree/) between literals.
class JigdoFsTest : public ::testing::Test {
 protected:
  static constexpr int kSlices = 30;
  size_t max_open_slices_ = 0;  // 0: from the open-file limit

  void SetUp() override {
    std::string parts;
    for (int i = 0; i < kSlices; ++i) {
      const std::string data = Random(5000 + 3001 * i, i);
      builder_.Literal(Random(100 + i, 1000 + i)).Slice(data);
      const std::string name = "f" + std::to_string(i) + ".bin";
      WriteFile(tmp_ / ("tree/" + name), data);
      files_.push_back(tmp_ / ("tree/" + name));
      parts += testing_util::IdOf(data, HashAlgo::kMd5).digest.ToBase64() + "=A:" + name + "\n";
    }
    builder_.Literal(std::string(70000, '\0'));
    WriteFile(tmp_ / "img.template", builder_.Build());
    WriteFile(tmp_ / "img.jigdo",
              "[Jigdo]\nVersion=1.2\nGenerator=jigdo-file/0.8.0\n\n"
              "[Image]\nFilename=my image.iso\nTemplate=img.template\n\n"
              "[Servers]\nA=file:tree/\n\n[Parts]\n" + parts);
    ImageSetOptions o;
    o.sources = {tmp_ / "img.jigdo"};
    o.offline = true;
    o.max_open_slices = max_open_slices_;
    auto set = ImageSet::Open(ResolveMountConfig(o, SystemLimits{}));
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    set_ = std::move(set).value();
    JigdoFsOptions fo;
    fo.fetch_timeout_s = 10;
    fo.prefetch_threads = 2;
    fs_ = std::make_unique<JigdoFs>(set_.get(), fo);
  }

  // Reads [off, off+n) through Open/Read/Release like the kernel would.
  std::string ReadRange(uint64_t off, size_t n, int* err, size_t chunk = 128 << 10) {
    OpenReply r;
    *err = fs_->Open(kImageIno, O_RDONLY, &r);
    if (*err != 0) return {};
    std::string out;
    std::vector<uint8_t> buf(chunk);
    while (out.size() < n) {
      size_t got = 0;
      *err = ReadVia(*fs_, kImageIno, r.fh, off + out.size(), std::min(chunk, n - out.size()), buf.data(), &got);
      if (*err != 0 || got == 0) break;
      out.append(reinterpret_cast<const char*>(buf.data()), got);
    }
    fs_->Release(kImageIno, r.fh);
    return out;
  }

  TempDir tmp_;
  TemplateBuilder builder_;
  std::vector<std::string> files_;
  std::unique_ptr<ImageSet> set_;
  std::unique_ptr<JigdoFs> fs_;
};

TEST_F(JigdoFsTest, LookupNamesAndSizes) {
  fuse_entry_param e;
  ASSERT_EQ(fs_->Lookup(kRootIno, "my image.iso", &e), 0);
  EXPECT_EQ(e.ino, kImageIno);
  EXPECT_EQ(static_cast<uint64_t>(e.attr.st_size), builder_.image().size());
  EXPECT_TRUE(S_ISREG(e.attr.st_mode));
  EXPECT_EQ(e.attr.st_mode & 0777, 0444u);
  ASSERT_EQ(fs_->Lookup(kRootIno, kStatusFileName, &e), 0);
  EXPECT_EQ(e.ino, kStatusIno);
  ASSERT_EQ(fs_->Lookup(kRootIno, "nope.iso", &e), 0);
  EXPECT_EQ(e.ino, 0u);  // a cached negative entry
  EXPECT_GT(e.entry_timeout, 0);
  EXPECT_EQ(fs_->Lookup(kImageIno, "x", &e), ENOTDIR);

  struct stat st;
  ASSERT_EQ(fs_->GetAttr(kRootIno, &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(fs_->GetAttr(kImageIno, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), builder_.image().size());
  EXPECT_EQ(fs_->GetAttr(kImageIno + 1, &st), ENOENT);
}

TEST_F(JigdoFsTest, ReadDirListsEverything) {
  std::vector<char> buf(4096);
  size_t used = 0;
  ASSERT_EQ(fs_->ReadDir(kRootIno, buf.size(), 0, false, buf.data(), &used), 0);
  const std::string listing(buf.data(), used);
  EXPECT_NE(listing.find("my image.iso"), std::string::npos);
  EXPECT_NE(listing.find(kStatusFileName), std::string::npos);
  // Continuing after the last entry gives nothing.
  ASSERT_EQ(fs_->ReadDir(kRootIno, buf.size(), 4, true, buf.data(), &used), 0);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(fs_->ReadDir(kImageIno, buf.size(), 0, false, buf.data(), &used), ENOTDIR);
  EXPECT_EQ(fs_->OpenDir(kImageIno), ENOTDIR);
  EXPECT_EQ(fs_->OpenDir(kRootIno), 0);
}

TEST_F(JigdoFsTest, WritesAreReadOnlyErrors) {
  OpenReply r;
  EXPECT_EQ(fs_->Open(kImageIno, O_WRONLY, &r), EROFS);
  EXPECT_EQ(fs_->Open(kImageIno, O_RDWR, &r), EROFS);
  EXPECT_EQ(fs_->Open(kImageIno, O_RDONLY | O_TRUNC, &r), EROFS);
  EXPECT_EQ(fs_->Open(kRootIno, O_RDONLY, &r), EISDIR);
  EXPECT_EQ(fs_->Open(kImageIno + 5, O_RDONLY, &r), ENOENT);
}

TEST_F(JigdoFsTest, WholeImageInKernelSizedReads) {
  for (size_t chunk : {size_t{4096}, size_t{128} << 10, size_t{1} << 20}) {
    int err = -1;
    std::string got = ReadRange(0, builder_.image().size() + 1000, &err, chunk);
    ASSERT_EQ(err, 0);
    ASSERT_EQ(got.size(), builder_.image().size()) << chunk;
    EXPECT_TRUE(got == builder_.image()) << "chunk " << chunk;
  }
  // Past the end: zero bytes, no error.
  OpenReply r;
  ASSERT_EQ(fs_->Open(kImageIno, O_RDONLY, &r), 0);
  std::vector<uint8_t> buf(10);
  size_t n = 99;
  EXPECT_EQ(ReadVia(*fs_, kImageIno, r.fh, builder_.image().size(), 10, buf.data(), &n), 0);
  EXPECT_EQ(n, 0u);
  fs_->Release(kImageIno, r.fh);
}

TEST_F(JigdoFsTest, PlanServesSliceBytesByFdAndLiteralsFromMemory) {
  OpenReply r;
  ASSERT_EQ(fs_->Open(kImageIno, O_RDONLY, &r), 0);
  ReadPlan plan;
  const size_t len = 200000;
  ASSERT_EQ(fs_->PlanRead(kImageIno, r.fh, 0, len, &plan, fs_->MakeFetchContext()), 0);
  EXPECT_EQ(plan.size, len);
  size_t fd_parts = 0, total = 0;
  std::string assembled;
  for (const ReadPlan::Part& p : plan.parts) {
    total += p.length;
    std::string bytes(p.length, '\0');
    if (p.fd >= 0) {
      ++fd_parts;
      ASSERT_EQ(::pread(p.fd, bytes.data(), p.length, static_cast<off_t>(p.pos)),
                static_cast<ssize_t>(p.length));
    } else {
      std::memcpy(bytes.data(), plan.memory.get() + p.pos, p.length);
    }
    assembled += bytes;
  }
  EXPECT_EQ(total, len);
  EXPECT_GE(fd_parts, 5u);
  EXPECT_TRUE(assembled == builder_.image().substr(0, len));
  fs_->Release(kImageIno, r.fh);
}

// The files a plan hands out stay open until the plan goes, even when the
// resolver let go of their slices meanwhile (an LRU of one slice here): a
// closed descriptor, or its number reused by another file, must never be
// what the reply is spliced from.
class JigdoFsTinyLruTest : public JigdoFsTest {
 protected:
  void SetUp() override {
    max_open_slices_ = 1;
    JigdoFsTest::SetUp();
  }
};

TEST_F(JigdoFsTinyLruTest, PlanKeepsItsFilesOpen) {
  OpenReply r;
  ASSERT_EQ(fs_->Open(kImageIno, O_RDONLY, &r), 0);
  ReadPlan plan;
  const size_t len = 200000;
  ASSERT_EQ(fs_->PlanRead(kImageIno, r.fh, 0, len, &plan, fs_->MakeFetchContext()), 0);
  // Other reads push this plan's slices out of the resolver.
  int err = -1;
  ReadRange(builder_.image().size() / 2, 100000, &err);
  ASSERT_EQ(err, 0);
  std::string assembled;
  size_t fd_parts = 0;
  for (const ReadPlan::Part& p : plan.parts) {
    std::string bytes(p.length, '\0');
    if (p.fd >= 0) {
      ++fd_parts;
      ASSERT_EQ(::pread(p.fd, bytes.data(), p.length, static_cast<off_t>(p.pos)), static_cast<ssize_t>(p.length))
          << "fd " << p.fd << ": " << std::strerror(errno);
    } else {
      std::memcpy(bytes.data(), plan.memory.get() + p.pos, p.length);
    }
    assembled += bytes;
  }
  EXPECT_GE(fd_parts, 5u);
  EXPECT_TRUE(assembled == builder_.image().substr(0, len));
  fs_->Release(kImageIno, r.fh);
}

TEST_F(JigdoFsTest, CorruptSliceIsEioAndCounted) {
  // Same size, other bytes: fails its checksum.
  WriteFile(files_[3], Random(5000 + 3001 * 3, 999));
  uint64_t slice3 = 0;
  int seen = 0;
  for (const ImageExtent& e : set_->images()[0].reader->index().extents()) {
    if (e.kind == ImageExtent::Kind::kSlice && seen++ == 3) slice3 = e.image_offset;
  }
  ASSERT_GT(slice3, 0u);
  OpenReply r;
  ASSERT_EQ(fs_->Open(kImageIno, O_RDONLY, &r), 0);
  std::vector<uint8_t> buf(4096);
  size_t n = 0;
  EXPECT_EQ(ReadVia(*fs_, kImageIno, r.fh, slice3 + 10, 100, buf.data(), &n), EIO);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(fs_->failures().Get(Status::Code::kCorruption), 1u);
  // Bytes before it are still served.
  EXPECT_EQ(ReadVia(*fs_, kImageIno, r.fh, 0, 100, buf.data(), &n), 0);
  EXPECT_EQ(n, 100u);
  fs_->Release(kImageIno, r.fh);
}

TEST_F(JigdoFsTest, SliceThatShrankAfterVerificationIsEio) {
  int err = -1;
  ASSERT_EQ(ReadRange(0, builder_.image().size(), &err).size(), builder_.image().size());  // all verified, open
  ASSERT_EQ(::truncate(files_[0].c_str(), 10), 0);
  std::vector<uint8_t> buf(4096);
  size_t n = 0;
  OpenReply r;
  ASSERT_EQ(fs_->Open(kImageIno, O_RDONLY, &r), 0);
  EXPECT_EQ(ReadVia(*fs_, kImageIno, r.fh, 0, 4096, buf.data(), &n), EIO);
  fs_->Release(kImageIno, r.fh);
}

TEST_F(JigdoFsTest, SequentialReadsPrefetchAhead) {
  ASSERT_NE(fs_->prefetcher(), nullptr);
  int err = -1;
  ReadRange(0, 8192, &err, 4096);
  ASSERT_EQ(err, 0);
  fs_->prefetcher()->Drain();
  // The first reads were sequential: slices beyond them were queued.
  EXPECT_GT(fs_->prefetcher()->stats().queued, 2u);
  EXPECT_EQ(fs_->prefetcher()->stats().failed, 0u);
}

TEST_F(JigdoFsTest, StatusFileIsJsonSnapshot) {
  int err = -1;
  ReadRange(0, 50000, &err);
  ASSERT_EQ(err, 0);
  OpenReply r;
  ASSERT_EQ(fs_->Open(kStatusIno, O_RDONLY, &r), 0);
  EXPECT_TRUE(r.direct_io);
  std::string text;
  std::vector<uint8_t> buf(7);  // small reads: offsets must work
  for (;;) {
    size_t n = 0;
    ASSERT_EQ(ReadVia(*fs_, kStatusIno, r.fh, text.size(), buf.size(), buf.data(), &n), 0);
    if (n == 0) break;
    text.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  fs_->Release(kStatusIno, r.fh);
  auto j = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_GE(j["fs"]["reads"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["fs"]["bytes_read"].get<uint64_t>(), 50000u);
  EXPECT_TRUE(j["fs"].contains("prefetch"));
  size_t n = 0;
  EXPECT_EQ(ReadVia(*fs_, kStatusIno, 0, 0, 10, buf.data(), &n), EBADF);
}

// Reply buffers are reused, and no more than max_kept stay allocated
// however many were in use at once.
TEST(BufferPoolTest, ReusesBuffersAndKeepsAtMostMaxKept) {
  BufferPool pool(4096, 3);
  EXPECT_EQ(pool.buffer_size(), 4096u);
  const uint8_t* first;
  {
    BufferPool::Lease a = pool.Get();
    first = a.data();
    std::memset(a.data(), 0xab, pool.buffer_size());  // the whole buffer is ours
  }
  EXPECT_EQ(pool.kept(), 1u);
  {
    BufferPool::Lease again = pool.Get();
    EXPECT_EQ(again.data(), first);
    EXPECT_EQ(pool.kept(), 0u);
  }
  {
    std::vector<BufferPool::Lease> many;
    for (int i = 0; i < 10; ++i) many.push_back(pool.Get());
    std::set<const uint8_t*> distinct;
    for (const auto& l : many) distinct.insert(l.data());
    EXPECT_EQ(distinct.size(), 10u);
  }
  EXPECT_EQ(pool.kept(), 3u);
}

// libfuse splices a reply only through a pipe of page*(buffers+2)+16+payload
// bytes; unprivileged pipes stop at fs.pipe-max-size.
TEST(SpliceBudgetTest, RequestsLeaveRoomInThePipe) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  SpliceBudget usual(size_t{1} << 20);  // the default fs.pipe-max-size
  EXPECT_EQ(usual.max_request_bytes(), size_t{768} << 10);
  EXPECT_TRUE(usual.Fits(usual.max_request_bytes(), 1));
  EXPECT_TRUE(usual.Fits(usual.max_request_bytes(), 60));
  EXPECT_FALSE(usual.Fits(usual.max_request_bytes(), 70));
  // What 1 MiB requests did: no reply could ever be spliced.
  EXPECT_FALSE(usual.Fits(size_t{1} << 20, 1));
  EXPECT_TRUE(usual.Fits((size_t{1} << 20) - 3 * page - 16, 1));
  EXPECT_FALSE(usual.Fits((size_t{1} << 20) - 3 * page - 15, 1));

  EXPECT_EQ(SpliceBudget(size_t{64} << 10).max_request_bytes(), size_t{128} << 10);  // the kernel's default
  EXPECT_EQ(SpliceBudget(size_t{16} << 20).max_request_bytes(), size_t{1} << 20);    // FUSE's maximum
  EXPECT_EQ(SpliceBudget(size_t{1000} << 10).max_request_bytes() % page, 0u);
  const SpliceBudget system = SpliceBudget::FromSystem();
  EXPECT_GE(system.max_request_bytes(), size_t{128} << 10);
  EXPECT_LE(system.max_request_bytes(), size_t{1} << 20);
}

}  // namespace
}  // namespace jigdoofus
