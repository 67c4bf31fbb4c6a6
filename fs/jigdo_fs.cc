#include "fs/jigdo_fs.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace jigdoofus {

namespace {

// Largest read we allocate for; the kernel never asks for more than
// max_pages (256 pages with libfuse 3) anyway.
constexpr size_t kMaxReadSize = size_t{16} << 20;
constexpr blksize_t kPreferredIoSize = 1 << 20;

// --- C callbacks: convert, guard, reply exactly once ---

JigdoFs* FsOf(fuse_req_t req) { return static_cast<JigdoFs*>(fuse_req_userdata(req)); }

// Runs a handler; no exception gets out. Returns its errno (0: success).
template <typename Fn>
int Guarded(const char* op, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    spdlog::error("[enomem] {}: out of memory", op);
    return ENOMEM;
  } catch (const std::exception& e) {
    spdlog::error("[eio-exception] {}: unexpected exception: {}", op, e.what());
    return EIO;
  } catch (...) {
    spdlog::error("[eio-exception] {}: unexpected non-standard exception", op);
    return EIO;
  }
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  Guarded("init", [&] {
    static_cast<JigdoFs*>(userdata)->Init(conn);
    return 0;
  });
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e{};
  int err = Guarded("lookup", [&] { return FsOf(req)->Lookup(parent, name, &e); });
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_entry(req, &e);  // ino 0: a negative entry the kernel caches
  }
}

void OpForget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void OpForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void OpGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st {};
  int err = Guarded("getattr", [&] { return FsOf(req)->GetAttr(ino, &st); });
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_attr(req, &st, kCacheTimeoutS);
  }
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpenReply r;
  JigdoFs* fs = FsOf(req);
  int err = Guarded("open", [&] { return fs->Open(ino, fi->flags, &r); });
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = r.fh;
  fi->keep_cache = r.keep_cache;
  fi->direct_io = r.direct_io;
  if (fuse_reply_open(req, fi) != 0) fs->Release(ino, r.fh);  // the open was interrupted
}

// libfuse calls this (on the thread handling the INTERRUPT) when the
// kernel interrupts a read: wakes whatever the read waits on.
void OnInterrupt(fuse_req_t, void* data) { static_cast<CancelSignal*>(data)->Fire(); }

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  // `plan` holds what the reply's bytes need (open slices, a cache
  // snapshot) until the reply has been sent.
  ReadPlan plan;
  std::optional<Result<ReadReply>> built;
  JigdoFs* fs = FsOf(req);
  auto cancel = std::make_shared<CancelSignal>();
  fuse_req_interrupt_func(req, OnInterrupt, cancel.get());
  int err = Guarded("read", [&] {
    if (off < 0) return EINVAL;
    size = std::min(size, kMaxReadSize);
    FetchContext ctx = fs->MakeFetchContext();
    ctx.cancel = cancel;
    int e = fs->PlanRead(ino, fi->fh, static_cast<uint64_t>(off), size, &plan, ctx);
    if (e != 0) return e;
    built.emplace(BuildReadReply(plan, fs->reply_policy()));
    return fs->CountReply(*built);
  });
  fuse_req_interrupt_func(req, nullptr, nullptr);  // no wake-up after this: `cancel` may go
  const ReadReply* reply = err == 0 ? &built->value() : nullptr;
  if (err != 0) {
    fuse_reply_err(req, err);
  } else if (reply->kind == ReadReply::Kind::kEmpty) {
    fuse_reply_buf(req, nullptr, 0);
  } else if (reply->kind == ReadReply::Kind::kMemory) {
    fuse_reply_buf(req, reinterpret_cast<const char*>(reply->data), reply->size);
  } else {
    fuse_reply_data(req, reply->bufv.get(), FUSE_BUF_SPLICE_MOVE);
  }
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded("release", [&] {
    FsOf(req)->Release(ino, fi->fh);
    return 0;
  });
  fuse_reply_err(req, 0);
}

void OpOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int err = Guarded("opendir", [&] { return FsOf(req)->OpenDir(ino); });
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fi->cache_readdir = 1;  // the listing never changes
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::unique_ptr<char[]> buf;
  size_t used = 0;
  int err = Guarded(plus ? "readdirplus" : "readdir", [&] {
    size = std::min(size, kMaxReadSize);
    buf = std::make_unique_for_overwrite<char[]>(size);
    return FsOf(req)->ReadDir(ino, size, off, plus, buf.get(), &used);
  });
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_buf(req, buf.get(), used);
  }
}

void OpReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  ReadDirCommon(req, ino, size, off, false);
}
void OpReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  ReadDirCommon(req, ino, size, off, true);
}
void OpReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpStatFs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st {};
  int err = Guarded("statfs", [&] {
    FsOf(req)->StatFs(&st);
    return 0;
  });
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_statfs(req, &st);
  }
}

// Everything that would change the tree: read-only file system.
void RoSetAttr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void RoMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); }
void RoMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
void RoUnlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoRename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  fuse_reply_err(req, EROFS);
}
void RoLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoWrite(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void RoCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void RoSetXattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { fuse_reply_err(req, EROFS); }
void RoRemoveXattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoFallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }

}  // namespace

const fuse_lowlevel_ops& JigdoFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = OpInit;
    o.lookup = OpLookup;
    o.forget = OpForget;
    o.forget_multi = OpForgetMulti;
    o.getattr = OpGetAttr;
    o.open = OpOpen;
    o.read = OpRead;
    o.release = OpRelease;
    o.opendir = OpOpenDir;
    o.readdir = OpReadDir;
    o.readdirplus = OpReadDirPlus;
    o.releasedir = OpReleaseDir;
    o.statfs = OpStatFs;
    o.setattr = RoSetAttr;
    o.mknod = RoMknod;
    o.mkdir = RoMkdir;
    o.unlink = RoUnlink;
    o.rmdir = RoUnlink;
    o.symlink = RoSymlink;
    o.rename = RoRename;
    o.link = RoLink;
    o.write = RoWrite;
    o.create = RoCreate;
    o.setxattr = RoSetXattr;
    o.removexattr = RoRemoveXattr;
    o.fallocate = RoFallocate;
    return o;
  }();
  return ops;
}

JigdoFs::JigdoFs(const ImageSet* images, JigdoFsOptions options)
    : images_(images),
      options_(options),
      splice_budget_(SpliceBudget::FromSystem()),
      reply_buffers_(splice_budget_.max_request_bytes(), kKeptReplyBuffers),
      uid_(::getuid()),
      gid_(::getgid()) {
  if (options_.prefetch_threads > 0) {
    PrefetcherOptions po;
    po.threads = options_.prefetch_threads;
    po.budget = options_.prefetch_budget;
    po.max_threads = options_.max_prefetch_threads;
    po.fetch_timeout_s = options_.fetch_timeout_s;
    prefetcher_ = std::make_unique<Prefetcher>(po);
  }
  ::clock_gettime(CLOCK_REALTIME, &mount_time_);
  for (const OpenImage& image : images_->images()) {
    struct stat st;
    image_mtimes_.push_back(::stat(image.source.c_str(), &st) == 0 ? st.st_mtim : mount_time_);
  }
}

JigdoFs::~JigdoFs() = default;

const OpenImage* JigdoFs::ImageOf(fuse_ino_t ino) const {
  if (ino < kFirstImageIno) return nullptr;
  uint64_t i = ino - kFirstImageIno;
  if (i >= images_->images().size()) return nullptr;
  return &images_->images()[i];
}

void JigdoFs::FillAttr(fuse_ino_t ino, struct stat* st) const {
  *st = {};
  st->st_ino = ino;
  st->st_uid = uid_;
  st->st_gid = gid_;
  st->st_blksize = kPreferredIoSize;
  st->st_atim = st->st_mtim = st->st_ctim = mount_time_;
  if (ino == kRootIno) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
  } else if (ino == kStatusIno) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = 0;  // content is made at open; read with direct_io
  } else if (const OpenImage* image = ImageOf(ino)) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(image->reader->size());
    st->st_blocks = static_cast<blkcnt_t>((image->reader->size() + 511) / 512);
    st->st_atim = st->st_mtim = st->st_ctim = image_mtimes_[ino - kFirstImageIno];
  }
}

int JigdoFs::Lookup(fuse_ino_t parent, std::string_view name, fuse_entry_param* out) const {
  if (parent != kRootIno) return ENOTDIR;
  *out = {};
  out->entry_timeout = kCacheTimeoutS;  // negative entries (ino 0) are cached too
  out->attr_timeout = kCacheTimeoutS;
  fuse_ino_t ino = 0;
  if (name == kStatusFileName) {
    ino = kStatusIno;
  } else {
    const auto& images = images_->images();
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i].name == name) {
        ino = kFirstImageIno + i;
        break;
      }
    }
  }
  out->ino = ino;
  if (ino != 0) FillAttr(ino, &out->attr);
  return 0;
}

