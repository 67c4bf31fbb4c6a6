// ImageSet: turns the SOURCE arguments into images ready to read. The one
// place that composes core/, cache/ and fetch/; both the mount (fs/) and
// jigdoofus-cat use it, so neither knows how images are put together.
//
// Open() does all the checking a user wants reported before the mount
// exists: every SOURCE parses, every template is found and its structure
// valid, every Filename= is a single safe path component, no two images
// share a name, the cache directory opens. Errors name the file and what is
// wrong, in one line.
//
// Thread-safe after Open(): images() is immutable; readers are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/image_reader.h"
#include "core/jigdo_file.h"
#include "core/result.h"

namespace jigdoofus {

// --cache-size when none is given.
inline constexpr uint64_t kDefaultCacheSize = uint64_t{10} << 30;

struct ImageSetOptions {
  std::vector<std::string> sources;                // .jigdo paths, URLs, or directories of .jigdo files
  std::string cache_dir;                           // empty: no persistent cache (memory only)
  uint64_t cache_size = 0;                         // 0: kDefaultCacheSize
  std::map<std::string, std::string> local;        // --local LABEL=DIR
  std::vector<std::string> scan;                   // --scan DIR
  std::vector<std::pair<std::string, std::string>> mirrors;  // --mirror LABEL=URL, in order
  bool offline = false;
  int jobs = 8;
  double fetch_timeout_s = 60;                     // bound on one read's wait for a slice
  // Verified local slices each resolver keeps open (one fd each); 0: the
  // resolver's default. The mount sizes it from RLIMIT_NOFILE.
  size_t max_open_slices = 0;
};

struct OpenImage {
  std::string name;                     // Filename=
  std::string source;                   // the .jigdo it came from
  std::shared_ptr<const JigdoFile> jigdo;
  std::unique_ptr<ImageReader> reader;
};

class ImageSet {
 public:
  static Result<std::unique_ptr<ImageSet>> Open(const ImageSetOptions& options);
  ~ImageSet();
  ImageSet(const ImageSet&) = delete;
  ImageSet& operator=(const ImageSet&) = delete;

  const std::vector<OpenImage>& images() const { return images_; }
  const ImageSetOptions& options() const { return options_; }
  // Human/machine-readable state (counters per cause, slices verified...),
  // served as the hidden status file. JSON text.
  std::string StatusJson() const;

 private:
  ImageSet() = default;
  struct State;
  ImageSetOptions options_;
  std::vector<OpenImage> images_;
  std::unique_ptr<State> state_;  // cache env, sources, resolvers
};

// "name" is a single path component that is safe to show in a directory:
// not empty, not "." or "..", no '/', no control characters, valid UTF-8 is
// not required. Returns an explanation when it is not.
Status ValidateImageName(const std::string& name);

}  // namespace jigdoofus
