#include "fs/recent_failures.h"

namespace jigdoofus {

void RecentFailures::Note(const std::string& image, uint64_t offset, size_t length, const char* cause,
                          const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_front(Entry{image, offset, length, cause, status.message(), std::chrono::steady_clock::now()});
  if (entries_.size() > kKept) entries_.pop_back();
}

nlohmann::json RecentFailures::Snapshot() const {
  const auto now = std::chrono::steady_clock::now();
  nlohmann::json out = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& e : entries_) {
    out.push_back({{"image", e.image},
                   {"offset", e.offset},
                   {"length", e.length},
                   {"cause", e.cause},
                   {"message", e.message},
                   {"seconds_ago", std::chrono::duration<double>(now - e.when).count()}});
  }
  return out;
}

}  // namespace jigdoofus
