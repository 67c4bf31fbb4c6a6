#include "fetch/sources/image_file_set.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "fetch/sources/file_slice.h"

namespace jigdoofus {

ImageFileSet::ImageFileSet(std::vector<std::string> files, ImageScanStore* store)
    : files_(std::move(files)), store_(store) {}

ImageFileSet::~ImageFileSet() {
  stop_->Fire();
  if (thread_.joinable()) thread_.join();
}

void ImageFileSet::Start(WantedHeads wanted) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  wanted_ = std::move(wanted);
  for (const std::string& f : files_) {
    struct stat st;
    if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode)) bytes_total_ += static_cast<uint64_t>(st.st_size);
  }
  thread_ = std::thread([this] { Run(); });
}

void ImageFileSet::Run() {
  for (size_t i = 0; i < files_.size() && !stop_->fired(); ++i) ScanOne(i);
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  changed_.notify_all();
}

void ImageFileSet::Found(size_t file, std::shared_ptr<const UniqueFd> fd, const FoundSlice& f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (found_.emplace(f.id, Place{std::move(fd), &files_[file], f.offset}).second) changed_.notify_all();
}

void ImageFileSet::ScanOne(size_t i) {
  const std::string& path = files_[i];
  auto fd = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (!fd->valid() || ::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    spdlog::warn("scan: {}: {}", path, fd->valid() ? "not a regular file" : std::strerror(errno));
    ++files_done_;
    return;
  }
  (void)::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) & ~O_NONBLOCK);
  const FileKey key = FileKey::FromStat(st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  // What an earlier scan of this very file found and looked for.
  ImageScanRecord record;
  if (store_ != nullptr) {
    if (auto r = store_->Lookup(key)) record = std::move(*r);
  }
  const std::vector<SliceHead> wanted_heads = wanted_.Heads();
  WantedHeads missing;
  for (const SliceHead& h : wanted_heads) {
    if (std::binary_search(record.looked_for.begin(), record.looked_for.end(), h)) {
      continue;
    }
    for (const SliceId& id : *wanted_.Find(h.len, h.sum)) missing.Add(id, h);
  }
  for (const FoundSlice& f : record.found) {
    if (f.offset + f.id.size <= size) Found(i, fd, f);
  }
  if (missing.empty()) {
    spdlog::info("scan: {}: known from an earlier scan ({} slices in it)", path, record.found.size());
    ++files_from_record_;
    ++files_done_;
    bytes_known_ += size;
    return;
  }
  spdlog::info("scan: {}: looking for {} slices in {} bytes", path, missing.size(), size);
  FetchContext ctx;
  ctx.cancel = stop_;
  std::vector<FoundSlice> found_now;
  Status st_scan = ScanImageFile(
      fd->get(), path, size, missing, kImageScanStride, ctx, &counters_,
      [this](const SliceId& id) { return HasFound(id); },
      [&](const FoundSlice& f) {
        found_now.push_back(f);
        Found(i, fd, f);
      });
  ++files_done_;
  if (!st_scan.ok()) {
    if (st_scan.code() != Status::Code::kCancelled) spdlog::warn("scan: {}", st_scan.ToString());
    return;  // nothing recorded: the next mount scans again
  }
  spdlog::info("scan: {}: {} slices found", path, found_now.size());
  if (store_ == nullptr) return;
  ImageScanRecord merged;
  merged.looked_for = record.looked_for;
  for (const SliceHead& h : missing.Heads()) merged.looked_for.push_back(h);
  std::sort(merged.looked_for.begin(), merged.looked_for.end());
  merged.found = record.found;
  merged.found.insert(merged.found.end(), found_now.begin(), found_now.end());
  Status rs = store_->Record(key, merged);
  if (!rs.ok()) spdlog::warn("scan: {}", rs.ToString());
}

Result<std::shared_ptr<const VerifiedSlice>> ImageFileSet::Open(const SliceRequest& request,
                                                                const FetchContext& ctx) {
  const SliceId& id = request.id;
  const bool may_appear = request.head.known() && wanted_.Find(request.head.len, request.head.sum) != nullptr;
  auto wake = ctx.OnCancel([this] {
    std::lock_guard<std::mutex> l(mu_);
    changed_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return found_.count(id) != 0 || done_ || !started_ || !may_appear || ctx.cancelled(); };
  changed_.wait_until(lock, ctx.deadline, ready);
  auto it = found_.find(id);
  if (it != found_.end()) {
    const Place p = it->second;
    lock.unlock();
    return std::shared_ptr<const VerifiedSlice>(std::make_shared<FileRangeSlice>(id, *p.path, p.file, p.offset));
  }
  if (ctx.cancelled()) return Status::Cancelled("scan: cancelled while image files were being scanned");
  if (!ready()) return Status::TimedOut("scan: deadline passed while image files were being scanned");
  return Status::NotFound("scan: no image file holds this slice");
}

bool ImageFileSet::HasFound(const SliceId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return found_.count(id) != 0;
}

void ImageFileSet::WaitUntilDone() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return done_ || !started_; });
}

ImageFileStats ImageFileSet::Stats() const {
  ImageFileStats s;
  s.files = files_.size();
  s.files_done = files_done_.load();
  s.files_from_record = files_from_record_.load();
  s.bytes_total = bytes_total_.load();
  s.bytes_read = counters_.bytes_read.load();
  s.bytes_done = s.bytes_read + bytes_known_.load();
  s.candidates = counters_.candidates.load();
  s.bytes_hashed = counters_.bytes_hashed.load();
  std::lock_guard<std::mutex> lock(mu_);
  s.slices_found = found_.size();
  s.done = done_;
  return s;
}

}  // namespace jigdoofus
