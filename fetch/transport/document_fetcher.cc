#include "fetch/transport/document_fetcher.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/byte_source.h"
#include "core/private_dir.h"
#include "core/uri.h"

namespace jigdoofus {

namespace {

std::string UrlKey(const std::string& url) {
  return HashBytes(HashAlgo::kSha256, {reinterpret_cast<const uint8_t*>(url.data()), url.size()}).ToHex();
}

}  // namespace

DocumentFetcher::DocumentFetcher(Downloader* downloader, DocumentFetcherOptions options)
    : downloader_(downloader), options_(std::move(options)) {}

FetchContext DocumentFetcher::Context() const {
  FetchContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1000));
  return ctx;
}

Result<std::string> DocumentFetcher::SavedPath(const std::string& subdir, const std::string& name) {
  if (options_.dir.empty()) return Status::NotFound("no cache directory to keep documents in");
  const std::string dir = options_.dir + "/" + subdir;
  JIGDOOFUS_RETURN_IF_ERROR(MakePrivateDir(options_.dir));
  JIGDOOFUS_RETURN_IF_ERROR(MakePrivateDir(dir));
  return dir + "/" + name;
}

Result<std::string> DocumentFetcher::FetchJigdo(const std::string& url) {
  auto saved = SavedPath("jigdo", UrlKey(url));
  Status network_error = Status::Unavailable(url + ": offline (--offline) and no saved copy");
  if (!options_.offline && downloader_ != nullptr) {
    if (saved.ok()) {
      auto n = FetchToFile(*downloader_, url, *saved, options_.max_jigdo_size, Context());
      if (n.ok()) return ReadWholeFile(*saved);
      network_error = n.status();
    } else {
      auto text = FetchToString(*downloader_, url, options_.max_jigdo_size, Context());
      if (text.ok() || !IsNetworkUrl(url)) return text;
      network_error = text.status();
    }
  }
  if (saved.ok()) {
    auto text = ReadWholeFile(*saved);
    if (text.ok()) {
      if (!options_.offline) spdlog::warn("{}; using the copy saved on {}", network_error.message(), *saved);
      return text;
    }
  }
  return network_error;
}

Result<std::string> DocumentFetcher::FetchTemplate(const std::string& url, const std::optional<Digest>& expected) {
  const std::string name = expected ? expected->ToHex() : "url-" + UrlKey(url);
  JIGDOOFUS_ASSIGN_OR_RETURN(std::string path, SavedPath("templates", name));
  struct stat st;
  const bool have = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (have && (expected || options_.offline || downloader_ == nullptr)) return path;
  if (options_.offline || downloader_ == nullptr) {
    return Status::Unavailable(url + ": offline (--offline) and the template is not in the cache");
  }
  auto n = FetchToFile(*downloader_, url, path, options_.max_template_size, Context());
  if (!n.ok()) {
    if (have) {
      spdlog::warn("{}; using the template saved on {}", n.status().message(), path);
      return path;
    }
    return n.status();
  }
  return path;
}

void DocumentFetcher::Discard(const std::string& path) { ::unlink(path.c_str()); }

Result<std::string> UrlIncludeLoader::Load(const std::string& uri) {
  if (IsNetworkUrl(uri)) return fetcher_->FetchJigdo(uri);
  return local_.Load(uri);
}

}  // namespace jigdoofus
