#include "core/job_budget.h"

#include <algorithm>

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

size_t WorkersAllowed(const JobBudget* budget, size_t base, size_t ceiling) {
  base = std::max<size_t>(1, base);
  if (budget == nullptr || ceiling <= base) return base;
  return base + std::min(budget->Total(), ceiling - base);
}

}  // namespace jigdoofus
