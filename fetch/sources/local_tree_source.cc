#include "fetch/sources/local_tree_source.h"

#include "fetch/sources/failure_tally.h"

#include <filesystem>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/uri.h"
#include "fetch/sources/file_slice.h"
#include "fetch/sources/safe_path.h"

namespace jigdoofus {
namespace {

// One place to look. `dir` empty: `path` is a file: URL's path (no bound).
struct Candidate {
  std::string dir;
  std::string path;
  std::string display() const { return dir.empty() ? path : dir + "/" + path; }
  bool operator<(const Candidate& o) const { return std::tie(dir, path) < std::tie(o.dir, o.path); }
};

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

}  // namespace

LocalTreeSource::LocalTreeSource(std::map<std::string, std::string> labels, bool use_file_urls,
                                 VerificationStore* store)
    : use_file_urls_(use_file_urls), store_(store) {
  for (auto& [label, dir] : labels) labels_.emplace(label, AbsoluteDir(dir));
}

Result<std::shared_ptr<const VerifiedSlice>> LocalTreeSource::Open(const SliceRequest& request,
                                                                 const FetchContext& ctx) {
  std::vector<Candidate> candidates;
  std::set<Candidate> seen;
  auto add = [&](Candidate c) {
    if (seen.insert(c).second) candidates.push_back(std::move(c));
  };
  const std::string origin = request.jigdo != nullptr ? request.jigdo->origin() : std::string();
  for (const SliceLocation& loc : request.locations) {
    if (!loc.label.empty()) {
      auto it = labels_.find(loc.label);
      if (it == labels_.end()) continue;
      if (!IsSafeRelativePath(loc.path)) {
        spdlog::debug("local: refused {}:{} (absolute path or '..' component)", loc.label, loc.path);
        continue;
      }
      add({it->second, loc.path});
      continue;
    }
    if (!use_file_urls_ || UriScheme(loc.path) != "file") continue;
    // Relative file: URLs resolve against the .jigdo that defined them
    // (an [Include]d file may live elsewhere than the top-level one).
    const std::string& base = loc.base.empty() ? origin : loc.base;
    // A file: URL from a remote .jigdo would let a web server pick local
    // paths to read; only .jigdo files read from disk may use them.
    if (IsUrl(base) && UriScheme(base) != "file") {
      spdlog::debug("local: ignoring {} from remote {}", loc.path, base);
      continue;
    }
    if (loc.url_prefix_len != std::string::npos && loc.url_prefix_len <= loc.path.size()) {
      // A file: server ("A=file:tree/") and a file below it: confined
      // beneath the server's directory like --local, whoever wrote the
      // [Parts] line (an include may come from elsewhere).
      const std::string rel = loc.path.substr(loc.url_prefix_len);
      std::optional<std::string> dir = FileUrlToPath(loc.path.substr(0, loc.url_prefix_len), base);
      if (!dir || !IsSafeRelativePath(rel)) {
        spdlog::debug("local: refused {} (absolute path or '..' below a file: server)", loc.path);
        continue;
      }
      // jigdo-file writes names unescaped: the name as written, then
      // percent-decoded in case it was written as a URL.
      add({AbsoluteDir(*dir), rel});
      const std::string decoded = PercentDecode(rel);
      if (decoded != rel && IsSafeRelativePath(decoded)) add({AbsoluteDir(*dir), decoded});
      continue;
    }
    if (std::optional<std::string> p = FileUrlToPath(loc.path, base)) add({"", *p});
    // jigdo-file writes names unescaped ("A=file:tree/" + "a%b.deb"), so a
    // '%' may be a literal one: also try the name as written.
    if (loc.path.find('%') != std::string::npos) {
      std::string literal = loc.path;
      ReplaceAll(literal, "%", "%25");
      if (std::optional<std::string> p = FileUrlToPath(literal, base)) add({"", *p});
    }
  }

  std::string tried;
  FailureTally failures;
  for (const Candidate& c : candidates) {
    if (ctx.cancelled()) return Status::Cancelled("local: request cancelled");
    if (ctx.expired()) return Status::TimedOut("local: deadline passed");
    Result<std::shared_ptr<const VerifiedSlice>> r = Status::NotFound("unset");
    if (c.dir.empty()) {
      r = VerifyLocalFile(request.id, c.path, store_, ctx);
    } else {
      Result<UniqueFd> fd = OpenBeneath(c.dir, c.path, kSliceOpenFlags);
      if (fd.ok()) {
        r = VerifyOpenFile(request.id, c.display(), std::move(fd).value(), store_, ctx);
      } else {
        r = fd.status();
      }
    }
    if (r.ok()) return r;
    const Status& st = r.status();
    spdlog::debug("local: {}", st.ToString());
    if (st.code() == Status::Code::kCancelled || st.code() == Status::Code::kTimedOut) return st;
    failures.Note(st);
    if (!tried.empty()) tried += ", ";
    tried += c.display();
  }
  // A damaged local copy says most; then why a file could not be read.
  if (!failures.corruption.ok()) return failures.corruption;
  if (!failures.unavailable.ok()) return failures.unavailable;
  if (!failures.other.ok()) return failures.other;
  if (candidates.empty()) return Status::NotFound("local: no local location for slice " + request.id.digest.ToBase64());
  return Status::NotFound("local: slice " + request.id.digest.ToBase64() + " not found at " + tried);
}

}  // namespace jigdoofus
