// PrefetchImage: makes every slice of an image available without the
// network: each slice not available yet (fetch/mount/image_availability.h)
// is got through the image's resolver, `jobs` at a time (more while the
// mount's job budget asks for them, as its read-ahead does): a local file is
// verified (and its verification recorded), a mirror's copy is downloaded
// into the cache. Interrupted (`cancel`), no new slice is started, and the
// ones being fetched are finished and kept: nothing is lost, nothing will
// be fetched twice.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/fetch_context.h"
#include "core/job_budget.h"
#include "fetch/mount/image_set.h"

namespace jigdoofus {

// How many slices a job gets at once: `base`, plus what `budget` (may be
// null) asks for, up to `ceiling` (WorkersAllowed).
struct JobWorkers {
  size_t base = 1;
  std::shared_ptr<const JobBudget> budget;
  size_t ceiling = 0;
};

struct JobProgress {
  uint64_t done_bytes = 0;   // of total_bytes
  uint64_t total_bytes = 0;
  uint64_t failed = 0;       // slices that could not be got
  std::string last_error;
};

// Returns OK when every missing slice was got; otherwise the first error
// (after trying all of them, unless `cancel` fired: kCancelled). Each Get
// waits at most `fetch_timeout_s`; `abort` (may be null: never) cancels
// the Gets under way too (the mount is going away). `progress` (may be
// empty) is called after each slice, one call at a time, from the worker
// threads.
Status PrefetchImage(const OpenImage& image, const JobWorkers& jobs, double fetch_timeout_s,
                     std::shared_ptr<CancelSignal> cancel, std::shared_ptr<CancelSignal> abort,
                     const std::function<void(const JobProgress&)>& progress);

}  // namespace jigdoofus
