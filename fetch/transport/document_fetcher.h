// DocumentFetcher: the small files a mount needs before any slice: .jigdo
// files given by URL, [Include URL]s, and templates named by URL.
//
// Every document fetched from the network is also saved under `dir`
// (written to "<name>.part", renamed when complete), so a remount works
// with --offline or while the server is down:
//   dir/jigdo/<sha256(url)>          .jigdo and include texts, by URL
//   dir/templates/<digest hex>       templates with a Template-*Sum, by checksum
//   dir/templates/url-<sha256(url)>  templates without one, by URL
// A template known by checksum is reused from `dir` without touching the
// network (the caller verifies it; a mismatch means Discard() and fetch
// again). A .jigdo is fetched fresh when online (it may have changed) and
// the saved copy is used only offline or when every attempt failed, with a
// warning in the log.
//
// Thread-safety: all methods are thread-safe (no shared mutable state
// besides the filesystem, where renames are atomic).
#pragma once

#include <optional>
#include <string>

#include "core/byte_source.h"
#include "core/digest.h"
#include "core/jigdo_file.h"
#include "core/result.h"
#include "fetch/transport/downloader.h"

namespace jigdoofus {

struct DocumentFetcherOptions {
  std::string dir;          // empty: nothing is saved (and offline finds nothing)
  bool offline = false;
  double timeout_s = 120;   // per document
  uint64_t max_jigdo_size = kMaxDocumentBytes;
  uint64_t max_template_size = 4ull << 30;
};

class DocumentFetcher {
 public:
  // `downloader` may be null (offline).
  DocumentFetcher(Downloader* downloader, DocumentFetcherOptions options);

  // The raw bytes (maybe gzip) of a .jigdo or include at `url`.
  Result<std::string> FetchJigdo(const std::string& url);
  // A local path holding the template at `url`.
  Result<std::string> FetchTemplate(const std::string& url, const std::optional<Digest>& expected);
  // Forgets a saved template that failed verification.
  void Discard(const std::string& path);

 private:
  Result<std::string> SavedPath(const std::string& subdir, const std::string& name);
  FetchContext Context() const;
  Downloader* downloader_;
  DocumentFetcherOptions options_;
};

// IncludeLoader for [Include] directives: local paths and file: URLs from
// disk, http(s)/ftp URLs through a DocumentFetcher.
class UrlIncludeLoader final : public IncludeLoader {
 public:
  explicit UrlIncludeLoader(DocumentFetcher* fetcher) : fetcher_(fetcher) {}
  Result<std::string> Load(const std::string& uri) override;

 private:
  DocumentFetcher* fetcher_;
  LocalIncludeLoader local_;
};

}  // namespace jigdoofus
