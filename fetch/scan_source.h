// ScanSource: --scan DIR. Any file anywhere under DIR whose size and
// checksum match a slice is used for it. Start() walks the trees in a
// background thread (stat only, following no symlinks out of the tree);
// Open() waits for the walk, then hashes only the files whose size equals
// the slice's (verification records make this a one-time cost).
// Thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/verification_store.h"
#include "fetch/slice_source.h"

namespace jigdoofus {

class ScanSource final : public SliceSource {
 public:
  ScanSource(std::vector<std::string> dirs, VerificationStore* store);
  ~ScanSource() override;
  void Start();  // begins the background walk
  const char* name() const override { return "scan"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;

 private:
  void Walk();
  std::vector<std::string> dirs_;
  VerificationStore* store_;
  std::mutex mu_;                     // guards the fields below
  std::condition_variable walked_cv_;
  bool walked_ = false;
  std::multimap<uint64_t, std::string> by_size_;  // size -> path
  std::thread walker_;
};

}  // namespace jigdoofus
