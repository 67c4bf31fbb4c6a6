// How much of an image can be read now without the network: literal
// template bytes, plus every slice that is kept open, verified in a local
// tree (a verification record that still matches the file) or complete in
// the cache. Cheap: a stat and a few lookups per slice, no hashing.
#pragma once

#include <cstdint>

#include "fetch/mount/image_set.h"

namespace jigdoofus {

struct ImageAvailability {
  uint64_t size = 0;
  uint64_t literal_bytes = 0;    // from the template itself
  uint64_t available_bytes = 0;  // literal bytes + bytes of available slices
  uint64_t missing_bytes = 0;    // size - available_bytes
  uint64_t slices = 0;           // distinct slices
  uint64_t slices_available = 0;
  uint64_t missing_slice_bytes = 0;  // bytes of the distinct missing slices (what a prefetch fetches)
};

ImageAvailability Availability(const OpenImage& image);

}  // namespace jigdoofus
