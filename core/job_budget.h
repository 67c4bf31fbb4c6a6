// JobBudget: how many downloads beyond --jobs the servers in use want to
// run now. A far server sending small files spends most of each download
// waiting for its first byte, so it needs more of them at once to keep its
// uplink busy (ServerScores::Connections); each mirror source says what
// its servers want beyond the base (Set), and the prefetcher runs that many
// more workers (Total), up to its own ceiling (WorkersAllowed); so does a
// `jigdoofus-ctl prefetch` job.
//
// Thread-safe; its mutex is a leaf (Total may be called under other locks).
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace jigdoofus {

class JobBudget {
 public:
  // `server` (of one mirror source: the key names both) wants `extra`
  // downloads beyond the base; 0 withdraws it.
  void Set(const std::string& server, size_t extra);
  size_t Total() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, size_t> extra_;  // GUARDED_BY(mu_); only servers that want more
};

// Workers that may fetch at once now: `base` (at least 1), plus what
// `budget` (may be null: none) asks for, up to `ceiling` in all.
size_t WorkersAllowed(const JobBudget* budget, size_t base, size_t ceiling);

}  // namespace jigdoofus
