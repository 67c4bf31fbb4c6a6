#include "fetch/transport/server_url.h"

#include "fetch/transport/curl_handles.h"

#include "core/uri.h"

namespace jigdoofus {

std::string ServerFileUrl(std::string_view server_prefix, std::string_view path) {
  std::string url(server_prefix);
  url += PercentEncodePath(path, /*keep_escapes=*/false);
  return url;
}

std::string ServerKey(const std::string& url) {
  CurlUrl u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  auto part = [&](CURLUPart which, unsigned flags) {
    char* p = nullptr;
    std::string out;
    if (curl_url_get(u.get(), which, &p, flags) == CURLUE_OK && p) out = p;
    curl_free(p);
    return out;
  };
  std::string scheme = part(CURLUPART_SCHEME, 0);
  if (scheme.empty()) return {};
  std::string key = scheme + "://" + part(CURLUPART_HOST, 0);
  std::string port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!port.empty()) key += ":" + port;
  return key;
}

}  // namespace jigdoofus
