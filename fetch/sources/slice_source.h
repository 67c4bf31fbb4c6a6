// SliceSource: one place slices can come from (a --local label tree, a
// --scan tree, file: servers, later the chunk cache and mirrors).
// SliceResolver (fetch/slice_resolver.h) tries sources in order.
//
// A source returns only verified slices: it hashes what it found (or finds
// a still-valid verification record) before returning.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/jigdo_file.h"
#include "core/slice_provider.h"

namespace jigdoofus {

struct SliceRequest {
  SliceId id;
  // Where the .jigdo says the slice lives, expanded (JigdoFile::LocationsFor).
  std::vector<SliceLocation> locations;
  // The .jigdo the locations came from (relative file: URLs resolve
  // against its origin()).
  const JigdoFile* jigdo = nullptr;
  // The template's head sum of the slice, if it has one: a scan reads this
  // many bytes of a candidate and rejects it unless they sum to this.
  SliceHead head;
};

// Each slice's head sum, from the templates of one .jigdo.
using SliceHeadMap = std::unordered_map<SliceId, SliceHead, SliceIdHash>;

class SliceSource {
 public:
  virtual ~SliceSource() = default;
  // Short name for logs and counters ("local", "scan", "file-url", "cache", "http").
  virtual const char* name() const = 0;
  // kNotFound when this source has no candidate; kCorruption when every
  // candidate failed its checksum; other errors as they come.
  // Thread-safe.
  virtual Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                            const FetchContext& ctx) = 0;
  // Whether Open() could produce the slice now, without the network, from
  // bytes already verified (a verification record that still matches the
  // file, a complete slice in the cache). Cheap (stat, lookups; no
  // hashing, no download). For status and planning. Thread-safe.
  virtual bool HasVerified(const SliceRequest& request) { return false; }
};

}  // namespace jigdoofus
