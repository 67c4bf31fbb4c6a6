// RecentFailures: the last read failures of a mount with their causes
// (image, offset, class, message), for its status: "why did that read
// fail" without digging in the log. Bounded; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace jigdoofus {

class RecentFailures {
 public:
  static constexpr size_t kKept = 20;
  void Note(const std::string& image, uint64_t offset, size_t length, const char* cause, const Status& status);
  // Newest first: [{"image", "offset", "length", "cause", "message", "seconds_ago"}].
  nlohmann::json Snapshot() const;

 private:
  struct Entry {
    std::string image;
    uint64_t offset = 0;
    size_t length = 0;
    std::string cause;
    std::string message;
    std::chrono::steady_clock::time_point when;
  };
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // GUARDED_BY(mu_), newest at the front
};

}  // namespace jigdoofus
