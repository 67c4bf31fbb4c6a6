#include "core/literal_store.h"

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/part_decoder.h"

namespace jigdoofus {

namespace {

using Block = std::vector<uint8_t>;
using BlockPtr = std::shared_ptr<const Block>;

struct BlockKey {
  uint32_t part = 0;
  uint64_t block = 0;
  friend bool operator==(const BlockKey&, const BlockKey&) = default;
};
struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const noexcept {
    return std::hash<uint64_t>()(k.block * 0x9e3779b97f4a7c15ull ^ k.part);
  }
};

// Restart points of one large zlib part, built once.
struct PartCheckpoints {
  std::mutex build_mu;  // held by the one thread that builds (no other lock is taken under it)
  bool built = false;   // GUARDED_BY(build_mu)
  Status error;         // GUARDED_BY(build_mu): a permanent (corruption) failure
  std::shared_ptr<const std::vector<ZlibCheckpoint>> points;  // GUARDED_BY(build_mu)
};

}  // namespace

struct LiteralStore::Impl {
  std::shared_ptr<const ByteSource> file;
  std::shared_ptr<const TemplateIndex> index;
  LiteralStoreOptions options;
  static constexpr uint64_t kBlockSize = 256 * 1024;
  const uint64_t block_size = kBlockSize;

  // Lock order: mu before nothing; PartCheckpoints::build_mu is never taken
  // while mu is held.
  mutable std::mutex mu;
  // LRU of decoded blocks, most recent first.
  mutable std::list<std::pair<BlockKey, BlockPtr>> lru;  // GUARDED_BY(mu)
  mutable std::unordered_map<BlockKey, std::list<std::pair<BlockKey, BlockPtr>>::iterator, BlockKeyHash>
      blocks;                                           // GUARDED_BY(mu)
  mutable uint64_t cached_bytes = 0;                    // GUARDED_BY(mu)
  // Every whole block that decodes to zeros (padding, zero-filled files)
  // is one block shared by every store of the process (ZeroBlock()),
  // charged kZeroBlockCharge in the LRU: zero areas cost no memory and
  // stay cached.
  static constexpr uint64_t kZeroBlockCharge = 256;
  const BlockPtr& ZeroBlock() const {
    static const BlockPtr zeros = std::make_shared<const Block>(kBlockSize);
    return zeros;
  }
  // Only parts that needed restart points have an entry.
  mutable std::unordered_map<uint32_t, std::shared_ptr<PartCheckpoints>> checkpoints;  // GUARDED_BY(mu)

  // Decoders of large bzip2 parts left where the last miss stopped, so a
  // sequential reader continues instead of decoding from the part start
  // again (which made reading such a part quadratic). Taken out while in
  // use; at most kMaxBzip2Cursors (each holds bzlib's ~3.6 MB state).
  struct Bzip2Cursor {
    uint32_t part = 0;
    uint64_t next_block = 0;  // the decoder is positioned at this block's start
    std::unique_ptr<PartDecoder> dec;
  };
  static constexpr size_t kMaxBzip2Cursors = 2;
  mutable std::list<Bzip2Cursor> bzip2_cursors;  // GUARDED_BY(mu), most recent first

