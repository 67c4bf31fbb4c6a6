// RAII owners for libcurl handles: CURL* (easy), CURLM* (multi), curl_slist*,
// CURLU* (parsed URL).
//
// Plain unique_ptrs with deleters; move-only. A handle is used by one
// thread at a time (libcurl's rule), except curl_multi_wakeup, which any
// thread may call.
//
// CurlGlobalInit() runs curl_global_init once per process (thread-safe, via
// std::call_once); call it before creating the first handle. It never
// calls curl_global_cleanup: other libraries in the process may use curl.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "core/status.h"

namespace jigdoofus {

struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

// OK, or IOError naming the curl error if curl_global_init failed.
Status CurlGlobalInit();

}  // namespace jigdoofus
