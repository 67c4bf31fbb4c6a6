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


void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

// The directory of a .jigdo read from disk (a path or a file: URL),
// absolute and normalised; nullopt for anything else.
std::optional<std::string> JigdoDirOf(const std::string& base) {
  if (base.empty()) return std::nullopt;
  if (!IsUrl(base)) return AbsoluteDir(DirName(base));
  if (UriScheme(base) != "file") return std::nullopt;
  std::optional<std::string> path = FileUrlToPath(base, "");
  if (!path) return std::nullopt;
  return AbsoluteDir(DirName(*path));
}

}  // namespace

std::vector<std::string> FileServersOutsideJigdoDir(const JigdoFile& jigdo) {
  std::vector<std::string> out;
  for (const auto& [label, server] : jigdo.servers()) {
    if (UriScheme(server.value) != "file") continue;
    const std::string& base = server.base.empty() ? jigdo.origin() : server.base;
    std::optional<std::string> root = JigdoDirOf(base);
    std::optional<std::string> dir = FileUrlToPath(server.value, base);
    if (!root || !dir) continue;  // remote: never used anyway
    if (!IsPathWithin(*root, AbsoluteDir(*dir))) out.push_back(label + "=" + server.value);
  }
  return out;
}

LocalTreeSource::LocalTreeSource(std::map<std::string, std::string> labels, FileUrlScope scope,
                                 VerificationStore* store)
    : scope_(scope), store_(store) {
  for (auto& [label, dir] : labels) labels_.emplace(label, AbsoluteDir(dir));
}

std::vector<LocalTreeSource::Candidate> LocalTreeSource::CandidatesFor(const SliceRequest& request) const {
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
    if (UriScheme(loc.path) != "file") continue;
    // Relative file: URLs resolve against the .jigdo that defined them
    // (an [Include]d file may live elsewhere than the top-level one).
    const std::string& base = loc.base.empty() ? origin : loc.base;
    // A file: URL from a remote .jigdo would let a web server pick local
    // paths to read; only .jigdo files read from disk may use them.
    if (IsUrl(base) && UriScheme(base) != "file") {
      spdlog::debug("local: ignoring {} from remote {}", loc.path, base);
      continue;
    }
    // Where the URL may lead: beneath the defining .jigdo's directory, or
    // (--trust-file-urls) anywhere; a file: server's own directory bounds
    // the [Parts] paths below it either way.
    std::string root;
    if (scope_ == FileUrlScope::kBeneathJigdo) {
      std::optional<std::string> dir = JigdoDirOf(base);
      if (!dir) continue;
      root = *dir;
    }
    auto add_within = [&](const std::string& bound, const std::string& rel) {
      if (!IsSafeRelativePath(rel)) {
        spdlog::debug("local: refused {} (absolute path or '..' below a file: server)", loc.path);
        return;
      }
      if (root.empty()) {
        add({bound, rel});
        return;
      }
      if (!IsPathWithin(root, bound)) {
        spdlog::debug("local: refused {} (outside {}; see --trust-file-urls)", loc.path, root);
        return;
      }
      const std::string below = bound.size() > root.size() ? bound.substr(root.size() + (root == "/" ? 0 : 1)) : "";
      add({root, below.empty() ? rel : below + "/" + rel});
    };
    if (loc.url_prefix_len != std::string::npos && loc.url_prefix_len <= loc.path.size()) {
      // A file: server ("A=file:tree/") and a file below it: confined
      // beneath the server's directory like --local, whoever wrote the
      // [Parts] line (an include may come from elsewhere).
      const std::string rel = loc.path.substr(loc.url_prefix_len);
      std::optional<std::string> dir = FileUrlToPath(loc.path.substr(0, loc.url_prefix_len), base);
      if (!dir) continue;
      // jigdo-file writes names unescaped: the name as written, then
      // percent-decoded in case it was written as a URL.
      add_within(AbsoluteDir(*dir), rel);
      const std::string decoded = PercentDecode(rel);
      if (decoded != rel) add_within(AbsoluteDir(*dir), decoded);
      continue;
    }
    std::vector<std::string> paths;
    if (std::optional<std::string> p = FileUrlToPath(loc.path, base)) paths.push_back(*p);
    // jigdo-file writes names unescaped ("A=file:tree/" + "a%b.deb"), so a
    // '%' may be a literal one: also try the name as written.
    if (loc.path.find('%') != std::string::npos) {
      std::string literal = loc.path;
      ReplaceAll(literal, "%", "%25");
      if (std::optional<std::string> p = FileUrlToPath(literal, base)) paths.push_back(*p);
    }
    for (const std::string& p : paths) {
      if (root.empty()) {
        add({"", p});
        continue;
      }
      const std::string abs = AbsoluteDir(p);
      if (abs == root || !IsPathWithin(root, abs)) {
        spdlog::debug("local: refused {} (outside {}; see --trust-file-urls)", loc.path, root);
        continue;
      }
      add({root, abs.substr(root.size() + (root == "/" ? 0 : 1))});
    }
  }
  return candidates;
}

bool LocalTreeSource::HasVerified(const SliceRequest& request) {
  if (store_ == nullptr) return false;
  for (const Candidate& c : CandidatesFor(request)) {
    UniqueFd fd;
    if (c.dir.empty()) {
      fd = UniqueFd(::open(c.path.c_str(), kSliceOpenFlags));
    } else {
      Result<UniqueFd> opened = OpenBeneath(c.dir, c.path, kSliceOpenFlags);
      if (opened.ok()) fd = std::move(opened).value();
    }
    if (fd.valid() && HasVerificationRecord(request.id, fd.get(), store_)) return true;
  }
  return false;
}

Result<std::shared_ptr<const VerifiedSlice>> LocalTreeSource::Open(const SliceRequest& request,
                                                                 const FetchContext& ctx) {
  const std::vector<Candidate> candidates = CandidatesFor(request);
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
