// jigdoofus-cat [OPTIONS] SOURCE [IMAGE-NAME] [--offset N] [--length N]
//
// Writes an image (or a byte range of it) to stdout, assembled exactly as
// the mount would serve it, without FUSE. Exit 0 on success, 1 with a
// one-line error on failure, 2 on a usage error.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <string>

#include "core/malloc_arenas.h"
#include "core/prefetcher.h"
#include "fetch/mount/image_set.h"
#include "fs/options.h"

namespace jigdoofus {
namespace {

constexpr size_t kChunk = size_t{4} << 20;

int Fail(const std::string& message) {
  std::fprintf(stderr, "jigdoofus-cat: %s\n", message.c_str());
  return 1;
}

Status WriteAll(int fd, const uint8_t* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("stdout", errno);
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

  auto logger = std::make_shared<spdlog::logger>("jigdoofus-cat", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("jigdoofus-cat: %l: %v");
  logger->set_level(spdlog::level::from_str(cl->log_level));
  spdlog::set_default_logger(logger);

  // Resolved exactly as the mount resolves it: the same defaults and
  // derived settings (fetch/mount/mount_config.h).
  const MountConfig config = ResolveMountConfig(cl->images, RaiseOpenFileLimit());
  auto set = ImageSet::Open(config);
  if (!set.ok()) return Fail(set.status().message());
  for (const std::string& warning : (*set)->warnings()) spdlog::warn("{}", warning);
  std::string error;
  const OpenImage* image = PickImage(**set, cl->image, &error);
  if (image == nullptr) return Fail(error);

  uint64_t size = image->reader->size();
  uint64_t offset = std::min(cl->offset, size);
  uint64_t end = cl->length ? offset + std::min(*cl->length, size - offset) : size;
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kChunk);
  // The slices ahead of the output are verified (local) or downloaded
  // (mirrors) by --jobs threads while earlier bytes are written, as for a
  // sequential reader of the mount.
  PrefetcherOptions po;
  po.threads = config.prefetch_threads;
  po.fetch_timeout_s = config.fetch_timeout_s;
  Prefetcher prefetcher(po);
  ReadAhead read_ahead(&image->reader->map(), &image->reader->slices(), &prefetcher, config.read_ahead);
  while (offset < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, end - offset));
    read_ahead.OnRead(offset, want);
    FetchContext ctx;
    ctx.deadline = DeadlineIn(config.fetch_timeout_s);
    auto got = image->reader->ReadAt(offset, std::span<uint8_t>(buf.get(), want), ctx);
    if (!got.ok()) return Fail(image->name + ": " + got.status().message());
    if (*got == 0) return Fail(image->name + ": unexpected end of image at offset " + std::to_string(offset));
    Status st = WriteAll(STDOUT_FILENO, buf.get(), *got);
    if (!st.ok()) return Fail(st.message());
    offset += *got;
  }
  return 0;
}

}  // namespace
}  // namespace jigdoofus

int main(int argc, char** argv) {
  jigdoofus::LimitMallocArenas();
  return jigdoofus::Run(argc, argv);
}
