// PartDecoder: sequential decoding of one DATA (zlib) or BZIP (bzip2) part
// of a template, reading the compressed bytes from a ByteSource in 64 KiB
// chunks; and zran-style restart points for zlib parts. Private to core/
// (used by LiteralStore).
//
// A zlib restart point (ZlibCheckpoint) records, at a deflate block
// boundary, the output offset, the input position (byte + unused bits of
// the previous byte) and the preceding 32 KiB of output (stored compressed
// with compress2: windows of zeros shrink to a few bytes). Decoding resumes
// there with a raw inflate primed with the bits and the window.
//
// Not thread-safe: one decoder belongs to one thread. Checkpoint vectors
// are immutable values once built.
// REQUIRES: the ByteSource and DataPart outlive the decoder.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/byte_source.h"
#include "core/fetch_context.h"
#include "core/result.h"
#include "core/template_index.h"

namespace jigdoofus {

inline constexpr size_t kDeflateWindowSize = 32768;

class PartDecoder {
 public:
  virtual ~PartDecoder() = default;
  // Fills `out` as far as the stream goes; returns the count, which is
  // short only at the end of the stream. kCorruption on damaged or
  // truncated data (the message starts with the decoder's `what`).
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
  // Call after reading the expected number of bytes: OK iff the stream
  // ends exactly there and no compressed bytes follow it.
  virtual Status Finish() = 0;
};

// A zlib stream's header (CMF, FLG) without a preset dictionary, which
// jigdo templates never use (inflate refuses one: kCorruption).
inline constexpr uint64_t kZlibHeaderSize = 2;

struct ZlibCheckpoint {
  uint64_t out = 0;       // output offset within the part
  uint64_t in = 0;        // byte offset within the compressed data of the first whole unused byte
  uint8_t bits = 0;       // unused bits (0..7) in the byte before `in`
  uint32_t window_size = 0;  // bytes of preceding output (<= 32 KiB)
  std::vector<uint8_t> window_z;  // those bytes, zlib-compressed
};

// `what` names the part in messages ("x.template: part 7").
Result<std::unique_ptr<PartDecoder>> OpenPartDecoder(const ByteSource& file, const DataPart& part, std::string what);
// A raw-inflate decoder resuming at `cp` (its output starts at cp.out).
Result<std::unique_ptr<PartDecoder>> OpenZlibDecoderAt(const ByteSource& file, const DataPart& part,
                                                       const ZlibCheckpoint& cp, std::string what);
// Inflates the whole zlib part once, verifying its size and checksum, and
// returns restart points at least `interval` bytes of output apart (none
// at offset 0: the part start is the implicit first one). `*inflated` (if
// non-null) is increased by the bytes produced.
// `ctx` (may be null): the pass gives up with kTimedOut / kCancelled when the
// read it serves does (a hostile part can inflate ~1000x its size).
Result<std::vector<ZlibCheckpoint>> BuildZlibCheckpoints(const ByteSource& file, const DataPart& part,
                                                         uint64_t interval, std::string what, uint64_t* inflated,
                                                         const FetchContext* ctx = nullptr);

}  // namespace jigdoofus
