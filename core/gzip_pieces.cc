// DecodeJigdoBytes: a .jigdo file is any concatenation of plain text and
// gzip members (jigdo-file(1)). A gzip member starts wherever the magic
// 1f 8b is found at the current position: at the start of the data, right
// after another member, or at the start of a line of plain text.
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "core/jigdo_file.h"

namespace jigdoofus {

namespace {

constexpr size_t kInflateChunk = 64 * 1024;

// Owns an inflate z_stream set up for gzip (not zlib/raw) data.
class GzipInflater {
 public:
  GzipInflater() = default;
  ~GzipInflater() {
    if (initialised_) inflateEnd(&zs_);
  }
  GzipInflater(const GzipInflater&) = delete;
  GzipInflater& operator=(const GzipInflater&) = delete;

  bool Init() {
    zs_ = z_stream{};
    initialised_ = inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK;
    return initialised_;
  }
  z_stream* stream() { return &zs_; }

 private:
  z_stream zs_{};
  bool initialised_ = false;
};

bool IsGzipMagic(std::string_view raw, size_t pos) {
  return pos + 1 < raw.size() && static_cast<unsigned char>(raw[pos]) == 0x1f &&
         static_cast<unsigned char>(raw[pos + 1]) == 0x8b;
}

std::string SizeText(size_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return std::to_string(bytes) + " bytes";
}

// Inflates the member at raw[pos...] into *out; returns the bytes consumed.
Result<size_t> InflateMember(std::string_view raw, size_t pos, std::string* out, const std::string& origin,
                             size_t max_size) {
  GzipInflater inflater;
  if (!inflater.Init()) return Status::IOError(origin + ": cannot set up gzip decompression");
  z_stream* zs = inflater.stream();
  const std::string where = " (gzip member at offset " + std::to_string(pos) + ")";
  size_t in_pos = pos;
  char buf[kInflateChunk];
  for (;;) {
    if (zs->avail_in == 0 && in_pos < raw.size()) {
      size_t take = std::min<size_t>(raw.size() - in_pos, UINT_MAX / 2);
      zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data() + in_pos));
      zs->avail_in = static_cast<uInt>(take);
      in_pos += take;
    }
    zs->next_out = reinterpret_cast<Bytef*>(buf);
    zs->avail_out = sizeof buf;
    int ret = inflate(zs, Z_NO_FLUSH);
    size_t produced = sizeof buf - zs->avail_out;
    if (out->size() + produced > max_size) {
      return Status::Corruption(origin + ": gzip data decompresses to more than " + SizeText(max_size) + where);
    }
    out->append(buf, produced);
    if (ret == Z_STREAM_END) return static_cast<size_t>(zs->total_in);
    if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) {
      return Status::Corruption(origin + ": corrupt gzip data" + where + ": " +
                                (zs->msg != nullptr ? zs->msg : "invalid data"));
    }
    if (ret == Z_MEM_ERROR) return Status::IOError(origin + ": out of memory decompressing gzip data" + where);
    if (ret == Z_BUF_ERROR) {
      // No progress possible: only happens when the input ran out.
      if (zs->avail_in == 0 && in_pos >= raw.size()) {
        return Status::Corruption(origin + ": truncated gzip data" + where);
      }
      return Status::Corruption(origin + ": gzip decompression stalled" + where);
    } else if (ret != Z_OK) {
      return Status::Corruption(origin + ": gzip decompression failed" + where + " (zlib error " +
                                std::to_string(ret) + ")");
    }
  }
}

}  // namespace

Result<std::string> DecodeJigdoBytes(std::string_view raw, const std::string& origin, size_t max_size) {
  std::string out;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (IsGzipMagic(raw, pos)) {
      auto consumed = InflateMember(raw, pos, &out, origin, max_size);
      if (!consumed.ok()) return consumed.status();
      pos += *consumed;
      continue;
    }
    // Plain text up to (and including) the newline before the next gzip magic.
    size_t next = pos;
    size_t end = raw.size();
    while ((next = raw.find('\n', next)) != std::string_view::npos) {
      if (IsGzipMagic(raw, next + 1)) {
        end = next + 1;
        break;
      }
      ++next;
    }
    if (out.size() + (end - pos) > max_size) {
      return Status::Corruption(origin + ": .jigdo data larger than " + SizeText(max_size));
    }
    out.append(raw.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

Result<std::string> DecodeJigdoBytes(std::string_view raw, const std::string& origin) {
  return DecodeJigdoBytes(raw, origin, kMaxJigdoTextSize);
}

}  // namespace jigdoofus
