// md5_lanes_bench: MD5 throughput on one core, multi-buffer kernels
// against OpenSSL's single stream.
//
//   build/bench/md5_lanes_bench [MiB per stream, default 8] [streams, default 64]
//
// For each method: the median of 7 runs, alternating the methods within
// each run, of hashing `streams` messages of the given size that are
// already in memory (so the figure is the hash, not the disk). Prints
// GB/s per core and the ratio to OpenSSL.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/md5_lanes.h"

using namespace jigdoofus;

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8;
  const size_t count = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  std::vector<std::vector<uint8_t>> msgs(count);
  std::mt19937_64 rng(1);
  for (auto& m : msgs) {
    m.resize(mib << 20);
    for (size_t i = 0; i < m.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(m.data() + i, &v, std::min<size_t>(8, m.size() - i));
    }
  }
  const double bytes = static_cast<double>(count) * static_cast<double>(mib << 20);

  struct Method {
    std::string name;
    std::vector<double> gbps;
  };
  std::vector<Method> methods = {{"openssl (1 stream)", {}}};
  std::vector<Md5Kernel> kernels;
  for (Md5Kernel k : {Md5Kernel::kScalar, Md5Kernel::kAvx2, Md5Kernel::kAvx512}) {
    if (!Md5KernelSupported(k)) continue;
    kernels.push_back(k);
    methods.push_back({std::string(Md5KernelName(k)) + " (" + std::to_string(Md5KernelLanes(k)) + " lanes)", {}});
  }
  std::vector<Digest> reference(count);
  for (int run = 0; run < 7; ++run) {
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      const auto t0 = std::chrono::steady_clock::now();
      if (mi == 0) {
        for (size_t i = 0; i < count; ++i) reference[i] = HashBytes(HashAlgo::kMd5, msgs[i]);
      } else {
        std::vector<Md5Stream> streams;
        for (const auto& m : msgs) {
          streams.push_back({m.size(), [&m](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
                               std::memcpy(out.data(), m.data() + off, out.size());
                               return out.size();
                             }});
        }
        auto got = Md5Streams(streams, FetchContext{}, kernels[mi - 1]);
        for (size_t i = 0; i < count; ++i) {
          if (!got[i].ok() || *got[i] != reference[i]) {
            std::fprintf(stderr, "md5_lanes_bench: %s gave a wrong digest for stream %zu\n",
                         methods[mi].name.c_str(), i);
            return 1;
          }
        }
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      methods[mi].gbps.push_back(bytes / s / 1e9);
    }
  }
  std::printf("%zu streams of %zu MiB, in memory, one thread; median of 7 alternating runs\n", count, mib);
  std::printf("%-22s %10s %10s   %s\n", "method", "GB/s", "vs openssl", "all runs");
  double base = 0;
  for (auto& m : methods) {
    std::vector<double> sorted = m.gbps;
    std::sort(sorted.begin(), sorted.end());
    const double med = sorted[sorted.size() / 2];
    if (base == 0) base = med;
    std::string all;
    for (double g : m.gbps) all += std::to_string(g).substr(0, 4) + " ";
    std::printf("%-22s %10.2f %9.2fx   %s\n", m.name.c_str(), med, med / base, all.c_str());
  }
  return 0;
}
