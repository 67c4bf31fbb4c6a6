// StreamImage: an image read front to back as a sequential reader of the
// mount reads it: in chunks, with the slices ahead found, verified or
// downloaded by the mount's prefetch threads meanwhile. For jigdoofus-cat
// and for verifying an image.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "core/fetch_context.h"
#include "fetch/mount/image_set.h"

namespace jigdoofus {

// Bytes handed to the sink at a time (the last chunk may be shorter).
inline constexpr size_t kStreamChunk = size_t{4} << 20;

// Reads [offset, end) of `image` (clipped at its size) and hands each chunk
// to `sink` in order; stops at the first error of a read or of the sink.
// Each chunk's read waits at most `config.fetch_timeout_s`; `cancel` (may
// be null) stops it with kCancelled.
Status StreamImage(const OpenImage& image, uint64_t offset, uint64_t end, const MountConfig& config,
                   const std::function<Status(std::span<const uint8_t>)>& sink,
                   std::shared_ptr<CancelSignal> cancel = nullptr);

}  // namespace jigdoofus
