#include "fetch/transport/fetch_error.h"

#include <utility>

namespace jigdoofus {

const char* ToString(FetchError e) {
  switch (e) {
    case FetchError::kOk: return "ok";
    case FetchError::kNotFound: return "not-found";
    case FetchError::kClientError: return "client-error";
    case FetchError::kServerError: return "server-error";
    case FetchError::kConnect: return "connect";
    case FetchError::kNetwork: return "network";
    case FetchError::kTimeout: return "timeout";
    case FetchError::kTls: return "tls";
    case FetchError::kTooManyRedirects: return "too-many-redirects";
    case FetchError::kTooLong: return "too-long";
    case FetchError::kTruncated: return "truncated";
    case FetchError::kBadChecksum: return "bad-checksum";
    case FetchError::kNoRange: return "no-range";
    case FetchError::kBadUrl: return "bad-url";
    case FetchError::kCancelled: return "cancelled";
    case FetchError::kInternal: return "internal";
  }
  return "unknown";
}

bool ShouldRetryServerLater(FetchError e) {
  switch (e) {
    case FetchError::kServerError:
    case FetchError::kConnect:
    case FetchError::kNetwork:
    case FetchError::kTimeout:
    case FetchError::kTruncated:
    case FetchError::kInternal:
      return true;
    case FetchError::kOk:
    case FetchError::kNotFound:
    case FetchError::kClientError:
    case FetchError::kTls:
    case FetchError::kTooManyRedirects:
    case FetchError::kTooLong:
    case FetchError::kBadChecksum:
    case FetchError::kNoRange:
    case FetchError::kBadUrl:
    case FetchError::kCancelled:
      return false;
  }
  return false;
}

Status FetchErrorToStatus(FetchError e, std::string message) {
  switch (e) {
    case FetchError::kNotFound: return Status::NotFound(std::move(message));
    case FetchError::kTooLong:
    case FetchError::kBadChecksum: return Status::Corruption(std::move(message));
    case FetchError::kTimeout: return Status::TimedOut(std::move(message));
    case FetchError::kCancelled: return Status::Cancelled(std::move(message));
    case FetchError::kBadUrl: return Status::InvalidArgument(std::move(message));
    case FetchError::kOk: return Status::InvalidArgument("internal: FetchErrorToStatus(kOk): " + message);
    default: return Status::Unavailable(std::move(message));
  }
}

}  // namespace jigdoofus
