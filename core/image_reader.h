// ImageReader: assembles byte ranges of one image from its template's
// literal data and verified slices. The FUSE-free heart of jigdoofus: the
// mount and jigdoofus-cat are thin users of it.
//
// Thread-safe: ReadAt may run concurrently from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/image_map.h"
#include "core/literal_store.h"
#include "core/slice_provider.h"

namespace jigdoofus {

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
