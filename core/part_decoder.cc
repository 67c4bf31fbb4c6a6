#include "core/part_decoder.h"

#include <bzlib.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace jigdoofus {

namespace {

constexpr size_t kInputChunk = 64 * 1024;

// Feeds the compressed bytes [begin, end) of the template in chunks.
class InputFeeder {
 public:
  InputFeeder(const ByteSource& file, uint64_t begin, uint64_t end) : file_(file), next_(begin), end_(end) {}
  uint64_t remaining() const { return end_ - next_; }
  // Reads the next chunk; returns it (empty at end).
  Result<std::span<uint8_t>> Next() {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining(), kInputChunk));
    if (buf_.size() < n) buf_.resize(kInputChunk);
    JIGDOOFUS_RETURN_IF_ERROR(file_.ReadExactly(next_, std::span<uint8_t>(buf_.data(), n)));
    next_ += n;
    return std::span<uint8_t>(buf_.data(), n);
  }

 private:
  const ByteSource& file_;
  uint64_t next_;
  uint64_t end_;
  std::vector<uint8_t> buf_;
};

// RAII owner of an inflate z_stream.
class ZStream {
 public:
  ZStream() { std::memset(&s_, 0, sizeof s_); }
  ~ZStream() {
    if (live_) inflateEnd(&s_);
  }
  ZStream(const ZStream&) = delete;
  ZStream& operator=(const ZStream&) = delete;
  bool Init(int window_bits) {
    live_ = inflateInit2(&s_, window_bits) == Z_OK;
    return live_;
  }
  z_stream* get() { return &s_; }

 private:
  z_stream s_;
  bool live_ = false;
};

// RAII owner of a bzip2 decompression stream.
class BzStream {
 public:
  BzStream() { std::memset(&s_, 0, sizeof s_); }
  ~BzStream() {
    if (live_) BZ2_bzDecompressEnd(&s_);
  }
  BzStream(const BzStream&) = delete;
  BzStream& operator=(const BzStream&) = delete;
  bool Init() {
    live_ = BZ2_bzDecompressInit(&s_, 0, 0) == BZ_OK;
    return live_;
  }
  bz_stream* get() { return &s_; }

 private:
  bz_stream s_;
  bool live_ = false;
};

unsigned Clamp32(size_t n) { return static_cast<unsigned>(std::min<size_t>(n, UINT_MAX)); }

class ZlibDecoder final : public PartDecoder {
 public:
  ZlibDecoder(const ByteSource& file, const DataPart& part, uint64_t in_offset, std::string what)
      : in_(file, part.file_offset + in_offset, part.file_offset + part.compressed_size), what_(std::move(what)) {}

  // window_bits 15: zlib stream from its start; -15: raw deflate (restart).
  Status Init(int window_bits) {
    if (!z_.Init(window_bits)) return Status::IOError(what_ + ": inflateInit failed (out of memory?)");
    return Status::OK();
  }
  z_stream* stream() { return z_.get(); }

  // Makes sure input is available; false if the compressed data is exhausted.
  Result<bool> EnsureInput() {
    z_stream* s = z_.get();
    if (s->avail_in > 0) return true;
    if (in_.remaining() == 0) return false;
    JIGDOOFUS_ASSIGN_OR_RETURN(auto chunk, in_.Next());
    s->next_in = chunk.data();
    s->avail_in = Clamp32(chunk.size());
    return true;
  }

  // One inflate() call with `flush`; maps errors to kCorruption.
  Status Step(int flush) {
    JIGDOOFUS_ASSIGN_OR_RETURN(bool have_input, EnsureInput());
    z_stream* s = z_.get();
    int ret = inflate(s, flush);
    if (ret == Z_STREAM_END) {
      ended_ = true;
      return Status::OK();
    }
    if (ret == Z_OK) return Status::OK();
    if (ret == Z_BUF_ERROR) {
      if (!have_input) return Status::Corruption(what_ + ": compressed data ends before the zlib stream does");
      return Status::OK();
    }
    if (ret == Z_NEED_DICT) return Status::Corruption(what_ + ": zlib stream asks for a preset dictionary");
    if (ret == Z_MEM_ERROR) return Status::IOError(what_ + ": out of memory while inflating");
    return Status::Corruption(what_ + ": corrupt zlib data (" + (s->msg ? s->msg : "error " + std::to_string(ret)) +
                              ")");
  }

  bool ended() const { return ended_; }

  Result<size_t> Read(std::span<uint8_t> out) override {
    z_stream* s = z_.get();
    size_t done = 0;
    while (done < out.size() && !ended_) {
      s->next_out = out.data() + done;
      s->avail_out = Clamp32(out.size() - done);
      const unsigned before = s->avail_out;
      Status st = Step(Z_NO_FLUSH);
      done += before - s->avail_out;
      if (!st.ok()) return st;
    }
    return done;
  }

