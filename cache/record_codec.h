// The cache's records, byte for byte as doc/cache_format.md describes them
// (one function or struct per table there): slice keys, chunk keys, lru
// keys, slice metadata, the totals record and chunk values with their
// per-block checksums. Pure functions over bytes; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "cache/writer_identity.h"
#include "core/slice_id.h"

namespace jigdoofus::cache_record {

inline constexpr size_t kSliceKeySize = 1 + kSha256Size + 8;  // algo, digest (zero padded), size BE
inline constexpr size_t kChunkKeySize = kSliceKeySize + 4;     // + chunk index BE
inline constexpr size_t kLruKeySize = 8 + kSliceKeySize;       // stamp BE + slice key
inline constexpr size_t kSliceMetaSize = 64;
inline constexpr size_t kTotalsSize = 32;
inline constexpr uint8_t kStateStaging = 1;
inline constexpr uint8_t kStateComplete = 2;
inline constexpr const char* kTotalsKey = "chunk_totals";

// Slice bytes per chunk, and per checksummed block inside a chunk.
inline constexpr uint32_t kChunkSize = 256 * 1024;
inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kBlockSumSize = 8;  // XXH3-64, little-endian

std::string SliceKey(const SliceId& id);
// The slice a 41-byte slice key names (nullopt if the bytes are not one).
std::optional<SliceId> SliceIdFromKey(std::span<const uint8_t> key);
uint64_t SizeFromSliceKey(const uint8_t* key);
std::array<uint8_t, kChunkKeySize> ChunkKey(const std::string& slice_key, uint32_t index);
std::array<uint8_t, kLruKeySize> LruKey(uint64_t stamp, const std::string& slice_key);

// "SHA256 <hex> (N bytes)".
std::string Describe(const SliceId& id);
std::string DescribeKey(const std::string& slice_key);

struct SliceMeta {
  uint8_t state = 0;
  uint64_t size = 0;
  uint64_t charged = 0;  // bytes counted in Totals::used
  uint64_t stamp = 0;    // LRU stamp (complete only)
  WriterIdentity owner;  // the writer (staging only)

  std::array<uint8_t, kSliceMetaSize> Encode() const;
  static std::optional<SliceMeta> Decode(std::span<const uint8_t> b);
  bool complete() const { return state == kStateComplete; }
};

struct Totals {
  uint64_t used = 0;      // sum of SliceMeta::charged
  uint64_t complete = 0;  // complete records
  uint64_t staged = 0;    // staging records
  uint64_t clock = 0;     // last LRU stamp handed out

  std::array<uint8_t, kTotalsSize> Encode() const;
  static std::optional<Totals> Decode(std::span<const uint8_t> b);
};

// Chunk values: the block sums of the chunk's data, then the data.
// Chunk `index` of a slice holds data bytes [index * kChunkSize, ...), all
// chunks but the last full. A block sum is XXH3-64 of the block's bytes
// seeded with the chunk index and block number, so a block written in the
// wrong place does not match either.
size_t ChunkDataSize(uint64_t slice_size, uint32_t index);
size_t BlockCount(size_t data_size);
size_t ChunkValueSize(size_t data_size);
// Writes the value for `data` (chunk `index`) into out (ChunkValueSize bytes).
void EncodeChunk(uint32_t index, std::span<const uint8_t> data, std::span<uint8_t> out);

// A stored chunk value, checked for shape (not yet for its sums).
struct ChunkView {
  std::span<const uint8_t> sums;
  std::span<const uint8_t> data;
};
// nullopt if `value` is not ChunkValueSize(expected_data) bytes.
std::optional<ChunkView> DecodeChunk(std::span<const uint8_t> value, size_t expected_data);
// Whether the blocks of `view` (chunk `index`) that overlap data bytes
// [from, from + n) still match their sums.
bool BlocksMatch(const ChunkView& view, uint32_t index, size_t from, size_t n);

}  // namespace jigdoofus::cache_record
