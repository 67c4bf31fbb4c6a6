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
  ForEachPiece(offset, length, [&](const ImagePiece& p) {
    pieces.push_back(p);
    return true;
  });
  return pieces;
}

}  // namespace jigdoofus
