#include "fs/splice_budget.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace jigdoofus {
namespace {

constexpr size_t kMinRequest = size_t{128} << 10;  // the kernel's default (32 pages)
constexpr size_t kMaxRequest = size_t{1} << 20;    // 256 pages: FUSE_DEFAULT_MAX_PAGES_LIMIT
constexpr size_t kDefaultPipeMax = size_t{1} << 20;
// struct fuse_out_header, the one header iovec of a read reply.
constexpr size_t kReplyHeaderBytes = 16;

size_t PageSize() {
  long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<size_t>(p) : 4096;
}

}  // namespace

SpliceBudget::SpliceBudget(size_t pipe_max_size) : page_(PageSize()), pipe_max_(pipe_max_size) {
  size_t request = pipe_max_size / 4 * 3 / page_ * page_;
  max_request_ = std::clamp(request, kMinRequest, kMaxRequest);
}

SpliceBudget SpliceBudget::FromSystem() {
  std::ifstream in("/proc/sys/fs/pipe-max-size");
  size_t max = 0;
  if (!(in >> max) || max == 0) max = kDefaultPipeMax;
  return SpliceBudget(max);
}

bool SpliceBudget::Fits(size_t payload, size_t buffers) const {
  // libfuse's heuristic, with its one header iovec.
  const size_t needed = page_ * (1 + buffers + 1) + kReplyHeaderBytes + payload;
  return needed <= pipe_max_;
}

}  // namespace jigdoofus
