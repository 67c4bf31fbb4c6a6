#include "fs/errno_map.h"

#include <cerrno>

namespace jigdoofus {

int ErrnoFromStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return 0;
    case Status::Code::kNotFound:
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kUnavailable:
    case Status::Code::kTimedOut:
    case Status::Code::kNotSupported:
    case Status::Code::kNoSpace:
    case Status::Code::kInternal: return EIO;
    case Status::Code::kCancelled: return EINTR;
    case Status::Code::kInvalidArgument: return EINVAL;
  }
  return EIO;
}

const char* FailureTag(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kNotFound: return "eio-not-found";
    case Status::Code::kCorruption: return "eio-corruption";
    case Status::Code::kIOError: return "eio-io-error";
    case Status::Code::kUnavailable: return "eio-unavailable";
    case Status::Code::kTimedOut: return "eio-timed-out";
    case Status::Code::kNotSupported: return "eio-not-supported";
    case Status::Code::kCancelled: return "eintr-cancelled";
    case Status::Code::kInvalidArgument: return "einval-invalid-argument";
    case Status::Code::kNoSpace: return "eio-no-space";
    case Status::Code::kInternal: return "eio-internal";
  }
  return "eio-unknown";
}

std::map<std::string, uint64_t> FailureCounters::Snapshot() const {
  std::map<std::string, uint64_t> out;
  for (size_t i = 1; i < kStatusCodeCount; ++i) {
    auto code = static_cast<Status::Code>(i);
    out[FailureTag(code)] = Get(code);
  }
  return out;
}

}  // namespace jigdoofus
