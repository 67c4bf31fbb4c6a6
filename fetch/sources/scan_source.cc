#include "fetch/sources/scan_source.h"
#include "fetch/sources/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/byte_source.h"
#include "core/rsync_sum.h"
#include "fetch/sources/file_slice.h"

namespace jigdoofus {

// The store VerifyLocalFile sees: digests of files this mount already found
// not to match (so they are not hashed again), then the real store.
class ScanSource::MemoStore final : public VerificationStore {
 public:
  explicit MemoStore(VerificationStore* store) : store_(store) {}
  std::optional<Digest> Lookup(const FileKey& key, HashAlgo algo) override {
    if (std::optional<Digest> d = mismatches_.Lookup(key, algo)) return d;
    return store_ != nullptr ? store_->Lookup(key, algo) : std::nullopt;
  }
  Status Record(const FileKey& key, const Digest& digest) override {
    return store_ != nullptr ? store_->Record(key, digest) : Status::OK();
  }
  void RecordMismatch(const FileKey& key, const Digest& digest) { (void)mismatches_.Record(key, digest); }

 private:
  VerificationStore* store_;
  MemoryVerificationStore mismatches_;
};

namespace {

std::string Join(const std::string& dir, const char* name) {
  return dir == "/" ? dir + name : dir + "/" + name;
}

}  // namespace

ScanSource::ScanSource(const std::vector<std::string>& paths, VerificationStore* store, ImageScanStore* scans)
    : store_(store), memo_(std::make_unique<MemoStore>(store)) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      files.push_back(std::filesystem::absolute(p).lexically_normal().string());
    } else {
      dirs_.push_back(AbsoluteDir(p));
    }
  }
  if (!files.empty()) images_ = std::make_unique<ImageFileSet>(std::move(files), scans);
}

ScanSource::~ScanSource() {
  stop_.store(true);
  if (walker_.joinable()) walker_.join();
  images_.reset();
}

void ScanSource::StartImageScan(WantedHeads wanted) {
  if (images_) images_->Start(std::move(wanted));
}

void ScanSource::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  walker_ = std::thread([this] { Walk(); });
}

void ScanSource::Walk() {
  std::multimap<uint64_t, std::string> found;
  std::set<std::pair<dev_t, ino_t>> visited;  // bind mounts can still make loops
  std::vector<std::pair<std::string, bool>> pending;  // (dir, is one of dirs_)
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) pending.emplace_back(*it, true);
  while (!pending.empty() && !stop_.load(std::memory_order_relaxed)) {
    auto [dir, top] = std::move(pending.back());
    pending.pop_back();
    // The named trees themselves may be symlinks (a mounted DVD's alias).
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (top ? 0 : O_NOFOLLOW);
    int fd = ::open(dir.c_str(), flags);
    if (fd < 0) {
      spdlog::debug("scan: skipping {}: {}", dir, std::strerror(errno));
      continue;
    }
    struct stat dst;
    if (::fstat(fd, &dst) != 0 || !visited.insert({dst.st_dev, dst.st_ino}).second) {
      ::close(fd);
      continue;
    }
    DIR* d = ::fdopendir(fd);  // owns fd from here on
    if (d == nullptr) {
      ::close(fd);
      continue;
    }
    std::vector<std::string> subdirs;
    while (struct dirent* e = ::readdir(d)) {
      if (stop_.load(std::memory_order_relaxed)) break;
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      if (e->d_type == DT_LNK) continue;
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        subdirs.push_back(Join(dir, e->d_name));
      } else if (S_ISREG(st.st_mode) && st.st_size > 0) {
        found.emplace(static_cast<uint64_t>(st.st_size), Join(dir, e->d_name));
      }
    }
    ::closedir(d);
    // Depth first, in directory order.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) pending.emplace_back(std::move(*it), false);
  }
  spdlog::debug("scan: {} files found", found.size());
  files_seen_ = found.size();
  std::lock_guard<std::mutex> lock(mu_);
  by_size_ = std::move(found);
  walked_ = true;
  walked_cv_.notify_all();
}

