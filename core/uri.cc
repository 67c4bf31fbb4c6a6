#include "core/uri.h"

#include <array>
#include <cctype>
#include <vector>

namespace jigdoofus {

namespace {

constexpr std::array<std::string_view, 4> kKnownSchemes = {"http", "https", "ftp", "file"};

bool IsSchemeChar(char c, bool first) {
  if (std::isalpha(static_cast<unsigned char>(c))) return true;
  if (first) return false;
  return std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// Any RFC 3986 scheme (not just the known ones): used to tell "x:y" apart
// from a relative reference when resolving.
std::string AnyScheme(std::string_view s) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  for (size_t i = 0; i < colon; ++i) {
    if (!IsSchemeChar(s[i], i == 0)) return {};
  }
  std::string scheme(s.substr(0, colon));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// The five components of RFC 3986 section 3.
struct UriParts {
  std::string scheme;
  bool has_authority = false;
  std::string authority;
  std::string path;
  bool has_query = false;
  std::string query;
  bool has_fragment = false;
  std::string fragment;
};

UriParts SplitUri(std::string_view s) {
  UriParts u;
  u.scheme = AnyScheme(s);
  if (!u.scheme.empty()) s.remove_prefix(u.scheme.size() + 1);
  if (size_t hash = s.find('#'); hash != std::string_view::npos) {
    u.has_fragment = true;
    u.fragment = std::string(s.substr(hash + 1));
    s = s.substr(0, hash);
  }
  if (size_t q = s.find('?'); q != std::string_view::npos) {
    u.has_query = true;
    u.query = std::string(s.substr(q + 1));
    s = s.substr(0, q);
  }
  if (s.starts_with("//")) {
    u.has_authority = true;
    s.remove_prefix(2);
    size_t slash = s.find('/');
    u.authority = std::string(s.substr(0, slash));
    s = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
  }
  u.path = std::string(s);
  return u;
}

std::string JoinUri(const UriParts& u) {
  std::string out;
  if (!u.scheme.empty()) out += u.scheme + ":";
  if (u.has_authority) out += "//" + u.authority;
  out += u.path;
  if (u.has_query) out += "?" + u.query;
  if (u.has_fragment) out += "#" + u.fragment;
  return out;
}

// RFC 3986 section 5.2.4, written as a segment stack.
std::string RemoveDotSegments(std::string_view path) {
  bool absolute = path.starts_with('/');
  std::vector<std::string_view> out;
  bool trailing_slash = false;
  size_t pos = absolute ? 1 : 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view seg = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    bool last = slash == std::string_view::npos;
    trailing_slash = false;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else {
      out.push_back(seg);
    }
    if (last) break;
    pos = slash + 1;
  }
  std::string result = absolute ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) result += '/';
    result += out[i];
  }
  if (trailing_slash && !out.empty()) result += '/';
  return result;
}

// Lexical clean-up of a local path: drops "." segments and empty segments
// ("a//b"), keeps ".." (a symlink may make "x/.." differ from "").
std::string CleanLocalPath(std::string_view path) {
  std::string out;
  if (path.starts_with('/')) out = "/";
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    bool last = slash == std::string_view::npos;
    std::string_view seg = path.substr(pos, last ? std::string_view::npos : slash - pos);
    if (!seg.empty() && seg != ".") {
      out += seg;
      if (!last) out += '/';
    }
    if (last) break;
    pos = slash + 1;
  }
  if (out.empty() && !path.empty()) out = "./";
  return out;
}

