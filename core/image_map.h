// ImageMap: maps an image byte range to the pieces it is made of (literal
// template bytes, or a byte range of one slice). Lookups are O(log n) in
// the number of DESC entries; memory is the TemplateIndex's extents.
//
// Immutable; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/template_index.h"

namespace jigdoofus {

struct ImagePiece {
  uint64_t image_offset = 0;
  uint64_t length = 0;
  ImageExtent::Kind kind = ImageExtent::Kind::kLiteral;
  // kLiteral: offset in the literal stream; kSlice: offset inside the slice.
  uint64_t source_offset = 0;
  uint32_t slice = 0;  // kSlice: index into TemplateIndex::slices()
};

class ImageMap {
 public:
  explicit ImageMap(std::shared_ptr<const TemplateIndex> index);
  uint64_t size() const;
  const TemplateIndex& index() const { return *index_; }
  // Index of the extent containing `offset`. REQUIRES offset < size().
  size_t FindExtent(uint64_t offset) const;
  // The pieces covering [offset, offset+length) clipped to the image, in
  // image order. Empty if offset >= size().
  std::vector<ImagePiece> Pieces(uint64_t offset, uint64_t length) const;

 private:
  std::shared_ptr<const TemplateIndex> index_;
};

}  // namespace jigdoofus
