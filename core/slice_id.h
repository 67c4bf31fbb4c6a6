// SliceId: what identifies a slice (one file of the image, a package
// mostly): its checksum and its size. The same package may appear at
// several image offsets: it is one slice. A value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/digest.h"

namespace jigdoofus {

struct SliceId {
  Digest digest;
  uint64_t size = 0;
  friend bool operator==(const SliceId&, const SliceId&) = default;
};

struct SliceIdHash {
  size_t operator()(const SliceId& s) const noexcept {
    return DigestHash()(s.digest) ^ (std::hash<uint64_t>()(s.size) * 0x9e3779b97f4a7c15ull);
  }
};

// What the template says about a slice's first bytes: the RsyncSum64
// (core/rsync_sum.h) of its first `len` bytes. len == 0: unknown (a type 3
// entry, a template without blockLen, or a slice shorter than blockLen).
struct SliceHead {
  uint64_t sum = 0;
  uint32_t len = 0;
  bool known() const { return len > 0; }
  friend bool operator==(const SliceHead&, const SliceHead&) = default;
  // By length, then sum (the order of a scan record's head list).
  friend bool operator<(const SliceHead& a, const SliceHead& b) {
    return a.len != b.len ? a.len < b.len : a.sum < b.sum;
  }
};

}  // namespace jigdoofus
