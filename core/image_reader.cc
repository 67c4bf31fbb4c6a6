#include "core/image_reader.h"

#include <string>

namespace jigdoofus {

namespace {

// Whether a failed read of a slice object should drop it and get it again:
// its stored bytes no longer matched (kCorruption) or are gone (kNotFound,
// evicted by another process). Anything else is final for this read.
bool WorthRefetching(const Status& st) { return st.IsCorruption() || st.IsNotFound(); }

}  // namespace

ImageReader::ImageReader(std::shared_ptr<const TemplateIndex> index, std::shared_ptr<const LiteralStore> literals,
                         std::shared_ptr<SliceProvider> slices)
    : map_(std::move(index)), literals_(std::move(literals)), slices_(std::move(slices)) {}

Result<size_t> ImageReader::ReadAt(uint64_t offset, std::span<uint8_t> out, const FetchContext& ctx) const {
  size_t done = 0;
  Status st;
  map_.ForEachPiece(offset, out.size(), [&](const ImagePiece& p) {
    std::span<uint8_t> dst = out.subspan(done, p.length);
    if (p.kind == ImageExtent::Kind::kLiteral) {
      st = literals_->ReadAt(p.source_offset, dst);
    } else {
      const SliceId& id = map_.index().slices()[p.slice];
      for (int attempt = 0;; ++attempt) {
        auto slice = slices_->Get(id, ctx);
        if (!slice.ok()) {
          st = slice.status();
          break;
        }
        st = (*slice)->ReadAt(p.source_offset, dst);
        if (st.ok() || !WorthRefetching(st) || attempt >= kSliceRetries) break;
        if (st.IsCorruption()) (*slice)->Discard();
        slices_->Forget(id);
      }
    }
    if (!st.ok()) {
      st = st.WithContext("image offset " + std::to_string(p.image_offset));
      return false;
    }
    done += p.length;
    return true;
  });
  if (!st.ok()) return st;
  return done;
}

Status ImageReader::Plan(uint64_t offset, size_t length, const FetchContext& ctx, ReadPlan* plan) const {
  for (int attempt = 0;; ++attempt) {
    plan->Clear();
    Status st;
    std::shared_ptr<const VerifiedSlice> failed;  // the slice whose bytes failed
    map_.ForEachPiece(offset, length, [&](const ImagePiece& p) {
      const size_t n = static_cast<size_t>(p.length);
      if (p.kind == ImageExtent::Kind::kLiteral) {
        st = literals_->ReadAt(p.source_offset, plan->AppendMemory(n, length));
      } else {
        const SliceId& id = map_.index().slices()[p.slice];
        auto slice = slices_->Get(id, ctx);
        if (!slice.ok()) {
          st = slice.status();
        } else if (p.source_offset > id.size || n > id.size - p.source_offset) {
          st = Status::Internal("template piece runs past the end of its slice");
        } else {
          st = (*slice)->AppendTo(p.source_offset, n, plan);
          if (!st.ok()) failed = *slice;
        }
      }
      if (!st.ok()) {
        st = st.WithContext("image offset " + std::to_string(p.image_offset));
        return false;
      }
      return true;
    });
    if (st.ok()) return st;
    // Release what the plan holds (a cache snapshot) before discarding:
    // Discard writes to the cache.
    plan->Clear();
    if (failed == nullptr || !WorthRefetching(st) || attempt >= kSliceRetries) return st;
    if (st.IsCorruption()) failed->Discard();
    slices_->Forget(failed->id());
  }
}

}  // namespace jigdoofus
