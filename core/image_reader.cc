#include "core/image_reader.h"

namespace jigdoofus {

ImageReader::ImageReader(std::shared_ptr<const TemplateIndex> index, std::shared_ptr<const LiteralStore> literals,
                         std::shared_ptr<SliceProvider> slices)
    : map_(std::move(index)), literals_(std::move(literals)), slices_(std::move(slices)) {}

Result<size_t> ImageReader::ReadAt(uint64_t offset, std::span<uint8_t> out, const FetchContext& ctx) const {
  size_t done = 0;
  for (const ImagePiece& p : map_.Pieces(offset, out.size())) {
    std::span<uint8_t> dst = out.subspan(done, p.length);
    Status st;
    if (p.kind == ImageExtent::Kind::kLiteral) {
      st = literals_->ReadAt(p.source_offset, dst);
    } else {
      const SliceId& id = map_.index().slices()[p.slice];
      auto slice = slices_->Get(id, ctx);
      st = slice.ok() ? (*slice)->ReadAt(p.source_offset, dst) : slice.status();
    }
    if (!st.ok()) return st.WithContext("image offset " + std::to_string(p.image_offset));
    done += p.length;
  }
  return done;
}

}  // namespace jigdoofus
