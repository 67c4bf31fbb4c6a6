#include "fetch/mount/image_verify.h"

#include "core/digest.h"
#include "fetch/mount/image_stream.h"

namespace jigdoofus {

Result<VerifyOutcome> VerifyImage(const OpenImage& image, const MountConfig& config,
                                  std::shared_ptr<CancelSignal> cancel,
                                  const std::function<void(const JobProgress&)>& progress) {
  const std::optional<Digest>& want = image.reader->index().image_digest();
  if (!want) return Status::NotSupported(image.name + ": its template holds no image checksum");
  Hasher hasher(want->algo);
  JobProgress p;
  p.total_bytes = image.reader->size();
  if (progress) progress(p);
  Status st = StreamImage(
      image, 0, p.total_bytes, config,
      [&](std::span<const uint8_t> chunk) {
        hasher.Update(chunk);
        p.done_bytes += chunk.size();
        if (progress) progress(p);
        return Status::OK();
      },
      cancel);
  if (!st.ok()) return st;
  VerifyOutcome out;
  out.algo = HashAlgoName(want->algo);
  out.expected = want->ToHex();
  out.actual = hasher.Finish().ToHex();
  return out;
}

}  // namespace jigdoofus
