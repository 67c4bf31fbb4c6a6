#include "fetch/transport/curl_handles.h"

#include <mutex>
#include <string>

namespace jigdoofus {

Status CurlGlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    return Status::IOError(std::string("libcurl: curl_global_init failed: ") + curl_easy_strerror(rc));
  }
  return Status::OK();
}

}  // namespace jigdoofus
