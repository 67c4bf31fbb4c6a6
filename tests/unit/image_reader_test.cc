// Tests of ImageReader and ImageMap (core/image_reader.cc, core/image_map.cc)
// with synthetic templates and a fake SliceProvider.
#include "core/image_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <random>

#include "core/byte_source.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

using testing_util::TemplateBuilder;

// How a kept slice misbehaves: its AppendTo (and, if `reads_too`, its
// ReadAt) fails with `code` while `left` > 0, as a cache entry that went
// bad (kCorruption) or was evicted (kNotFound) does.
struct Flaky {
  Status::Code code = Status::Code::kNotFound;
  int left = 0;
  bool reads_too = false;
  int discards = 0;
};

class FakeSlice final : public VerifiedSlice {
 public:
  FakeSlice(SliceId id, std::string data, Flaky* flaky = nullptr)
      : id_(std::move(id)), data_(std::move(data)), flaky_(flaky) {}
  const SliceId& id() const override { return id_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    if (flaky_ != nullptr && flaky_->reads_too && flaky_->left > 0) return Fail();
    if (offset + out.size() > data_.size()) return Status::IOError("fake slice: read past end");
    std::memcpy(out.data(), data_.data() + offset, out.size());
    return Status::OK();
  }
  Status AppendTo(uint64_t offset, size_t n, ReadPlan* plan) const override {
    if (flaky_ != nullptr && flaky_->left > 0) return Fail();
    return VerifiedSlice::AppendTo(offset, n, plan);
  }
  void Discard() const override {
    if (flaky_ != nullptr) ++flaky_->discards;
  }

 private:
  Status Fail() const {
    --flaky_->left;
    return flaky_->code == Status::Code::kCorruption ? Status::Corruption("fake: block sum mismatch")
                                                     : Status::NotFound("fake: evicted");
  }
  SliceId id_;
  std::string data_;
  Flaky* flaky_;
};

// Knows every slice of a builder by its content; can be told to fail one.
class FakeProvider final : public SliceProvider {
 public:
  explicit FakeProvider(const TemplateBuilder& b) {
    for (const std::string& s : b.slices()) {
      SliceId id;
      id.size = s.size();
      id.digest = HashBytes(b.options().algo, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
      slices_.emplace_back(id, s);
    }
  }
  void Fail(const std::string& content, Status st) { failures_[content] = std::move(st); }
  void MakeFlaky(const std::string& content, Flaky* f) { flaky_[content] = f; }
  int forgets() const { return forgets_; }
  void Forget(const SliceId&) override { ++forgets_; }
  int gets() const {
    std::lock_guard<std::mutex> l(mu_);
    return gets_;
  }

  Result<std::shared_ptr<const VerifiedSlice>> Get(const SliceId& id, const FetchContext&) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++gets_;
    }
    for (const auto& [sid, data] : slices_) {
      if (sid == id) {
        auto f = failures_.find(data);
        if (f != failures_.end()) return f->second;
        auto fl = flaky_.find(data);
        return std::shared_ptr<const VerifiedSlice>(
            std::make_shared<FakeSlice>(sid, data, fl == flaky_.end() ? nullptr : fl->second));
      }
    }
    return Status::NotFound("fake provider: unknown slice");
  }

 private:
  std::vector<std::pair<SliceId, std::string>> slices_;
  std::map<std::string, Status> failures_;
  std::map<std::string, Flaky*> flaky_;
  int forgets_ = 0;
  mutable std::mutex mu_;
  int gets_ = 0;
};

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

struct Fixture {
  TemplateBuilder builder;
  std::shared_ptr<FakeProvider> provider;
  std::unique_ptr<ImageReader> reader;
};

