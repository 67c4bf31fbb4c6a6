// JigdoFile: the parsed contents of a .jigdo file (jigdo-file(1), FORMAT OF
// .JIGDO FILES) and the lookups built on it.
//
// A JigdoFile is immutable once parsed and safe to share between threads.
//
// Parsing rules implemented (core/jigdo_parser.cc):
//  * input may be plain text, gzip, or any concatenation of plain and gzip
//    pieces (detected from the bytes, never from the name);
//  * sections [Jigdo], [Image] (several), [Parts], [Servers] (any number of
//    each), [Comment]/[comment] (ignored up to the next section line),
//    [Include URL] (the included file is parsed as if pasted in, relative
//    URLs resolved against the including file; loops are an error);
//  * '#' comments, whitespace trimming, shell-like word splitting with ''
//    and "" quoting and backslash escapes; ShortInfo/Info values are kept
//    verbatim (not split);
//  * [Image] sections of the top-level file are images; those that arrive
//    through [Include] are not (their [Parts]/[Servers] still count);
//  * server options such as --try-last after the URL;
//  * an entry after an [Include] line (before the next section header) is
//    an error, as jigdo-file(1) requires a new section there.
// doc/jigdo_format.md lists everything accepted and rejected.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/digest.h"
#include "core/result.h"

namespace jigdoofus {

struct JigdoImage {
  std::string filename;        // Filename= (validated by the mount, not here)
  std::string template_uri;    // Template= exactly as written (after unquoting)
  std::string template_base;   // URL or path of the .jigdo that held this section;
                               // relative template_uri resolves against it
  std::optional<Digest> template_md5;     // Template-MD5Sum=
  std::optional<Digest> template_sha256;  // Template-SHA256Sum=
  std::string short_info;      // verbatim
  std::string info;            // verbatim
  int line = 0;                // line of the [Image] header, for messages
};

struct ServerEntry {
  std::string value;               // URL or "Label:path" prefix (first word)
  std::vector<std::string> options;  // further words, e.g. "--try-last"
  std::string base;                // URL/path of the defining .jigdo (for relative URLs)
  // jigdo's server preference: 0, plus 1 (or W) per --try-first[=W], minus
  // 1 (or W) per --try-last[=W]. Higher is tried first.
  double weight = 0;
};

struct PartEntry {
  std::string location;  // URL or "Label:path"
  // URL/path of the defining .jigdo, shared by every entry of that file (a
  // DVD .jigdo has tens of thousands of entries, a merged set far more).
  std::shared_ptr<const std::string> base;
};

// One way to get a slice, after label expansion. `label` is empty when the
// location is a URL. Forms appear in preference order: by weight (the sum of
// the weights of the servers on the way, highest first, as jigdo does),
// then in file order; intermediate forms of a label chain
// precede their expansions (so a --local mapping of LabelB is seen before
// the URLs LabelB expands to).
// URLs are returned as written in the .jigdo (server value + part path,
// simply concatenated, not percent-encoded); a relative one (jigdo-file
// writes `A=file:tree/`) resolves against `base` (core/uri.h
// ResolveReference / FileUrlToPath), which is the fetcher's job.
struct SliceLocation {
  std::string label;  // "Debian" for "Debian:pool/x.deb"; empty for URLs
  std::string path;   // "pool/x.deb" (label form) or the URL
  double weight = 0;  // of the servers on the way (ServerEntry::weight, summed)
  std::string base;   // URLs only: URL/path of the .jigdo that defined the URL's server (or part)
  // URLs only: how many leading bytes of `path` are a [Servers] URL as
  // written; the rest is a file path appended to it, not yet
  // percent-encoded (the fetcher encodes it). npos: the whole URL is as
  // written in [Parts].
  size_t url_prefix_len = std::string::npos;
  // Equality is about where the bytes are; url_prefix_len only says how to
  // encode the same URL, so it does not take part.
  friend bool operator==(const SliceLocation& a, const SliceLocation& b) {
    return a.label == b.label && a.path == b.path && a.weight == b.weight && a.base == b.base;
  }
};

class JigdoFile {
 public:
  // Where this file came from (path or URL); used for resolving relative
  // references and in error messages.
  const std::string& origin() const { return origin_; }
  const std::string& version() const { return version_; }      // [Jigdo] Version=
  const std::string& generator() const { return generator_; }  // [Jigdo] Generator=
  const std::vector<JigdoImage>& images() const { return images_; }

