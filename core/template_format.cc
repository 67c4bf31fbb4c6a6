#include "core/template_format.h"

#include <cassert>

namespace jigdoofus::tmpl {

size_t EntryPayloadSize(uint8_t type) {
  switch (static_cast<EntryType>(type)) {
    case EntryType::kImageInfoObsolete: return kLengthSize + kMd5Size;                 // 22
    case EntryType::kUnmatched: return kLengthSize;                                    // 6
    case EntryType::kFileObsolete: return kLengthSize + kMd5Size;                      // 22
    case EntryType::kImageInfo: return kLengthSize + kMd5Size + 4;                     // 26
    case EntryType::kFile: return kLengthSize + 8 + kMd5Size;                          // 30
    case EntryType::kImageInfoSha256: return kLengthSize + kSha256Size + 4;            // 42
    case EntryType::kFileSha256: return kLengthSize + 8 + kSha256Size;                 // 46
  }
  return 0;
}

uint64_t DecodeLE48(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 5; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t DecodeLE32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint64_t DecodeLE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

static void EncodeLE(uint64_t v, int n, std::string* out) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void EncodeLE48(uint64_t v, std::string* out) {
  assert(v <= kMaxLength48);
  EncodeLE(v, 6, out);
}
void EncodeLE32(uint32_t v, std::string* out) { EncodeLE(v, 4, out); }
void EncodeLE64(uint64_t v, std::string* out) { EncodeLE(v, 8, out); }

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses 1..9 decimal digits at text[*pos].
bool ParseSmallInt(std::string_view text, size_t* pos, int* value) {
  size_t start = *pos;
  int v = 0;
  while (*pos < text.size() && IsDigit(text[*pos]) && *pos - start < 9) {
    v = v * 10 + (text[*pos] - '0');
    ++*pos;
  }
  if (*pos == start || (*pos < text.size() && IsDigit(text[*pos]))) return false;
  *value = v;
  return true;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Header> DecodeHeader(std::string_view bytes, const std::string& name) {
  if (bytes.size() > kMaxHeaderBytes) bytes = bytes.substr(0, kMaxHeaderBytes);
  auto bad = [&](const std::string& what) { return Status::Corruption(name + ": bad template header: " + what); };
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return bad("does not start with \"JigsawDownload template\" (not a .template file)");
  }
  // Line 1: magic, version, creator; optional blanks before CRLF.
  size_t eol1 = bytes.find("\r\n");
  if (eol1 == std::string_view::npos) return bad("first line has no CRLF within " + std::to_string(bytes.size()) + " bytes");
  std::string_view line1 = bytes.substr(0, eol1);
  size_t pos = kMagic.size();
  while (pos < line1.size() && IsBlank(line1[pos])) ++pos;
  Header h;
  if (!ParseSmallInt(line1, &pos, &h.major) || pos >= line1.size() || line1[pos] != '.' ||
      !(++pos, ParseSmallInt(line1, &pos, &h.minor))) {
    return bad("version is not of the form <int>.<int>");
  }
  if (pos < line1.size() && !IsBlank(line1[pos])) return bad("junk after the version number");
  h.creator = std::string(TrimBlanks(line1.substr(pos)));
  if (h.creator.find_first_of(" \t") != std::string::npos) return bad("creator field contains spaces");
  for (char c : line1) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return bad("control character in first line");
  }
  // Line 2: comment.
  size_t eol2 = bytes.find("\r\n", eol1 + 2);
  if (eol2 == std::string_view::npos) return bad("comment line has no CRLF");
  h.comment = std::string(TrimBlanks(bytes.substr(eol1 + 2, eol2 - eol1 - 2)));
  // Line 3: empty (blanks tolerated).
  size_t eol3 = bytes.find("\r\n", eol2 + 2);
  if (eol3 == std::string_view::npos) return bad("missing empty third line");
  if (!TrimBlanks(bytes.substr(eol2 + 2, eol3 - eol2 - 2)).empty()) return bad("third line is not empty");
  h.size = eol3 + 2;
  if (h.major < 1 || h.major > 2) {
    return Status::NotSupported(name + ": template format version " + std::to_string(h.major) + "." +
                                std::to_string(h.minor) + " is not supported (1.0 to 2.x are)");
  }
  return h;
}

std::string EncodeHeader(std::string_view version, std::string_view creator, std::string_view comment) {
  std::string out(kMagic);
  out.append(version).append(" ").append(creator).append("\r\n");
  out.append(comment).append("\r\n\r\n");
  return out;
}

std::string EncodeDescEntry(const DescEntry& e) {
  std::string out;
  out.push_back(static_cast<char>(e.type));
  EncodeLE48(e.length, &out);
  auto digest = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(e.digest.bytes[i]));
  };
  switch (e.type) {
    case EntryType::kImageInfoObsolete:
    case EntryType::kFileObsolete:
      digest(kMd5Size);
      break;
    case EntryType::kUnmatched:
      break;
    case EntryType::kImageInfo:
      digest(kMd5Size);
      EncodeLE32(e.block_len, &out);
      break;
    case EntryType::kImageInfoSha256:
      digest(kSha256Size);
      EncodeLE32(e.block_len, &out);
      break;
    case EntryType::kFile:
      EncodeLE64(e.rsync, &out);
      digest(kMd5Size);
      break;
    case EntryType::kFileSha256:
      EncodeLE64(e.rsync, &out);
      digest(kSha256Size);
      break;
  }
  return out;
}

std::string EncodeDataPart(std::string_view id, std::string_view compressed, uint64_t uncompressed_size) {
  std::string out(id);
  EncodeLE48(compressed.size() + kDataPartHeaderSize, &out);
  EncodeLE48(uncompressed_size, &out);
  out.append(compressed);
  return out;
}

std::string EncodeDescPart(std::span<const DescEntry> entries) {
  std::string body;
  for (const DescEntry& e : entries) body += EncodeDescEntry(e);
  std::string out(kIdDesc);
  EncodeLE48(body.size() + kDescOverhead, &out);
  out += body;
  EncodeLE48(body.size() + kDescOverhead, &out);
  return out;
}

}  // namespace jigdoofus::tmpl
