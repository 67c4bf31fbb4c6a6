// URI helpers: absolute/relative detection, RFC 3986 reference resolution,
// percent-encoding of path characters, file: URL to path.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace jigdoofus {

// "http", "https", "ftp", "file" (lower-cased) if `s` starts with a known
// scheme followed by ':'; empty otherwise. Unknown schemes ("Debian:") are
// not URLs: they are labels.
std::string UriScheme(std::string_view s);
bool IsUrl(std::string_view s);
// An http://, https:// or ftp:// URL (scheme case-insensitive): something
// only the network can answer.
bool IsNetworkUrl(std::string_view s);

// Resolves `ref` against `base` (a URL or a local path). For a local base,
// relative refs resolve against the base's directory; for a URL base, per
// RFC 3986 section 5.2.
std::string ResolveReference(std::string_view base, std::string_view ref);

// Percent-encodes every byte of `path` that is not unreserved or '/'
// (so '+', ' ', '~'? no: '~' is unreserved and stays) but leaves existing
// valid %XX escapes alone only if `keep_escapes`.
std::string PercentEncodePath(std::string_view path, bool keep_escapes = false);
std::string PercentDecode(std::string_view s);

// "file:/a/b", "file:///a/b", "file:rel/x" (relative to base dir) -> path.
// '?' and '#' belong to the path (jigdo-file writes paths raw).
std::optional<std::string> FileUrlToPath(std::string_view url, std::string_view base);

// Directory part of a local path or URL ("a/b/c.jigdo" -> "a/b/").
std::string DirName(std::string_view path_or_url);

}  // namespace jigdoofus
