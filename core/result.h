// Result<T>: a value or a non-OK Status (like absl::StatusOr).
//
// REQUIRES: value() only when ok(); constructing from an OK Status is a bug
// (it is turned into an internal error so it never passes silently).
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "core/status.h"

namespace jigdoofus {

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status::InvalidArgument("internal: Result built from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;  // OK iff value_ is set
};

}  // namespace jigdoofus

// `JIGDOOFUS_ASSIGN_OR_RETURN(auto x, Foo());`
#define JIGDOOFUS_CONCAT_INNER(a, b) a##b
#define JIGDOOFUS_CONCAT(a, b) JIGDOOFUS_CONCAT_INNER(a, b)
#define JIGDOOFUS_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto JIGDOOFUS_CONCAT(_res_, __LINE__) = (expr);                     \
  if (!JIGDOOFUS_CONCAT(_res_, __LINE__).ok())                         \
    return JIGDOOFUS_CONCAT(_res_, __LINE__).status();                 \
  lhs = std::move(JIGDOOFUS_CONCAT(_res_, __LINE__)).value()
