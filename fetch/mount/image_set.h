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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/image_reader.h"
#include "core/jigdo_file.h"
#include "core/result.h"
#include "fetch/mount/mount_config.h"
#include "fetch/sources/slice_resolver.h"

namespace jigdoofus {

struct OpenImage {
  std::string name;                     // Filename=
  std::string source;                   // the .jigdo it came from
  std::shared_ptr<const JigdoFile> jigdo;
  std::unique_ptr<ImageReader> reader;
  std::shared_ptr<SliceResolver> resolver;  // the reader's slices (shared by the .jigdo's images)
};

class ImageSet {
 public:
  static Result<std::unique_ptr<ImageSet>> Open(const MountConfig& config);
  ~ImageSet();
  ImageSet(const ImageSet&) = delete;
  ImageSet& operator=(const ImageSet&) = delete;

  const std::vector<OpenImage>& images() const { return images_; }
  const MountConfig& config() const { return config_; }
  // Things the user should hear about at mount time that do not stop it
  // (a file: server the mount will not read, ...), one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Human/machine-readable state (counters per cause, slices verified...),
  // served as the hidden status file. JSON text.
  std::string StatusJson() const;
  // Bytes in the chunk cache and its effective bound (none: no cache).
  struct CacheUse {
    uint64_t used = 0;
    uint64_t bound = 0;
  };
  std::optional<CacheUse> CacheUsage() const;
  // Where a slice of `image` would come from, for planning: complete in
  // the cache (kCached), in a local tree, a file: server or a scanned tree
  // (kLocal: found and verified now, hashed unless a record says so), or
  // only from a server (kDownload). Never downloads.
  enum class SliceOrigin { kCached, kLocal, kDownload };
  SliceOrigin Locate(const OpenImage& image, const SliceId& id) const;

 private:
  ImageSet() = default;
  struct State;
  MountConfig config_;
  std::vector<OpenImage> images_;
  std::vector<std::string> warnings_;
  std::unique_ptr<State> state_;  // cache env, sources, resolvers
};

// The kernel's limit on a name (NAME_MAX); a longer one would make every
// listing of the mount fail.
inline constexpr size_t kMaxImageNameBytes = 255;
// The mount's hidden status file (fs/jigdo_fs.h): no image may take it.
inline constexpr const char* kReservedStatusName = ".jigdoofus-status";

// "name" is a single path component that is safe to show in a directory:
// not empty, not "." or "..", at most 255 bytes, no '/', no control
// characters, not the status file's name; valid UTF-8 is not required.
// Returns an explanation when it is not.
Status ValidateImageName(const std::string& name);

}  // namespace jigdoofus