  Status Finish() override {
    uint8_t extra;
    JIGDOOFUS_ASSIGN_OR_RETURN(size_t n, Read(std::span<uint8_t>(&extra, 1)));
    if (n != 0) return Status::Corruption(what_ + ": decodes to more bytes than its header says");
    const uint64_t trailing = z_.get()->avail_in + in_.remaining();
    if (trailing != 0) {
      return Status::Corruption(what_ + ": " + std::to_string(trailing) + " bytes after the end of the zlib stream");
    }
    return Status::OK();
  }

 private:
  ZStream z_;
  InputFeeder in_;
  std::string what_;
  bool ended_ = false;
};

class Bzip2Decoder final : public PartDecoder {
 public:
  Bzip2Decoder(const ByteSource& file, const DataPart& part, std::string what)
      : in_(file, part.file_offset, part.file_offset + part.compressed_size), what_(std::move(what)) {}

  Status Init() {
    if (!bz_.Init()) return Status::IOError(what_ + ": BZ2_bzDecompressInit failed (out of memory?)");
    return Status::OK();
  }

  Result<size_t> Read(std::span<uint8_t> out) override {
    bz_stream* s = bz_.get();
    size_t done = 0;
    while (done < out.size() && !ended_) {
      const bool had_input = s->avail_in > 0 || in_.remaining() > 0;
      if (s->avail_in == 0 && in_.remaining() > 0) {
        JIGDOOFUS_ASSIGN_OR_RETURN(auto chunk, in_.Next());
        s->next_in = reinterpret_cast<char*>(chunk.data());
        s->avail_in = Clamp32(chunk.size());
      }
      s->next_out = reinterpret_cast<char*>(out.data() + done);
      s->avail_out = Clamp32(out.size() - done);
      const unsigned before = s->avail_out;
      const unsigned in_before = s->avail_in;
      int ret = BZ2_bzDecompress(s);
      done += before - s->avail_out;
      if (ret == BZ_STREAM_END) {
        ended_ = true;
      } else if (ret == BZ_MEM_ERROR) {
        return Status::IOError(what_ + ": out of memory while decoding bzip2 data");
      } else if (ret != BZ_OK) {
        return Status::Corruption(what_ + ": corrupt bzip2 data (error " + std::to_string(ret) + ")");
      } else if (!had_input && before == s->avail_out && in_before == s->avail_in) {
        return Status::Corruption(what_ + ": compressed data ends before the bzip2 stream does");
      }
    }
    return done;
  }

  Status Finish() override {
    uint8_t extra;
    JIGDOOFUS_ASSIGN_OR_RETURN(size_t n, Read(std::span<uint8_t>(&extra, 1)));
    if (n != 0) return Status::Corruption(what_ + ": decodes to more bytes than its header says");
    const uint64_t trailing = bz_.get()->avail_in + in_.remaining();
    if (trailing != 0) {
      return Status::Corruption(what_ + ": " + std::to_string(trailing) + " bytes after the end of the bzip2 stream");
    }
    return Status::OK();
  }

 private:
  BzStream bz_;
  InputFeeder in_;
  std::string what_;
  bool ended_ = false;
};

}  // namespace

Result<std::unique_ptr<PartDecoder>> OpenPartDecoder(const ByteSource& file, const DataPart& part,
                                                     std::string what) {
  if (part.codec == Codec::kBzip2) {
    auto d = std::make_unique<Bzip2Decoder>(file, part, std::move(what));
    JIGDOOFUS_RETURN_IF_ERROR(d->Init());
    return std::unique_ptr<PartDecoder>(std::move(d));
  }
  auto d = std::make_unique<ZlibDecoder>(file, part, 0, std::move(what));
  JIGDOOFUS_RETURN_IF_ERROR(d->Init(15));
  return std::unique_ptr<PartDecoder>(std::move(d));
}

