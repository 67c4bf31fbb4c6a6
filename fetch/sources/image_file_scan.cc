#include "fetch/sources/image_file_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <unordered_set>

#include "core/byte_source.h"
#include "core/md5_lanes.h"
#include "core/rsync_sum.h"
#include "fetch/sources/file_slice.h"

namespace jigdoofus {

namespace {

// Bytes per read of the sequential pass.
constexpr size_t kPassChunk = size_t{4} << 20;

struct Candidate {
  uint64_t offset;
  SliceId id;
};

}  // namespace

void WantedHeads::Add(const SliceId& id, const SliceHead& head) {
  if (!head.known()) return;
  std::vector<SliceId>& ids = by_len_[head.len][head.sum];
  if (std::find(ids.begin(), ids.end(), id) != ids.end()) return;
  ids.push_back(id);
  ++count_;
}

std::vector<SliceHead> WantedHeads::Heads() const {
  std::vector<SliceHead> out;
  for (const auto& [len, sums] : by_len_) {
    for (const auto& [sum, ids] : sums) out.push_back({sum, len});
  }
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<SliceId>* WantedHeads::Find(uint32_t len, uint64_t sum) const {
  auto l = by_len_.find(len);
  if (l == by_len_.end()) return nullptr;
  auto s = l->second.find(sum);
  return s == l->second.end() ? nullptr : &s->second;
}

Status ScanImageFile(int fd, const std::string& path, uint64_t size, const WantedHeads& wanted, uint32_t stride,
                     const FetchContext& ctx, ImageScanCounters* counters,
                     const std::function<bool(const SliceId&)>& skip,
                     const std::function<void(const FoundSlice&)>& on_found) {
  if (wanted.empty() || size == 0) return Status::OK();
  struct Pass {
    uint32_t len;
    const std::unordered_map<uint64_t, std::vector<SliceId>>* sums;
    HeadSums heads;
    // A bit per hash bucket of the wanted sums' low halves: almost every
    // window is rejected here (2^20 bits, 128 KiB, stays in cache).
    std::vector<uint64_t> filter;
  };
  constexpr int kFilterBits = 20;
  auto bucket = [](uint32_t lo) { return (uint64_t{lo} * 0x9e3779b97f4a7c15ull) >> (64 - kFilterBits); };
  std::vector<Pass> passes;
  for (const auto& [len, sums] : wanted.by_len()) {
    if (len == 0 || len > size) continue;
    Pass pass{len, &sums, HeadSums(len, stride), std::vector<uint64_t>(size_t{1} << (kFilterBits - 6))};
    for (const auto& entry : sums) {
      const uint64_t b = bucket(HeadSumLow(entry.first));
      pass.filter[b >> 6] |= uint64_t{1} << (b & 63);
    }
    passes.push_back(std::move(pass));
  }
  if (passes.empty()) return Status::OK();

  std::unordered_set<SliceId, SliceIdHash> reported;
  std::vector<Candidate> candidates;
  // Hashes each candidate's whole range: the MD5 ones together in the
  // lanes of one Md5Streams call, SHA256 ones one by one (OpenSSL, SHA-NI).
  // Candidates are ahead of the pass (their window just completed), so the
  // pass finds their pages in the page cache again.
  auto confirm = [&]() -> Status {
    std::vector<const Candidate*> md5;
    std::vector<std::pair<const Candidate*, Result<Digest>>> hashed;
    for (const Candidate& c : candidates) {
      if (reported.count(c.id) != 0 || (skip && skip(c.id))) continue;
      if (c.id.digest.algo == HashAlgo::kMd5) {
        md5.push_back(&c);
        continue;
      }
      hashed.emplace_back(&c, HashFileRange(fd, path, c.offset, c.id.size, c.id.digest.algo, ctx));
    }
    if (!md5.empty()) {
      std::vector<Md5Stream> streams;
      for (const Candidate* c : md5) streams.push_back(FileRangeStream(fd, path, c->offset, c->id.size));
      std::vector<Result<Digest>> digests = Md5Streams(streams, ctx);
      for (size_t i = 0; i < md5.size(); ++i) hashed.emplace_back(md5[i], std::move(digests[i]));
    }
    std::sort(hashed.begin(), hashed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [c, digest] : hashed) {
      if (!digest.ok()) {
        const Status::Code code = digest.status().code();
        if (code == Status::Code::kCancelled || code == Status::Code::kTimedOut) return digest.status();
        continue;  // the file shrank or failed there: not a slice we can serve
      }
      if (counters != nullptr) counters->bytes_hashed += c->id.size;
      if (*digest != c->id.digest || reported.count(c->id) != 0) continue;
      reported.insert(c->id);
      if (counters != nullptr) ++counters->found;
      on_found({c->offset, c->id});
    }
    candidates.clear();
    return Status::OK();
  };

  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kPassChunk);
  std::vector<uint8_t> window;
  uint64_t pos = 0;
  while (pos < size) {
    if (ctx.cancelled()) return Status::Cancelled(path + ": scan cancelled");
    if (ctx.expired()) return Status::TimedOut(path + ": deadline passed while scanning");
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kPassChunk, size - pos));
    JIGDOOFUS_ASSIGN_OR_RETURN(size_t n, PreadFully(fd, pos, {buf.get(), want}, path));
    if (n == 0) break;  // shrank: scan what there was
    const std::span<const uint8_t> piece(buf.get(), n);
    for (Pass& pass : passes) {
      pass.heads.Feed(piece, [&](uint64_t at, uint32_t lo) {
        const uint64_t b = bucket(lo);
        if ((pass.filter[b >> 6] & (uint64_t{1} << (b & 63))) == 0) return;
        // A possible hit: the whole sum, from the window's bytes.
        window.resize(pass.len);
        auto got = PreadFully(fd, at, window, path);
        if (!got.ok() || *got != window.size()) return;
        auto it = pass.sums->find(RsyncSum64(window));
        if (it == pass.sums->end()) return;
        for (const SliceId& id : it->second) {
          if (at + id.size <= size) candidates.push_back({at, id});
        }
      });
    }
    pos += n;
    if (counters != nullptr) counters->bytes_read += n;
    if (counters != nullptr) counters->candidates += candidates.size();
    JIGDOOFUS_RETURN_IF_ERROR(confirm());
  }
  return Status::OK();
}

}  // namespace jigdoofus
