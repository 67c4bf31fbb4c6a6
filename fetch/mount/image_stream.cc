#include "fetch/mount/image_stream.h"

#include <algorithm>
#include <memory>

#include "core/prefetcher.h"

namespace jigdoofus {

Status StreamImage(const OpenImage& image, uint64_t offset, uint64_t end, const MountConfig& config,
                   const std::function<Status(std::span<const uint8_t>)>& sink,
                   std::shared_ptr<CancelSignal> cancel) {
  end = std::min(end, image.reader->size());
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kStreamChunk);
  PrefetcherOptions po;
  po.threads = config.prefetch_threads;
  po.budget = config.job_budget;
  po.max_threads = config.max_prefetch_threads;
  po.fetch_timeout_s = config.fetch_timeout_s;
  Prefetcher prefetcher(po);
  ReadAhead read_ahead(&image.reader->map(), &image.reader->slices(), &prefetcher, config.read_ahead);
  while (offset < end) {
    if (cancel && cancel->fired()) return Status::Cancelled(image.name + ": stopped");
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kStreamChunk, end - offset));
    read_ahead.OnRead(offset, want);
    FetchContext ctx;
    ctx.deadline = DeadlineIn(config.fetch_timeout_s);
    ctx.cancel = cancel;
    ctx.foreground = true;
    auto got = image.reader->ReadAt(offset, std::span<uint8_t>(buf.get(), want), ctx);
    if (!got.ok()) return got.status().WithContext(image.name);
    if (*got == 0) return Status::IOError(image.name + ": unexpected end of image at offset " + std::to_string(offset));
    JIGDOOFUS_RETURN_IF_ERROR(sink(std::span<const uint8_t>(buf.get(), *got)));
    offset += *got;
  }
  return Status::OK();
}

}  // namespace jigdoofus
