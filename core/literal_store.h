// LiteralStore: random access into the literal stream of a template (the
// concatenated, decompressed DATA/BZIP parts) without inflating from the
// start of the template.
//
// Work per read is bounded: zlib parts get restart points (zran-style:
// bit offset + 32 KiB window, windows kept compressed) every
// `checkpoint_interval` bytes of output, built lazily the first time a
// part is read; bzip2 parts restart at the part start (jigdo-file and JTE
// cut bzip2 parts at one bzip2 block, <= 900 kB of input). A small LRU of
// decoded blocks serves sequential readers; every whole block of zeros is
// one shared block charged 256 bytes, so zero areas stay cached for free.
//
// Decoding strategy per part (block = 256 KiB of a part's output):
//   - parts of at most 2 * checkpoint_interval bytes: decoded whole on first
//     access, every block cached, the size checked against the header;
//   - larger zlib parts: one sequential pass builds restart points (and
//     checks size and Adler-32); later misses inflate raw (no checksum:
//     verified by that pass) from the restart point or the part start, at
//     most checkpoint_interval + one deflate block (a few MB at worst for
//     zeros) + one block. JTE writes 1 MiB parts: with the 256 KiB default
//     they get restart points;
//   - larger bzip2 parts (at most 64 MiB, template_index.h): decoded from
//     the part start up to the block; the decoder is kept where it stopped
//     (two at most) so a sequential reader continues from there.
// Per-part memory is zero until a large zlib part is first read.
//
// Thread-safe: ReadAt may be called concurrently; internal state is
// guarded by mutex_ (never held while inflating a block).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/byte_source.h"
#include "core/fetch_context.h"
#include "core/status.h"
#include "core/template_index.h"

namespace jigdoofus {

struct LiteralStoreOptions {
  uint64_t checkpoint_interval = 256 << 10;  // bytes of output between zlib restart points
  uint64_t cache_bytes = 16 << 20;         // decoded-block LRU budget
};

// What one ReadAt cost (for tests and diagnostics).
struct LiteralReadStats {
  uint64_t bytes_decoded = 0;  // bytes inflated/decoded by this call (incl. a restart-point pass)
  uint64_t cache_hits = 0;     // decoded blocks found in the LRU
  uint64_t cache_misses = 0;   // decoded blocks that had to be decoded
};

// Memory held by a store.
struct LiteralStoreStats {
  uint64_t cached_blocks = 0;
  uint64_t cached_bytes = 0;
  uint64_t checkpoints = 0;       // zlib restart points built so far
  uint64_t checkpoint_bytes = 0;  // their memory (compressed windows + bookkeeping)
};

class LiteralStore {
 public:
  // `file` is the template; `index` its TemplateIndex (parts() are used).
  LiteralStore(std::shared_ptr<const ByteSource> file, std::shared_ptr<const TemplateIndex> index,
               LiteralStoreOptions options = {});
  ~LiteralStore();
  LiteralStore(const LiteralStore&) = delete;
  LiteralStore& operator=(const LiteralStore&) = delete;

  // Copies literal bytes [offset, offset + out.size()). kCorruption if the
  // compressed data is damaged or decodes to a different length than the
  // part header says (the message names the template and the part).
  // kInvalidArgument if the range goes past literal_size().
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const;
  // Same, adding this call's costs to *stats (may be null), and giving up
  // long work (a part's restart-point pass, a long bzip2 decode) when `ctx`
  // (may be null) is cancelled or expires: kCancelled / kTimedOut, nothing
  // remembered.
  Status ReadAt(uint64_t offset, std::span<uint8_t> out, LiteralReadStats* stats,
                const FetchContext* ctx = nullptr) const;

  // Snapshot of the memory in use. May wait for a restart-point pass in
  // progress on another thread.
  LiteralStoreStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jigdoofus
