// LocalTreeSource: serves slices from local directories:
//  * --local LABEL=DIR: a location "LABEL:path" maps to DIR/path;
//  * file: URLs among the expanded locations (jigdo-file writes
//    "A=file:tree/" servers), resolved against the directory of the .jigdo
//    that defined them (SliceLocation::base, else request.jigdo->origin()).
//    These have no DIR bound (the .jigdo's author chose them), but are
//    ignored when that .jigdo came from a remote URL.
// Paths may never escape DIR: "..", absolute paths and symlinks that
// resolve outside DIR are refused, as if not found (openat2
// RESOLVE_BENEATH where the kernel has it, else a realpath check).
// Candidates are tried in location order; the first verified one wins.
// Open() returns kCorruption if a candidate existed but failed its
// checksum and none matched, kNotFound if none existed.
// Thread-safe (no mutable state; the store must be thread-safe).
#pragma once

#include <map>
#include <string>

#include "cache/verification_store.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

class LocalTreeSource final : public SliceSource {
 public:
  // `labels`: label -> directory (absolute). `store` outlives the source.
  LocalTreeSource(std::map<std::string, std::string> labels, bool use_file_urls, VerificationStore* store);
  const char* name() const override { return "local"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;

 private:
  std::map<std::string, std::string> labels_;
  bool use_file_urls_;
  VerificationStore* store_;
};

}  // namespace jigdoofus
