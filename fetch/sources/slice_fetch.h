// SliceFetch: one slice from one or several servers at once into a
// SliceSink, as a PiecePlan (fetch/sources/piece_plan.h) decides: a small
// slice from the best server, a large one in Range pieces from all the
// servers worth it, a lane that fails resumed elsewhere from where it
// stopped, a lane that is much slower than an idle server would be raced
// by that server. The sink gets the bytes in slice order and verifies the
// whole slice at the end: nothing is served before.
//
// The downloader's I/O thread only queues each lane's bytes (at most
// kMaxInboxBytes per lane, then that transfer is paused); the calling
// thread (the reader's) hands them to the plan and the sink, so hashing
// and LMDB writes never hold up other transfers. It waits on one condition
// variable woken by the lanes, the request's cancellation or deadline, and
// every kPlanInterval to look at the lanes' pace (hedging).
//
// A reader waiting on the slice (FetchContext::urgent: a FUSE read from
// the start, or one that joined a read-ahead fetch since, seen at the next
// look) makes its new lanes urgent in the downloader's queue, and lets a
// server run several of its pieces at once (PiecePlan::SetUrgent).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fetch_context.h"
#include "fetch/sources/piece_plan.h"
#include "fetch/sources/slice_sink.h"
#include "fetch/transport/downloader.h"

namespace jigdoofus {

// Bytes received but not yet taken, per lane: past this, the transfer is
// paused until the storing thread catches up. 1 MiB reads as fast as
// 4 MiB did (cold read of the 1 GB bench image from nginx on 127.0.0.1:
// 3.06-3.30 s against 3.09-3.34 s) and holds less.
inline constexpr size_t kMaxInboxBytes = size_t{1} << 20;
// How often the lanes' pace is looked at while bytes trickle or stop.
inline constexpr std::chrono::milliseconds kPlanInterval{250};

// What came of fetching one slice. Each field has one meaning:
//  kind      who decides what happens next
//  server    the last server failure seen (kOk if none)
//  status    the error for logs and for the reader (OK when kStored)
struct DownloadOutcome {
  enum class Kind {
    kStored,        // verified and stored; `slice` is it
    kServerFailed,  // every server failed (status says why)
    kBadChecksum,   // the bytes did not verify (contributors: who sent them)
    kSinkFailed,    // storing failed (status: kNoSpace, kInternal, ...)
    kGaveUp,        // the request was cancelled or its deadline passed
  };
  Kind kind = Kind::kServerFailed;
  FetchError server = FetchError::kOk;
  Status status;
  std::shared_ptr<const VerifiedSlice> slice;
  uint64_t bytes = 0;                 // body bytes received, duplicates included
  std::vector<size_t> contributors;   // servers whose bytes were kept
  bool range_refused = false;         // some server answered a Range request with other bytes
  size_t pieces = 1;
  size_t hedges = 0;
};

// What SliceFetch tells the mirror source about each lane, and asks it.
class LaneObserver {
 public:
  // One running lane's record (transfer log entry, score bookkeeping).
  class Lane {
   public:
    virtual ~Lane() = default;
    virtual void Bytes(uint64_t n) = 0;
  };
  enum class End {
    kDone,        // its piece is complete
    kSuperseded,  // another lane completed its piece first; cancelled
    kStalled,     // cancelled for stalling: its server is stalling now
    kFailed,      // the server failed (error, message)
    kGaveUp,      // the reader is gone or the slice failed otherwise
  };
  virtual ~LaneObserver() = default;
  // A lane of `bytes` bytes from `url` starts.
  virtual std::unique_ptr<Lane> Began(const std::string& url, uint64_t bytes) = 0;
  virtual void Ended(std::unique_ptr<Lane> lane, const std::string& url, End end, FetchError error,
                     const std::string& message) = 0;
  // Expected seconds for n bytes from urls[i], given what each server
  // does now; valid for one round of decisions.
  virtual PiecePlan::Estimator Estimates(const std::vector<std::string>& urls) = 0;
};

struct SliceFetchServer {
  std::string url;       // the slice's URL on this server
  PieceServer plan;      // tier, known not to do ranges
};

// Runs the fetch to its end. `servers` in preference order.
DownloadOutcome FetchSlice(Downloader& downloader, const std::vector<SliceFetchServer>& servers, const SliceId& id,
                           SliceSink& sink, const FetchContext& ctx, LaneObserver& observer,
                           const PiecePlanOptions& options);

}  // namespace jigdoofus
