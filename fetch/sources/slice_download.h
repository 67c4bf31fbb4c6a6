// DownloadSlice: one slice from one URL into a SliceSink.
//
// The downloader's I/O thread only queues the bytes (at most
// kMaxInboxBytes per transfer, then the transfer is paused); this thread
// (the reader's) appends them to the sink, so hashing and LMDB writes
// never hold up other transfers. It waits on a condition variable woken by
// the transfer, the request's cancellation or its deadline: no polling.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/fetch_context.h"
#include "fetch/transport/downloader.h"
#include "fetch/sources/slice_sink.h"

namespace jigdoofus {

// Bytes received but not yet stored, per transfer: past this, the
// transfer is paused until the storing thread catches up. 1 MiB reads as
// fast as 4 MiB did (cold read of the 1 GB bench image from nginx on
// 127.0.0.1: 3.06-3.30 s against 3.09-3.34 s) and holds less.
inline constexpr size_t kMaxInboxBytes = size_t{1} << 20;

// What came of one download. Each field has one meaning:
//  kind      who decides what happens next
//  server    what the server did (kOk if it delivered the whole body);
//            drives the server's health (ShouldRetryServerLater)
//  status    the error for logs and for the reader (OK when kStored)
struct DownloadOutcome {
  enum class Kind {
    kStored,        // verified and stored; `slice` is it
    kServerFailed,  // the server failed (server says why): try another
    kBadChecksum,   // the server sent other bytes: try another
    kSinkFailed,    // storing failed (status: kNoSpace, kInternal, ...)
    kGaveUp,        // the request was cancelled or its deadline passed
    kOvertaken,     // abandoned: another server should finish it sooner (the pace said so)
  };
  Kind kind = Kind::kServerFailed;
  FetchError server = FetchError::kOk;
  Status status;
  std::shared_ptr<const VerifiedSlice> slice;
  uint64_t bytes = 0;  // body bytes received
};

// Asked while a download runs (after each batch of bytes, and at least
// every kPaceInterval): whether to abandon it for another server.
// `bytes`: received so far; `seconds`: since the download started.
using DownloadPace = std::function<bool(uint64_t bytes, double seconds)>;
inline constexpr std::chrono::milliseconds kPaceInterval{250};

DownloadOutcome DownloadSlice(Downloader& downloader, const std::string& url, const SliceId& id, SliceSink& sink,
                              const FetchContext& ctx, const DownloadPace& pace = nullptr);

}  // namespace jigdoofus
