// jigdoofus-cat [OPTIONS] SOURCE [IMAGE-NAME] [--offset N] [--length N] [-o FILE]
//
// Writes an image (or a byte range of it) to stdout or FILE, assembled
// exactly as the mount would serve it, without FUSE. FILE is written as
// FILE.part and renamed when complete; an image is never written to a
// terminal. Exit 0 on success, 1 with a
// one-line error on failure, 2 on a usage error.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <spdlog/spdlog.h>
#include <string>

#include "core/malloc_arenas.h"
#include "fetch/mount/image_set.h"
#include "fetch/mount/image_stream.h"
#include "fs/options.h"
#include "tools/progress_line.h"
#include "tools/tool_logging.h"

namespace jigdoofus {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "jigdoofus-cat: %s\n", message.c_str());
  return 1;
}

Status WriteAll(int fd, const uint8_t* data, size_t size, const std::string& name) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(name, errno);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

const OpenImage* PickImage(const ImageSet& set, const std::string& wanted, std::string* error) {
  const auto& images = set.images();
  if (wanted.empty()) {
    if (images.size() == 1) return &images[0];
    std::string names;
    for (const OpenImage& i : images) names += (names.empty() ? "" : ", ") + i.name;
    *error = "the source holds " + std::to_string(images.size()) + " images; name one of: " + names;
    return nullptr;
  }
  for (const OpenImage& i : images) {
    if (i.name == wanted) return &i;
  }
  *error = "no image named '" + wanted + "'";
  return nullptr;
}

int Run(int argc, char** argv) {
  auto cl = ParseCatCommandLine(argc, argv);
  if (!cl.ok()) {
    const std::string& msg = cl.status().message();
    std::fprintf(stderr, msg.rfind("usage:", 0) == 0 ? "%s\n" : "jigdoofus-cat: %s\n", msg.c_str());
    return 2;
  }
  if (cl->help || cl->version) return 0;

  SetUpToolLogging("jigdoofus-cat", cl->log_level);

  // Resolved exactly as the mount resolves it: the same defaults and
  // derived settings (fetch/mount/mount_config.h).
  const MountConfig config = ResolveMountConfig(cl->images, RaiseOpenFileLimit());
  auto set = ImageSet::Open(config);
  if (!set.ok()) return Fail(set.status().message());
  for (const std::string& warning : (*set)->warnings()) spdlog::warn("{}", warning);
  std::string error;
  const OpenImage* image = PickImage(**set, cl->image, &error);
  if (image == nullptr) return Fail(error);

  const uint64_t size = image->reader->size();
  const uint64_t offset = std::min(cl->offset, size);
  const uint64_t end = cl->length ? offset + std::min(*cl->length, size - offset) : size;

  int out_fd = STDOUT_FILENO;
  std::string part;
  if (cl->output.empty()) {
    if (::isatty(STDOUT_FILENO) == 1) {
      return Fail("will not write an image to a terminal; redirect it (> image.iso) or use -o FILE");
    }
  } else {
    // FILE.part until the last byte is written: an interrupted run leaves
    // nothing that looks complete.
    part = cl->output + ".part";
    out_fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out_fd < 0) return Fail(part + ": " + std::strerror(errno));
  }
  const std::string out_name = cl->output.empty() ? "stdout" : part;
  ProgressLine progress(stderr, image->name + ": ", std::chrono::seconds(0));
  uint64_t written = 0;
  Status st = StreamImage(*image, offset, end, config, [&](std::span<const uint8_t> chunk) {
    JIGDOOFUS_RETURN_IF_ERROR(WriteAll(out_fd, chunk.data(), chunk.size(), out_name));
    written += chunk.size();
    if (!cl->output.empty()) progress.Update(written, end - offset);
    return Status::OK();
  });
  if (!cl->output.empty()) {
    if (st.ok() && ::fsync(out_fd) != 0) st = Status::FromErrno(part + ": fsync", errno);
    if (::close(out_fd) != 0 && st.ok()) st = Status::FromErrno(part + ": close", errno);
    if (st.ok() && ::rename(part.c_str(), cl->output.c_str()) != 0) {
      st = Status::FromErrno("rename " + part + " to " + cl->output, errno);
    }
    progress.Finish(st.ok() ? "done" : "failed");
    if (!st.ok()) return Fail(st.message() + " (the partial output stays in " + part + ")");
  }
  if (!st.ok()) return Fail(st.message());
  return 0;
}

}  // namespace
}  // namespace jigdoofus

int main(int argc, char** argv) {
  jigdoofus::LimitMallocArenas();
  return jigdoofus::Run(argc, argv);
}
