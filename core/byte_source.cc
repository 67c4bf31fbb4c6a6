#include "core/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jigdoofus {

Status ByteSource::ReadExactly(uint64_t offset, std::span<uint8_t> out) const {
  auto n = ReadAt(offset, out);
  if (!n.ok()) return n.status();
  if (*n != out.size()) {
    return Status::Corruption(name() + ": truncated at offset " + std::to_string(offset + *n) +
                              " (wanted " + std::to_string(out.size()) + " bytes at " +
                              std::to_string(offset) + ")");
  }
  return Status::OK();
}

Result<std::unique_ptr<FileByteSource>> FileByteSource::Open(const std::string& path) {
  // O_NONBLOCK: a FIFO or a device named where a file was expected must
  // not hang the open (it is refused below; regular files ignore the flag).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Status::FromErrno(path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno(path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  return std::unique_ptr<FileByteSource>(new FileByteSource(path, fd, static_cast<uint64_t>(st.st_size)));
}

FileByteSource::~FileByteSource() { ::close(fd_); }

Result<size_t> PreadFully(int fd, uint64_t offset, std::span<uint8_t> out, const std::string& name) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(name + ": read at offset " + std::to_string(offset + done), errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<size_t> FileByteSource::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  return PreadFully(fd_, offset, out, path_);
}

Result<size_t> MemoryByteSource::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset >= data_.size()) return size_t{0};
  size_t n = std::min<uint64_t>(out.size(), data_.size() - offset);
  std::memcpy(out.data(), data_.data() + offset, n);
  return n;
}

Result<std::string> ReadWholeFile(const std::string& path, uint64_t max_size) {
  auto file = FileByteSource::Open(path);
  if (!file.ok()) return file.status();
  if ((*file)->size() > max_size) {
    return Status::InvalidArgument(path + ": " + std::to_string((*file)->size()) + " bytes, more than the " +
                                   std::to_string(max_size) + " a .jigdo file may have");
  }
  std::string data((*file)->size(), '\0');
  auto n = (*file)->ReadAt(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(data.data()), data.size()));
  if (!n.ok()) return n.status();
  data.resize(*n);
  return data;
}

}  // namespace jigdoofus
