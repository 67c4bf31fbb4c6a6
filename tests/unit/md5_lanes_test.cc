// Multi-buffer MD5 against OpenSSL, byte for byte: every kernel this CPU
// has, every length 0..300 and many larger ones, every alignment of the
// message in memory, streams of mixed lengths refilling lanes, and reads
// that fail or come up short.
#include "core/md5_lanes.h"
#include "core/md5_batcher.h"
#include "core/md5_lanes_scalar.h"

#include <gtest/gtest.h>

#include "tests/unit/random_bytes.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <random>
#include <string>
#include <vector>

namespace jigdoofus {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) { return testing_util::RandomByteVector(n, seed); }

std::vector<Md5Kernel> Kernels() {
  std::vector<Md5Kernel> out;
  for (Md5Kernel k : {Md5Kernel::kScalar, Md5Kernel::kAvx2, Md5Kernel::kAvx512}) {
    if (Md5KernelSupported(k)) out.push_back(k);
  }
  return out;
}

Md5Stream FromMemory(std::span<const uint8_t> m) {
  return {m.size(), [m](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
            std::memcpy(out.data(), m.data() + off, out.size());
            return out.size();
          }};
}

TEST(Md5Lanes, KnownAnswers) {
  // RFC 1321, appendix A.5.
  const char* in[] = {"", "a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz"};
  const char* want[] = {"d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
                        "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
                        "c3fcd3d76192e4007dfb496cca67e13b"};
  for (Md5Kernel k : Kernels()) {
    std::vector<Md5Stream> streams;
    for (const char* s : in) streams.push_back(FromMemory({reinterpret_cast<const uint8_t*>(s), std::strlen(s)}));
    auto got = Md5Streams(streams, FetchContext{}, k);
    for (size_t i = 0; i < streams.size(); ++i) {
      ASSERT_TRUE(got[i].ok());
      EXPECT_EQ(got[i]->ToHex(), want[i]) << Md5KernelName(k) << " '" << in[i] << "'";
    }
  }
}

TEST(Md5Lanes, EveryLengthAndAlignmentMatchesOpenSsl) {
  const std::vector<uint8_t> data = RandomBytes(300 + 64 + 70000, 1);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (size_t n : {511u, 512u, 513u, 4095u, 4096u, 65535u, 65536u, 65537u, 70000u}) lengths.push_back(n);
  for (Md5Kernel k : Kernels()) {
    // Many streams at once, each at its own alignment: lanes are refilled
    // as streams of different lengths end.
    std::vector<Md5Stream> streams;
    std::vector<std::pair<size_t, size_t>> where;  // (offset, length)
    for (size_t i = 0; i < lengths.size(); ++i) {
      const size_t align = i % 64;
      where.emplace_back(align, lengths[i]);
      streams.push_back(FromMemory(std::span(data).subspan(align, lengths[i])));
    }
    auto got = Md5Streams(streams, FetchContext{}, k);
    for (size_t i = 0; i < streams.size(); ++i) {
      const Digest want = HashBytes(HashAlgo::kMd5, std::span(data).subspan(where[i].first, where[i].second));
      ASSERT_TRUE(got[i].ok());
      ASSERT_EQ(*got[i], want) << Md5KernelName(k) << " length " << where[i].second << " align "
                               << where[i].first;
    }
  }
}

TEST(Md5Lanes, ReadsInOddPiecesAndFailuresStayInTheirLane) {
  const std::vector<uint8_t> data = RandomBytes(200000, 2);
  for (Md5Kernel k : Kernels()) {
    std::vector<Md5Stream> streams;
    for (size_t i = 0; i < 40; ++i) {
      const size_t len = 1000 + 4999 * i;
      // Gives at most 777 bytes per read: refills mid-block.
      streams.push_back({len, [&data](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
                           const size_t n = std::min<size_t>(out.size(), 777);
                           std::memcpy(out.data(), data.data() + off, n);
                           return n;
                         }});
    }
    streams[3].read = [](uint64_t, std::span<uint8_t>) -> Result<size_t> { return Status::IOError("disk gone"); };
    streams[7].read = [&data](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
      if (off >= 3000) return size_t{0};  // ends early
      const size_t n = std::min<size_t>(out.size(), 3000 - off);
      std::memcpy(out.data(), data.data() + off, n);
      return n;
    };
    auto got = Md5Streams(streams, FetchContext{}, k);
    for (size_t i = 0; i < streams.size(); ++i) {
      if (i == 3) {
        EXPECT_EQ(got[i].status().code(), Status::Code::kIOError);
        continue;
      }
      if (i == 7) {
        EXPECT_EQ(got[i].status().code(), Status::Code::kIOError) << Md5KernelName(k);
        continue;
      }
      ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
      EXPECT_EQ(*got[i], HashBytes(HashAlgo::kMd5, std::span(data).first(streams[i].size))) << i;
    }
  }
}

