// TemplateBuilder: builds synthetic .template files for tests, with real
// zlib / bzip2 compression and DESC entries written by the tmpl::Encode*
// functions. It also remembers the image it describes, so a test can
// compare what jigdoofus assembles against the truth.
//
//   TemplateBuilder b;                      // defaults: 2.0, zlib, MD5
//   b.Literal("hello").Slice("package bytes").Literal(std::string(1000, 0));
//   std::string tmpl = b.Build();           // the .template bytes
//   b.image();                              // the image they describe
//   b.slices();                             // distinct slice contents
//
// Not thread-safe (a plain value). Low-level helpers below build parts by
// hand for corruption tests.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/template_format.h"
#include "core/template_index.h"

namespace jigdoofus::testing_util {

std::string ZlibCompress(std::string_view data, int level = 9);
std::string Bzip2Compress(std::string_view data, int level = 9);
// zlib-compresses `size` bytes produced by fill(offset, out) in pieces,
// without holding them all in memory (for parts of hundreds of MB).
std::string ZlibCompressGenerated(uint64_t size, const std::function<void(uint64_t, std::span<uint8_t>)>& fill,
                                  int level = 9);

class TemplateBuilder {
 public:
  struct Options {
    std::string version = "2.0";
    std::string creator = "jigdo-file/0.8.0";
    std::string comment = "See https://www.einval.com/~steve/software/jigdo/ for details about jigdo";
    bool space_before_crlf = false;  // xorriso/libjte writes "... libjte-2.0.0 \r\n"
    Codec codec = Codec::kZlib;
    size_t part_size = 64 * 1024;    // uncompressed bytes per DATA/BZIP part (literal stream is cut here)
    HashAlgo algo = HashAlgo::kMd5;  // kMd5: entries 6 and 5; kSha256: entries 9 and 8
    bool obsolete_types = false;     // with kMd5: entries 3 and 1 instead of 6 and 5
    bool image_info = true;          // write the image-info entry (last)
    uint32_t block_len = 1024;
  };

  TemplateBuilder() : TemplateBuilder(Options{}) {}
  explicit TemplateBuilder(Options options) : options_(std::move(options)) {}

  // Appends unmatched bytes (a type-2 entry; the bytes go to the data parts).
  TemplateBuilder& Literal(std::string_view bytes);
  // Appends a matched file (type 3/6/9 entry with the checksum of `bytes`).
  TemplateBuilder& Slice(std::string_view bytes);

  // The whole template: header, data parts, DESC.
  std::string Build() const;
  // Pieces of it, for hand-made variants.
  std::string Header() const;
  std::vector<std::string> DataParts() const;      // each encoded with its part header
  std::vector<tmpl::DescEntry> DescEntries() const;  // includes the image-info entry if enabled

  const std::string& image() const { return image_; }
  const std::string& literals() const { return literals_; }
  const std::vector<std::string>& slices() const { return slices_; }  // distinct contents, first-seen order
  const Options& options() const { return options_; }

 private:
  Options options_;
  std::vector<tmpl::DescEntry> entries_;
  std::string image_;
  std::string literals_;
  std::vector<std::string> slices_;
};

}  // namespace jigdoofus::testing_util
