// SliceSink: where a downloaded slice's bytes go while they arrive: into
// the chunk cache (CacheSink, a ChunkStore::Writer) or into memory
// (MemorySink, fetch/memory_slice.h). Finish() verifies the whole slice
// and returns it; nothing is served before. Used by one thread.
#pragma once

#include <memory>
#include <span>

#include "cache/chunk_store.h"
#include "core/slice_provider.h"

namespace jigdoofus {

class SliceSink {
 public:
  virtual ~SliceSink() = default;
  // kCorruption: more bytes than the slice; kNoSpace: the cache's disk
  // stays full; others: the sink broke. After an error the sink is dead.
  virtual Status Append(std::span<const uint8_t> bytes) = 0;
  // kCorruption if the bytes do not verify.
  virtual Result<std::shared_ptr<const VerifiedSlice>> Finish() = 0;
};

class CacheSink final : public SliceSink {
 public:
  explicit CacheSink(std::unique_ptr<ChunkStore::Writer> writer) : writer_(std::move(writer)) {}
  Status Append(std::span<const uint8_t> bytes) override { return writer_->Append(bytes); }
  Result<std::shared_ptr<const VerifiedSlice>> Finish() override { return writer_->Commit(); }

 private:
  std::unique_ptr<ChunkStore::Writer> writer_;
};

}  // namespace jigdoofus
