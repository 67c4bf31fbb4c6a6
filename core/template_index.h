// TemplateIndex: everything needed to assemble an image from a .template,
// without inflating any data: the image length and checksum, the list of
// compressed raw-data parts (where each sits in the file and in the
// literal stream), and the DESC entries laid out on image offsets.
//
// Built once per image by ReadTemplateIndex(), which validates the whole
// structure: part headers within the file, DATA/BZIP parts that add up to
// the literal bytes DESC asks for, DESC entries that add up to the image
// length, lengths that would overflow, a trailing DESC length that agrees
// with the leading one. Every error names the template and what is wrong.
//
// Immutable after construction; safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/byte_source.h"
#include "core/digest.h"
#include "core/result.h"
#include "core/slice_id.h"
#include "core/template_format.h"

namespace jigdoofus {

enum class Codec : uint8_t { kZlib, kBzip2 };

struct DataPart {
  Codec codec = Codec::kZlib;
  uint64_t file_offset = 0;        // offset of the compressed bytes in the template
  uint64_t compressed_size = 0;    // dataLen - 16
  uint64_t literal_offset = 0;     // offset of its first byte in the literal stream
  uint64_t uncompressed_size = 0;  // dataUnc
};

// One run of the image: either literal template data or a whole slice.
struct ImageExtent {
  uint64_t image_offset = 0;
  uint64_t length = 0;
  // kLiteral: literal_offset is where the bytes start in the literal stream.
  // kSlice: slice indexes TemplateIndex::slices().
  enum class Kind : uint8_t { kLiteral, kSlice } kind = Kind::kLiteral;
  uint64_t literal_offset = 0;
  uint32_t slice = 0;
};

class TemplateIndex {
 public:
  const tmpl::Header& header() const { return header_; }
  uint64_t image_size() const { return image_size_; }
  // Image checksum from the type 1/5/8 entry, if present.
  const std::optional<Digest>& image_digest() const { return image_digest_; }
  uint32_t block_len() const { return block_len_; }
  // The slice checksum algorithm (MD5 for types 3/6, SHA256 for type 9).
  // A template mixing both is accepted; each slice carries its own.
  const std::vector<DataPart>& parts() const { return parts_; }
  uint64_t literal_size() const { return literal_size_; }
  // Extents in image order, contiguous from 0 to image_size(); zero-length
  // DESC entries are dropped.
  const std::vector<ImageExtent>& extents() const { return extents_; }
  // Unique slices, in order of first appearance.
  const std::vector<SliceId>& slices() const { return slices_; }
  // Parallel to slices(): each slice's head sum, where the template has one.
  const std::vector<SliceHead>& slice_heads() const { return slice_heads_; }

 private:
  friend Result<TemplateIndex> ReadTemplateIndex(const ByteSource& file);
  tmpl::Header header_;
  uint64_t image_size_ = 0;
  std::optional<Digest> image_digest_;
  uint32_t block_len_ = 0;
  std::vector<DataPart> parts_;
  uint64_t literal_size_ = 0;
  std::vector<ImageExtent> extents_;
  std::vector<SliceId> slices_;
  std::vector<SliceHead> slice_heads_;
};

// Reads and validates the structure of a template. Reads the header, the
// part headers (seeking over compressed data) and the DESC part; never
// decompresses. Memory is proportional to the number of entries and parts.
Result<TemplateIndex> ReadTemplateIndex(const ByteSource& file);

}  // namespace jigdoofus
