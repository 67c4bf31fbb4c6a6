#include "core/job_budget.h"

namespace jigdoofus {

void JobBudget::Set(const std::string& server, size_t extra) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = extra_.find(server);
  if (it != extra_.end()) total_ -= it->second;
  if (extra == 0) {
    if (it != extra_.end()) extra_.erase(it);
    return;
  }
  extra_[server] = extra;
  total_ += extra;
}

size_t JobBudget::Total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

}  // namespace jigdoofus
