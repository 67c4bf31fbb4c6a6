#include "core/image_map.h"

#include <algorithm>

namespace jigdoofus {

ImageMap::ImageMap(std::shared_ptr<const TemplateIndex> index) : index_(std::move(index)) {}

uint64_t ImageMap::size() const { return index_->image_size(); }

size_t ImageMap::FindExtent(uint64_t offset) const {
  const auto& ext = index_->extents();
  // First extent whose start is > offset, minus one.
  auto it = std::upper_bound(ext.begin(), ext.end(), offset,
                             [](uint64_t off, const ImageExtent& e) { return off < e.image_offset; });
  return static_cast<size_t>(it - ext.begin()) - 1;
}

std::vector<ImagePiece> ImageMap::Pieces(uint64_t offset, uint64_t length) const {
  std::vector<ImagePiece> pieces;
  const uint64_t end_of_image = size();
  if (offset >= end_of_image || length == 0) return pieces;
  const uint64_t end = offset + std::min(length, end_of_image - offset);
  const auto& ext = index_->extents();
  for (size_t i = FindExtent(offset); i < ext.size() && offset < end; ++i) {
    const ImageExtent& e = ext[i];
    const uint64_t within = offset - e.image_offset;
    const uint64_t n = std::min(e.length - within, end - offset);
    ImagePiece p;
    p.image_offset = offset;
    p.length = n;
    p.kind = e.kind;
    p.slice = e.slice;
    p.source_offset = (e.kind == ImageExtent::Kind::kLiteral ? e.literal_offset : 0) + within;
    pieces.push_back(p);
    offset += n;
  }
  return pieces;
}

}  // namespace jigdoofus
