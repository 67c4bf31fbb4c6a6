// LocalTreeSource: serves slices from local directories:
//  * --local LABEL=DIR: a location "LABEL:path" maps to DIR/path;
//  * file: URLs among the expanded locations (jigdo-file writes
//    "A=file:tree/" servers, or "A=file:/abs/tree/"), resolved against the
//    directory of the .jigdo that defined them (SliceLocation::base, else
//    request.jigdo->origin()). They are ignored when that .jigdo came from
//    a remote URL, and are confined beneath its directory unless the scope
//    is kAnywhere (--trust-file-urls). Paths below a file: server stay
//    below the server's directory in either scope.
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
#include <tuple>
#include <vector>

#include "cache/verification_store.h"
#include "core/jigdo_file.h"
#include "fetch/sources/slice_source.h"

namespace jigdoofus {

// Where file: URLs of a local .jigdo may lead.
enum class FileUrlScope {
  kBeneathJigdo,  // beneath the directory of the .jigdo that wrote them
  kAnywhere,      // any path the user can read (--trust-file-urls)
};

// "LABEL=file:..." for each file: server of `jigdo` (or its local
// includes) that lies outside its .jigdo's directory: what kBeneathJigdo
// will not read, for a mount-time warning.
std::vector<std::string> FileServersOutsideJigdoDir(const JigdoFile& jigdo);

class LocalTreeSource final : public SliceSource {
 public:
  // `labels`: label -> directory (absolute). `store` outlives the source.
  LocalTreeSource(std::map<std::string, std::string> labels, FileUrlScope scope, VerificationStore* store);
  const char* name() const override { return "local"; }
  Result<std::shared_ptr<const VerifiedSlice>> Open(const SliceRequest& request,
                                                    const FetchContext& ctx) override;
  // A candidate file with a verification record that still matches it.
  bool HasVerified(const SliceRequest& request) override;

 private:
  // One place to look. `dir` empty: `path` is a file: URL's path (no bound).
  struct Candidate {
    std::string dir;
    std::string path;
    std::string display() const { return dir.empty() ? path : dir + "/" + path; }
    bool operator<(const Candidate& o) const { return std::tie(dir, path) < std::tie(o.dir, o.path); }
  };
  // Every place the request's locations name, in order, without duplicates.
  std::vector<Candidate> CandidatesFor(const SliceRequest& request) const;

  std::map<std::string, std::string> labels_;
  FileUrlScope scope_;
  VerificationStore* store_;
};

}  // namespace jigdoofus