std::unique_ptr<Fixture> Make(TemplateBuilder b) {
  auto f = std::make_unique<Fixture>();
  f->builder = std::move(b);
  auto file = std::make_shared<MemoryByteSource>("img.template", f->builder.Build());
  auto idx = ReadTemplateIndex(*file);
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  if (!idx.ok()) return nullptr;
  auto index = std::make_shared<const TemplateIndex>(std::move(idx).value());
  auto lit = std::make_shared<const LiteralStore>(file, index);
  f->provider = std::make_shared<FakeProvider>(f->builder);
  f->reader = std::make_unique<ImageReader>(index, lit, f->provider);
  return f;
}

Result<std::string> ReadImage(const ImageReader& r, uint64_t off, size_t n) {
  std::string out(n, '\0');
  auto got = r.ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), n), FetchContext{});
  if (!got.ok()) return got.status();
  out.resize(*got);
  return out;
}

TemplateBuilder Interleaved(HashAlgo algo, Codec codec) {
  TemplateBuilder::Options o;
  o.algo = algo;
  o.codec = codec;
  o.part_size = 5000;
  TemplateBuilder b(o);
  b.Slice(Bytes(3000, 1)).Literal(Bytes(1, 2)).Literal(Bytes(7000, 3)).Slice(Bytes(1, 4)).Slice(Bytes(20000, 5));
  for (int i = 0; i < 40; ++i) b.Literal(Bytes(10 + i * 37, 10 + i)).Slice(Bytes(100 + i * 91, 100 + i));
  b.Slice(Bytes(3000, 1)).Literal(Bytes(64, 6));
  return b;
}

TEST(ImageReader, WholeImageAndRandomRanges) {
  for (HashAlgo algo : {HashAlgo::kMd5, HashAlgo::kSha256}) {
    for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
      auto f = Make(Interleaved(algo, codec));
      ASSERT_TRUE(f);
      const std::string& img = f->builder.image();
      ASSERT_EQ(f->reader->size(), img.size());
      auto all = ReadImage(*f->reader, 0, img.size());
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      EXPECT_EQ(*all, img);
      std::mt19937_64 rng(3);
      for (int i = 0; i < 300; ++i) {
        const uint64_t off = rng() % img.size();
        const size_t n = 1 + rng() % 30000;
        auto got = ReadImage(*f->reader, off, n);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(*got, img.substr(off, n)) << off << "+" << n;
      }
    }
  }
}

TEST(ImageReader, ClippedAtEnd) {
  auto f = Make(Interleaved(HashAlgo::kMd5, Codec::kZlib));
  ASSERT_TRUE(f);
  const std::string& img = f->builder.image();
  auto tail = ReadImage(*f->reader, img.size() - 10, 4096);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, img.substr(img.size() - 10));
  auto past = ReadImage(*f->reader, img.size(), 10);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past->size(), 0u);
  auto far = ReadImage(*f->reader, img.size() + 1000, 10);
  ASSERT_TRUE(far.ok());
  EXPECT_EQ(far->size(), 0u);
}

TEST(ImageReader, FailingSliceFailsTheRead) {
  auto f = Make(Interleaved(HashAlgo::kSha256, Codec::kZlib));
  ASSERT_TRUE(f);
  const std::string bad = Bytes(20000, 5);
  f->provider->Fail(bad, Status::Unavailable("all servers failed for x.deb"));
  const std::string& img = f->builder.image();
  const uint64_t at = img.find(bad);
  ASSERT_NE(at, std::string::npos);
  // Spanning the slice: fails with its status and the image offset.
  auto r = ReadImage(*f->reader, at - 100, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(r.status().message().find("image offset " + std::to_string(at)), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("x.deb"), std::string::npos);
  // Ranges before and after it still read.
  auto before = ReadImage(*f->reader, 0, at);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, img.substr(0, at));
  auto after = ReadImage(*f->reader, at + bad.size(), 5000);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, img.substr(at + bad.size(), 5000));
}

Result<std::string> PlanImage(const ImageReader& r, uint64_t off, size_t n) {
  ReadPlan plan;
  JIGDOOFUS_RETURN_IF_ERROR(r.Plan(off, n, FetchContext{}, &plan));
  std::string out;
  for (const ReadPlan::Part& p : plan.parts) {
    if (p.fd >= 0) return Status::Internal("fake slices have no fd");
    out.append(reinterpret_cast<const char*>(plan.memory.get() + p.pos), p.length);
  }
  return out;
}