  // All [Parts] entries for a digest (alternatives in file order). If there
  // is none, the fallback lookups "MD5Sum:<b64>" / "SHA256Sum:<b64>" of
  // jigdo(1) are returned as label locations.
  std::vector<PartEntry> PartsFor(const Digest& digest) const;

  // Expands a "Label:path" or URL through [Servers], following label chains
  // (loops are cut, not followed). See SliceLocation for the order.
  std::vector<SliceLocation> Expand(const PartEntry& part) const;

  // PartsFor + Expand, deduplicated.
  std::vector<SliceLocation> LocationsFor(const Digest& digest) const;

  // True if `label` is defined in any [Servers] section.
  bool HasServerLabel(std::string_view label) const;
  const std::multimap<std::string, ServerEntry>& servers() const { return servers_; }
  size_t part_count() const { return part_count_; }

 private:
  friend class JigdoParser;
  std::string origin_;
  std::string version_;
  std::string generator_;
  std::vector<JigdoImage> images_;
  // key: the Base64 text of the digest as written ("MD5Sum:..." keys too)
  std::unordered_map<std::string, std::vector<PartEntry>> parts_;
  std::multimap<std::string, ServerEntry> servers_;  // label -> entries, file order kept
  size_t part_count_ = 0;
};

// Splits a location "Label:path" into label and path. Returns false (and
// leaves the outputs alone) when `location` is a URL of a known scheme
// (core/uri.h UriScheme) or has no ':' before its first '/' (a relative URL).
bool SplitLabelLocation(std::string_view location, std::string_view* label, std::string_view* path);

// Bounds of Expand(), so that a hostile .jigdo cannot make it explode.
inline constexpr size_t kMaxLabelChainDepth = 32;
inline constexpr size_t kMaxExpandedLocations = 4096;

// Loads the bytes of an [Include]d file. `uri` is already resolved
// (absolute path or URL). Implementations name `uri` in their errors.
class IncludeLoader {
 public:
  virtual ~IncludeLoader() = default;
  virtual Result<std::string> Load(const std::string& uri) = 0;
};

// Loads local paths and file: URLs; other URLs are kNotSupported.
class LocalIncludeLoader : public IncludeLoader {
 public:
  Result<std::string> Load(const std::string& uri) override;
};

// Parses raw .jigdo bytes (plain/gzip/concatenated). `origin` is the file's
// path or URL. Errors name `origin` and the line number.
Result<JigdoFile> ParseJigdo(std::string_view raw, const std::string& origin,
                             IncludeLoader* loader);

// Reads the file at `path` and parses it with a LocalIncludeLoader.
Result<JigdoFile> LoadJigdoFile(const std::string& path);

// Upper bound of the decoded (decompressed) text of a .jigdo file and all it
// includes together; more is
// kCorruption (a gzip bomb is an error, not an out-of-memory).
inline constexpr size_t kMaxJigdoTextSize = size_t{64} << 20;

// Decompresses any concatenation of plain text and gzip members. A gzip
// member starts where the bytes 1f 8b are at the start of the data, right
// after another member, or at the start of a line. Truncated/corrupt gzip
// data and output over `max_size` are kCorruption naming `origin`.
Result<std::string> DecodeJigdoBytes(std::string_view raw, const std::string& origin);
Result<std::string> DecodeJigdoBytes(std::string_view raw, const std::string& origin, size_t max_size);

// Splits an entry value into words per jigdo-file(1): '' and "" quoting,
// backslash escapes, '#' starts a comment outside quotes.
Result<std::vector<std::string>> SplitJigdoWords(std::string_view value);

}  // namespace jigdoofus
