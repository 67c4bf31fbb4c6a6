// ServerUrl: the URL a [Servers] entry gives for one file.
//
// jigdo expands "Label:path" by plain concatenation of the server prefix
// ("http://deb.debian.org/debian/") and the path ("pool/main/g/g++-12/x.deb").
// The path is a file name, not URL syntax: every byte that is not
// unreserved or '/' is percent-encoded (core/uri.h PercentEncodePath), so
// names with '+', ' ', '%', '#', '?' reach the server intact. The prefix is
// used as written (it is already a URL).
//
// Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace jigdoofus {

// REQUIRES: `server_prefix` is an absolute URL (http, https, ftp, file).
std::string ServerFileUrl(std::string_view server_prefix, std::string_view path);

// What identifies a server: "scheme://host:port" (lower case, default port
// filled in), or empty if curl cannot parse `url`. The downloader's
// per-server connection limit and the mirrors' health both key on it.
std::string ServerKey(const std::string& url);

}  // namespace jigdoofus
