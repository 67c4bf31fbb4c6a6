// VerifyImage: reads an image whole, as a reader of the mount would, and
// checks it against the image checksum in its template (MD5 or SHA256),
// as `jigdo-file verify` checks a file.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/fetch_context.h"
#include "fetch/mount/image_prefetch.h"
#include "fetch/mount/image_set.h"

namespace jigdoofus {

struct VerifyOutcome {
  std::string algo;      // "MD5" or "SHA256"
  std::string expected;  // hex, from the template
  std::string actual;    // hex, of the bytes read
  bool matches() const { return expected == actual; }
};

// kNotSupported when the template holds no image checksum; read errors as
// they come (the image could not be read whole). `progress` as for
// PrefetchImage (done/total bytes read).
Result<VerifyOutcome> VerifyImage(const OpenImage& image, const MountConfig& config,
                                  std::shared_ptr<CancelSignal> cancel,
                                  const std::function<void(const JobProgress&)>& progress);

}  // namespace jigdoofus
