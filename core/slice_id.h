// SliceId: what identifies a slice (one file of the image, a package
// mostly): its checksum and its size. The same package may appear at
// several image offsets: it is one slice. A value type.
#pragma once

#include <cstdint>

#include "core/digest.h"

namespace jigdoofus {

struct SliceId {
  Digest digest;
  uint64_t size = 0;
  friend bool operator==(const SliceId&, const SliceId&) = default;
};

}  // namespace jigdoofus