int JigdoFs::GetAttr(fuse_ino_t ino, struct stat* out) const {
  if (ino != kRootIno && ino != kStatusIno && ImageOf(ino) == nullptr) return ENOENT;
  FillAttr(ino, out);
  return 0;
}

struct JigdoFs::ImageHandle {
  std::unique_ptr<ReadAhead> read_ahead;  // null when read-ahead is off
};

int JigdoFs::Open(fuse_ino_t ino, int flags, OpenReply* out) {
  if (ino == kRootIno) return EISDIR;
  const OpenImage* image = ImageOf(ino);
  if (ino != kStatusIno && image == nullptr) return ENOENT;
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) return EROFS;
  *out = {};
  if (ino == kStatusIno) {
    auto snapshot = std::make_unique<std::string>(StatusText());
    out->fh = reinterpret_cast<uint64_t>(snapshot.release());
    out->direct_io = true;
  } else {
    auto handle = std::make_unique<ImageHandle>();
    if (prefetcher_ != nullptr) {
      handle->read_ahead = std::make_unique<ReadAhead>(&image->reader->map(), &image->reader->slices(),
                                                        prefetcher_.get(), options_.read_ahead);
    }
    out->fh = reinterpret_cast<uint64_t>(handle.release());
    out->keep_cache = true;
  }
  return 0;
}

void JigdoFs::Release(fuse_ino_t ino, uint64_t fh) {
  if (fh == 0) return;
  if (ino == kStatusIno) {
    delete reinterpret_cast<std::string*>(fh);
  } else if (ImageOf(ino) != nullptr) {
    delete reinterpret_cast<ImageHandle*>(fh);
  }
}

int JigdoFs::PlanRead(fuse_ino_t ino, uint64_t fh, uint64_t offset, size_t size, ReadPlan* plan,
                      const FetchContext& ctx) {
  plan->Clear();
  if (ino == kStatusIno) {
    if (fh == 0) return EBADF;
    const std::string& text = *reinterpret_cast<const std::string*>(fh);
    if (offset < text.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(size, text.size() - offset));
      std::memcpy(plan->AppendMemory(n).data(), text.data() + offset, n);
    }
    return 0;
  }
  const OpenImage* image = ImageOf(ino);
  if (image == nullptr) return ino == kRootIno ? EISDIR : ENOENT;
  uint64_t image_size = image->reader->size();
  if (offset >= image_size || size == 0) return 0;
  size_t len = static_cast<size_t>(std::min<uint64_t>(size, image_size - offset));
  reads_.fetch_add(1, std::memory_order_relaxed);
  // Queue what comes next before waiting for this read's slices.
  if (fh != 0) {
    if (ReadAhead* ra = reinterpret_cast<ImageHandle*>(fh)->read_ahead.get()) ra->OnRead(offset, len);
  }
  Status st = image->reader->Plan(offset, len, ctx, plan);
  if (st.code() == Status::Code::kInvalidArgument) {
    // A read at a valid offset is never the reader's mistake.
    st = Status::Internal(st.message());
  }
  if (!st.ok()) {
    failures_.Count(st.code());
    const char* tag = FailureTag(st.code());
    if (st.code() == Status::Code::kCancelled) {
      spdlog::debug("[{}] {}: read of {} bytes at {}: {}", tag, image->name, len, offset, st.message());
    } else {
      spdlog::warn("[{}] {}: read of {} bytes at {}: {}", tag, image->name, len, offset, st.message());
      recent_failures_.Note(image->name, offset, len, tag, st);
    }
    return ErrnoFromStatus(st);
  }
  bytes_read_.fetch_add(plan->size, std::memory_order_relaxed);
  return 0;
}

int JigdoFs::CountReply(const Result<ReadReply>& reply) {
  if (!reply.ok()) {
    failures_.Count(reply.status().code());
    spdlog::warn("[{}] read reply: {}", FailureTag(reply.status().code()), reply.status().message());
    return ErrnoFromStatus(reply.status());
  }
  if (reply->kind == ReadReply::Kind::kFileBacked) {
    replies_fd_backed_.fetch_add(1, std::memory_order_relaxed);
  } else if (reply->kind == ReadReply::Kind::kMemory && (reply->lease || reply->large)) {
    replies_copied_.fetch_add(1, std::memory_order_relaxed);
  }
  return 0;
}

int JigdoFs::OpenDir(fuse_ino_t ino) const {
  if (ino == kRootIno) return 0;
  return (ino == kStatusIno || ImageOf(ino) != nullptr) ? ENOTDIR : ENOENT;
}

