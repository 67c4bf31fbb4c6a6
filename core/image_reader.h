// ImageReader: assembles byte ranges of one image from its template's
// literal data and verified slices. The FUSE-free heart of jigdoofus: the
// mount and jigdoofus-cat are thin users of it.
//
// Thread-safe: ReadAt may run concurrently from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/image_map.h"
#include "core/literal_store.h"
#include "core/slice_provider.h"

namespace jigdoofus {

// One read, resolved but not copied: each part is either a byte range of a
// verified slice's file (kept alive by `slice`, so its fd stays open) or a
// range of `memory` (literal bytes, or slice bytes that have no fd). Lets
// fs/ reply with fd-backed buffers (splice) instead of copying.
struct ReadPlan {
  struct Part {
    size_t length = 0;
    // Non-null: the bytes are slice->fd() at file offset `pos`.
    // Null: the bytes are memory[pos, pos + length).
    std::shared_ptr<const VerifiedSlice> slice;
    uint64_t pos = 0;
  };
  std::vector<Part> parts;
  // Not value-initialised (no zeroing); grown on demand, reused across
  // Plan() calls on the same ReadPlan.
  std::unique_ptr<uint8_t[]> memory;
  size_t memory_capacity = 0;
  size_t memory_used = 0;
  size_t size = 0;  // sum of the parts' lengths
  void Clear() {
    parts.clear();
    memory_used = 0;
    size = 0;
  }
  // Appends an n-byte memory part (merged with a memory part before it)
  // and returns its bytes for the caller to fill. Grows `memory` to at
  // least `capacity_hint` bytes when it has to grow.
  std::span<uint8_t> AppendMemory(size_t n, size_t capacity_hint = 0);
  // Appends a part of slice->fd() at file offset `pos`.
  void AppendSlice(std::shared_ptr<const VerifiedSlice> slice, uint64_t pos, size_t n);
};

class ImageReader {
 public:
  ImageReader(std::shared_ptr<const TemplateIndex> index, std::shared_ptr<const LiteralStore> literals,
              std::shared_ptr<SliceProvider> slices);

  uint64_t size() const { return map_.size(); }
  const ImageMap& map() const { return map_; }
  const TemplateIndex& index() const { return map_.index(); }

  // Fills out with image bytes from `offset`, clipped at the image end;
  // returns the count. Fails as a whole if any piece fails (the status of
  // the first failing piece, with the image offset in the message).
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out, const FetchContext& ctx) const;

  // Resolves [offset, offset + length) (clipped at the image end) into
  // `plan` (cleared first): every slice it touches is verified (Get) and
  // held; literal bytes and fd-less slice bytes are copied into
  // plan->memory. Fails as ReadAt does. `plan` is reusable.
  Status Plan(uint64_t offset, size_t length, const FetchContext& ctx, ReadPlan* plan) const;

  // The literal store and slice provider, for callers that want to serve
  // pieces themselves (splice).
  const LiteralStore& literals() const { return *literals_; }
  SliceProvider& slices() const { return *slices_; }

 private:
  ImageMap map_;
  std::shared_ptr<const LiteralStore> literals_;
  std::shared_ptr<SliceProvider> slices_;
};

}  // namespace jigdoofus
