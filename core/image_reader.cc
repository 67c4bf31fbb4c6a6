#include "core/image_reader.h"

#include <string>
#include <vector>

namespace jigdoofus {

namespace {

// Whether a failed read of a slice object should drop it and get it again:
// its stored bytes no longer matched (kCorruption) or are gone (kNotFound,
// evicted). Anything else is final for this read.
bool WorthRefetching(const Status& st) { return st.IsCorruption() || st.IsNotFound(); }

}  // namespace

ImageReader::ImageReader(std::shared_ptr<const TemplateIndex> index, std::shared_ptr<const LiteralStore> literals,
                         std::shared_ptr<SliceProvider> slices)
    : map_(std::move(index)), literals_(std::move(literals)), slices_(std::move(slices)) {}

Status ImageReader::CopyPiece(const ImagePiece& p, std::span<uint8_t> dst, const FetchContext& ctx) const {
  if (p.kind == ImageExtent::Kind::kLiteral) return literals_->ReadAt(p.source_offset, dst, nullptr, &ctx);
  const SliceId& id = map_.index().slices()[p.slice];
  for (int attempt = 0;; ++attempt) {
    auto slice = slices_->Get(id, ctx);
    if (!slice.ok()) return slice.status();
    Status st = (*slice)->ReadAt(p.source_offset, dst);
    if (st.ok() || !WorthRefetching(st) || attempt >= kSliceRetries) return st;
    if (st.IsCorruption()) (*slice)->Discard();
    slices_->Forget(id);
  }
}

Result<size_t> ImageReader::ReadAt(uint64_t offset, std::span<uint8_t> out, const FetchContext& ctx) const {
  size_t done = 0;
  Status st;
  map_.ForEachPiece(offset, out.size(), [&](const ImagePiece& p) {
    st = CopyPiece(p, out.subspan(done, p.length), ctx);
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
  std::vector<ImagePiece> pieces;
  map_.ForEachPiece(offset, length, [&](const ImagePiece& p) {
    pieces.push_back(p);
    return true;
  });
  std::vector<std::shared_ptr<const VerifiedSlice>> slices(pieces.size());
  for (int attempt = 0; attempt <= kSliceRetries; ++attempt) {
    plan->Clear();
    // Pass 1: every slice of the range, got (verified, maybe downloaded)
    // while the plan holds nothing.
    for (size_t i = 0; i < pieces.size(); ++i) {
      const ImagePiece& p = pieces[i];
      if (p.kind != ImageExtent::Kind::kSlice || slices[i] != nullptr) continue;
      auto slice = slices_->Get(map_.index().slices()[p.slice], ctx);
      if (!slice.ok()) return slice.status().WithContext("image offset " + std::to_string(p.image_offset));
      slices[i] = std::move(slice).value();
    }
    // Pass 2: their bytes, as file ranges the plan holds (one cache
    // snapshot for all of them) or copies.
    Status st;
    size_t failed = 0;
    for (size_t i = 0; i < pieces.size() && st.ok(); ++i) {
      const ImagePiece& p = pieces[i];
      const size_t n = static_cast<size_t>(p.length);
      if (p.kind == ImageExtent::Kind::kLiteral) {
        st = literals_->ReadAt(p.source_offset, plan->AppendMemory(n, length), nullptr, &ctx);
      } else if (p.source_offset > slices[i]->id().size || n > slices[i]->id().size - p.source_offset) {
        st = Status::Internal("template piece runs past the end of its slice");
      } else {
        st = slices[i]->AppendTo(p.source_offset, n, plan);
        plan->Keep(slices[i]);  // its file stays open until the reply was sent
      }
      if (!st.ok()) {
        failed = i;
        st = st.WithContext("image offset " + std::to_string(p.image_offset));
      }
    }
    if (st.ok()) return st;
    // Release the plan's snapshot before discarding: Discard writes.
    plan->Clear();
    if (!WorthRefetching(st) || pieces[failed].kind != ImageExtent::Kind::kSlice) return st;
    if (st.IsCorruption()) slices[failed]->Discard();
    const SliceId gone = slices[failed]->id();
    slices_->Forget(gone);
    for (auto& s : slices) {
      if (s != nullptr && s->id() == gone) s = nullptr;  // every piece of that slice
    }
  }
  // The cache turns over faster than this read can have all its slices at
  // once (a cache smaller than the read's slices, or a disk that filled):
  // copy each slice's bytes right after getting it.
  plan->Clear();
  for (const ImagePiece& p : pieces) {
    Status st = CopyPiece(p, plan->AppendMemory(static_cast<size_t>(p.length), length), ctx);
    if (!st.ok()) {
      plan->Clear();
      return st.WithContext("image offset " + std::to_string(p.image_offset));
    }
  }
  return Status::OK();
}

}  // namespace jigdoofus