int JigdoFs::ReadDir(fuse_ino_t ino, size_t size, off_t offset, bool plus, char* buf, size_t* used) const {
  if (ino != kRootIno) return ENOTDIR;
  *used = 0;
  const auto& images = images_->images();
  // Entry i: 0 ".", 1 "..", 2 the status file, 3 + k image k. An entry's
  // offset cookie is i + 1 (the position to continue from).
  size_t count = kFirstImageIno + images.size();
  for (size_t i = offset < 0 ? 0 : static_cast<size_t>(offset); i < count; ++i) {
    const char* name;
    fuse_ino_t entry_ino;
    if (i == 0) {
      name = ".";
      entry_ino = kRootIno;
    } else if (i == 1) {
      name = "..";
      entry_ino = kRootIno;
    } else if (i == 2) {
      name = kStatusFileName;
      entry_ino = kStatusIno;
    } else {
      name = images[i - kFirstImageIno].name.c_str();
      entry_ino = i;
    }
    size_t room = size - *used;
    size_t need;
    if (plus) {
      fuse_entry_param e{};
      e.ino = entry_ino;
      e.entry_timeout = e.attr_timeout = kCacheTimeoutS;
      FillAttr(entry_ino, &e.attr);
      need = fuse_add_direntry_plus(nullptr, buf + *used, room, name, &e, static_cast<off_t>(i + 1));
    } else {
      struct stat st {};
      st.st_ino = entry_ino;
      st.st_mode = entry_ino == kRootIno ? S_IFDIR : S_IFREG;
      need = fuse_add_direntry(nullptr, buf + *used, room, name, &st, static_cast<off_t>(i + 1));
    }
    if (need > room) break;  // the kernel asks again from this offset
    *used += need;
  }
  return 0;
}

void JigdoFs::StatFs(struct statvfs* out) const {
  *out = {};
  uint64_t total = 0;
  for (const OpenImage& image : images_->images()) total += (image.reader->size() + 4095) / 4096;
  out->f_bsize = 4096;
  out->f_frsize = 4096;
  // Size: the images. Nothing can be written (ST_RDONLY), but a mount
  // that reports 0 free blocks or inodes reads as 100% full to disk
  // monitoring (and every mount of a read-only image would page someone):
  // free and available are reported as the whole size, like the inodes.
  out->f_blocks = total;
  out->f_bfree = total;
  out->f_bavail = total;
  out->f_files = images_->images().size() + 2;
  out->f_ffree = out->f_files;
  out->f_favail = out->f_files;
  out->f_namemax = 255;
  out->f_flag = ST_RDONLY;
}

void JigdoFs::Init(fuse_conn_info* conn) {
  if (options_.splice) {
    if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
    if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  }
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // max_write also sets the kernel's max_pages (request size) in libfuse 3:
  // sized so that replies fit the pipe libfuse splices through.
  // max_readahead is left at what the kernel offered (it cannot be raised).
  conn->max_write = static_cast<unsigned>(splice_budget_.max_request_bytes());
  spdlog::debug("FUSE init: protocol {}.{}, max_readahead {}, max_write {}, capable {:#x}, want {:#x}",
                conn->proto_major, conn->proto_minor, conn->max_readahead, conn->max_write, conn->capable,
                conn->want);
}

FetchContext JigdoFs::MakeFetchContext() const {
  FetchContext ctx;
  ctx.deadline = DeadlineIn(options_.fetch_timeout_s);
  ctx.foreground = true;  // a FUSE read waits on it
  return ctx;
}

std::string JigdoFs::StatusText() const {
  nlohmann::json j = nlohmann::json::parse(images_->StatusJson());
  j["fs"] = {{"mounted_at", mount_time_.tv_sec},
             {"reads", reads_.load()},
             {"bytes_read", bytes_read_.load()},
             {"replies", {{"fd_backed", replies_fd_backed_.load()}, {"copied", replies_copied_.load()}}},
             {"failures", failures_.Snapshot()}};
  j["recent_failures"] = recent_failures_.Snapshot();
  if (prefetcher_ != nullptr) {
    PrefetcherStats ps = prefetcher_->stats();
    j["fs"]["prefetch"] = {{"queued", ps.queued},   {"deduped", ps.deduped}, {"rejected", ps.rejected},
                           {"fetched", ps.fetched}, {"failed", ps.failed},   {"pending", prefetcher_->pending()}};
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace jigdoofus