TEST(Md5Lanes, CancelledBeforeTheStartHashesNothing) {
  const std::vector<uint8_t> data = RandomBytes(1000, 3);
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  ctx.cancel->Fire();
  std::vector<Md5Stream> streams = {FromMemory(data), FromMemory(data)};
  for (const auto& r : Md5Streams(streams, ctx)) EXPECT_EQ(r.status().code(), Status::Code::kCancelled);
}

TEST(Md5Lanes, ThePortableRoundsMatchOpenSsl) {
  // The plain C++ rounds (used where OpenSSL's low-level MD5 is missing):
  // whole blocks, then the padding done by hand.
  const std::vector<uint8_t> data = RandomBytes(64 * 100, 8);
  for (size_t blocks : {0u, 1u, 2u, 99u, 100u}) {
    uint32_t st[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    md5_internal::CompressPortable(st, data.data(), blocks);
    uint8_t pad[64] = {0x80};
    const uint64_t bits = blocks * 512;
    for (int i = 0; i < 8; ++i) pad[56 + i] = static_cast<uint8_t>(bits >> (8 * i));
    md5_internal::CompressPortable(st, pad, 1);
    uint8_t out[16];
    for (int i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(st[i / 4] >> (8 * (i % 4)));
    EXPECT_EQ(Digest::FromBytes(HashAlgo::kMd5, out), HashBytes(HashAlgo::kMd5, std::span(data).first(blocks * 64)))
        << blocks;
  }
}

TEST(Md5Lanes, TheBestKernelIsOneThisCpuRuns) {
  EXPECT_TRUE(Md5KernelSupported(BestMd5Kernel()));
  EXPECT_GE(Md5KernelLanes(BestMd5Kernel()), 1u);
}

}  // namespace
}  // namespace jigdoofus

namespace jigdoofus {
namespace {

TEST(Md5Batcher, ManyThreadsShareTheLanesAndEachGetsItsOwnDigest) {
 for (size_t engines : {1u, 2u}) {
  Md5Batcher batcher(BestMd5Kernel(), engines);
  const std::vector<uint8_t> data = RandomBytes(1 << 20, 5);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const size_t len = (data.size() >> (t % 4)) - 13 * round;
        const Md5Stream s = FromMemory(std::span(data).first(len));
        auto got = batcher.Hash(s, FetchContext{});
        if (!got.ok() || *got != HashBytes(HashAlgo::kMd5, std::span(data).first(len))) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  const Md5BatcherStats st = batcher.stats();
  EXPECT_EQ(st.jobs, 12u * 20u);
  if (Md5KernelLanes(BestMd5Kernel()) > 1) {
    // Hashed side by side, not one after the other.
    EXPECT_GT(static_cast<double>(st.lane_steps) / static_cast<double>(st.steps), 1.5) << st.lane_steps << "/"
                                                                                     << st.steps;
  }
 }
}

TEST(Md5Batcher, AWaiterThatGivesUpReturnsAndOthersFinish) {
  Md5Batcher batcher;
  const std::vector<uint8_t> data = RandomBytes(4 << 20, 6);
  // A stream that reads slowly keeps the leader busy.
  std::atomic<bool> slow_started{false};
  const Md5Stream slow{data.size(), [&](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
                         slow_started = true;
                         std::this_thread::sleep_for(std::chrono::milliseconds(2));
                         std::memcpy(out.data(), data.data() + off, out.size());
                         return out.size();
                       }};
  std::thread leader([&] {
    auto got = batcher.Hash(slow, FetchContext{});
    EXPECT_TRUE(got.ok());
    EXPECT_EQ(*got, HashBytes(HashAlgo::kMd5, data));
  });
  while (!slow_started) std::this_thread::yield();
  FetchContext ctx;
  ctx.cancel = std::make_shared<CancelSignal>();
  const Md5Stream other = FromMemory(data);
  std::thread giver([&] {
    auto got = batcher.Hash(other, ctx);
    EXPECT_EQ(got.status().code(), Status::Code::kCancelled);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ctx.cancel->Fire();
  giver.join();
  FetchContext late;
  late.deadline = std::chrono::steady_clock::now();  // already passed
  EXPECT_EQ(batcher.Hash(other, late).status().code(), Status::Code::kTimedOut);
  leader.join();
}

}  // namespace
}  // namespace jigdoofus
