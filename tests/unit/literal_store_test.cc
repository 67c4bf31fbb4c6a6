// Tests of LiteralStore (core/literal_store.cc, core/part_decoder.cc):
// random access into the decompressed DATA/BZIP parts of a template.
#include "core/literal_store.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "core/byte_source.h"
#include "core/template_index.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

using testing_util::TemplateBuilder;

constexpr uint64_t kMiB = 1 << 20;

struct Store {
  std::shared_ptr<const ByteSource> file;
  std::shared_ptr<const TemplateIndex> index;
  std::unique_ptr<LiteralStore> store;
};

Store Open(std::string bytes, LiteralStoreOptions o = {}, std::string name = "lit.template") {
  Store s;
  s.file = std::make_shared<MemoryByteSource>(std::move(name), std::move(bytes));
  auto idx = ReadTemplateIndex(*s.file);
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  if (!idx.ok()) return s;
  s.index = std::make_shared<const TemplateIndex>(std::move(idx).value());
  s.store = std::make_unique<LiteralStore>(s.file, s.index, o);
  return s;
}

// A template whose image is one unmatched run: `size` bytes, one DATA part.
std::string OneDataPartTemplate(const std::string& compressed, uint64_t size) {
  tmpl::DescEntry lit;
  lit.type = tmpl::EntryType::kUnmatched;
  lit.length = size;
  return tmpl::EncodeHeader("2.0", "test/1", "zeros") + tmpl::EncodeDataPart("DATA", compressed, size) +
         tmpl::EncodeDescPart(std::span<const tmpl::DescEntry>(&lit, 1));
}

// Compressible but not trivial: runs of text and random bytes.
std::string MixedData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    if (rng() % 2) {
      s += "the quick brown fox " + std::to_string(rng() % 1000) + " ";
    } else {
      for (int i = 0; i < 50; ++i) s.push_back(static_cast<char>(rng()));
    }
  }
  s.resize(n);
  return s;
}

std::string Read(const LiteralStore& st, uint64_t off, size_t n, LiteralReadStats* stats = nullptr) {
  std::string out(n, '\0');
  Status s = st.ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), n), stats);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

void RandomReadsMatch(const LiteralStore& st, const std::string& truth, int count, uint32_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    const uint64_t off = rng() % truth.size();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(1 + rng() % 300000, truth.size() - off));
    ASSERT_EQ(Read(st, off, n), truth.substr(off, n)) << "offset " << off << " length " << n;
  }
}

TEST(LiteralStore, ManySmallParts) {
  for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
    TemplateBuilder::Options o;
    o.codec = codec;
    o.part_size = 7000;
    TemplateBuilder b(o);
    const std::string data = MixedData(900000, 1);
    for (size_t off = 0; off < data.size(); off += 50000) {
      b.Literal(std::string_view(data).substr(off, 50000)).Slice("s" + std::to_string(off));
    }
    LiteralStoreOptions lo;
    lo.cache_bytes = 64 * 1024;  // force eviction
    Store s = Open(b.Build(), lo);
    ASSERT_TRUE(s.store);
    EXPECT_GT(s.index->parts().size(), 100u);
    RandomReadsMatch(*s.store, b.literals(), 100, 2);
    EXPECT_EQ(Read(*s.store, 0, data.size()), data);  // one read over every part
    // A read of one byte costs at most one part.
    LiteralReadStats stats;
    Read(*s.store, 12345, 1, &stats);
    EXPECT_LE(stats.bytes_decoded, 7000u);
    EXPECT_LE(s.store->Stats().cached_bytes, 64u * 1024 + 7000);
  }
}

TEST(LiteralStore, OutOfRangeAndEmpty) {
  TemplateBuilder b;
  b.Literal("hello world");
  Store s = Open(b.Build());
  ASSERT_TRUE(s.store);
  EXPECT_EQ(Read(*s.store, 6, 5), "world");
  EXPECT_TRUE(s.store->ReadAt(11, {}).ok());
  uint8_t buf[4];
  Status st = s.store->ReadAt(9, buf);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.store->ReadAt(~uint64_t{0} - 1, buf).code(), Status::Code::kInvalidArgument);
}

