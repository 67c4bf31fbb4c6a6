#include "fetch/mount/image_availability.h"

#include <vector>

namespace jigdoofus {

ImageAvailability Availability(const OpenImage& image) {
  const TemplateIndex& index = image.reader->index();
  ImageAvailability a;
  a.size = image.reader->size();
  a.slices = index.slices().size();
  std::vector<bool> available(index.slices().size());
  for (size_t i = 0; i < index.slices().size(); ++i) {
    available[i] = image.resolver->Available(index.slices()[i]);
    if (available[i]) {
      ++a.slices_available;
    } else {
      a.missing_slice_bytes += index.slices()[i].size;
    }
  }
  for (const ImageExtent& e : index.extents()) {
    if (e.kind == ImageExtent::Kind::kLiteral) {
      a.literal_bytes += e.length;
      a.available_bytes += e.length;
    } else if (available[e.slice]) {
      a.available_bytes += e.length;
    }
  }
  a.missing_bytes = a.size - a.available_bytes;
  return a;
}

}  // namespace jigdoofus