// A kept slice whose bytes went bad is discarded, forgotten and got again
// within the same read; the read still returns the right bytes.
TEST(ImageReader, PlanRefetchesASliceThatWentBad) {
  auto f = Make(Interleaved(HashAlgo::kSha256, Codec::kZlib));
  Flaky bad{Status::Code::kCorruption, 1};
  f->provider->MakeFlaky(Bytes(20000, 5), &bad);
  const std::string& image = f->builder.image();
  auto got = PlanImage(*f->reader, 0, image.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == image);
  EXPECT_EQ(bad.discards, 1);
  EXPECT_EQ(f->provider->forgets(), 1);
}

// A cache turning over faster than a read can hold its slices (AppendTo
// keeps saying "evicted"): the read copies each slice right after getting it.
TEST(ImageReader, PlanFallsBackToCopyingWhenSlicesKeepGoingAway) {
  auto f = Make(Interleaved(HashAlgo::kSha256, Codec::kZlib));
  Flaky churn{Status::Code::kNotFound, 1000};
  f->provider->MakeFlaky(Bytes(3000, 1), &churn);
  const std::string& image = f->builder.image();
  auto got = PlanImage(*f->reader, 0, image.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == image);
  EXPECT_EQ(churn.discards, 0);  // evicted is not damaged
}

// Bytes that stay bad are never served: the read fails, boundedly.
TEST(ImageReader, PlanNeverServesBytesThatStayBad) {
  auto f = Make(Interleaved(HashAlgo::kSha256, Codec::kZlib));
  Flaky rot{Status::Code::kCorruption, 1000, /*reads_too=*/true};
  f->provider->MakeFlaky(Bytes(1, 4), &rot);
  auto got = PlanImage(*f->reader, 0, f->builder.image().size());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
  EXPECT_LE(rot.discards, 2 * (ImageReader::kSliceRetries + 1));
  auto read = ReadImage(*f->reader, 0, f->builder.image().size());
  EXPECT_EQ(read.status().code(), Status::Code::kCorruption);
}

TEST(ImageMap, PiecesAndFindExtent) {
  TemplateBuilder b;
  b.Literal("aaaa").Slice("bbbbbb").Literal("cc").Slice("bbbbbb");
  auto file = std::make_shared<MemoryByteSource>("m.template", b.Build());
  auto idx = ReadTemplateIndex(*file);
  ASSERT_TRUE(idx.ok());
  ImageMap map(std::make_shared<const TemplateIndex>(std::move(idx).value()));
  EXPECT_EQ(map.size(), 18u);
  EXPECT_EQ(map.FindExtent(0), 0u);
  EXPECT_EQ(map.FindExtent(3), 0u);
  EXPECT_EQ(map.FindExtent(4), 1u);
  EXPECT_EQ(map.FindExtent(17), 3u);
  auto pieces = map.Pieces(2, 14);  // [2,16)
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0].kind, ImageExtent::Kind::kLiteral);
  EXPECT_EQ(pieces[0].source_offset, 2u);
  EXPECT_EQ(pieces[0].length, 2u);
  EXPECT_EQ(pieces[1].kind, ImageExtent::Kind::kSlice);
  EXPECT_EQ(pieces[1].source_offset, 0u);
  EXPECT_EQ(pieces[1].length, 6u);
  EXPECT_EQ(pieces[2].source_offset, 4u);  // second literal starts at literal offset 4
  EXPECT_EQ(pieces[3].slice, pieces[1].slice);
  EXPECT_EQ(pieces[3].length, 4u);
  EXPECT_TRUE(map.Pieces(18, 5).empty());
  auto tail = map.Pieces(16, 100);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].source_offset, 4u);
  EXPECT_EQ(tail[0].length, 2u);
}

}  // namespace
}  // namespace jigdoofus