// One zlib part that inflates to 300 MB of zeros with a few known bytes.
TEST(LiteralStore, HugeZeroPartUsesRestartPoints) {
  const uint64_t size = 300 * kMiB;
  std::map<uint64_t, uint8_t> marks;
  for (uint64_t off = 12345; off < size; off += 3 * kMiB + 777) marks[off] = static_cast<uint8_t>(off % 251 + 1);
  marks[size - 1] = 0xee;
  marks[size - 2] = 0xdd;
  marks[size - 300000] = 0x42;
  auto fill = [&](uint64_t off, std::span<uint8_t> out) {
    std::fill(out.begin(), out.end(), 0);
    for (auto it = marks.lower_bound(off); it != marks.end() && it->first < off + out.size(); ++it) {
      out[it->first - off] = it->second;
    }
  };
  const std::string compressed = testing_util::ZlibCompressGenerated(size, fill, 6);
  EXPECT_LT(compressed.size(), 2 * kMiB);
  std::string t = OneDataPartTemplate(compressed, size);

  LiteralStoreOptions lo;
  lo.checkpoint_interval = kMiB;
  lo.cache_bytes = 2 * kMiB;
  Store s = Open(std::move(t), lo);
  ASSERT_TRUE(s.store);
  auto expect_at = [&](uint64_t off, size_t n, LiteralReadStats* stats) {
    std::string want(n, '\0');
    fill(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(want.data()), n));
    ASSERT_EQ(Read(*s.store, off, n, stats), want) << "offset " << off;
  };
  // First access: one pass over the whole part builds the restart points.
  LiteralReadStats first;
  expect_at(size - 10, 10, &first);
  EXPECT_GE(first.bytes_decoded, size);
  const LiteralStoreStats mem = s.store->Stats();
  EXPECT_GE(mem.checkpoints, 30u);             // deflate blocks of zeros are ~4 MB
  EXPECT_LT(mem.checkpoint_bytes, 1 * kMiB);  // windows of zeros compress to almost nothing

  // Later reads anywhere cost about one interval plus one deflate block.
  const uint64_t bound = 2 * lo.checkpoint_interval + 6 * kMiB;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> offsets = {size - 1, size - 2, size - 300001, 0, 12345, size / 2};
  for (const auto& [off, v] : marks) offsets.push_back(off > 5 ? off - 5 : off);
  for (int i = 0; i < 40; ++i) offsets.push_back(rng() % size);
  for (uint64_t off : offsets) {
    LiteralReadStats stats;
    expect_at(off, static_cast<size_t>(std::min<uint64_t>(4096, size - off)), &stats);
    EXPECT_LE(stats.bytes_decoded, bound) << "offset " << off;
  }
}

// A read at `offset` with a deadline already passed, then with its
// request cancelled: each gives up (kTimedOut, kCancelled).
void ExpectGivesUp(const LiteralStore& store, uint64_t offset) {
  std::vector<uint8_t> out(10);
  FetchContext expired;
  expired.deadline = std::chrono::steady_clock::now();
  Status st = store.ReadAt(offset, out, nullptr, &expired);
  EXPECT_EQ(st.code(), Status::Code::kTimedOut) << st.ToString();
  FetchContext cancelled;
  cancelled.cancel = std::make_shared<CancelSignal>();
  cancelled.cancel->Fire();
  st = store.ReadAt(offset, out, nullptr, &cancelled);
  EXPECT_EQ(st.code(), Status::Code::kCancelled) << st.ToString();
}

