// ScanImageFile, ImageFileSet and the scan record, on synthetic image files.
#include <fcntl.h>
#include <gtest/gtest.h>

#include "tests/unit/random_bytes.h"

#include <random>
#include <string>
#include <vector>

#include "cache/image_scan_store.h"
#include "core/digest.h"
#include "core/rsync_sum.h"
#include "core/unique_fd.h"
#include "fetch/sources/image_file_scan.h"
#include "fetch/sources/image_file_set.h"
#include "tests/unit/temp_dir.h"

namespace jigdoofus {
namespace {

constexpr uint32_t kBlock = 1024;

using testing_util::RandomBytes;

std::span<const uint8_t> Bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

SliceId IdOf(const std::string& content, HashAlgo algo = HashAlgo::kMd5) {
  return {HashBytes(algo, Bytes(content)), content.size()};
}
SliceHead HeadOf(const std::string& content) {
  return {RsyncSum64(Bytes(content).first(std::min<size_t>(kBlock, content.size()))), kBlock};
}

// An "image": random filler with `files` written at the given offsets.
struct Image {
  std::string bytes;
  void Put(uint64_t at, const std::string& f) {
    if (bytes.size() < at + f.size()) bytes.resize(at + f.size());
    bytes.replace(at, f.size(), f);
  }
};

class ImageScanTest : public ::testing::Test {
 protected:
  ImageScanTest() {
    a_ = RandomBytes(5000, 1);
    b_ = RandomBytes(2048 * 3, 2);  // ends on a sector: slices back to back
    c_ = RandomBytes(3000, 3);
    decoy_ = a_.substr(0, kBlock) + RandomBytes(5000 - kBlock, 4);  // a_'s head, another body
    img_.bytes = RandomBytes(64 * 1024, 9);
    img_.Put(2048, decoy_);             // a candidate, rejected by its checksum
    img_.Put(8192, b_);
    img_.Put(8192 + b_.size(), c_);     // right after b_, still 2048-aligned
    img_.Put(20480 + 512, a_);          // 512-aligned
    img_.Put(40000 + 3, RandomBytes(10, 5));
    img_.Put(40963, a_);                // unaligned copy: never looked at
    path_ = dir_.Write("old.iso", img_.bytes);
    wanted_.Add(IdOf(a_), HeadOf(a_));
    wanted_.Add(IdOf(b_), HeadOf(b_));
    wanted_.Add(IdOf(c_), HeadOf(c_));
    missing_ = RandomBytes(4096, 7);
    wanted_.Add(IdOf(missing_), HeadOf(missing_));
  }
  testing_util::TempDir dir_;
  std::string a_, b_, c_, decoy_, missing_;
  Image img_;
  std::string path_;
  WantedHeads wanted_;
};

TEST_F(ImageScanTest, FindsAlignedSlicesAndConfirmsEachByItsChecksum) {
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  ImageScanCounters counters;
  std::vector<FoundSlice> found;
  Status st = ScanImageFile(fd.get(), path_, img_.bytes.size(), wanted_, kImageScanStride, FetchContext{},
                            &counters, nullptr, [&](const FoundSlice& f) { found.push_back(f); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(found, (std::vector<FoundSlice>{{8192, IdOf(b_)}, {8192 + b_.size(), IdOf(c_)}, {20992, IdOf(a_)}}));
  EXPECT_EQ(counters.bytes_read.load(), img_.bytes.size());
  EXPECT_EQ(counters.found.load(), 3u);
  // The decoy with a_'s head, b_, c_ and a_: 4 candidates, one of which
  // hashed to something else. (The unaligned a_ is never a candidate.)
  EXPECT_EQ(counters.candidates.load(), 4u);
  EXPECT_EQ(counters.bytes_hashed.load(), a_.size() + b_.size() + c_.size() + decoy_.size());
}

TEST_F(ImageScanTest, ATarStride512FindsWhatA2048StrideMisses) {
  Image tar;
  tar.bytes = RandomBytes(16384, 11);
  tar.Put(512 * 3, a_);
  const std::string p = dir_.Write("x.tar", tar.bytes);
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  for (uint32_t stride : {512u, 2048u}) {
    std::vector<FoundSlice> found;
    ASSERT_TRUE(ScanImageFile(fd.get(), p, tar.bytes.size(), wanted_, stride, FetchContext{}, nullptr, nullptr,
                              [&](const FoundSlice& f) { found.push_back(f); })
                    .ok());
    EXPECT_EQ(found.size(), stride == 512 ? 1u : 0u) << stride;
  }
}

TEST_F(ImageScanTest, StopsWhenCancelled) {
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  ctx.cancel->Fire();
  Status st = ScanImageFile(fd.get(), path_, img_.bytes.size(), wanted_, kImageScanStride, ctx, nullptr, nullptr,
                            [](const FoundSlice&) {});
  EXPECT_EQ(st.code(), Status::Code::kCancelled);
}

TEST_F(ImageScanTest, ASecondSetUsesTheRecordAndReadsNothing) {
  MemoryImageScanStore store;
  auto read_slice = [&](ImageFileSet& set, const std::string& content) -> std::string {
    SliceRequest req;
    req.id = IdOf(content);
    req.head = HeadOf(content);
    auto r = set.Open(req, FetchContext{});
    if (!r.ok()) return "error: " + r.status().ToString();
    std::string out(content.size(), '\0');
    Status st = (*r)->ReadAt(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    return st.ok() ? out : "error: " + st.ToString();
  };
  {
    ImageFileSet set({path_}, &store);
    set.Start(wanted_);
    EXPECT_EQ(read_slice(set, b_), b_);
    EXPECT_EQ(read_slice(set, c_), c_);
    SliceRequest missing;
    missing.id = IdOf(missing_);
    missing.head = HeadOf(missing_);
    EXPECT_EQ(set.Open(missing, FetchContext{}).status().code(), Status::Code::kNotFound);
    set.WaitUntilDone();
    ImageFileStats s = set.Stats();
    EXPECT_EQ(s.bytes_read, img_.bytes.size());
    EXPECT_EQ(s.slices_found, 3u);
  }
  {
    ImageFileSet set({path_}, &store);
    set.Start(wanted_);
    set.WaitUntilDone();
    EXPECT_EQ(read_slice(set, a_), a_);
    ImageFileStats s = set.Stats();
    EXPECT_EQ(s.bytes_read, 0u);
    EXPECT_EQ(s.files_from_record, 1u);
    EXPECT_EQ(s.bytes_done, img_.bytes.size());
  }
  {
    // Wanting one more head than the record looked for: scanned again, for
    // that head only, and the union recorded.
    const std::string d = img_.bytes.substr(30720, 2000);
    WantedHeads more = wanted_;
    more.Add(IdOf(d), HeadOf(d));
    ImageFileSet set({path_}, &store);
    set.Start(more);
    set.WaitUntilDone();
    EXPECT_EQ(read_slice(set, d), d);
    EXPECT_EQ(set.Stats().bytes_read, img_.bytes.size());
    EXPECT_EQ(set.Stats().slices_found, 4u);
  }
}

TEST(ImageScanRecordCodec, RoundTripsAndRejectsMalformedBytes) {
  ImageScanRecord r;
  r.looked_for = {{7, 1024}, {9, 1024}};
  r.found = {{2048, IdOf("x", HashAlgo::kMd5)}, {1u << 31, IdOf("y", HashAlgo::kSha256)}};
  const std::string bytes = EncodeImageScanRecord(r);
  auto back = DecodeImageScanRecord(Bytes(bytes));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(DecodeImageScanRecord(Bytes(bytes.substr(0, bytes.size() - 1))).has_value());
  std::string bad_algo = bytes;
  bad_algo[9 + 2 * 12 + 16] = 7;
  EXPECT_FALSE(DecodeImageScanRecord(Bytes(bad_algo)).has_value());
  std::string bad_version = bytes;
  bad_version[0] = 2;
  EXPECT_FALSE(DecodeImageScanRecord(Bytes(bad_version)).has_value());
  EXPECT_FALSE(DecodeImageScanRecord({}).has_value());
}

}  // namespace
}  // namespace jigdoofus
