#include "cache/record_codec.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "cache/byte_order.h"

namespace jigdoofus::cache_record {

using cache_bytes::GetBe;
using cache_bytes::GetLe;
using cache_bytes::PutBe;
using cache_bytes::PutLe;

std::string SliceKey(const SliceId& id) {
  std::string k(kSliceKeySize, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(k.data());
  p[0] = static_cast<uint8_t>(id.digest.algo);
  std::memcpy(p + 1, id.digest.bytes.data(), id.digest.size());
  PutBe(p + 1 + kSha256Size, id.size, 8);
  return k;
}

uint64_t SizeFromSliceKey(const uint8_t* k) { return GetBe(k + 1 + kSha256Size, 8); }

std::optional<SliceId> SliceIdFromKey(std::span<const uint8_t> k) {
  if (k.size() != kSliceKeySize) return std::nullopt;
  HashAlgo algo;
  if (k[0] == static_cast<uint8_t>(HashAlgo::kSha256)) {
    algo = HashAlgo::kSha256;
  } else if (k[0] == static_cast<uint8_t>(HashAlgo::kMd5)) {
    algo = HashAlgo::kMd5;
  } else {
    return std::nullopt;
  }
  return SliceId{Digest::FromBytes(algo, {k.data() + 1, DigestSize(algo)}), SizeFromSliceKey(k.data())};
}

std::array<uint8_t, kChunkKeySize> ChunkKey(const std::string& slice_key, uint32_t index) {
  std::array<uint8_t, kChunkKeySize> k{};
  std::memcpy(k.data(), slice_key.data(), kSliceKeySize);
  PutBe(k.data() + kSliceKeySize, index, 4);
  return k;
}

std::array<uint8_t, kLruKeySize> LruKey(uint64_t stamp, const std::string& slice_key) {
  std::array<uint8_t, kLruKeySize> k{};
  PutBe(k.data(), stamp, 8);
  std::memcpy(k.data() + 8, slice_key.data(), kSliceKeySize);
  return k;
}

std::string Describe(const SliceId& id) {
  return std::string(HashAlgoName(id.digest.algo)) + " " + id.digest.ToHex() + " (" + std::to_string(id.size) +
         " bytes)";
}

std::string DescribeKey(const std::string& key) {
  auto id = SliceIdFromKey({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  return id ? "slice " + Describe(*id) : "a slice with a malformed key";
}

std::array<uint8_t, kSliceMetaSize> SliceMeta::Encode() const {
  std::array<uint8_t, kSliceMetaSize> b{};
  b[0] = state;
  PutLe(&b[8], size, 8);
  PutLe(&b[16], charged, 8);
  PutLe(&b[24], stamp, 8);
  std::memcpy(&b[32], owner.boot.data(), 16);
  PutLe(&b[48], owner.pid, 4);
  PutLe(&b[56], owner.start, 8);
  return b;
}

std::optional<SliceMeta> SliceMeta::Decode(std::span<const uint8_t> b) {
  if (b.size() != kSliceMetaSize) return std::nullopt;
  SliceMeta m;
  m.state = b[0];
  if (m.state != kStateStaging && m.state != kStateComplete) return std::nullopt;
  m.size = GetLe(&b[8], 8);
  m.charged = GetLe(&b[16], 8);
  m.stamp = GetLe(&b[24], 8);
  std::memcpy(m.owner.boot.data(), &b[32], 16);
  m.owner.pid = static_cast<uint32_t>(GetLe(&b[48], 4));
  m.owner.start = GetLe(&b[56], 8);
  return m;
}

std::array<uint8_t, kTotalsSize> Totals::Encode() const {
  std::array<uint8_t, kTotalsSize> b{};
  PutLe(&b[0], used, 8);
  PutLe(&b[8], complete, 8);
  PutLe(&b[16], staged, 8);
  PutLe(&b[24], clock, 8);
  return b;
}

std::optional<Totals> Totals::Decode(std::span<const uint8_t> b) {
  if (b.size() != kTotalsSize) return std::nullopt;
  Totals t;
  t.used = GetLe(&b[0], 8);
  t.complete = GetLe(&b[8], 8);
  t.staged = GetLe(&b[16], 8);
  t.clock = GetLe(&b[24], 8);
  return t;
}

size_t ChunkDataSize(uint64_t slice_size, uint32_t index) {
  const uint64_t start = uint64_t{index} * kChunkSize;
  return start >= slice_size ? 0 : static_cast<size_t>(std::min<uint64_t>(kChunkSize, slice_size - start));
}

size_t BlockCount(size_t data_size) { return (data_size + kBlockSize - 1) / kBlockSize; }

size_t ChunkValueSize(size_t data_size) { return BlockCount(data_size) * kBlockSumSize + data_size; }

namespace {

uint64_t BlockSum(uint32_t index, size_t block, std::span<const uint8_t> bytes) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), (uint64_t{index} << 32) | block);
}

}  // namespace

void EncodeChunk(uint32_t index, std::span<const uint8_t> data, std::span<uint8_t> out) {
  const size_t blocks = BlockCount(data.size());
  for (size_t b = 0; b < blocks; ++b) {
    const size_t at = b * kBlockSize;
    PutLe(out.data() + b * kBlockSumSize, BlockSum(index, b, data.subspan(at, std::min<size_t>(kBlockSize, data.size() - at))),
          8);
  }
  if (!data.empty()) std::memcpy(out.data() + blocks * kBlockSumSize, data.data(), data.size());
}

std::optional<ChunkView> DecodeChunk(std::span<const uint8_t> value, size_t expected_data) {
  if (value.size() != ChunkValueSize(expected_data)) return std::nullopt;
  const size_t sums = BlockCount(expected_data) * kBlockSumSize;
  return ChunkView{value.first(sums), value.subspan(sums)};
}

bool BlocksMatch(const ChunkView& view, uint32_t index, size_t from, size_t n) {
  if (n == 0) return true;
  const size_t first = from / kBlockSize, last = (from + n - 1) / kBlockSize;
  for (size_t b = first; b <= last; ++b) {
    const size_t at = b * kBlockSize;
    const auto bytes = view.data.subspan(at, std::min<size_t>(kBlockSize, view.data.size() - at));
    if (BlockSum(index, b, bytes) != GetLe(view.sums.data() + b * kBlockSumSize, 8)) return false;
  }
  return true;
}

}  // namespace jigdoofus::cache_record