// The restart-point pass of a big part (a hostile one inflates ~1000x its
// size) gives up when the read's deadline passes or it is cancelled, and
// remembers nothing: a later read with time builds the points.
TEST(LiteralStore, RestartPointPassHonoursTheReadsDeadline) {
  const uint64_t size = 200 * kMiB;
  auto zeros = [](uint64_t, std::span<uint8_t> out) { std::fill(out.begin(), out.end(), 0); };
  const std::string compressed = testing_util::ZlibCompressGenerated(size, zeros, 6);
  std::string t = OneDataPartTemplate(compressed, size);
  LiteralStoreOptions lo;
  lo.checkpoint_interval = kMiB;
  Store s = Open(std::move(t), lo);
  ASSERT_TRUE(s.store);
  ExpectGivesUp(*s.store, size - 10);
  EXPECT_EQ(s.store->Stats().checkpoints, 0u);
  std::vector<uint8_t> out(10);
  FetchContext plenty;
  ASSERT_TRUE(s.store->ReadAt(size - 10, out, nullptr, &plenty).ok());
  EXPECT_EQ(out, std::vector<uint8_t>(10, 0));
  EXPECT_GT(s.store->Stats().checkpoints, 0u);
}

// Whole blocks of zeros share one buffer and are charged almost nothing, so
// zero areas far larger than the cache stay cached; other blocks still
// evict normally and read back exactly.
TEST(LiteralStore, ZeroBlocksAreSharedAndStayCached) {
  const uint64_t size = 8 * kMiB;
  const uint64_t mark = 5 * kMiB + 1000;
  auto fill = [&](uint64_t off, std::span<uint8_t> out) {
    std::fill(out.begin(), out.end(), 0);
    if (mark >= off && mark < off + out.size()) out[mark - off] = 0x77;
  };
  tmpl::DescEntry lit;
  lit.type = tmpl::EntryType::kUnmatched;
  lit.length = size;
  std::string t = tmpl::EncodeHeader("2.0", "test/1", "zeros") +
                  tmpl::EncodeDataPart("DATA", testing_util::ZlibCompressGenerated(size, fill, 6), size) +
                  tmpl::EncodeDescPart(std::span<const tmpl::DescEntry>(&lit, 1));
  LiteralStoreOptions lo;
  lo.checkpoint_interval = 256 * 1024;
  lo.cache_bytes = 512 * 1024;  // two ordinary blocks
  Store s = Open(std::move(t), lo);
  ASSERT_TRUE(s.store);
  std::string all = Read(*s.store, 0, size);
  std::string want(size, '\0');
  want[mark] = 0x77;
  ASSERT_EQ(all, want);
  EXPECT_LE(s.store->Stats().cached_bytes, lo.cache_bytes);
  // Every zero block is still cached: reading them again decodes nothing.
  for (uint64_t off = 0; off + 4096 <= size; off += 256 * 1024 + 4096) {
    if (off / (256 * 1024) == mark / (256 * 1024)) continue;
    LiteralReadStats stats;
    ASSERT_EQ(Read(*s.store, off, 4096, &stats), std::string(4096, '\0')) << off;
    EXPECT_EQ(stats.bytes_decoded, 0u) << "offset " << off;
  }
  EXPECT_EQ(Read(*s.store, mark - 1, 3), std::string("\0\x77\0", 3));
}

TEST(LiteralStore, LargeBzip2PartAndLargeZlibPart) {
  for (Codec codec : {Codec::kBzip2, Codec::kZlib}) {
    TemplateBuilder::Options o;
    o.codec = codec;
    o.part_size = 1200 * 1024;
    TemplateBuilder b(o);
    b.Literal(MixedData(2 * kMiB, 3));
    LiteralStoreOptions lo;
    lo.checkpoint_interval = 128 * 1024;  // parts are larger than 2 intervals
    lo.cache_bytes = 512 * 1024;
    Store s = Open(b.Build(), lo);
    ASSERT_TRUE(s.store);
    RandomReadsMatch(*s.store, b.literals(), 30, 4);
    EXPECT_EQ(s.store->Stats().checkpoints > 0, codec == Codec::kZlib);
  }
}