Result<std::unique_ptr<PartDecoder>> OpenZlibDecoderAt(const ByteSource& file, const DataPart& part,
                                                       const ZlibCheckpoint& cp, std::string what) {
  if (cp.in > part.compressed_size || (cp.bits > 0 && cp.in == 0) || cp.bits > 7) {
    return Status::Corruption(what + ": internal: bad restart point");
  }
  auto d = std::make_unique<ZlibDecoder>(file, part, cp.in, what);
  JIGDOOFUS_RETURN_IF_ERROR(d->Init(-15));
  z_stream* s = d->stream();
  if (cp.bits > 0) {
    uint8_t byte;
    JIGDOOFUS_RETURN_IF_ERROR(file.ReadExactly(part.file_offset + cp.in - 1, std::span<uint8_t>(&byte, 1)));
    if (inflatePrime(s, cp.bits, byte >> (8 - cp.bits)) != Z_OK) {
      return Status::Corruption(what + ": inflatePrime failed");
    }
  }
  if (cp.window_size > 0) {
    std::vector<uint8_t> window(cp.window_size);
    uLongf n = cp.window_size;
    if (uncompress(window.data(), &n, cp.window_z.data(), cp.window_z.size()) != Z_OK || n != cp.window_size ||
        inflateSetDictionary(s, window.data(), cp.window_size) != Z_OK) {
      return Status::Corruption(what + ": internal: cannot restore the window of a restart point");
    }
  }
  return std::unique_ptr<PartDecoder>(std::move(d));
}

Result<std::vector<ZlibCheckpoint>> BuildZlibCheckpoints(const ByteSource& file, const DataPart& part,
                                                         uint64_t interval, std::string what, uint64_t* inflated,
                                                         const FetchContext* ctx) {
  constexpr uint64_t kCheckEvery = uint64_t{1} << 20;  // output bytes between looks at the deadline
  uint64_t next_check = kCheckEvery;
  ZlibDecoder d(file, part, 0, what);
  JIGDOOFUS_RETURN_IF_ERROR(d.Init(15));
  z_stream* s = d.stream();
  std::vector<ZlibCheckpoint> cps;
  std::vector<uint8_t> window(kDeflateWindowSize);  // circular: output lands at window[wpos]
  size_t wpos = 0;
  bool wrapped = false;
  uint64_t total_out = 0;
  uint64_t last_cp = 0;
  uint64_t total_in = 0;  // bytes consumed, counted ourselves (z_stream's is uLong)
  while (!d.ended()) {
    s->next_out = window.data() + wpos;
    s->avail_out = static_cast<unsigned>(kDeflateWindowSize - wpos);
    const unsigned out_before = s->avail_out;
    const unsigned in_before_avail = s->avail_in;
    JIGDOOFUS_ASSIGN_OR_RETURN(bool have, d.EnsureInput());
    (void)have;
    const unsigned in_before = s->avail_in;
    (void)in_before_avail;
    JIGDOOFUS_RETURN_IF_ERROR(d.Step(Z_BLOCK));
    total_in += in_before - s->avail_in;
    const unsigned produced = out_before - s->avail_out;
    total_out += produced;
    if (inflated) *inflated += produced;
    if (total_out > part.uncompressed_size) {
      return Status::Corruption(what + ": decodes to more than the " + std::to_string(part.uncompressed_size) +
                                " bytes its header says");
    }
    if (ctx != nullptr && total_out >= next_check) {
      next_check = total_out + kCheckEvery;
      if (ctx->cancelled()) return Status::Cancelled(what + ": read interrupted while indexing the part");
      if (ctx->expired()) {
        return Status::TimedOut(what + ": deadline passed after " + std::to_string(total_out) + " of " +
                                std::to_string(part.uncompressed_size) + " bytes indexed");
      }
    }
    wpos += produced;
    if (wpos == kDeflateWindowSize) {
      wpos = 0;
      wrapped = true;
    }
    const bool at_block_end = (s->data_type & 128) && !(s->data_type & 64);
    if (!d.ended() && at_block_end && total_out - last_cp >= interval && total_out > 0) {
      ZlibCheckpoint cp;
      cp.out = total_out;
      cp.in = total_in;
      cp.bits = static_cast<uint8_t>(s->data_type & 7);
      std::vector<uint8_t> linear;
      linear.reserve(kDeflateWindowSize);
      if (wrapped) linear.insert(linear.end(), window.begin() + wpos, window.end());
      linear.insert(linear.end(), window.begin(), window.begin() + wpos);
      cp.window_size = static_cast<uint32_t>(linear.size());
      uLongf zlen = compressBound(linear.size());
      cp.window_z.resize(zlen);
      if (compress2(cp.window_z.data(), &zlen, linear.data(), linear.size(), 1) != Z_OK) {
        return Status::IOError(what + ": compress2 failed while saving a restart point");
      }
      cp.window_z.resize(zlen);
      cp.window_z.shrink_to_fit();
      cps.push_back(std::move(cp));
      last_cp = total_out;
    }
  }
  if (total_out != part.uncompressed_size) {
    return Status::Corruption(what + ": decodes to " + std::to_string(total_out) + " bytes, its header says " +
                              std::to_string(part.uncompressed_size));
  }
  JIGDOOFUS_RETURN_IF_ERROR(d.Finish());
  return cps;
}

}  // namespace jigdoofus