  // A cursor on `part` at or before block `b`, or none.
  std::optional<Bzip2Cursor> TakeBzip2Cursor(uint32_t part, uint64_t b) const {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = bzip2_cursors.begin(); it != bzip2_cursors.end(); ++it) {
      if (it->part == part && it->next_block <= b) {
        Bzip2Cursor c = std::move(*it);
        bzip2_cursors.erase(it);
        return c;
      }
    }
    return std::nullopt;
  }
  void ReturnBzip2Cursor(Bzip2Cursor c) const {
    std::lock_guard<std::mutex> lock(mu);
    bzip2_cursors.push_front(std::move(c));
    while (bzip2_cursors.size() > kMaxBzip2Cursors) bzip2_cursors.pop_back();
  }

  std::string What(uint32_t part) const {
    const DataPart& p = index->parts()[part];
    return file->name() + ": " + (p.codec == Codec::kZlib ? "DATA" : "BZIP") + " part " + std::to_string(part) +
           " (at offset " + std::to_string(p.file_offset - tmpl::kDataPartHeaderSize) + ")";
  }

  BlockPtr Lookup(const BlockKey& key) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = blocks.find(key);
    if (it == blocks.end()) return nullptr;
    lru.splice(lru.begin(), lru, it->second);
    return it->second->second;
  }

  uint64_t Charge(const BlockPtr& block) const {
    return block == ZeroBlock() ? kZeroBlockCharge : block->size();
  }

  // `block`, or the shared zero block if it is a whole block of zeros.
  BlockPtr Shared(BlockPtr block) const {
    const Block& b = *block;
    if (b.size() == block_size && b[0] == 0 && std::memcmp(b.data(), b.data() + 1, b.size() - 1) == 0) {
      return ZeroBlock();
    }
    return block;
  }

  void Insert(const BlockKey& key, BlockPtr block) const {
    std::lock_guard<std::mutex> lock(mu);
    if (blocks.count(key)) return;
    cached_bytes += Charge(block);
    lru.emplace_front(key, std::move(block));
    blocks[key] = lru.begin();
    while (cached_bytes > options.cache_bytes && lru.size() > 1) {
      cached_bytes -= Charge(lru.back().second);
      blocks.erase(lru.back().first);
      lru.pop_back();
    }
  }

  uint64_t BlockLength(const DataPart& p, uint64_t b) const {
    return std::min(block_size, p.uncompressed_size - b * block_size);
  }

  // Decodes blocks first_block.. from `dec` (positioned at the start of
  // first_block) up to and including `want`, inserting each into the cache.
  // Returns block `want`. If `to_end`, decodes the rest of the part too and
  // checks that the stream ends exactly at the part's size.
  // `ctx` (may be null) is checked between blocks: kCancelled / kTimedOut
  // leave `dec` at an unknown position.
  Result<BlockPtr> DecodeBlocks(uint32_t part, PartDecoder& dec, uint64_t first_block, uint64_t want, bool to_end,
                                LiteralReadStats* stats, const FetchContext* ctx = nullptr) const {
    const DataPart& p = index->parts()[part];
    const uint64_t nblocks = (p.uncompressed_size + block_size - 1) / block_size;
    const uint64_t last = to_end ? nblocks - 1 : want;
    BlockPtr result;
    // With to_end, nothing is cached before the whole part is known good.
    std::vector<std::pair<uint64_t, BlockPtr>> pending;
    for (uint64_t b = first_block; b <= last; ++b) {
      if (ctx != nullptr && b != first_block) {
        if (ctx->cancelled()) return Status::Cancelled(What(part) + ": read interrupted while decoding");
        if (ctx->expired()) return Status::TimedOut(What(part) + ": deadline passed while decoding");
      }
      auto block = std::make_shared<Block>(BlockLength(p, b));
      JIGDOOFUS_ASSIGN_OR_RETURN(size_t n, dec.Read(*block));
      if (stats) stats->bytes_decoded += n;
      if (n != block->size()) {
        return Status::Corruption(What(part) + ": decodes to " + std::to_string(b * block_size + n) +
                                  " bytes, its header says " + std::to_string(p.uncompressed_size));
      }
      BlockPtr shared = Shared(std::move(block));
      if (b == want) result = shared;
      if (to_end) {
        pending.emplace_back(b, std::move(shared));
      } else {
        Insert(BlockKey{part, b}, std::move(shared));
      }
    }
    if (to_end) {
      JIGDOOFUS_RETURN_IF_ERROR(dec.Finish());
      for (auto& [b, block] : pending) Insert(BlockKey{part, b}, std::move(block));
    }
    return result;
  }

  Result<std::shared_ptr<const std::vector<ZlibCheckpoint>>> Checkpoints(uint32_t part, LiteralReadStats* stats,
                                                                         const FetchContext* ctx) const {
    std::shared_ptr<PartCheckpoints> state;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto& slot = checkpoints[part];
      if (!slot) slot = std::make_shared<PartCheckpoints>();
      state = slot;
    }
    std::lock_guard<std::mutex> build_lock(state->build_mu);
    if (!state->error.ok()) return state->error;
    if (!state->built) {
      uint64_t inflated = 0;
      auto cps =
          BuildZlibCheckpoints(*file, index->parts()[part], options.checkpoint_interval, What(part), &inflated, ctx);
      if (stats) stats->bytes_decoded += inflated;
      if (!cps.ok()) {
        if (cps.status().IsCorruption()) state->error = cps.status();
        return cps.status();
      }
      state->points = std::make_shared<const std::vector<ZlibCheckpoint>>(std::move(cps).value());
      state->built = true;
    }
    return state->points;
  }

  Result<BlockPtr> GetBlock(uint32_t part, uint64_t b, LiteralReadStats* stats, const FetchContext* ctx) const {
    const BlockKey key{part, b};
    if (BlockPtr hit = Lookup(key)) {
      if (stats) ++stats->cache_hits;
      return hit;
    }
    if (stats) ++stats->cache_misses;
    const DataPart& p = index->parts()[part];
    const std::string what = What(part);
    const uint64_t interval = std::max<uint64_t>(options.checkpoint_interval, 1);
    if (p.uncompressed_size <= 2 * interval) {
      // Small part: decode it whole (this also validates its size).
      JIGDOOFUS_ASSIGN_OR_RETURN(auto dec, OpenPartDecoder(*file, p, what));
      return DecodeBlocks(part, *dec, 0, b, /*to_end=*/true, stats);
    }
    if (p.codec == Codec::kBzip2) {
      // Large bzip2 part (producers cut them at one bzip2 block, so this is
      // rare): decode up to the block from where a previous miss stopped,
      // else from the part start.
      const uint64_t nblocks = (p.uncompressed_size + block_size - 1) / block_size;
      std::optional<Bzip2Cursor> cursor = TakeBzip2Cursor(part, b);
      if (!cursor) {
        JIGDOOFUS_ASSIGN_OR_RETURN(auto dec, OpenPartDecoder(*file, p, what));
        cursor = Bzip2Cursor{part, 0, std::move(dec)};
      }
      const bool last = b + 1 == nblocks;
      auto block = DecodeBlocks(part, *cursor->dec, cursor->next_block, b, /*to_end=*/last, stats, ctx);
      if (block.ok() && !last) {
        cursor->next_block = b + 1;
        ReturnBzip2Cursor(std::move(*cursor));
      }
      return block;
    }
    JIGDOOFUS_ASSIGN_OR_RETURN(auto cps, Checkpoints(part, stats, ctx));
    // Building may have been done by another thread: re-check the cache? Not
    // needed; the building pass does not fill the cache.
    const uint64_t start = b * block_size;
    auto it = std::upper_bound(cps->begin(), cps->end(), start,
                               [](uint64_t off, const ZlibCheckpoint& cp) { return off < cp.out; });
    std::unique_ptr<PartDecoder> dec;
    uint64_t pos = 0;
    if (it == cps->begin()) {
      // From the part start, raw like the restart points: past the 2-byte
      // zlib header (no preset dictionary: the checkpoint pass inflated the
      // part with its header and verified its Adler-32 already), so the
      // checksum is not computed again on every miss.
      ZlibCheckpoint part_start;
      part_start.in = kZlibHeaderSize;
      JIGDOOFUS_ASSIGN_OR_RETURN(dec, OpenZlibDecoderAt(*file, p, part_start, what));
    } else {
      const ZlibCheckpoint& cp = *(it - 1);
      JIGDOOFUS_ASSIGN_OR_RETURN(dec, OpenZlibDecoderAt(*file, p, cp, what));
      pos = cp.out;
    }
    // Skip to the start of the block, caching whole blocks passed over.
    std::vector<uint8_t> scratch;
    const uint64_t first_whole = (pos + block_size - 1) / block_size;
    const uint64_t skip_to = std::min(first_whole * block_size, start);
    if (pos < skip_to) scratch.resize(static_cast<size_t>(std::min<uint64_t>(skip_to - pos, 64 * 1024)));
    while (pos < skip_to) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(skip_to - pos, scratch.size()));
      JIGDOOFUS_ASSIGN_OR_RETURN(size_t got, dec->Read(std::span<uint8_t>(scratch.data(), n)));
      if (stats) stats->bytes_decoded += got;
      if (got != n) {
        return Status::Corruption(what + ": decodes to " + std::to_string(pos + got) + " bytes, its header says " +
                                  std::to_string(p.uncompressed_size));
      }
      pos += n;
    }
    // The block is never the last of the part here without checking the end:
    // the checkpoint pass verified the whole part already.
    return DecodeBlocks(part, *dec, pos / block_size, b, /*to_end=*/false, stats);
  }
};

