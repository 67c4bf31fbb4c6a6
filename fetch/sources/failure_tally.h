// FailureTally: the first failure of each kind met while trying several
// candidates for a slice (locations, sources), so that the caller can
// report the most telling one. The first kNotFound is kept apart: it says
// where a source looked (the local paths tried), worth adding to another
// failure's message. A value type.
#pragma once

#include "core/status.h"

namespace jigdoofus {

struct FailureTally {
  Status corruption;   // a candidate's bytes did not match
  Status unavailable;  // could not be had right now (offline, servers failed)
  Status other;        // anything else (I/O errors, a source's own time limit)
  Status not_found;    // where a source looked and found nothing

  void Note(const Status& st) {
    Status* slot = &other;
    switch (st.code()) {
      case Status::Code::kOk: return;
      case Status::Code::kNotFound: slot = &not_found; break;
      case Status::Code::kCorruption: slot = &corruption; break;
      case Status::Code::kUnavailable: slot = &unavailable; break;
      default: break;
    }
    if (slot->ok()) *slot = st;
  }
};

}  // namespace jigdoofus