Status ScanSource::WaitForWalk(const FetchContext& ctx) {
  auto wake = ctx.OnCancel([this] {
    std::lock_guard<std::mutex> l(mu_);
    walked_cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  walked_cv_.wait_until(lock, ctx.deadline, [&] { return walked_ || ctx.cancelled(); });
  if (walked_) return Status::OK();
  if (ctx.cancelled()) return Status::Cancelled("scan: cancelled while the trees were being walked");
  return Status::TimedOut("scan: deadline passed while the trees were being walked");
}

bool ScanSource::HeadMatches(const std::string& path, const SliceHead& head) {
  if (!head.known()) return true;
  UniqueFd fd(::open(path.c_str(), kSliceOpenFlags));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return true;  // VerifyLocalFile says why
  const std::pair<FileKey, uint32_t> key{FileKey::FromStat(st), head.len};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = head_sums_.find(key); it != head_sums_.end()) return it->second == head.sum;
  }
  std::vector<uint8_t> buf(head.len);
  auto n = PreadFully(fd.get(), 0, buf, path);
  if (!n.ok() || *n != buf.size()) return true;  // too short or unreadable: VerifyLocalFile says why
  ++heads_read_;
  const uint64_t sum = RsyncSum64(buf);
  std::lock_guard<std::mutex> lock(mu_);
  head_sums_[key] = sum;
  return sum == head.sum;
}

Result<std::shared_ptr<const VerifiedSlice>> ScanSource::Open(const SliceRequest& request,
                                                            const FetchContext& ctx) {
  // Already found in an image file: no waiting.
  if (images_ && images_->HasFound(request.id)) return images_->Open(request, ctx);
  Status trees = Status::NotFound("scan: no directory given");
  if (!dirs_.empty()) {
    auto r = OpenFromTrees(request, ctx);
    if (r.ok()) return r;
    trees = r.status();
    if (trees.code() == Status::Code::kCancelled || trees.code() == Status::Code::kTimedOut) return trees;
  }
  if (images_) {
    auto r = images_->Open(request, ctx);
    if (r.ok() || r.status().code() != Status::Code::kNotFound || dirs_.empty()) return r;
  }
  return trees;
}

Result<std::shared_ptr<const VerifiedSlice>> ScanSource::OpenFromTrees(const SliceRequest& request,
                                                                      const FetchContext& ctx) {
  Start();
  JIGDOOFUS_RETURN_IF_ERROR(WaitForWalk(ctx));
  std::vector<std::string> paths;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [first, last] = by_size_.equal_range(request.id.size);
    for (auto it = first; it != last; ++it) paths.push_back(it->second);
  }
  for (const std::string& path : paths) {
    if (ctx.cancelled()) return Status::Cancelled("scan: request cancelled");
    if (ctx.expired()) return Status::TimedOut("scan: deadline passed");
    if (!HeadMatches(path, request.head)) {
      ++heads_rejected_;
      continue;
    }
    ++files_checked_;
    VerifyDetail detail;
    auto r = VerifyLocalFile(request.id, path, memo_.get(), ctx, &detail);
    if (r.ok()) return r;
    const Status& st = r.status();
    switch (st.code()) {
      case Status::Code::kCorruption:
        // Not corruption from the scan's point of view: the file is simply
        // another file of the same size. Remember its digest.
        if (detail.key && detail.actual) memo_->RecordMismatch(*detail.key, *detail.actual);
        break;
      case Status::Code::kNotFound:
        break;  // vanished or changed size since the walk
      case Status::Code::kCancelled:
      case Status::Code::kTimedOut:
        return st;
      default:
        spdlog::debug("scan: skipping {}", st.ToString());  // unreadable: quietly not a candidate
        break;
    }
  }
  return Status::NotFound("scan: no file of " + std::to_string(request.id.size) + " bytes with " +
                          HashAlgoName(request.id.digest.algo) + " " + request.id.digest.ToBase64() + " among " +
                          std::to_string(paths.size()) + " candidates");
}

bool ScanSource::HasVerified(const SliceRequest& request) {
  if (images_ && images_->HasFound(request.id)) return true;
  std::vector<std::string> paths;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!walked_) return false;  // not known yet: not verified
    auto [first, last] = by_size_.equal_range(request.id.size);
    for (auto it = first; it != last; ++it) paths.push_back(it->second);
  }
  for (const std::string& path : paths) {
    UniqueFd fd(::open(path.c_str(), kSliceOpenFlags));
    if (fd.valid() && HasVerificationRecord(request.id, fd.get(), store_)) return true;
  }
  return false;
}

ScanStats ScanSource::Stats() const {
  ScanStats s;
  s.files_seen = files_seen_.load();
  s.heads_read = heads_read_.load();
  s.heads_rejected = heads_rejected_.load();
  s.files_checked = files_checked_.load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.walked = walked_ || dirs_.empty();
  }
  if (images_) s.images = images_->Stats();
  return s;
}

}  // namespace jigdoofus
