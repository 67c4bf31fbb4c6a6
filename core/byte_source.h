// ByteSource: random read access to an immutable sequence of bytes (a
// template file, a local slice file).
//
// Implementations must be safe for concurrent ReadAt() calls from several
// threads (pread semantics). ReadAt() returns the number of bytes read,
// which is short only at end of data.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace jigdoofus {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) const = 0;
  // Reads exactly out.size() bytes or fails with kCorruption ("<name>:
  // truncated at offset N").
  Status ReadExactly(uint64_t offset, std::span<uint8_t> out) const;
  // Human-readable name used in error messages (usually the path).
  virtual const std::string& name() const = 0;
  // The file descriptor behind this source, or -1 (used for splice/stat).
  virtual int fd() const { return -1; }
};

// A regular file opened read-only (O_CLOEXEC). Owns the fd.
class FileByteSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileByteSource>> Open(const std::string& path);
  ~FileByteSource() override;
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  const std::string& name() const override { return path_; }
  int fd() const override { return fd_; }

 private:
  FileByteSource(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Bytes held in memory (tests, downloaded .jigdo files).
class MemoryByteSource final : public ByteSource {
 public:
  MemoryByteSource(std::string name, std::string data) : name_(std::move(name)), data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) const override;
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  std::string data_;
};

// pread()s until `out` is full or end of file; retries EINTR. Returns the
// bytes read (short only at end of file). Errors name `name` and the offset.
Result<size_t> PreadFully(int fd, uint64_t offset, std::span<uint8_t> out, const std::string& name);

// The largest .jigdo file (or include) read into memory, as stored (plain
// or gzip); its decoded text is bounded separately (core/jigdo_file.h).
// Debian's DVD .jigdo files are a few MiB.
inline constexpr uint64_t kMaxDocumentBytes = uint64_t{64} << 20;

// Reads a whole (small) regular file into memory; a larger one than
// max_size, or anything but a regular file (a FIFO, a device), is refused
// before any allocation or blocking. Error messages name the path.
Result<std::string> ReadWholeFile(const std::string& path, uint64_t max_size = kMaxDocumentBytes);

}  // namespace jigdoofus
