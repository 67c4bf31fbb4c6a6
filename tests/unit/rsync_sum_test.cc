#include "core/rsync_sum.h"

#include <gtest/gtest.h>

#include "tests/unit/random_bytes.h"

#include <random>
#include <string>
#include <vector>

#include "core/template_index.h"
#include "tests/unit/test_template_builder.h"

namespace jigdoofus {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) { return testing_util::RandomByteVector(n, seed); }

// Two figures read off templates written by jigdo-file 0.8 with
// --min-length=1025 (tests/tools/derive_rsync_table.py): 1025 bytes of 0x00
// and 1025 bytes of 0xff.
TEST(RsyncSum64, MatchesJigdoFile) {
  std::vector<uint8_t> zeros(1025, 0x00), ones(1025, 0xff);
  const uint32_t t0 = 0x51d65c0f;
  EXPECT_EQ(RsyncSum64(zeros), uint64_t{1025u * t0} | uint64_t{uint32_t(1025u * 1026u / 2u * t0)} << 32);
  EXPECT_NE(RsyncSum64(zeros), RsyncSum64(ones));
  EXPECT_EQ(RsyncSum64({}), 0u);
}

TEST(RsyncSum64, OrderMatters) {
  std::vector<uint8_t> ab = {1, 2}, ba = {2, 1};
  EXPECT_EQ(uint32_t(RsyncSum64(ab)), uint32_t(RsyncSum64(ba)));  // lo is a plain sum
  EXPECT_NE(RsyncSum64(ab), RsyncSum64(ba));                      // hi weighs by position
}

// HeadSums over a stream gives the low half of RsyncSum64 of every aligned window, for
// windows shorter, equal to and longer than the stride, whatever the pieces.
TEST(HeadSums, EqualsDirectSumAtEveryAlignedOffset) {
  const std::vector<uint8_t> data = RandomBytes(70000, 7);
  for (uint32_t n : {1u, 100u, 512u, 1024u, 3000u}) {
    for (uint32_t stride : {1u, 512u, 2048u}) {
      if (stride == 1 && n > 100) continue;  // slow and adds nothing
      for (size_t piece : {size_t{1}, size_t{777}, size_t{65536}}) {
        HeadSums sums(n, stride);
        std::vector<std::pair<uint64_t, uint64_t>> got;
        for (size_t at = 0; at < data.size(); at += piece) {
          size_t len = std::min(piece, data.size() - at);
          sums.Feed(std::span(data).subspan(at, len), [&](uint64_t a, uint64_t s) { got.emplace_back(a, s); });
        }
        std::vector<std::pair<uint64_t, uint64_t>> want;
        for (uint64_t a = 0; a + n <= data.size(); a += stride) {
          want.emplace_back(a, HeadSumLow(RsyncSum64(std::span(data).subspan(a, n))));
        }
        ASSERT_EQ(got, want) << "n=" << n << " stride=" << stride << " piece=" << piece;
      }
    }
  }
}

TEST(HeadSums, PositionsBeyondFourGiBGiveTheWindowsOwnSum) {
  // Position weights are taken mod 2^32; a window past 4 GiB (a DVD image)
  // must still give its own sum. The stream starts just below 4 GiB.
  const uint64_t start = (uint64_t{4} << 30) - 4000;
  const std::vector<uint8_t> data = RandomBytes(20000, 3);
  HeadSums sums(1024, 2048, start);
  std::vector<std::pair<uint64_t, uint64_t>> got;
  sums.Feed(data, [&](uint64_t a, uint64_t s) { got.emplace_back(a, s); });
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().first, (uint64_t{4} << 30) - 2048);  // first multiple of the stride
  for (auto [a, s] : got) {
    ASSERT_EQ(a % 2048, 0u);
    EXPECT_EQ(s, HeadSumLow(RsyncSum64(std::span(data).subspan(a - start, 1024)))) << a;
  }
}

TEST(TemplateIndexHeads, KeepsEachSlicesHeadSumWithBlockLen) {
  testing_util::TemplateBuilder b;  // block_len 1024
  const std::vector<uint8_t> big = RandomBytes(5000, 1);
  const std::string big_s(big.begin(), big.end());
  b.Literal("x").Slice(big_s).Slice(std::string(100, 'a'));
  std::string t = b.Build();
  MemoryByteSource src("t.template", t);
  auto idx = ReadTemplateIndex(src);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  ASSERT_EQ(idx->slice_heads().size(), 2u);
  EXPECT_EQ(idx->slice_heads()[0], (SliceHead{RsyncSum64(std::span(big).first(1024)), 1024}));
  EXPECT_FALSE(idx->slice_heads()[1].known());  // shorter than blockLen
}

TEST(TemplateIndexHeads, AnOversizedBlockLenIsIgnored) {
  // A blockLen of 16 MiB would make every scan candidate cost 16 MiB.
  testing_util::TemplateBuilder::Options o;
  o.block_len = 16 << 20;
  testing_util::TemplateBuilder b(o);
  b.Slice(std::string((16 << 20) + 10, 'z'));
  std::string t = b.Build();
  MemoryByteSource src("t.template", t);
  auto idx = ReadTemplateIndex(src);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_FALSE(idx->slice_heads()[0].known());
}

TEST(TemplateIndexHeads, ObsoleteEntriesHaveNoHead) {
  testing_util::TemplateBuilder::Options o;
  o.obsolete_types = true;
  testing_util::TemplateBuilder b(o);
  b.Slice(std::string(4000, 'q'));
  std::string t = b.Build();
  MemoryByteSource src("t.template", t);
  auto idx = ReadTemplateIndex(src);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_FALSE(idx->slice_heads()[0].known());
}

}  // namespace
}  // namespace jigdoofus
