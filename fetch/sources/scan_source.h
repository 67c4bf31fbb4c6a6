// ScanSource: --scan DIR. Any file anywhere under DIR whose size and
// checksum match a slice is used for it. Start() walks the trees in a
// background thread (stat only, following no symlinks out of the tree);
// Open() waits for the walk, then hashes only the files whose size equals
// the slice's (verification records make this a one-time cost).
// Files are hashed at most once per mount and algorithm: matches are
// recorded in the VerificationStore, mismatches in an in-memory memo.
// Symlinks are not followed at all (neither to files nor to directories),
// so the walk cannot loop or leave the trees; unreadable directories are
// skipped quietly.
// Thread-safe. Lock order: mu_ is a leaf; never held while hashing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/verification_store.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

class ScanSource final : public SliceSource {
 public:
  ScanSource(std::vector<std::string> dirs, VerificationStore* store);
  ~ScanSource() override;
  void Start();  // begins the background walk; Open() calls it if needed
  const char* name() const override { return "scan"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;
  // A file of the slice's size with a matching verification record (once
  // the walk is done).
  bool HasVerified(const SliceRequest& request) override;

 private:
  class MemoStore;
  void Walk();
  Status WaitForWalk(const FetchContext& ctx);
  std::vector<std::string> dirs_;
  VerificationStore* store_;
  std::unique_ptr<MemoStore> memo_;   // store_ plus digests of files that did not match
  std::atomic<bool> stop_{false};     // set by the destructor; ends the walk early
  std::mutex mu_;                     // guards the fields below
  std::condition_variable walked_cv_;
  bool started_ = false;
  bool walked_ = false;
  std::multimap<uint64_t, std::string> by_size_;  // size -> path
  std::thread walker_;
};

}  // namespace jigdoofus