// A large bzip2 part read front to back in small reads decodes each byte
// about once (the decoder is kept where the last miss stopped), not once
// per block from the part start; and its decode honours the deadline.
TEST(LiteralStore, LargeBzip2PartSequentialIsLinearAndBounded) {
  const uint64_t size = 8 * kMiB;
  const std::string data = MixedData(size, 9);
  tmpl::DescEntry lit;
  lit.type = tmpl::EntryType::kUnmatched;
  lit.length = size;
  std::string t = tmpl::EncodeHeader("2.0", "test/1", "bz") +
                  tmpl::EncodeDataPart("BZIP", testing_util::Bzip2Compress(data), size) +
                  tmpl::EncodeDescPart(std::span<const tmpl::DescEntry>(&lit, 1));
  LiteralStoreOptions lo;
  lo.checkpoint_interval = 256 * 1024;
  lo.cache_bytes = 512 * 1024;
  Store s = Open(t, lo);
  ASSERT_TRUE(s.store);
  LiteralReadStats stats;
  std::string got;
  for (uint64_t off = 0; off < size; off += 64 * 1024) got += Read(*s.store, off, 64 * 1024, &stats);
  EXPECT_EQ(got, data);
  EXPECT_LE(stats.bytes_decoded, size + size / 4) << "decoded " << stats.bytes_decoded << " for " << size;

  Store fresh = Open(t, lo);
  ExpectGivesUp(*fresh.store, size - 10);
  std::vector<uint8_t> out(10);
  FetchContext plenty;
  ASSERT_TRUE(fresh.store->ReadAt(size - 10, out, nullptr, &plenty).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), data.substr(size - 10));
}

TEST(LiteralStore, ConcurrentReaders) {
  TemplateBuilder::Options o;
  o.part_size = 6 * kMiB;  // first part large (restart points), then small ones
  TemplateBuilder b(o);
  b.Literal(MixedData(6 * kMiB, 5));
  for (int i = 0; i < 50; ++i) b.Literal(MixedData(20000, 100 + i)).Slice("x" + std::to_string(i));
  LiteralStoreOptions lo;
  lo.checkpoint_interval = 512 * 1024;
  lo.cache_bytes = 1 * kMiB;
  Store s = Open(b.Build(), lo);
  ASSERT_TRUE(s.store);
  const std::string& truth = b.literals();
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      for (int i = 0; i < 60; ++i) {
        const uint64_t off = rng() % truth.size();
        const size_t n = static_cast<size_t>(std::min<uint64_t>(1 + rng() % 100000, truth.size() - off));
        std::string out(n, '\0');
        Status st = s.store->ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), n));
        if (!st.ok() || out != truth.substr(off, n)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// --- Corruption --------------------------------------------------------

void ExpectReadCorruption(const std::string& t, uint64_t off, size_t n, const std::string& needle,
                          LiteralStoreOptions lo = {}) {
  Store s = Open(t, lo, "bad.template");
  ASSERT_TRUE(s.store);
  std::string out(n, '\0');
  Status st = s.store->ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), n));
  ASSERT_FALSE(st.ok()) << needle;
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("bad.template"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.ToString();
  // Again: the failure is stable.
  EXPECT_FALSE(s.store->ReadAt(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), n)).ok());
}

std::string Part(Codec codec, const std::string& data, uint64_t claimed) {
  return codec == Codec::kZlib ? tmpl::EncodeDataPart("DATA", testing_util::ZlibCompress(data), claimed)
                               : tmpl::EncodeDataPart("BZIP", testing_util::Bzip2Compress(data), claimed);
}

std::string Desc(uint64_t literal_bytes) {
  tmpl::DescEntry lit;
  lit.type = tmpl::EntryType::kUnmatched;
  lit.length = literal_bytes;
  return tmpl::EncodeDescPart(std::span<const tmpl::DescEntry>(&lit, 1));
}

TEST(LiteralStoreCorruption, DamagedCompressedData) {
  for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
    const std::string a = MixedData(100000, 6), c = MixedData(100000, 7);
    std::string pa = Part(codec, a, a.size()), pc = Part(codec, c, c.size());
    pc[16 + pc.size() / 2] ^= 0x55;
    pc[16 + pc.size() / 2 + 1] ^= 0x55;
    std::string t = tmpl::EncodeHeader("1.2", "t/1", "") + pa + pc + Desc(a.size() + c.size());
    ExpectReadCorruption(t, 150000, 10, "part 1");
    // Part 0 is still fine.
    Store s = Open(t);
    ASSERT_TRUE(s.store);
    EXPECT_EQ(Read(*s.store, 10, 100), a.substr(10, 100));
  }
}

