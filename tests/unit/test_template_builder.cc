#include "tests/unit/test_template_builder.h"

#include "core/rsync_sum.h"

#include <bzlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace jigdoofus::testing_util {

std::string ZlibCompress(std::string_view data, int level) {
  uLongf n = compressBound(data.size());
  std::string out(n, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(data.data()), data.size(),
                level) != Z_OK) {
    throw std::runtime_error("compress2 failed");
  }
  out.resize(n);
  return out;
}

std::string Bzip2Compress(std::string_view data, int level) {
  unsigned n = static_cast<unsigned>(data.size() + data.size() / 100 + 600);
  std::string out(n, '\0');
  if (BZ2_bzBuffToBuffCompress(out.data(), &n, const_cast<char*>(data.data()), static_cast<unsigned>(data.size()),
                               level, 0, 0) != BZ_OK) {
    throw std::runtime_error("BZ2_bzBuffToBuffCompress failed");
  }
  out.resize(n);
  return out;
}

std::string ZlibCompressGenerated(uint64_t size, const std::function<void(uint64_t, std::span<uint8_t>)>& fill,
                                  int level) {
  z_stream s;
  std::memset(&s, 0, sizeof s);
  if (deflateInit(&s, level) != Z_OK) throw std::runtime_error("deflateInit failed");
  std::string out;
  std::vector<uint8_t> in(1 << 20);
  std::vector<uint8_t> obuf(1 << 16);
  uint64_t pos = 0;
  int ret = Z_OK;
  do {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), size - pos));
    fill(pos, std::span<uint8_t>(in.data(), n));
    pos += n;
    s.next_in = in.data();
    s.avail_in = static_cast<unsigned>(n);
    const int flush = pos == size ? Z_FINISH : Z_NO_FLUSH;
    do {
      s.next_out = obuf.data();
      s.avail_out = static_cast<unsigned>(obuf.size());
      ret = deflate(&s, flush);
      out.append(reinterpret_cast<char*>(obuf.data()), obuf.size() - s.avail_out);
    } while (s.avail_out == 0);
  } while (pos < size || ret != Z_STREAM_END);
  deflateEnd(&s);
  return out;
}

TemplateBuilder& TemplateBuilder::Literal(std::string_view bytes) {
  tmpl::DescEntry e;
  e.type = tmpl::EntryType::kUnmatched;
  e.length = bytes.size();
  entries_.push_back(e);
  image_.append(bytes);
  literals_.append(bytes);
  return *this;
}

TemplateBuilder& TemplateBuilder::Slice(std::string_view bytes) {
  tmpl::DescEntry e;
  e.length = bytes.size();
  if (options_.algo == HashAlgo::kSha256) {
    e.type = tmpl::EntryType::kFileSha256;
  } else {
    e.type = options_.obsolete_types ? tmpl::EntryType::kFileObsolete : tmpl::EntryType::kFile;
  }
  e.digest = HashBytes(options_.algo, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  // As jigdo-file writes it: the head sum of the first blockLen bytes.
  const size_t head = std::min<size_t>(bytes.size(), options_.block_len);
  e.rsync = RsyncSum64({reinterpret_cast<const uint8_t*>(bytes.data()), head});
  entries_.push_back(e);
  image_.append(bytes);
  if (std::find(slices_.begin(), slices_.end(), bytes) == slices_.end()) slices_.emplace_back(bytes);
  return *this;
}

std::string TemplateBuilder::Header() const {
  std::string h(tmpl::kMagic);
  h += options_.version + " " + options_.creator + (options_.space_before_crlf ? " " : "") + "\r\n";
  h += options_.comment + "\r\n\r\n";
  return h;
}

std::vector<std::string> TemplateBuilder::DataParts() const {
  std::vector<std::string> parts;
  const size_t step = std::max<size_t>(options_.part_size, 1);
  for (size_t off = 0; off < literals_.size(); off += step) {
    std::string_view chunk = std::string_view(literals_).substr(off, step);
    if (options_.codec == Codec::kBzip2) {
      parts.push_back(tmpl::EncodeDataPart(tmpl::kIdBzip, Bzip2Compress(chunk), chunk.size()));
    } else {
      parts.push_back(tmpl::EncodeDataPart(tmpl::kIdData, ZlibCompress(chunk), chunk.size()));
    }
  }
  return parts;
}

std::vector<tmpl::DescEntry> TemplateBuilder::DescEntries() const {
  std::vector<tmpl::DescEntry> entries = entries_;
  if (options_.image_info) {
    tmpl::DescEntry e;
    e.length = image_.size();
    e.digest = HashBytes(options_.algo, {reinterpret_cast<const uint8_t*>(image_.data()), image_.size()});
    e.block_len = options_.block_len;
    if (options_.algo == HashAlgo::kSha256) {
      e.type = tmpl::EntryType::kImageInfoSha256;
    } else {
      e.type = options_.obsolete_types ? tmpl::EntryType::kImageInfoObsolete : tmpl::EntryType::kImageInfo;
    }
    entries.push_back(e);
  }
  return entries;
}

std::string TemplateBuilder::Build() const {
  std::string out = Header();
  for (const std::string& p : DataParts()) out += p;
  auto entries = DescEntries();
  out += tmpl::EncodeDescPart(entries);
  return out;
}

}  // namespace jigdoofus::testing_util
