#include "core/digest.h"

#include <gtest/gtest.h>

namespace jigdoofus {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(HashBytes(HashAlgo::kMd5, Bytes("abc")).ToHex(), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(HashBytes(HashAlgo::kSha256, Bytes("abc")).ToHex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, IncrementalEqualsOneShot) {
  Hasher h(HashAlgo::kSha256);
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), HashBytes(HashAlgo::kSha256, Bytes("abc")));
  // Finish() resets the hasher.
  h.Update("abc");
  EXPECT_EQ(h.Finish(), HashBytes(HashAlgo::kSha256, Bytes("abc")));
}

TEST(DigestTest, JigdoBase64MatchesJigdoFileOutput) {
  // From a template made by jigdo-file/xorriso: hex and Base64 of one template.
  auto d = ParseDigestBase64("hI_FNZHoV84_uykSChvJgg");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->algo, HashAlgo::kMd5);
  EXPECT_EQ(d->ToHex(), "848fc53591e857ce3fbb29120a1bc982");
  EXPECT_EQ(d->ToBase64(), "hI_FNZHoV84_uykSChvJgg");

  auto s = ParseDigestBase64("O_azPlrqIfk0K6tag-z1DzPxUd6kPn9bwawsYDR6zGk");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->algo, HashAlgo::kSha256);
  EXPECT_EQ(s->ToHex(), "3bf6b33e5aea21f9342bab5a83ecf50f33f151dea43e7f5bc1ac2c60347acc69");
}

TEST(DigestTest, Base64RoundTripAllLengths) {
  std::string data;
  for (int n = 0; n < 70; ++n) {
    auto enc = JigdoBase64Encode(Bytes(data));
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    auto dec = JigdoBase64Decode(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(*dec, data);
    data.push_back(static_cast<char>(n * 37 + 11));
  }
}

TEST(DigestTest, RejectsMalformedBase64) {
  EXPECT_FALSE(JigdoBase64Decode("ab+c").ok());        // RFC alphabet, not jigdo's
  EXPECT_FALSE(JigdoBase64Decode("abc=").ok());        // padding
  EXPECT_FALSE(ParseDigestBase64("tooShort").ok());    // wrong length
  EXPECT_FALSE(ParseDigestBase64("hI_FNZHoV84_uykSChvJgh").ok());  // non-zero pad bits
  auto st = ParseDigestBase64("hI_FNZHoV84_uykSChvJg!").status();
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find('!'), std::string::npos);
}

}  // namespace
}  // namespace jigdoofus
