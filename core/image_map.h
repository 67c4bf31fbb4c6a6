// ImageMap: maps an image byte range to the pieces it is made of (literal
// template bytes, or a byte range of one slice). Lookups are O(log n) in
// the number of DESC entries; memory is the TemplateIndex's extents.
//
// Immutable; thread-safe.
#pragma once

#include <algorithm>
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
  // Same pieces, handed one at a time to fn(const ImagePiece&) -> bool
  // (false stops the walk); allocates nothing. Returns the bytes covered
  // by the pieces fn accepted.
  template <typename Fn>
  uint64_t ForEachPiece(uint64_t offset, uint64_t length, Fn&& fn) const;

 private:
  std::shared_ptr<const TemplateIndex> index_;
};

template <typename Fn>
uint64_t ImageMap::ForEachPiece(uint64_t offset, uint64_t length, Fn&& fn) const {
  const uint64_t end_of_image = size();
  if (offset >= end_of_image || length == 0) return 0;
  const uint64_t start = offset;
  const uint64_t end = offset + std::min(length, end_of_image - offset);
  const auto& ext = index_->extents();
  for (size_t i = FindExtent(offset); i < ext.size() && offset < end; ++i) {
    const ImageExtent& e = ext[i];
    const uint64_t within = offset - e.image_offset;
    ImagePiece p;
    p.image_offset = offset;
    p.length = std::min(e.length - within, end - offset);
    p.kind = e.kind;
    p.slice = e.slice;
    p.source_offset = (e.kind == ImageExtent::Kind::kLiteral ? e.literal_offset : 0) + within;
    if (!fn(static_cast<const ImagePiece&>(p))) break;
    offset += p.length;
  }
  return offset - start;
}

}  // namespace jigdoofus
