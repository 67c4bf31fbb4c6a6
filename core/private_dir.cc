#include "core/private_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace jigdoofus {

namespace {

Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status::IOError(dir + ": not a directory");
    return Status::OK();
  }
  if (errno != ENOENT) return Status::FromErrno(dir, errno);
  const size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) JIGDOOFUS_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno(dir, errno);
  return Status::OK();
}

}  // namespace

Status MakePrivateDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("cache directory: empty path");
  JIGDOOFUS_RETURN_IF_ERROR(MakeDirs(dir));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                                   std::to_string(::geteuid()) + " who runs jigdoofus; use a cache directory of your own");
  }
  return Status::OK();
}

}  // namespace jigdoofus
