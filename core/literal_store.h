// LiteralStore: random access into the literal stream of a template (the
// concatenated, decompressed DATA/BZIP parts) without inflating from the
// start of the template.
//
// Work per read is bounded: zlib parts get restart points (zran-style:
// bit offset + 32 KiB window, windows kept compressed) every
// `checkpoint_interval` bytes of output, built lazily the first time a
// part is read; bzip2 parts restart at the part start (jigdo-file and JTE
// cut bzip2 parts at one bzip2 block, <= 900 kB of input). A small LRU of
// decoded blocks serves sequential readers.
//
// Thread-safe: ReadAt may be called concurrently; internal state is
// guarded by mutex_ (never held while inflating a block).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/byte_source.h"
#include "core/status.h"
#include "core/template_index.h"

namespace jigdoofus {

struct LiteralStoreOptions {
  uint64_t checkpoint_interval = 1 << 20;  // bytes of output between zlib restart points
  uint64_t cache_bytes = 16 << 20;         // decoded-block LRU budget
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
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jigdoofus