LiteralStore::LiteralStore(std::shared_ptr<const ByteSource> file, std::shared_ptr<const TemplateIndex> index,
                           LiteralStoreOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->file = std::move(file);
  impl_->index = std::move(index);
  impl_->options = options;
}

LiteralStore::~LiteralStore() = default;

Status LiteralStore::ReadAt(uint64_t offset, std::span<uint8_t> out) const { return ReadAt(offset, out, nullptr); }

Status LiteralStore::ReadAt(uint64_t offset, std::span<uint8_t> out, LiteralReadStats* stats,
                            const FetchContext* ctx) const {
  const Impl& im = *impl_;
  const auto& parts = im.index->parts();
  const uint64_t total = im.index->literal_size();
  if (offset > total || out.size() > total - offset) {
    return Status::InvalidArgument(im.file->name() + ": literal range [" + std::to_string(offset) + ", +" +
                                   std::to_string(out.size()) + ") is beyond the literal data (" +
                                   std::to_string(total) + " bytes)");
  }
  if (out.empty()) return Status::OK();
  auto it = std::upper_bound(parts.begin(), parts.end(), offset,
                             [](uint64_t off, const DataPart& p) { return off < p.literal_offset; });
  size_t part = static_cast<size_t>(it - parts.begin()) - 1;
  size_t done = 0;
  while (done < out.size()) {
    while (offset >= parts[part].literal_offset + parts[part].uncompressed_size) ++part;  // skips empty parts
    const DataPart& p = parts[part];
    const uint64_t within = offset - p.literal_offset;
    const uint64_t b = within / im.block_size;
    JIGDOOFUS_ASSIGN_OR_RETURN(BlockPtr block, im.GetBlock(static_cast<uint32_t>(part), b, stats, ctx));
    const uint64_t in_block = within - b * im.block_size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block->size() - in_block, out.size() - done));
    std::memcpy(out.data() + done, block->data() + in_block, n);
    done += n;
    offset += n;
  }
  return Status::OK();
}

LiteralStoreStats LiteralStore::Stats() const {
  LiteralStoreStats s;
  std::vector<std::shared_ptr<PartCheckpoints>> states;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    s.cached_blocks = impl_->lru.size();
    s.cached_bytes = impl_->cached_bytes;
    for (const auto& [part, st] : impl_->checkpoints) states.push_back(st);
  }
  for (const auto& st : states) {
    std::lock_guard<std::mutex> lock(st->build_mu);
    if (!st->points) continue;
    s.checkpoints += st->points->size();
    for (const auto& cp : *st->points) s.checkpoint_bytes += cp.window_z.size() + sizeof cp;
  }
  return s;
}

}  // namespace jigdoofus
