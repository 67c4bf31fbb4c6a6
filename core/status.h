// Status: the one error type of jigdoofus.
//
// A Status is either OK or carries a Code and a human-readable message that
// names the thing that failed ("debian.template: DESC entries add up to 12
// bytes, image length is 14"). Libraries return Status / Result<T>; nothing
// in core/, cache/ or fetch/ throws on purpose. fs/ turns a Status into an
// errno in exactly one place (fs/errno_map.cc).
//
// Thread-safety: a Status is a value; distinct objects may be used from
// different threads freely.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace jigdoofus {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // no such file / slice / label
    kCorruption,       // malformed input or a checksum that does not match
    kIOError,          // the operating system said no
    kUnavailable,      // could not be had right now (offline, all servers failed)
    kInvalidArgument,  // bad command line or option value
    kNotSupported,     // a format feature we do not implement
    kTimedOut,         // a bounded wait ran out
    kCancelled,        // the caller gave up (interrupted read)
    kNoSpace,          // the disk or the cache map is full (ENOSPC, EDQUOT, MDB_MAP_FULL)
    kInternal,         // a broken invariant of jigdoofus itself (a bug): never the reader's fault
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  // IOError from errno: "<context>: <strerror(err)>".
  static Status FromErrno(std::string_view context, int err);
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotSupported(std::string msg) { return Status(Code::kNotSupported, std::move(msg)); }
  static Status TimedOut(std::string msg) { return Status(Code::kTimedOut, std::move(msg)); }
  static Status Cancelled(std::string msg) { return Status(Code::kCancelled, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(Code::kNoSpace, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }

  // Returns a copy whose message is "<prefix>: <message>".
  Status WithContext(std::string_view prefix) const;
  // "OK" or "<code name>: <message>".
  std::string ToString() const;
  static const char* CodeName(Code code);

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace jigdoofus

// Evaluates `expr` (a Status); returns it from the enclosing function if not OK.
#define JIGDOOFUS_RETURN_IF_ERROR(expr)        \
  do {                                         \
    ::jigdoofus::Status _st = (expr);          \
    if (!_st.ok()) return _st;                 \
  } while (0)
