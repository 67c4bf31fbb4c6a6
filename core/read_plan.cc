#include "core/read_plan.h"

#include <algorithm>
#include <cstring>

namespace jigdoofus {

std::span<uint8_t> ReadPlan::AppendMemory(size_t n, size_t capacity_hint) {
  const size_t at = memory_used;
  if (memory_capacity < at + n) {
    const size_t cap = std::max(at + n, capacity_hint);
    auto bigger = std::make_unique_for_overwrite<uint8_t[]>(cap);
    if (at > 0) std::memcpy(bigger.get(), memory.get(), at);
    memory = std::move(bigger);
    memory_capacity = cap;
  }
  memory_used = at + n;
  size += n;
  if (!parts.empty() && parts.back().fd < 0) {
    parts.back().length += n;
  } else {
    parts.push_back(Part{n, -1, at});
  }
  return std::span<uint8_t>(memory.get() + at, n);
}

void ReadPlan::AppendFile(int fd, uint64_t pos, size_t n) {
  if (!parts.empty() && parts.back().fd == fd && parts.back().pos + parts.back().length == pos) {
    parts.back().length += n;
  } else {
    parts.push_back(Part{n, fd, pos});
  }
  size += n;
}

}  // namespace jigdoofus
