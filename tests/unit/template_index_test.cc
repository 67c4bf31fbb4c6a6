// Tests of the .template header/part/DESC reader (core/template_index.cc,
// core/template_format.cc).
#include "core/template_index.h"

#include <gtest/gtest.h>

#include <random>

#include "core/byte_source.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

using testing_util::TemplateBuilder;

Result<TemplateIndex> Index(std::string bytes, std::string name = "t.template") {
  MemoryByteSource src(std::move(name), std::move(bytes));
  return ReadTemplateIndex(src);
}

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TemplateBuilder Sample(TemplateBuilder::Options o = {}) {
  TemplateBuilder b(o);
  b.Literal(Pattern(3000, 1)).Slice(Pattern(5000, 2)).Literal(Pattern(10, 3)).Slice(Pattern(7000, 4));
  b.Slice(Pattern(5000, 2)).Literal(Pattern(200000, 5));
  return b;
}

void ExpectCorruption(const std::string& bytes, const std::string& needle) {
  auto r = Index(bytes, "bad.template");
  ASSERT_FALSE(r.ok()) << "expected failure containing: " << needle;
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("bad.template"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

// Checks the index against the builder's truth: extents cover the image,
// literal extents point at the right literal bytes, slices match.
void ExpectMatches(const TemplateIndex& idx, const TemplateBuilder& b) {
  EXPECT_EQ(idx.image_size(), b.image().size());
  EXPECT_EQ(idx.literal_size(), b.literals().size());
  uint64_t pos = 0;
  for (const ImageExtent& e : idx.extents()) {
    EXPECT_EQ(e.image_offset, pos);
    EXPECT_GT(e.length, 0u);
    std::string_view img = std::string_view(b.image()).substr(e.image_offset, e.length);
    if (e.kind == ImageExtent::Kind::kLiteral) {
      EXPECT_EQ(img, std::string_view(b.literals()).substr(e.literal_offset, e.length));
    } else {
      ASSERT_LT(e.slice, idx.slices().size());
      const SliceId& id = idx.slices()[e.slice];
      EXPECT_EQ(id.size, e.length);
      EXPECT_EQ(id.digest, HashBytes(id.digest.algo, {reinterpret_cast<const uint8_t*>(img.data()), img.size()}));
    }
    pos += e.length;
  }
  EXPECT_EQ(pos, b.image().size());
  EXPECT_EQ(idx.slices().size(), b.slices().size());
  uint64_t lit = 0;
  for (const DataPart& p : idx.parts()) {
    EXPECT_EQ(p.literal_offset, lit);
    lit += p.uncompressed_size;
  }
  EXPECT_EQ(lit, b.literals().size());
}

TEST(TemplateHeader, Variants) {
  struct Case {
    std::string text;
    int major, minor;
    std::string creator;
  } cases[] = {
      {"JigsawDownload template 1.0 jigdo-file/0.5.0\r\ncomment\r\n\r\n", 1, 0, "jigdo-file/0.5.0"},
      {"JigsawDownload template 1.1 jigdo-file/0.6.3\r\n\r\n\r\n", 1, 1, "jigdo-file/0.6.3"},
      {"JigsawDownload template 1.2 jigdo-file/0.7.3\r\nSee http://x/\r\n\r\n", 1, 2, "jigdo-file/0.7.3"},
      {"JigsawDownload template 2.0 libjte-2.0.0 \r\nJTE at x ; Jigdo at y \r\n\r\n", 2, 0, "libjte-2.0.0"},
      {"JigsawDownload template 1.42 x/1\t \r\nc\r\n  \r\n", 1, 42, "x/1"},
  };
  for (const auto& c : cases) {
    auto h = tmpl::DecodeHeader(c.text + "DATA", "h.template");
    ASSERT_TRUE(h.ok()) << c.text << h.status().ToString();
    EXPECT_EQ(h->major, c.major);
    EXPECT_EQ(h->minor, c.minor);
    EXPECT_EQ(h->creator, c.creator);
    EXPECT_EQ(h->size, c.text.size());
  }
}

TEST(TemplateHeader, Refused) {
  auto v3 = tmpl::DecodeHeader("JigsawDownload template 3.0 future/1\r\n\r\n\r\n", "h.template");
  ASSERT_FALSE(v3.ok());
  EXPECT_EQ(v3.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(v3.status().message().find("h.template"), std::string::npos);
  for (std::string bad : {"JigsawDownload template x.0 a/1\r\n\r\n\r\n", "JigsawDownload template 1 a/1\r\n\r\n\r\n",
                          "JigsawDownload template 1.0a a/1\r\n\r\n\r\n", "JigsawDownload template 1.0 a/1\n\n\n",
                          "JigsawDownload template 1.0 a/1\r\nc\r\nnot empty\r\n", "JigsawDownload template 1.0 a/1 b\r\n\r\n\r\n",
                          "JigsawDownload template 1.0 a/1\r\nc\r\n", "PK\x03\x04", "",
                          "JigsawDownload template 99999999999.0 a/1\r\n\r\n\r\n"}) {
    auto h = tmpl::DecodeHeader(bad, "h.template");
    EXPECT_FALSE(h.ok()) << bad;
    if (!h.ok()) {
      EXPECT_EQ(h.status().code(), Status::Code::kCorruption) << bad;
    }
  }
}

TEST(TemplateFormat, LittleEndianRoundTrip) {
  std::string s;
  tmpl::EncodeLE48(0x0000123456789abcull, &s);
  tmpl::EncodeLE32(0xdeadbeef, &s);
  tmpl::EncodeLE64(0x0102030405060708ull, &s);
  ASSERT_EQ(s.size(), 18u);
  auto* p = reinterpret_cast<const uint8_t*>(s.data());
  EXPECT_EQ(p[0], 0xbc);
  EXPECT_EQ(tmpl::DecodeLE48(p), 0x0000123456789abcull);
  EXPECT_EQ(tmpl::DecodeLE32(p + 6), 0xdeadbeefu);
  EXPECT_EQ(tmpl::DecodeLE64(p + 10), 0x0102030405060708ull);
  EXPECT_EQ(tmpl::EntryPayloadSize(4), 0u);
  EXPECT_EQ(tmpl::EntryPayloadSize(9), 46u);
}

TEST(TemplateIndex, EveryHeaderVersionAndCodec) {
  for (std::string version : {"1.0", "1.1", "1.2", "2.0"}) {
    for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
      for (bool space : {false, true}) {
        TemplateBuilder::Options o;
        o.version = version;
        o.codec = codec;
        o.space_before_crlf = space;
        o.part_size = 50000;
        TemplateBuilder b = Sample(o);
        auto idx = Index(b.Build());
        ASSERT_TRUE(idx.ok()) << idx.status().ToString();
        ExpectMatches(*idx, b);
        EXPECT_EQ(idx->parts().size(), 5u);  // 203010 literal bytes in 50000-byte parts
        for (const DataPart& p : idx->parts()) EXPECT_EQ(p.codec, codec);
        EXPECT_EQ(idx->header().minor, version == "1.0" || version == "2.0" ? 0 : version[2] - '0');
      }
    }
  }
}

TEST(TemplateIndex, EntryTypes) {
  struct Case {
    HashAlgo algo;
    bool obsolete;
  } cases[] = {{HashAlgo::kMd5, false}, {HashAlgo::kMd5, true}, {HashAlgo::kSha256, false}};
  for (const auto& c : cases) {
    TemplateBuilder::Options o;
    o.algo = c.algo;
    o.obsolete_types = c.obsolete;
    o.block_len = 4096;
    TemplateBuilder b = Sample(o);
    auto idx = Index(b.Build());
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    ExpectMatches(*idx, b);
    ASSERT_TRUE(idx->image_digest().has_value());
    EXPECT_EQ(idx->image_digest()->algo, c.algo);
    EXPECT_EQ(*idx->image_digest(),
              HashBytes(c.algo, {reinterpret_cast<const uint8_t*>(b.image().data()), b.image().size()}));
    EXPECT_EQ(idx->block_len(), c.obsolete ? 0u : 4096u);
    // The same package twice is one slice.
    EXPECT_EQ(idx->slices().size(), 2u);
    EXPECT_EQ(idx->extents().size(), 6u);
    EXPECT_EQ(idx->extents()[1].slice, idx->extents()[4].slice);
    EXPECT_EQ(idx->slices()[0].digest.algo, c.algo);
  }
}

TEST(TemplateIndex, SlicesOnlyNoDataParts) {
  TemplateBuilder b;
  b.Slice("abc").Slice("defg");
  auto idx = Index(b.Build());
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_TRUE(idx->parts().empty());
  EXPECT_EQ(idx->image_size(), 7u);
  ExpectMatches(*idx, b);
}

TEST(TemplateIndex, NoImageInfoAndSeveralImageInfos) {
  TemplateBuilder::Options o;
  o.image_info = false;
  TemplateBuilder b = Sample(o);
  auto idx = Index(b.Build());
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_FALSE(idx->image_digest().has_value());
  ExpectMatches(*idx, b);

  // Two image-info entries: the last one wins; but its length must match.
  TemplateBuilder b2 = Sample();
  auto entries = b2.DescEntries();
  tmpl::DescEntry first = entries.back();
  first.block_len = 7;
  entries.insert(entries.begin(), first);
  std::string t = b2.Header();
  for (auto& p : b2.DataParts()) t += p;
  auto idx2 = Index(t + tmpl::EncodeDescPart(entries));
  ASSERT_TRUE(idx2.ok()) << idx2.status().ToString();
  EXPECT_EQ(idx2->block_len(), 1024u);
}

TEST(TemplateIndex, ZeroLengthEntriesDropped) {
  TemplateBuilder b;
  b.Literal("").Literal("abc").Slice("").Slice("xyz").Literal("");
  auto idx = Index(b.Build());
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  ASSERT_EQ(idx->extents().size(), 2u);
  EXPECT_EQ(idx->slices().size(), 1u);
  EXPECT_EQ(idx->image_size(), 6u);
  EXPECT_EQ(idx->extents()[1].image_offset, 3u);
  EXPECT_EQ(idx->extents()[1].kind, ImageExtent::Kind::kSlice);
  EXPECT_EQ(idx->extents()[1].slice, 0u);
}

// --- Corruption --------------------------------------------------------

struct Pieces {
  std::string header;
  std::vector<std::string> parts;
  std::vector<tmpl::DescEntry> entries;
  std::string Join(const std::string& desc) const {
    std::string t = header;
    for (const auto& p : parts) t += p;
    return t + desc;
  }
  std::string Join() const { return Join(tmpl::EncodeDescPart(entries)); }
};

Pieces SamplePieces() {
  TemplateBuilder b = Sample();
  return {b.Header(), b.DataParts(), b.DescEntries()};
}

TEST(TemplateIndexCorruption, FileTooShort) {
  Pieces p = SamplePieces();
  ExpectCorruption(p.header, "too short");
  ExpectCorruption(p.header + "DESC", "too short");
  ExpectCorruption("Jig", "");
}

TEST(TemplateIndexCorruption, PartHeaderPastEnd) {
  Pieces p = SamplePieces();
  std::string t = p.header + p.parts[0].substr(0, 5) + std::string(20, 'x');
  ExpectCorruption(t, "running past the end");
  // A DATA part whose length runs past the end.
  std::string big = p.header + "DATA";
  tmpl::EncodeLE48(1ull << 40, &big);
  tmpl::EncodeLE48(5, &big);
  ExpectCorruption(big + std::string(30, '\0'), "running past the end");
  // Parts only, no DESC.
  ExpectCorruption(p.header + p.parts[0] + "DAT", "runs past the end");
}

TEST(TemplateIndexCorruption, UnknownPartId) {
  Pieces p = SamplePieces();
  p.parts[1].replace(0, 4, "GZIP");
  ExpectCorruption(p.Join(), "unknown part id \"GZIP\"");
}

TEST(TemplateIndexCorruption, DataSizesDisagreeWithDesc) {
  Pieces p = SamplePieces();
  p.parts.pop_back();
  ExpectCorruption(p.Join(), "data parts hold");
  Pieces q = SamplePieces();
  q.parts[0][10] ^= 1;  // uncompressed size of part 0
  ExpectCorruption(q.Join(), "data parts hold");
}

TEST(TemplateIndexCorruption, DescLengths) {
  Pieces p = SamplePieces();
  std::string desc = tmpl::EncodeDescPart(p.entries);
  std::string t = desc;
  t[t.size() - 6] ^= 4;  // trailing copy
  ExpectCorruption(p.Join(t), "disagrees");
  t = desc;
  t[4] ^= 4;  // leading copy (now longer than the file, or shorter)
  ExpectCorruption(p.Join(t), "DESC");
  t = desc;
  t[4] -= 1;  // leading one byte short: trailing garbage
  ExpectCorruption(p.Join(t), "trailing garbage");
  ExpectCorruption(p.Join(desc + "junk"), "trailing garbage");
  // A DESC claiming 2^47 bytes: refused before any allocation.
  t = "DESC";
  tmpl::EncodeLE48(1ull << 47, &t);
  t += std::string(40, '\0');
  ExpectCorruption(p.Join(t), "running past the end");
  t = "DESC";
  tmpl::EncodeLE48(3, &t);
  tmpl::EncodeLE48(3, &t);
  ExpectCorruption(p.Join(t), "less than 16");
}

TEST(TemplateIndexCorruption, DescEntries) {
  Pieces p = SamplePieces();
  // Unknown type.
  std::string body = tmpl::EncodeDescEntry(p.entries[0]);
  body[0] = 4;
  auto wrap = [](const std::string& b) {
    std::string d = "DESC";
    tmpl::EncodeLE48(b.size() + 16, &d);
    d += b;
    tmpl::EncodeLE48(b.size() + 16, &d);
    return d;
  };
  ExpectCorruption(p.Join(wrap(body)), "unknown DESC entry type 4");
  // Truncated entry.
  std::string all;
  for (auto& e : p.entries) all += tmpl::EncodeDescEntry(e);
  ExpectCorruption(p.Join(wrap(all.substr(0, all.size() - 3))), "truncated");
  // Entries that do not add up to the image length.
  Pieces q = SamplePieces();
  q.entries.back().length += 1;
  ExpectCorruption(q.Join(), "add up to");
}

TEST(TemplateIndexCorruption, Overflow) {
  Pieces p = SamplePieces();
  // 2^48-1 twice: sum beyond what the format can express.
  tmpl::DescEntry huge;
  huge.type = tmpl::EntryType::kFile;
  huge.length = tmpl::kMaxLength48;
  std::vector<tmpl::DescEntry> entries = p.entries;
  entries.insert(entries.begin(), {huge, huge});
  ExpectCorruption(p.Join(tmpl::EncodeDescPart(entries)), "2^48");
  // 65537 entries of 2^48-1 would overflow uint64 if unchecked.
  std::vector<tmpl::DescEntry> many(65537, huge);
  ExpectCorruption(p.Join(tmpl::EncodeDescPart(many)), "2^48");
  // Data parts' uncompressed sizes overflowing.
  std::string t = p.header;
  for (int i = 0; i < 3; ++i) {
    t += "DATA";
    tmpl::EncodeLE48(17, &t);
    tmpl::EncodeLE48(tmpl::kMaxLength48, &t);
    t += "x";
  }
  ExpectCorruption(t + tmpl::EncodeDescPart(p.entries), "overflow");
}

// A tiny template whose BZIP part claims 2 GiB (a bomb: each cache miss
// would decode it from its start) is refused when it is indexed.
TEST(TemplateIndexCorruption, PartLargerThanTheBoundIsRefused) {
  Pieces p = SamplePieces();
  std::string t = p.header + "BZIP";
  tmpl::EncodeLE48(17, &t);
  tmpl::EncodeLE48(uint64_t{2} << 30, &t);
  t += "x";
  ExpectCorruption(t + tmpl::EncodeDescPart(p.entries), "BZIP part 0");
  std::string ok = p.header + "BZIP";
  tmpl::EncodeLE48(17, &ok);
  tmpl::EncodeLE48(tmpl::kMaxBzipPartUncompressed, &ok);
  ok += "x";
  // At the bound it is accepted by the index (its sizes then disagree
  // with DESC: a different error).
  ExpectCorruption(ok + tmpl::EncodeDescPart(p.entries), "data parts hold");
}

TEST(TemplateIndexCorruption, FuzzNeverCrashes) {
  TemplateBuilder::Options o;
  o.part_size = 3000;
  TemplateBuilder b(o);
  b.Literal(Pattern(5000, 9)).Slice("slice-one").Literal("x").Slice(Pattern(2000, 8)).Literal(Pattern(100, 7));
  const std::string good = b.Build();
  std::mt19937 rng(12345);
  int ok = 0, failed = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string t = good;
    const int mode = i % 4;
    if (mode == 0) {
      t.resize(rng() % t.size());
    } else {
      const int flips = 1 + rng() % 4;
      for (int f = 0; f < flips; ++f) {
        // Bias towards the structural bytes at the end (DESC) and start.
        size_t at = (rng() % 2) ? t.size() - 1 - rng() % std::min<size_t>(t.size(), 400) : rng() % t.size();
        t[at] = static_cast<char>(mode == 1 ? t[at] ^ (1 << (rng() % 8)) : rng());
      }
    }
    auto idx = Index(t, "fuzz.template");
    if (idx.ok()) {
      ++ok;
      uint64_t sum = 0;
      for (const auto& e : idx->extents()) sum += e.length;
      EXPECT_EQ(sum, idx->image_size());
    } else {
      ++failed;
      EXPECT_NE(idx.status().message().find("fuzz.template"), std::string::npos) << idx.status().ToString();
    }
  }
  std::printf("fuzz: %d parsed, %d refused\n", ok, failed);
  EXPECT_GT(failed, 1000);
  EXPECT_GT(ok, 0);  // flips inside compressed data or digests are invisible here
}

TEST(TemplateIndex, FileByteSource) {
  TemplateBuilder b = Sample();
  std::string path = ::testing::TempDir() + "/tmpl_index_test.template";
  {
    FILE* f = fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string t = b.Build();
    fwrite(t.data(), 1, t.size(), f);
    fclose(f);
  }
  auto src = FileByteSource::Open(path);
  ASSERT_TRUE(src.ok());
  auto idx = ReadTemplateIndex(**src);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  ExpectMatches(*idx, b);
  remove(path.c_str());
}

}  // namespace
}  // namespace jigdoofus
