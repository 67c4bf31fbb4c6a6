#include "core/job_budget.h"

namespace jigdoofus {

void JobBudget::Set(const std::string& server, size_t extra) {
  std::lock_guard<std::mutex> lock(mu_);
  if (extra == 0) {
    extra_.erase(server);
  } else {
    extra_[server] = extra;
  }
}

size_t JobBudget::Total() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = 0;
  for (const auto& [server, extra] : extra_) total += extra;
  return total;
}

}  // namespace jigdoofus
