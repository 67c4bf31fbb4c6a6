#include "core/template_index.h"

#include <string>
#include <unordered_map>

namespace jigdoofus {

namespace {

using tmpl::EntryType;

bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

std::string Str(uint64_t v) { return std::to_string(v); }

}  // namespace

Result<TemplateIndex> ReadTemplateIndex(const ByteSource& file) {
  const std::string& name = file.name();
  const uint64_t file_size = file.size();
  auto corrupt = [&](const std::string& what) { return Status::Corruption(name + ": " + what); };

  TemplateIndex idx;

  // --- Header -------------------------------------------------------------
  {
    std::string head(static_cast<size_t>(std::min<uint64_t>(file_size, tmpl::kMaxHeaderBytes)), '\0');
    auto n = file.ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(head.data()), head.size()));
    if (!n.ok()) return n.status();
    head.resize(*n);
    if (head.size() < tmpl::kMagic.size()) {
      return corrupt("file too short to be a template (" + Str(file_size) + " bytes)");
    }
    JIGDOOFUS_ASSIGN_OR_RETURN(idx.header_, tmpl::DecodeHeader(head, name));
  }
  if (file_size < idx.header_.size + tmpl::kDescOverhead) {
    return corrupt("file too short (" + Str(file_size) + " bytes): no room for a DESC part after the header");
  }

  // --- Parts, read sequentially up to DESC ----------------------------------
  uint64_t pos = idx.header_.size;
  uint64_t literal_total = 0;
  uint64_t desc_len = 0;
  for (;;) {
    uint8_t ph[tmpl::kDataPartHeaderSize];
    if (file_size - pos < tmpl::kPartHeaderSize) {
      return corrupt("part header at offset " + Str(pos) + " runs past the end of the file (no DESC part)");
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(file_size - pos, sizeof ph));
    JIGDOOFUS_RETURN_IF_ERROR(file.ReadExactly(pos, std::span<uint8_t>(ph, want)));
    const std::string_view id(reinterpret_cast<const char*>(ph), tmpl::kIdSize);
    const uint64_t len = tmpl::DecodeLE48(ph + tmpl::kIdSize);
    if (id == tmpl::kIdDesc) {
      desc_len = len;
      break;
    }
    const bool is_data = id == tmpl::kIdData;
    if (!is_data && id != tmpl::kIdBzip) {
      std::string shown;
      for (char c : id) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
      return corrupt("unknown part id \"" + shown + "\" at offset " + Str(pos));
    }
    const size_t part_no = idx.parts_.size();
    if (len < tmpl::kDataPartHeaderSize) {
      return corrupt("data part " + Str(part_no) + " at offset " + Str(pos) + " has length " + Str(len) +
                     " (less than its 16-byte header)");
    }
    if (len > file_size - pos) {
      return corrupt("data part " + Str(part_no) + " at offset " + Str(pos) + " has length " + Str(len) +
                     ", running past the end of the file (" + Str(file_size) + " bytes)");
    }
    DataPart part;
    part.codec = is_data ? Codec::kZlib : Codec::kBzip2;
    part.file_offset = pos + tmpl::kDataPartHeaderSize;
    part.compressed_size = len - tmpl::kDataPartHeaderSize;
    part.uncompressed_size = tmpl::DecodeLE48(ph + tmpl::kPartHeaderSize);
    part.literal_offset = literal_total;
    if (!is_data && part.uncompressed_size > tmpl::kMaxBzipPartUncompressed) {
      return corrupt("BZIP part " + Str(part_no) + " at offset " + Str(pos) + " claims " +
                     Str(part.uncompressed_size) + " bytes, more than the " + Str(tmpl::kMaxBzipPartUncompressed) +
                     " jigdoofus decodes in one bzip2 part (producers write at most 921,600)");
    }
    if (part.uncompressed_size > 0 && part.compressed_size == 0) {
      return corrupt("data part " + Str(part_no) + " at offset " + Str(pos) + " claims " +
                     Str(part.uncompressed_size) + " bytes but has no compressed data");
    }
    if (!CheckedAdd(literal_total, part.uncompressed_size, &literal_total) || literal_total > tmpl::kMaxLength48) {
      return corrupt("uncompressed sizes of the data parts overflow at part " + Str(part_no));
    }
    idx.parts_.push_back(part);
    pos += len;
  }

  // --- DESC --------------------------------------------------------------
  const uint64_t desc_pos = pos;
  if (desc_len < tmpl::kDescOverhead) {
    return corrupt("DESC part at offset " + Str(desc_pos) + " has length " + Str(desc_len) + " (less than 16)");
  }
  if (desc_len > file_size - desc_pos) {
    return corrupt("DESC part at offset " + Str(desc_pos) + " has length " + Str(desc_len) +
                   ", running past the end of the file (" + Str(file_size) + " bytes)");
  }
  if (desc_len < file_size - desc_pos) {
    return corrupt(Str(file_size - desc_pos - desc_len) + " bytes of trailing garbage after the DESC part at offset " +
                   Str(desc_pos));
  }
  // desc_len <= file_size, so this allocation is bounded by the file.
  std::string body(static_cast<size_t>(desc_len - tmpl::kPartHeaderSize), '\0');
  JIGDOOFUS_RETURN_IF_ERROR(file.ReadExactly(
      desc_pos + tmpl::kPartHeaderSize, std::span<uint8_t>(reinterpret_cast<uint8_t*>(body.data()), body.size())));
  const uint64_t trailing = tmpl::DecodeLE48(reinterpret_cast<const uint8_t*>(body.data()) + body.size() - 6);
  if (trailing != desc_len) {
    return corrupt("DESC length at the end of the file (" + Str(trailing) + ") disagrees with the one at offset " +
                   Str(desc_pos) + " (" + Str(desc_len) + ")");
  }
  body.resize(body.size() - tmpl::kLengthSize);

  std::unordered_map<SliceId, uint32_t, SliceIdHash> slice_ids;
  uint64_t image_pos = 0;
  uint64_t literal_pos = 0;
  std::optional<uint64_t> declared_image_size;
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  size_t at = 0;
  while (at < body.size()) {
    const uint64_t entry_file_off = desc_pos + tmpl::kPartHeaderSize + at;
    const uint8_t type = p[at];
    const size_t payload = tmpl::EntryPayloadSize(type);
    if (payload == 0) {
      // Unknown types cannot be skipped: their size is not known.
      return corrupt("unknown DESC entry type " + Str(type) + " at offset " + Str(entry_file_off));
    }
    if (body.size() - at - 1 < payload) {
      return corrupt("DESC entry of type " + Str(type) + " at offset " + Str(entry_file_off) +
                     " is truncated (needs " + Str(payload + 1) + " bytes, " + Str(body.size() - at) + " left)");
    }
    const uint8_t* q = p + at + 1;
    const uint64_t len = tmpl::DecodeLE48(q);
    at += 1 + payload;
    auto add_extent = [&](ImageExtent e) -> Status {
      e.image_offset = image_pos;
      e.length = len;
      if (!CheckedAdd(image_pos, len, &image_pos) || image_pos > tmpl::kMaxLength48) {
        return corrupt("DESC entries add up to more than 2^48-1 bytes (at offset " + Str(entry_file_off) + ")");
      }
      if (len > 0) idx.extents_.push_back(e);
      return Status::OK();
    };
    switch (static_cast<EntryType>(type)) {
      case EntryType::kUnmatched: {
        ImageExtent e;
        e.kind = ImageExtent::Kind::kLiteral;
        e.literal_offset = literal_pos;
        JIGDOOFUS_RETURN_IF_ERROR(add_extent(e));
        literal_pos += len;  // <= image_pos, cannot overflow
        break;
      }
      case EntryType::kFileObsolete:
      case EntryType::kFile:
      case EntryType::kFileSha256: {
        SliceId id;
        id.size = len;
        if (type == static_cast<uint8_t>(EntryType::kFileObsolete)) {
          id.digest = Digest::FromBytes(HashAlgo::kMd5, {q + 6, kMd5Size});
        } else if (type == static_cast<uint8_t>(EntryType::kFile)) {
          id.digest = Digest::FromBytes(HashAlgo::kMd5, {q + 14, kMd5Size});
        } else {
          id.digest = Digest::FromBytes(HashAlgo::kSha256, {q + 14, kSha256Size});
        }
        ImageExtent e;
        e.kind = ImageExtent::Kind::kSlice;
        if (len > 0) {
          auto [it, inserted] = slice_ids.try_emplace(id, static_cast<uint32_t>(idx.slices_.size()));
          if (inserted) {
            idx.slices_.push_back(id);
            // Types 6 and 9 carry the head sum; its length is known once
            // the image entry (usually last) gave blockLen.
            SliceHead head;
            if (type != static_cast<uint8_t>(EntryType::kFileObsolete)) head = {tmpl::DecodeLE64(q + 6), 1};
            idx.slice_heads_.push_back(head);
          }
          e.slice = it->second;
        }
        JIGDOOFUS_RETURN_IF_ERROR(add_extent(e));
        break;
      }
      case EntryType::kImageInfoObsolete:
      case EntryType::kImageInfo:
      case EntryType::kImageInfoSha256: {
        // Several image-info entries are harmless: the last one wins.
        declared_image_size = len;
        if (type == static_cast<uint8_t>(EntryType::kImageInfoSha256)) {
          idx.image_digest_ = Digest::FromBytes(HashAlgo::kSha256, {q + 6, kSha256Size});
          idx.block_len_ = tmpl::DecodeLE32(q + 6 + kSha256Size);
        } else {
          idx.image_digest_ = Digest::FromBytes(HashAlgo::kMd5, {q + 6, kMd5Size});
          idx.block_len_ = type == static_cast<uint8_t>(EntryType::kImageInfo) ? tmpl::DecodeLE32(q + 6 + kMd5Size) : 0;
        }
        break;
      }
    }
  }
  if (declared_image_size && *declared_image_size != image_pos) {
    return corrupt("DESC entries add up to " + Str(image_pos) + " bytes, but the image length is " +
                   Str(*declared_image_size));
  }
  if (literal_pos != literal_total) {
    return corrupt("data parts hold " + Str(literal_total) + " uncompressed bytes, but DESC asks for " +
                   Str(literal_pos) + " bytes of unmatched data");
  }
  if (slice_ids.size() > UINT32_MAX) return corrupt("too many distinct slices");
  idx.image_size_ = image_pos;
  idx.literal_size_ = literal_total;
  // Head sums cover blockLen bytes; without blockLen, for a slice shorter
  // than it ("never happens", says TechDetails.txt), or for a blockLen no
  // producer writes (a scan reads and keeps that many bytes per candidate),
  // they are not usable.
  for (size_t i = 0; i < idx.slices_.size(); ++i) {
    SliceHead& h = idx.slice_heads_[i];
    const bool usable = h.len > 0 && idx.block_len_ > 0 && idx.block_len_ <= tmpl::kMaxHeadLength &&
                        idx.slices_[i].size >= idx.block_len_;
    h = usable ? SliceHead{h.sum, idx.block_len_} : SliceHead{};
  }
  idx.extents_.shrink_to_fit();
  return idx;
}

}  // namespace jigdoofus
