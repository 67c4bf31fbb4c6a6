#include "core/slice_provider.h"

#include <sys/stat.h>

#include <cerrno>
#include <string>

namespace jigdoofus {

Status VerifiedSlice::AppendTo(uint64_t offset, size_t n, ReadPlan* plan) const {
  if (offset > id().size || n > id().size - offset) {
    return Status::Internal("read of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                            " past the end of slice " + id().digest.ToBase64());
  }
  if (fd() < 0) return ReadAt(offset, plan->AppendMemory(n));
  // The caller reads the fd later (splice); a file that shrank since it
  // was verified must fail here, not become a short read.
  struct stat sb;
  const uint64_t need = fd_offset() + offset + n;
  if (::fstat(fd(), &sb) != 0) return Status::FromErrno("slice " + id().digest.ToBase64() + ": fstat", errno);
  if (static_cast<uint64_t>(sb.st_size) < need) {
    return Status::IOError("slice " + id().digest.ToBase64() + ": its file shrank to " +
                           std::to_string(sb.st_size) + " bytes after verification");
  }
  plan->AppendFile(fd(), fd_offset() + offset, n);
  return Status::OK();
}

}  // namespace jigdoofus
