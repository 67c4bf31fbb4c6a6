#include "fetch/sources/safe_path.h"

#include <filesystem>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

namespace jigdoofus {
namespace {

Status Refused(const std::string& dir, const std::string& rel, const char* why) {
  spdlog::debug("local: refused {}/{}: {}", dir, rel, why);
  return Status::NotFound(dir + "/" + rel + ": refused, " + why);
}

// realpath() into a string; on failure returns false and leaves errno set.
bool RealPath(const std::string& path, std::string* out) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr), &std::free);
  if (!resolved) return false;
  *out = resolved.get();
  return true;
}

Status OpenError(const std::string& dir, const std::string& rel, int err) {
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(dir + "/" + rel + ": " + std::strerror(err));
  if (err == ENXIO) return Status::NotFound(dir + "/" + rel + ": not a regular file");
  return Status::FromErrno(dir + "/" + rel, err);
}

}  // namespace

// Pre-openat2 kernels: resolve and compare. Racy against concurrent renames
// inside DIR, which is acceptable for a read-only tree the user named.
Result<UniqueFd> OpenBeneathByRealpath(const std::string& dir, const std::string& rel, int flags) {
  if (!IsSafeRelativePath(rel)) return Refused(dir, rel, "absolute path or '..' component");
  std::string root, target;
  if (!RealPath(dir, &root)) return OpenError(dir, "", errno);
  if (!RealPath(root + "/" + rel, &target)) {
    int err = errno;
    if (err == ELOOP) return Refused(dir, rel, "symlink loop");
    return OpenError(dir, rel, err);
  }
  if (!IsPathWithin(root, target)) return Refused(dir, rel, "resolves outside the directory");
  UniqueFd fd(::open(target.c_str(), flags | O_NOFOLLOW));
  if (!fd.valid()) return OpenError(dir, rel, errno);
  return fd;
}

bool IsSafeRelativePath(std::string_view rel) {
  if (rel.empty() || rel.front() == '/') return false;
  if (rel.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    if (rel.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

bool IsPathWithin(std::string_view root, std::string_view path) {
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  if (root == "/") return !path.empty() && path.front() == '/';
  if (path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

Result<UniqueFd> OpenBeneath(const std::string& dir, const std::string& rel, int flags) {
  if (!IsSafeRelativePath(rel)) return Refused(dir, rel, "absolute path or '..' component");
  UniqueFd dirfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd.valid()) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status::NotFound(dir + ": " + std::strerror(err));
    return Status::FromErrno(dir, err);
  }
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long rc = ::syscall(SYS_openat2, dirfd.get(), rel.c_str(), &how, sizeof how);
    if (rc >= 0) return UniqueFd(static_cast<int>(rc));
    int err = errno;
    if (err == EINTR || (err == EAGAIN && attempt < 8)) continue;  // EAGAIN: concurrent rename
    if (err == ENOSYS || err == EPERM) return OpenBeneathByRealpath(dir, rel, flags);
    if (err == EXDEV) return Refused(dir, rel, "resolves outside the directory");
    if (err == ELOOP) return Refused(dir, rel, "symlink loop or magic link");
    return OpenError(dir, rel, err);
  }
}

std::string AbsoluteDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dir, ec);
  std::string s = ec ? dir : p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace jigdoofus
