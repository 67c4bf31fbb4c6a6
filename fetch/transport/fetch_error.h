// FetchError: why one download failed, in classes that drive mirror
// fallback (try the next server now? come back to this one later?).
//
// The Downloader (fetch/transport/downloader.h) classifies transport and HTTP
// failures; kBadChecksum is never produced by it: the caller that verifies
// the bytes assigns it.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace jigdoofus {

enum class FetchError {
  kOk = 0,
  kNotFound,          // HTTP 404/410, FTP "no such file", missing file: URL
  kClientError,       // other HTTP 4xx (403, 416, ...)
  kServerError,       // HTTP 5xx, FTP server-side failures
  kConnect,           // connection refused, DNS failure, no route
  kNetwork,           // connection reset, send/receive error, empty reply
  kTimeout,           // connect timeout or low-speed timeout
  kTls,               // certificate verification or TLS handshake failed
  kTooManyRedirects,  // redirect loop or chain longer than the limit
  kTooLong,           // body longer than expected_size / max_size
  kTruncated,         // body shorter than announced or expected
  kBadChecksum,       // set by the caller: bytes arrived but do not verify
  kNoRange,           // a Range request answered with other bytes (200, or
                      // another Content-Range): the server cannot do pieces
  kBadUrl,            // malformed URL or unsupported scheme
  kCancelled,         // Cancel(), consumer returned false, or shutdown
  kInternal,          // out of memory, curl misuse: a bug or a sick process
};
inline constexpr size_t kFetchErrorCount = static_cast<size_t>(FetchError::kInternal) + 1;

// "ok", "not-found", "server-error", ... (stable; used in logs and stats).
const char* ToString(FetchError e);

// Should this server be tried again later for the same file? True when
// the failure is likely transient (network trouble, timeouts, 5xx,
// truncated bodies); false when asking again would give the same answer
// (404, other 4xx, redirect loops, wrong size or checksum, bad URL) or the
// caller gave up (kCancelled). Either way the caller moves on to the next
// mirror now; this only says whether to come back to this one.
bool ShouldRetryServerLater(FetchError e);

// The Status for a failed fetch: kNotFound -> NotFound, kTooLong and
// kBadChecksum -> Corruption, kTimeout -> TimedOut, kCancelled ->
// Cancelled, kBadUrl -> InvalidArgument, the rest -> Unavailable.
// REQUIRES: e != kOk.
Status FetchErrorToStatus(FetchError e, std::string message);

}  // namespace jigdoofus
