#include "core/md5_batcher.h"

#include <algorithm>
#include <optional>

namespace jigdoofus {

struct Md5Batcher::Job {
  Job(const Md5Stream* s, uint64_t i) : stream(s), id(i) {}
  const Md5Stream* stream;
  uint64_t id;
  std::condition_variable wake;          // its result arrived, or it should lead
  Engine* engine = nullptr;              // GUARDED_BY(mu_): the engine whose lane holds it
  bool abandoned = false;                // GUARDED_BY(mu_): drop at the next step
  std::optional<Result<Digest>> result;  // GUARDED_BY(mu_)
};

struct Md5Batcher::Engine {
  explicit Engine(Md5Kernel kernel) : lanes(kernel) {}
  Md5LaneEngine lanes;                        // touched only by its leader
  bool leading = false;                       // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<Job>> in_lanes; // GUARDED_BY(mu_)
};

Md5Batcher::Md5Batcher(Md5Kernel kernel, size_t engines) {
  for (size_t i = 0; i < std::max<size_t>(1, engines); ++i) engines_.push_back(std::make_unique<Engine>(kernel));
}

Md5Batcher::~Md5Batcher() = default;

Md5Batcher& Md5Batcher::Shared() {
  // One engine: the lanes fill best when every small and middling stream
  // goes to the same one (measured on a first read of a 1 GB MD5 image from
  // a local tree: 2.1 CPU-s with one engine, 2.8 with one per core, the
  // same wall time). Long streams do not come here (see HashFileRange).
  static Md5Batcher* batcher = new Md5Batcher(BestMd5Kernel(), 1);
  return *batcher;  // never destroyed: threads may hash at exit
}

Md5BatcherStats Md5Batcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<Digest> Md5Batcher::Hash(const Md5Stream& stream, const FetchContext& ctx) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> l(mu_);
    job = std::make_shared<Job>(&stream, next_id_++);
  }
  auto wake = ctx.OnCancel([this, job] {
    std::lock_guard<std::mutex> l(mu_);
    job->wake.notify_all();
  });
  // Declared after `wake`, so released before it unsubscribes: the
  // wake-up takes mu_ while the signal holds its own lock (OneShotSignal's
  // REQUIRES), and unsubscribing under mu_ deadlocked against a Fire().
  std::unique_lock<std::mutex> lock(mu_);
  ++stats_.jobs;
  queued_.push_back(job);
  for (;;) {
    if (job->result) {
      if (job->abandoned) {
        return ctx.cancelled() ? Status::Cancelled("md5: hashing cancelled")
                               : Status::TimedOut("md5: deadline passed while hashing");
      }
      return std::move(*job->result);
    }
    if (!job->abandoned && (ctx.cancelled() || ctx.expired())) {
      job->abandoned = true;
      auto it = std::find(queued_.begin(), queued_.end(), job);
      if (it != queued_.end()) {
        queued_.erase(it);
        continue;  // result below: not in a lane, nothing to wait for
      }
      // In a lane: its leader drops it at the next step (its stream must
      // stay alive until then), or this thread leads that engine and drops it.
    }
    if (job->abandoned && job->engine == nullptr && !job->result) job->result = Status::Cancelled("");
    if (job->result) continue;
    // Lead: the engine holding this job if it has no leader, else (still
    // queued) any engine without one.
    Engine* lead = nullptr;
    if (job->engine != nullptr) {
      if (!job->engine->leading) lead = job->engine;
    } else {
      for (auto& e : engines_) {
        if (!e->leading) {
          lead = e.get();
          break;
        }
      }
    }
    if (lead != nullptr) {
      Lead(lead, job, lock);
      continue;
    }
    if (job->abandoned) {
      job->wake.wait(lock);
    } else {
      job->wake.wait_until(lock, ctx.deadline);
    }
  }
}

// REQUIRES lock held, !e->leading. Returns with the lock held once `mine`
// has a result.
void Md5Batcher::Lead(Engine* e, const std::shared_ptr<Job>& mine, std::unique_lock<std::mutex>& lock) {
  e->leading = true;
  std::vector<std::pair<uint64_t, Result<Digest>>> finished;
  while (!mine->result) {
    // Admit what is queued; drop what was abandoned.
    while (!queued_.empty() && e->lanes.Admit(queued_.front()->stream, queued_.front()->id)) {
      queued_.front()->engine = e;
      e->in_lanes.push_back(queued_.front());
      queued_.pop_front();
    }
    for (auto it = e->in_lanes.begin(); it != e->in_lanes.end();) {
      if ((*it)->abandoned) {
        e->lanes.Drop((*it)->id);
        (*it)->result = Status::Cancelled("md5: hashing abandoned");
        (*it)->wake.notify_all();
        it = e->in_lanes.erase(it);
      } else {
        ++it;
      }
    }
    if (e->lanes.active() == 0) break;  // mine was abandoned and dropped
    ++stats_.steps;
    stats_.lane_steps += e->lanes.active();
    lock.unlock();
    finished.clear();
    e->lanes.Step([&](uint64_t id, Result<Digest> r) { finished.emplace_back(id, std::move(r)); });
    lock.lock();
    for (auto& done : finished) {
      const uint64_t id = done.first;
      auto it = std::find_if(e->in_lanes.begin(), e->in_lanes.end(), [id](const auto& j) { return j->id == id; });
      if (it == e->in_lanes.end()) continue;
      (*it)->result = std::move(done.second);
      (*it)->wake.notify_all();
      e->in_lanes.erase(it);
    }
  }
  e->leading = false;
  // Other jobs may still be in this engine's lanes, or queued: one of them
  // leads it next.
  if (!e->in_lanes.empty()) {
    e->in_lanes.front()->wake.notify_all();
  } else if (!queued_.empty()) {
    queued_.front()->wake.notify_all();
  }
}

}  // namespace jigdoofus
