#include "core/md5_lanes.h"

// MD5_Update on whole blocks, for one lane (see Md5CompressOne).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/md5.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/md5_lanes_scalar.h"
#include "core/md5_rounds.h"

namespace jigdoofus {

using md5_internal::ScalarOps;

namespace {

uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

bool CpuHas(Md5Kernel k) {
  switch (k) {
    case Md5Kernel::kScalar: return true;
    case Md5Kernel::kAvx2: return __builtin_cpu_supports("avx2");
    case Md5Kernel::kAvx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
}

Md5Kernel DetectBest() {
  Md5Kernel best = CpuHas(Md5Kernel::kAvx512) ? Md5Kernel::kAvx512
                   : CpuHas(Md5Kernel::kAvx2) ? Md5Kernel::kAvx2
                                              : Md5Kernel::kScalar;
  if (const char* env = std::getenv("JIGDOOFUS_MD5_KERNEL")) {
    const std::string_view want(env);
    Md5Kernel asked = want == "scalar" ? Md5Kernel::kScalar : want == "avx2" ? Md5Kernel::kAvx2 : best;
    if (static_cast<int>(asked) < static_cast<int>(best)) best = asked;
  }
  return best;
}

}  // namespace

Md5Kernel BestMd5Kernel() {
  static const Md5Kernel best = DetectBest();
  return best;
}

bool Md5KernelSupported(Md5Kernel k) { return CpuHas(k); }

size_t Md5KernelLanes(Md5Kernel k) {
  switch (k) {
    case Md5Kernel::kScalar: return 1;
    case Md5Kernel::kAvx2: return 8;
    case Md5Kernel::kAvx512: return 16;
  }
  return 1;
}

const char* Md5KernelName(Md5Kernel k) {
  switch (k) {
    case Md5Kernel::kScalar: return "scalar";
    case Md5Kernel::kAvx2: return "avx2";
    case Md5Kernel::kAvx512: return "avx512";
  }
  return "?";
}

void Md5LaneStates::Reset(size_t lane) {
  for (int i = 0; i < 4; ++i) words[i][lane] = md5_internal::kInit[i];
}

void Md5CompressOne(Md5LaneStates* states, size_t lane, const uint8_t* blocks, size_t nblocks) {
#ifndef OPENSSL_NO_DEPRECATED_3_0
  // One stream: OpenSSL's block function (hand-written assembly, about 15%
  // faster here than the rounds of md5_rounds.h compiled for one lane).
  // Its low-level context is public; only whole blocks are fed, so it never
  // buffers and A..D are the whole state.
  MD5_CTX ctx{};
  ctx.A = states->words[0][lane];
  ctx.B = states->words[1][lane];
  ctx.C = states->words[2][lane];
  ctx.D = states->words[3][lane];
  MD5_Update(&ctx, blocks, nblocks * 64);
  states->words[0][lane] = ctx.A;
  states->words[1][lane] = ctx.B;
  states->words[2][lane] = ctx.C;
  states->words[3][lane] = ctx.D;
#else
  uint32_t state[4];
  for (int i = 0; i < 4; ++i) state[i] = states->words[i][lane];
  md5_internal::CompressPortable(state, blocks, nblocks);
  for (int i = 0; i < 4; ++i) states->words[i][lane] = state[i];
#endif
}

void md5_internal::CompressPortable(uint32_t state[4], const uint8_t* blocks, size_t nblocks) {
  for (size_t b = 0; b < nblocks; ++b, blocks += 64) {
    uint32_t w[16];
    for (int j = 0; j < 16; ++j) w[j] = Load32(blocks + 4 * j);
    md5_internal::Compress<ScalarOps>(state, w);
  }
}

void Md5CompressLanes(Md5Kernel k, Md5LaneStates* states, const uint8_t* const* blocks, size_t nblocks) {
  switch (k) {
    case Md5Kernel::kAvx512: md5_internal::CompressAvx512(states->words, blocks, nblocks); return;
    case Md5Kernel::kAvx2: md5_internal::CompressAvx2(states->words, blocks, nblocks); return;
    case Md5Kernel::kScalar: Md5CompressOne(states, 0, blocks[0], nblocks); return;
  }
}

Digest Md5FinishLane(Md5LaneStates* states, size_t lane, std::span<const uint8_t> tail, uint64_t size) {
  uint8_t last[128] = {};
  std::memcpy(last, tail.data(), tail.size());
  last[tail.size()] = 0x80;
  const size_t blocks = tail.size() < 56 ? 1 : 2;
  const uint64_t bits = size * 8;
  for (int i = 0; i < 8; ++i) last[blocks * 64 - 8 + i] = static_cast<uint8_t>(bits >> (8 * i));
  Md5CompressOne(states, lane, last, blocks);
  uint8_t out[16];
  for (int i = 0; i < 4; ++i) {
    const uint32_t w = states->words[i][lane];
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(w >> (8 * j));
  }
  return Digest::FromBytes(HashAlgo::kMd5, out);
}

Md5LaneEngine::Md5LaneEngine(Md5Kernel kernel)
    : kernel_(kernel),
      width_(Md5KernelLanes(kernel)),
      buffers_(std::make_unique_for_overwrite<uint8_t[]>(kLaneBuffer * (width_ + 1))),
      lanes_(width_) {
  idle_ = buffers_.get() + kLaneBuffer * width_;
  std::memset(idle_, 0, kLaneBuffer);
  for (size_t i = 0; i < width_; ++i) lanes_[i].buf = buffers_.get() + kLaneBuffer * i;
}

bool Md5LaneEngine::Admit(const Md5Stream* stream, uint64_t id) {
  for (size_t i = 0; i < width_; ++i) {
    Lane& l = lanes_[i];
    if (l.stream != nullptr) continue;
    l = Lane{stream, id, 0, 0, 0, l.buf};
    states_.Reset(i);
    ++active_;
    return true;
  }
  return false;
}

void Md5LaneEngine::Drop(uint64_t id) {
  for (Lane& l : lanes_) {
    if (l.stream != nullptr && l.id == id) {
      l.stream = nullptr;
      --active_;
    }
  }
}

void Md5LaneEngine::Step(const std::function<void(uint64_t, Result<Digest>)>& done) {
  size_t min_blocks = SIZE_MAX;
  for (size_t i = 0; i < width_; ++i) {
    Lane& l = lanes_[i];
    while (l.stream != nullptr) {
      const Md5Stream& s = *l.stream;
      if (l.len - l.pos < 64 && l.read < s.size) {
        // Refill: keep the partial block, read up to a full buffer.
        std::memmove(l.buf, l.buf + l.pos, l.len - l.pos);
        l.len -= l.pos;
        l.pos = 0;
        const size_t want = static_cast<size_t>(std::min<uint64_t>(kLaneBuffer - l.len, s.size - l.read));
        Result<size_t> n = s.read(l.read, {l.buf + l.len, want});
        if (!n.ok() || *n == 0 || *n > want) {
          Status st = !n.ok() ? n.status()
                              : Status::IOError("md5: the data ended at " + std::to_string(l.read) + " bytes of " +
                                                std::to_string(s.size));
          l.stream = nullptr;
          --active_;
          done(l.id, std::move(st));
          break;
        }
        l.len += *n;
        l.read += *n;
        continue;  // may need more for a whole block
      }
      if (l.len - l.pos < 64) {
        // Everything read and less than a block left: finish this lane.
        Digest d = Md5FinishLane(&states_, i, {l.buf + l.pos, l.len - l.pos}, s.size);
        l.stream = nullptr;
        --active_;
        done(l.id, d);
        break;
      }
      min_blocks = std::min(min_blocks, (l.len - l.pos) / 64);
      break;
    }
  }
  if (active_ == 0) return;
  // A step costs the same whatever number of its lanes are busy: run the
  // narrowest kernel that holds them (measured here: one 16-lane AVX-512
  // step costs about 1.15 8-lane AVX2 steps or 2.3 scalar blocks).
  Md5Kernel k = kernel_;
  if (k == Md5Kernel::kAvx512 && active_ <= 8) k = Md5Kernel::kAvx2;
  if (active_ <= 2) k = Md5Kernel::kScalar;
  if (k == Md5Kernel::kScalar) {
    for (size_t i = 0; i < width_; ++i) {
      Lane& l = lanes_[i];
      if (l.stream == nullptr) continue;
      const size_t n = (l.len - l.pos) / 64;
      Md5CompressOne(&states_, i, l.buf + l.pos, n);
      l.pos += n * 64;
    }
    return;
  }
  const size_t width = Md5KernelLanes(k);
  if (width < width_) Compact(width);
  const uint8_t* ptrs[kMd5MaxLanes];
  for (size_t i = 0; i < width; ++i) ptrs[i] = lanes_[i].stream != nullptr ? lanes_[i].buf + lanes_[i].pos : idle_;
  Md5CompressLanes(k, &states_, ptrs, min_blocks);
  for (size_t i = 0; i < width; ++i) {
    if (lanes_[i].stream != nullptr) lanes_[i].pos += min_blocks * 64;
  }
}

void Md5LaneEngine::Compact(size_t width) {
  size_t free = 0;
  for (size_t i = width; i < width_; ++i) {
    if (lanes_[i].stream == nullptr) continue;
    while (lanes_[free].stream != nullptr) ++free;  // REQUIRES active_ <= width: always found below width
    std::swap(lanes_[free], lanes_[i]);             // buffers travel with their lanes
    for (int w = 0; w < 4; ++w) states_.words[w][free] = states_.words[w][i];
  }
}

std::vector<Result<Digest>> Md5Streams(std::span<const Md5Stream> streams, const FetchContext& ctx,
                                       Md5Kernel kernel) {
  std::vector<Result<Digest>> out(streams.size(), Status::Internal("md5: not hashed"));
  Md5LaneEngine engine(kernel);
  size_t next = 0;
  auto done = [&](uint64_t id, Result<Digest> r) { out[id] = std::move(r); };
  for (;;) {
    while (next < streams.size() && engine.Admit(&streams[next], next)) ++next;
    if (engine.active() == 0) break;
    if (ctx.cancelled() || ctx.expired()) {
      const Status st = ctx.cancelled() ? Status::Cancelled("md5: hashing cancelled")
                                        : Status::TimedOut("md5: deadline passed while hashing");
      for (size_t i = 0; i < next; ++i) {
        if (!out[i].ok() && out[i].status().code() == Status::Code::kInternal) out[i] = st, engine.Drop(i);
      }
      for (; next < streams.size(); ++next) out[next] = st;
      break;
    }
    engine.Step(done);
  }
  return out;
}

}  // namespace jigdoofus
