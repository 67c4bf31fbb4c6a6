// The .template binary format (jigdo TechDetails.txt, "File format of
// .template and .tmp files"): named size constants and Encode/Decode pairs
// for every record. doc/template_format.md describes it in prose.
//
//   header:  "JigsawDownload template <ver> <creator> \r\n<comment>\r\n\r\n"
//   parts:   ("DATA" | "BZIP") len:6 unc:6 <compressed>   len includes 16
//   DESC:    "DESC" len:6 entries... len:6                 len includes 16
// All integers little-endian; lengths are 6 bytes (48 bit).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/result.h"

namespace jigdoofus::tmpl {

inline constexpr std::string_view kMagic = "JigsawDownload template ";
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;  // header lines longer than this are corrupt
inline constexpr size_t kIdSize = 4;
inline constexpr size_t kLengthSize = 6;
inline constexpr size_t kPartHeaderSize = kIdSize + kLengthSize;            // 10
inline constexpr size_t kDataPartHeaderSize = kPartHeaderSize + kLengthSize;  // 16: + uncompressed len
inline constexpr size_t kDescOverhead = kPartHeaderSize + kLengthSize;        // 16: + trailing len
inline constexpr uint64_t kMaxLength48 = (uint64_t{1} << 48) - 1;
// Largest uncompressed size of one BZIP part accepted. Producers write one
// bzip2 block per part (at most 921,600 bytes; doc/template_format.md), and
// a BZIP part has no restart points: each cache miss decodes it from its
// start. (DATA parts are not bounded: jigdo-file writes a run of zeros as
// one part of hundreds of MB, and zlib parts have restart points.)
inline constexpr uint64_t kMaxBzipPartUncompressed = uint64_t{64} << 20;

// Largest blockLen whose head sums are used (jigdo-file and JTE write 1 KiB
// by default; --min-length can raise it). A larger one is ignored: scans
// then hash candidates whole.
inline constexpr uint32_t kMaxHeadLength = 64 * 1024;

inline constexpr std::string_view kIdData = "DATA";
inline constexpr std::string_view kIdBzip = "BZIP";
inline constexpr std::string_view kIdDesc = "DESC";

enum class EntryType : uint8_t {
  kImageInfoObsolete = 1,  // imgLen:6 imgMD5:16
  kUnmatched = 2,          // skipLen:6
  kFileObsolete = 3,       // fileLen:6 fileMD5:16
  kImageInfo = 5,          // imgLen:6 imgMD5:16 blockLen:4
  kFile = 6,               // fileLen:6 rsync:8 fileMD5:16
  kImageInfoSha256 = 8,    // imgLen:6 imgSHA256:32 blockLen:4
  kFileSha256 = 9,         // fileLen:6 rsync:8 fileSHA256:32
};
// Size of an entry's payload after the type byte; 0 for unknown types.
size_t EntryPayloadSize(uint8_t type);

uint64_t DecodeLE48(const uint8_t* p);
uint32_t DecodeLE32(const uint8_t* p);
uint64_t DecodeLE64(const uint8_t* p);
void EncodeLE48(uint64_t v, std::string* out);  // REQUIRES v <= kMaxLength48
void EncodeLE32(uint32_t v, std::string* out);
void EncodeLE64(uint64_t v, std::string* out);

struct Header {
  int major = 0;
  int minor = 0;
  std::string creator;
  std::string comment;
  size_t size = 0;  // bytes of the header including the final CRLF
};
// Decodes the header from the first bytes of a template. `name` is used in
// messages. Versions 1.0 .. 2.x are accepted; a major version > 2 is
// kNotSupported.
Result<Header> DecodeHeader(std::string_view bytes, const std::string& name);
std::string EncodeHeader(std::string_view version, std::string_view creator, std::string_view comment);

// One DESC entry, decoded.
struct DescEntry {
  EntryType type{};
  uint64_t length = 0;   // skipLen / fileLen / imgLen
  Digest digest;         // file or image digest (unset for kUnmatched)
  uint64_t rsync = 0;    // types 6, 9
  uint32_t block_len = 0;  // types 5, 8
};
std::string EncodeDescEntry(const DescEntry& e);

// Encoders used by tests to build synthetic templates.
std::string EncodeDataPart(std::string_view id, std::string_view compressed, uint64_t uncompressed_size);
std::string EncodeDescPart(std::span<const DescEntry> entries);

}  // namespace jigdoofus::tmpl
