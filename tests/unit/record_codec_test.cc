// The cache's record codec against doc/cache_format.md: key layouts, the
// metadata and totals records, and chunk values whose block sums catch
// any flipped byte and any block moved to another place.
#include "cache/record_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace jigdoofus {
namespace {

using namespace cache_record;

std::vector<uint8_t> Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(RecordCodecTest, SliceKeyLayout) {
  auto data = Bytes(100, 1);
  SliceId id{HashBytes(HashAlgo::kMd5, data), 0x0102030405060708ULL};
  std::string key = SliceKey(id);
  ASSERT_EQ(key.size(), kSliceKeySize);
  EXPECT_EQ(static_cast<uint8_t>(key[0]), 1);                  // algo
  EXPECT_EQ(static_cast<uint8_t>(key[1 + 16]), 0);             // MD5 digest zero padded
  EXPECT_EQ(static_cast<uint8_t>(key[1 + 32]), 0x01);          // size big-endian
  EXPECT_EQ(static_cast<uint8_t>(key[1 + 32 + 7]), 0x08);
  auto back = SliceIdFromKey({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, id);
  auto chunk = ChunkKey(key, 0x01020304);
  EXPECT_EQ(chunk[kSliceKeySize], 0x01);
  EXPECT_EQ(chunk[kSliceKeySize + 3], 0x04);
  auto lru = LruKey(5, key);
  EXPECT_EQ(lru[7], 5);
}

TEST(RecordCodecTest, MetaAndTotalsRoundTrip) {
  SliceMeta m;
  m.state = kStateStaging;
  m.size = 12345;
  m.charged = 12345;
  m.owner.pid = 77;
  m.owner.start = 99;
  m.owner.boot[3] = 0xab;
  auto b = m.Encode();
  auto back = SliceMeta::Decode(b);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->size, 12345u);
  EXPECT_EQ(back->owner, m.owner);
  b[0] = 9;  // no such state
  EXPECT_FALSE(SliceMeta::Decode(b).has_value());
  EXPECT_FALSE(SliceMeta::Decode(std::span<const uint8_t>(b).first(63)).has_value());
  Totals t{1, 2, 3, 4};
  auto tb = t.Encode();
  auto tback = Totals::Decode(tb);
  ASSERT_TRUE(tback.has_value());
  EXPECT_EQ(tback->clock, 4u);
}

TEST(RecordCodecTest, ChunkSizes) {
  EXPECT_EQ(ChunkDataSize(0, 0), 0u);
  EXPECT_EQ(ChunkDataSize(kChunkSize + 1, 0), kChunkSize);
  EXPECT_EQ(ChunkDataSize(kChunkSize + 1, 1), 1u);
  EXPECT_EQ(ChunkDataSize(kChunkSize + 1, 2), 0u);
  EXPECT_EQ(BlockCount(1), 1u);
  EXPECT_EQ(BlockCount(kBlockSize), 1u);
  EXPECT_EQ(BlockCount(kBlockSize + 1), 2u);
  EXPECT_EQ(ChunkValueSize(kChunkSize), kChunkSize + 64u * kBlockSumSize);
}

TEST(RecordCodecTest, EveryFlippedByteIsCaughtInItsBlockOnly) {
  for (size_t n : {size_t{1}, size_t{4095}, size_t{4096}, size_t{10000}, size_t{kChunkSize}}) {
    auto data = Bytes(n, static_cast<uint32_t>(n));
    std::vector<uint8_t> value(ChunkValueSize(n));
    EncodeChunk(3, data, value);
    auto view = DecodeChunk(value, n);
    ASSERT_TRUE(view.has_value());
    EXPECT_TRUE(BlocksMatch(*view, 3, 0, n));
    EXPECT_FALSE(BlocksMatch(*view, 4, 0, n)) << "a chunk read as another index must not match";
    EXPECT_FALSE(DecodeChunk(std::span<const uint8_t>(value).first(value.size() - 1), n).has_value());
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      auto bad = value;
      bad[BlockCount(n) * kBlockSumSize + at] ^= 0x01;
      auto bv = DecodeChunk(bad, n);
      const size_t block = at / kBlockSize;
      EXPECT_FALSE(BlocksMatch(*bv, 3, at, 1)) << n << " " << at;
      EXPECT_FALSE(BlocksMatch(*bv, 3, 0, n));
      // Other blocks are still good (reads elsewhere go on).
      if (block > 0) EXPECT_TRUE(BlocksMatch(*bv, 3, 0, block * kBlockSize));
    }
    // A damaged sum is caught too.
    auto bad = value;
    bad[0] ^= 0x80;
    EXPECT_FALSE(BlocksMatch(*DecodeChunk(bad, n), 3, 0, 1));
  }
}

}  // namespace
}  // namespace jigdoofus