TEST(LiteralStoreCorruption, SizeDisagreesWithHeader) {
  for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
    const std::string a = MixedData(100000, 8), c = MixedData(100000, 9);
    // Sizes swapped by one byte: the sum still matches DESC.
    std::string t = tmpl::EncodeHeader("1.2", "t/1", "") + Part(codec, a, a.size() + 1) +
                    Part(codec, c, c.size() - 1) + Desc(a.size() + c.size());
    ExpectReadCorruption(t, 0, 10, "part 0");
    ExpectReadCorruption(t, 150000, 10, "part 1");
  }
}

TEST(LiteralStoreCorruption, TruncatedAndTrailing) {
  for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
    const std::string a = MixedData(100000, 10);
    std::string comp = codec == Codec::kZlib ? testing_util::ZlibCompress(a) : testing_util::Bzip2Compress(a);
    const char* id = codec == Codec::kZlib ? "DATA" : "BZIP";
    std::string t = tmpl::EncodeHeader("1.2", "t/1", "") +
                    tmpl::EncodeDataPart(id, comp.substr(0, comp.size() - 20), a.size()) + Desc(a.size());
    ExpectReadCorruption(t, 0, 10, "ends before");
    t = tmpl::EncodeHeader("1.2", "t/1", "") + tmpl::EncodeDataPart(id, comp + "xyz", a.size()) + Desc(a.size());
    ExpectReadCorruption(t, 0, 10, "after the end");
  }
}

TEST(LiteralStoreCorruption, LargeZlibPartDamaged) {
  const std::string a = MixedData(4 * kMiB, 11);
  std::string p = Part(Codec::kZlib, a, a.size());
  p[p.size() - 100] ^= 0x10;
  std::string t = tmpl::EncodeHeader("1.2", "t/1", "") + p + Desc(a.size());
  LiteralStoreOptions lo;
  lo.checkpoint_interval = 256 * 1024;
  ExpectReadCorruption(t, 0, 10, "part 0", lo);
  // Wrong size in the header of a large part: found by the restart-point pass.
  std::string t2 = tmpl::EncodeHeader("1.2", "t/1", "") + Part(Codec::kZlib, a, a.size() + 5) + Desc(a.size() + 5);
  ExpectReadCorruption(t2, 0, 10, "header says", lo);
}

// Random damage to the compressed bytes: every read either succeeds or
// fails with a status; never a crash (run under ASan).
TEST(LiteralStoreCorruption, FuzzCompressedBytes) {
  for (Codec codec : {Codec::kZlib, Codec::kBzip2}) {
    TemplateBuilder::Options o;
    o.codec = codec;
    o.part_size = 40000;
    TemplateBuilder b(o);
    b.Literal(MixedData(120000, 12));
    const std::string good = b.Build();
    const size_t header = b.Header().size();
    std::mt19937 rng(99);
    int failed = 0;
    for (int i = 0; i < 150; ++i) {
      std::string t = good;
      for (int f = 0; f < 3; ++f) {
        size_t at = header + 16 + rng() % (t.size() - header - 16 - 200);
        t[at] = static_cast<char>(rng());
      }
      auto file = std::make_shared<MemoryByteSource>("fuzz.template", t);
      auto idx = ReadTemplateIndex(*file);
      if (!idx.ok()) continue;  // hit a part header
      auto index = std::make_shared<const TemplateIndex>(std::move(idx).value());
      LiteralStoreOptions lo;
      lo.checkpoint_interval = 16 * 1024;  // exercise restart points on damaged data too
      LiteralStore store(file, index, lo);
      std::string out(index->literal_size(), '\0');
      Status st = store.ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
      if (!st.ok()) {
        ++failed;
        EXPECT_NE(st.message().find("fuzz.template"), std::string::npos) << st.ToString();
      }
    }
    EXPECT_GT(failed, 50);
  }
}

}  // namespace
}  // namespace jigdoofus
