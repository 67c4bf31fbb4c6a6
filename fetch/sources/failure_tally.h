// FailureTally: the first failure of each kind met while trying several
// candidates for a slice (locations, sources), so that the caller can
// report the most telling one. kNotFound is not kept: it is what "nothing
// found" says anyway. A value type.
#pragma once

#include "core/status.h"

namespace jigdoofus {

struct FailureTally {
  Status corruption;   // a candidate's bytes did not match
  Status unavailable;  // could not be had right now (offline, servers failed)
  Status other;        // anything else (I/O errors, a source's own time limit)

  void Note(const Status& st) {
    Status* slot = &other;
    switch (st.code()) {
      case Status::Code::kOk:
      case Status::Code::kNotFound: return;
      case Status::Code::kCorruption: slot = &corruption; break;
      case Status::Code::kUnavailable: slot = &unavailable; break;
      default: break;
    }
    if (slot->ok()) *slot = st;
  }
};

}  // namespace jigdoofus
