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
#include "core/read_plan.h"
#include "core/slice_provider.h"

namespace jigdoofus {

class ImageReader {
 public:
  static constexpr int kSliceRetries = 2;

  ImageReader(std::shared_ptr<const TemplateIndex> index, std::shared_ptr<const LiteralStore> literals,
              std::shared_ptr<SliceProvider> slices);

  uint64_t size() const { return map_.size(); }
  const ImageMap& map() const { return map_; }
  const TemplateIndex& index() const { return map_.index(); }

  // Fills out with image bytes from `offset`, clipped at the image end;
  // returns the count. Fails as a whole if any piece fails (the status of
  // the first failing piece, with the image offset in the message).
  // A slice whose kept bytes went bad (kCorruption) or went away
  // (kNotFound) is discarded and got again, at most kSliceRetries times
  // per read: a damaged cache entry is fetched anew within the same read.
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out, const FetchContext& ctx) const;

  // Resolves [offset, offset + length) (clipped at the image end) into
  // `plan` (cleared first). First every slice it touches is got (verified,
  // maybe downloaded) while the plan holds nothing; then their bytes are
  // appended (VerifiedSlice::AppendTo: file ranges the plan holds, e.g.
  // under one cache snapshot, or copies) with the literal bytes between
  // them. A slice that went bad or away meanwhile is got again (up to
  // kSliceRetries times); if the cache turns over faster than that, each
  // slice's bytes are copied right after it was got. Fails as ReadAt does.
  // `plan` is reusable.
  Status Plan(uint64_t offset, size_t length, const FetchContext& ctx, ReadPlan* plan) const;

  // The literal store and slice provider, for callers that want to serve
  // pieces themselves (splice).
  const LiteralStore& literals() const { return *literals_; }
  SliceProvider& slices() const { return *slices_; }

 private:
  // One piece into dst, getting its slice again if its kept bytes went bad
  // or away (up to kSliceRetries times).
  Status CopyPiece(const ImagePiece& p, std::span<uint8_t> dst, const FetchContext& ctx) const;

  ImageMap map_;
  std::shared_ptr<const LiteralStore> literals_;
  std::shared_ptr<SliceProvider> slices_;
};

}  // namespace jigdoofus
