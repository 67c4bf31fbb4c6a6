#include "core/image_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace jigdoofus {

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
      auto slice = slices_->Get(id, ctx);
      st = slice.ok() ? (*slice)->ReadAt(p.source_offset, dst) : slice.status();
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
  if (!parts.empty() && parts.back().slice == nullptr) {
    parts.back().length += n;
  } else {
    parts.push_back(Part{n, nullptr, at});
  }
  return std::span<uint8_t>(memory.get() + at, n);
}

void ReadPlan::AppendSlice(std::shared_ptr<const VerifiedSlice> slice, uint64_t pos, size_t n) {
  parts.push_back(Part{n, std::move(slice), pos});
  size += n;
}

Status ImageReader::Plan(uint64_t offset, size_t length, const FetchContext& ctx, ReadPlan* plan) const {
  plan->Clear();
  Status st;
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
        st = Status::Corruption("template piece runs past the end of its slice");
      } else if ((*slice)->fd() >= 0) {
        // The caller reads the fd later (splice); a file that shrank since
        // it was verified must fail here, not become a short read.
        struct stat sb;
        const uint64_t need = (*slice)->fd_offset() + p.source_offset + n;
        if (::fstat((*slice)->fd(), &sb) != 0) {
          st = Status::FromErrno("slice " + id.digest.ToBase64() + ": fstat", errno);
        } else if (static_cast<uint64_t>(sb.st_size) < need) {
          st = Status::IOError("slice " + id.digest.ToBase64() + ": its file shrank to " +
                               std::to_string(sb.st_size) + " bytes after verification");
        } else {
          plan->AppendSlice(*slice, (*slice)->fd_offset() + p.source_offset, n);
        }
      } else {
        st = (*slice)->ReadAt(p.source_offset, plan->AppendMemory(n, length));
      }
    }
    if (!st.ok()) {
      st = st.WithContext("image offset " + std::to_string(p.image_offset));
      return false;
    }
    return true;
  });
  if (!st.ok()) plan->Clear();
  return st;
}

}  // namespace jigdoofus
