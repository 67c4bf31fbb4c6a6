// Md5Batcher: MD5 for many threads at once, in the lanes of one
// Md5LaneEngine (core/md5_lanes.h). Read-ahead and prefetch hash several
// slices at a time on several threads; each alone would run one MD5 chain
// per core, together they share the vector lanes of one.
//
// No thread of its own: it has one or more lane engines, and a caller
// whose job is waiting and finds an engine with no thread hashing becomes
// its leader, admitting queued jobs into free lanes as it goes. When its own
// job is done it returns, and a caller whose job is in that engine's lanes
// takes over. A caller that gives up (its ctx
// is cancelled or its deadline passes) has its job dropped at the leader's
// next step, then returns.
//
// Thread-safe. Lock order: mu_ is a leaf; never held while reading or
// hashing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "core/md5_lanes.h"

namespace jigdoofus {

struct Md5BatcherStats {
  uint64_t jobs = 0;
  uint64_t steps = 0;
  uint64_t lane_steps = 0;  // sum over steps of the lanes busy in it (lanes_busy / steps: the batching)
};

class Md5Batcher {
 public:
  explicit Md5Batcher(Md5Kernel kernel = BestMd5Kernel(), size_t engines = 1);
  ~Md5Batcher();
  // The process's batcher.
  static Md5Batcher& Shared();
  // The MD5 of `stream`, hashed with whatever else is being hashed.
  Result<Digest> Hash(const Md5Stream& stream, const FetchContext& ctx);
  Md5BatcherStats stats() const;

 private:
  struct Job;
  struct Engine;
  void Lead(Engine* e, const std::shared_ptr<Job>& mine, std::unique_lock<std::mutex>& lock);

  std::vector<std::unique_ptr<Engine>> engines_;  // fixed after construction
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Job>> queued_;   // GUARDED_BY(mu_): not yet in a lane
  uint64_t next_id_ = 0;                      // GUARDED_BY(mu_)
  Md5BatcherStats stats_;                     // GUARDED_BY(mu_)
};

}  // namespace jigdoofus
