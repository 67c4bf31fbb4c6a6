#include "fetch/transport/server_url.h"

#include "core/uri.h"

namespace jigdoofus {

std::string ServerFileUrl(std::string_view server_prefix, std::string_view path) {
  std::string url(server_prefix);
  url += PercentEncodePath(path, /*keep_escapes=*/false);
  return url;
}

}  // namespace jigdoofus