std::string ResolveUrl(std::string_view base_text, std::string_view ref_text) {
  UriParts base = SplitUri(base_text);
  UriParts ref = SplitUri(ref_text);
  UriParts t;
  if (!ref.scheme.empty()) {
    t = ref;
    t.path = RemoveDotSegments(ref.path);
    return JoinUri(t);
  }
  t.scheme = base.scheme;
  if (ref.has_authority) {
    t.has_authority = true;
    t.authority = ref.authority;
    t.path = RemoveDotSegments(ref.path);
    t.has_query = ref.has_query;
    t.query = ref.query;
  } else {
    t.has_authority = base.has_authority;
    t.authority = base.authority;
    if (ref.path.empty()) {
      t.path = base.path;
      t.has_query = ref.has_query || base.has_query;
      t.query = ref.has_query ? ref.query : base.query;
    } else {
      if (ref.path.starts_with('/')) {
        t.path = RemoveDotSegments(ref.path);
      } else {
        std::string merged;
        if (base.has_authority && base.path.empty()) {
          merged = "/" + ref.path;
        } else {
          size_t slash = base.path.rfind('/');
          merged = (slash == std::string::npos ? std::string() : base.path.substr(0, slash + 1)) + ref.path;
        }
        t.path = RemoveDotSegments(merged);
      }
      t.has_query = ref.has_query;
      t.query = ref.query;
    }
  }
  t.has_fragment = ref.has_fragment;
  t.fragment = ref.fragment;
  return JoinUri(t);
}

}  // namespace

std::string UriScheme(std::string_view s) {
  std::string scheme = AnyScheme(s);
  for (std::string_view known : kKnownSchemes) {
    if (scheme == known) return scheme;
  }
  return {};
}

bool IsUrl(std::string_view s) { return !UriScheme(s).empty(); }

bool IsNetworkUrl(std::string_view s) {
  const std::string scheme = UriScheme(s);
  if (scheme != "http" && scheme != "https" && scheme != "ftp") return false;
  return s.substr(scheme.size()).starts_with("://");
}

std::string ResolveReference(std::string_view base, std::string_view ref) {
  if (!AnyScheme(ref).empty()) return std::string(ref);
  if (IsUrl(base)) return ResolveUrl(base, ref);
  // Local path base.
  if (ref.starts_with('/')) return CleanLocalPath(ref);
  if (ref.empty()) return std::string(base);
  std::string joined = DirName(base);
  joined += ref;
  return CleanLocalPath(joined);
}

std::string PercentEncodePath(std::string_view path, bool keep_escapes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (IsUnreserved(c) || c == '/') {
      out.push_back(static_cast<char>(c));
    } else if (c == '%' && keep_escapes && i + 2 < path.size() && HexValue(path[i + 1]) >= 0 &&
               HexValue(path[i + 2]) >= 0) {
      out.append(path.substr(i, 3));
      i += 2;
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<std::string> FileUrlToPath(std::string_view url, std::string_view base) {
  if (UriScheme(url) != "file") return std::nullopt;
  UriParts u = SplitUri(url);
  // jigdo-file writes file: URLs as raw paths: a '?' or '#' is part of a
  // name ("English SR #3/", "What is HyperCard?"), not a query or fragment.
  if (u.has_query) u.path += "?" + u.query;
  if (u.has_fragment) u.path += "#" + u.fragment;
  if (u.has_authority) {
    std::string host = u.authority;
    for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!host.empty() && host != "localhost") return std::nullopt;  // a remote host
    if (u.path.empty()) return std::nullopt;
    return PercentDecode(u.path);
  }
  if (u.path.starts_with('/')) return PercentDecode(u.path);
  // Relative: against the base's directory, the base being a path or a
  // file: URL. "file:" alone is that directory (jigdo-file writes "A=file:"
  // when the tree was named relative to the .jigdo's directory).
  std::string base_path;
  if (IsUrl(base)) {
    auto p = FileUrlToPath(base, "");
    if (!p) return std::nullopt;
    base_path = *p;
  } else {
    base_path = std::string(base);
  }
  if (u.path.empty()) {
    std::string dir = DirName(base_path);
    if (dir.empty()) return std::nullopt;
    return CleanLocalPath(dir);
  }
  return CleanLocalPath(DirName(base_path) + PercentDecode(u.path));
}

std::string DirName(std::string_view path_or_url) {
  std::string_view s = path_or_url;
  if (IsUrl(s)) {
    UriParts u = SplitUri(s);
    u.has_query = u.has_fragment = false;
    size_t slash = u.path.rfind('/');
    u.path = slash == std::string::npos ? (u.has_authority ? "/" : "") : u.path.substr(0, slash + 1);
    return JoinUri(u);
  }
  size_t slash = s.rfind('/');
  if (slash == std::string_view::npos) return {};
  return std::string(s.substr(0, slash + 1));
}

}  // namespace jigdoofus
