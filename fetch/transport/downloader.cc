#include "fetch/transport/downloader.h"
#include "core/uri.h"
#include "fetch/transport/server_url.h"

#include <algorithm>
#include <strings.h>

#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

namespace jigdoofus {

struct Downloader::Transfer {
  uint64_t id = 0;
  DownloadRequest req;
  std::string host_key;     // scheme://host:port, set when first scheduled
  CurlEasy easy;            // set while active
  uint64_t limit = 0;       // min(expected_size, max_size)
  uint64_t bytes = 0;       // handed to on_data so far
  bool too_long = false;    // the write callback refused more bytes
  bool consumer_abort = false;
  bool paused = false;      // on_data said kPause; waiting for Resume()
  // Range requests: the last response's Content-Range (reset at each
  // status line, so a redirect's headers do not count), and whether the
  // answer was checked / refused.
  std::string content_range;
  std::string range_spec;   // "a-b" for CURLOPT_RANGE (curl keeps the pointer)
  bool range_checked = false;
  bool range_refused = false;
  char errbuf[CURL_ERROR_SIZE] = {};
};

namespace {

// "bytes a-b/total" (total may be "*") -> whether it is exactly `r`.
bool ContentRangeIs(const std::string& value, const DownloadRequest::ByteRange& r) {
  unsigned long long a = 0, b = 0, total = 0;
  char star = 0;
  if (std::sscanf(value.c_str(), " bytes %llu-%llu/%llu", &a, &b, &total) == 3) {
    if (r.total != 0 && total != r.total) return false;
  } else if (std::sscanf(value.c_str(), " bytes %llu-%llu/%c", &a, &b, &star) != 3 || star != '*') {
    return false;
  }
  return a == r.begin && b + 1 == r.end;
}

constexpr uint64_t kUnknownSize = std::numeric_limits<uint64_t>::max();


// Curl's message for `rc`, one line.
std::string CurlCause(CURLcode rc, const char* errbuf) {
  std::string cause = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  while (!cause.empty() && (cause.back() == '\n' || cause.back() == '\r')) cause.pop_back();
  std::replace(cause.begin(), cause.end(), '\n', ' ');
  return cause;
}

FetchError ClassifyHttpStatus(long status) {
  if (status == 404 || status == 410) return FetchError::kNotFound;
  if (status >= 500) return FetchError::kServerError;
  return FetchError::kClientError;
}

FetchError ClassifyCurlCode(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return FetchError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return FetchError::kTimeout;
    case CURLE_TOO_MANY_REDIRECTS:
      return FetchError::kTooManyRedirects;
    case CURLE_PARTIAL_FILE:
      return FetchError::kTruncated;
    case CURLE_FILESIZE_EXCEEDED:
      return FetchError::kTooLong;
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_FILE_COULDNT_READ_FILE:
      return FetchError::kNotFound;
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_LOGIN_DENIED:
    case CURLE_RANGE_ERROR:
      return FetchError::kClientError;
    case CURLE_FTP_WEIRD_PASS_REPLY:
    case CURLE_FTP_WEIRD_227_FORMAT:
    case CURLE_FTP_CANT_GET_HOST:
    case CURLE_FTP_COULDNT_SET_TYPE:
    case CURLE_FTP_COULDNT_RETR_FILE:
    case CURLE_FTP_PORT_FAILED:
    case CURLE_FTP_PRET_FAILED:
    case CURLE_FTP_BAD_FILE_LIST:
    case CURLE_QUOTE_ERROR:
      return FetchError::kServerError;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
      return FetchError::kTls;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return FetchError::kBadUrl;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_FAILED_INIT:
    case CURLE_WRITE_ERROR:  // only when neither too_long nor consumer_abort
      return FetchError::kInternal;
    default:  // recv/send errors, empty reply, HTTP/2 stream errors, ...
      return FetchError::kNetwork;
  }
}

}  // namespace

Result<std::unique_ptr<Downloader>> Downloader::Create(DownloaderOptions options) {
  if (options.max_parallel == 0 || options.max_per_host == 0) {
    return Status::InvalidArgument("downloader: --jobs and the per-host limit must be at least 1");
  }
  options.max_per_host_ceiling = std::max(options.max_per_host_ceiling, options.max_per_host);
  JIGDOOFUS_RETURN_IF_ERROR(CurlGlobalInit());
  std::unique_ptr<Downloader> d(new Downloader(std::move(options)));
  JIGDOOFUS_RETURN_IF_ERROR(d->Init());
  return d;
}

Downloader::Downloader(DownloaderOptions options) : options_(std::move(options)) {}

Status Downloader::Init() {
  multi_.reset(curl_multi_init());
  if (!multi_) return Status::IOError("downloader: curl_multi_init failed");
  CURLM* m = multi_.get();
  CURLMcode rc = curl_multi_setopt(m, CURLMOPT_PIPELINING, long{CURLPIPE_MULTIPLEX});
  if (rc == CURLM_OK) rc = curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options_.max_per_host_ceiling));
  if (rc == CURLM_OK) rc = curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.max_parallel));
  if (rc != CURLM_OK) {
    return Status::IOError(std::string("downloader: curl_multi_setopt: ") + curl_multi_strerror(rc));
  }
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

Downloader::~Downloader() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(multi_.get());
  thread_.join();
}

TransferHandle Downloader::Submit(DownloadRequest request) {
  auto t = std::make_unique<Transfer>();
  t->req = std::move(request);
  counters_.submitted.fetch_add(1, std::memory_order_relaxed);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    t->id = id;
    if (!stopping_) {
      submitted_.push_back(std::move(t));
    }
  }
  if (t) {  // shutting down: the I/O thread will not see it
    std::string msg = t->req.url + ": downloader shutting down";
    Finish(std::move(t), DownloadResult{FetchError::kCancelled, 0, std::move(msg), 0});
  } else {
    curl_multi_wakeup(multi_.get());
  }
  return TransferHandle{id};
}

void Downloader::Cancel(TransferHandle handle) {
  if (handle.id == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;  // everything is being cancelled anyway
    cancels_.push_back(handle.id);
  }
  curl_multi_wakeup(multi_.get());
}

void Downloader::Resume(TransferHandle handle) {
  if (handle.id == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    resumes_.push_back(handle.id);
  }
  curl_multi_wakeup(multi_.get());
}

void Downloader::SetHostLimit(const std::string& host_key, size_t limit) {
  limit = std::clamp<size_t>(limit, 1, options_.max_per_host_ceiling);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    auto [it, fresh] = host_limits_.try_emplace(host_key, limit);
    if (!fresh && it->second == limit) return;
    it->second = limit;
    host_limits_changed_ = true;
  }
  curl_multi_wakeup(multi_.get());  // a raised limit may start waiting transfers
}

DownloaderStats Downloader::stats() const {
  DownloaderStats s;
  s.submitted = counters_.submitted.load(std::memory_order_relaxed);
  s.completed = counters_.completed.load(std::memory_order_relaxed);
  s.succeeded = counters_.succeeded.load(std::memory_order_relaxed);
  s.body_bytes = counters_.body_bytes.load(std::memory_order_relaxed);
  s.connections_opened = counters_.connections_opened.load(std::memory_order_relaxed);
  s.connections_reused = counters_.connections_reused.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kFetchErrorCount; ++i) s.failures[i] = counters_.failures[i].load(std::memory_order_relaxed);
  return s;
}

// ---- I/O thread ----

void Downloader::Run() {
  for (;;) {
    bool stopping = false;
    DrainQueues(&stopping);
    if (stopping) break;
    StartWaiting();
    int running = 0;
    curl_multi_perform(multi_.get(), &running);
    ReapFinished();
    StartWaiting();
    // Sleeps until a socket is ready, curl's next timer is due, or
    // curl_multi_wakeup; the 5 s cap is only a safety net.
    CURLMcode rc = curl_multi_poll(multi_.get(), nullptr, 0, 5000, nullptr);
    if (rc != CURLM_OK) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // never spin hot
  }
  AbortAll();
}

void Downloader::DrainQueues(bool* stopping) {
  std::deque<std::unique_ptr<Transfer>> fresh;
  std::vector<uint64_t> cancels;
  std::vector<uint64_t> resumes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fresh.swap(submitted_);
    cancels.swap(cancels_);
    resumes.swap(resumes_);
    *stopping = stopping_;
    if (std::exchange(host_limits_changed_, false)) per_host_limit_ = host_limits_;
  }
  for (auto& t : fresh) {
    if (t->req.urgent) {
      // Behind the urgent ones already waiting, ahead of the rest.
      auto it = std::find_if(waiting_.begin(), waiting_.end(), [](const auto& w) { return !w->req.urgent; });
      waiting_.insert(it, std::move(t));
    } else {
      waiting_.push_back(std::move(t));
    }
  }
  for (uint64_t id : resumes) {
    auto it = active_.find(id);
    if (it == active_.end() || !it->second->paused) continue;
    it->second->paused = false;
    // May call WriteCallback at once with the held bytes (which may pause again).
    CURLcode rc = curl_easy_pause(it->second->easy.get(), CURLPAUSE_CONT);
    if (rc != CURLE_OK) {
      std::string msg = it->second->req.url + ": cannot resume: " + curl_easy_strerror(rc);
      FinishActive(id, DownloadResult{FetchError::kInternal, 0, std::move(msg), 0});
    }
  }
  for (uint64_t id : cancels) {
    DownloadResult cancelled{FetchError::kCancelled, 0, "", 0};
    if (auto it = active_.find(id); it != active_.end()) {
      cancelled.message = it->second->req.url + ": cancelled";
      FinishActive(id, std::move(cancelled));
      continue;
    }
    auto it = std::find_if(waiting_.begin(), waiting_.end(), [id](const auto& t) { return t->id == id; });
    if (it != waiting_.end()) {
      std::unique_ptr<Transfer> t = std::move(*it);
      waiting_.erase(it);
      cancelled.message = t->req.url + ": cancelled";
      Finish(std::move(t), std::move(cancelled));
    }
  }
}

void Downloader::StartWaiting() {
  for (auto it = waiting_.begin(); it != waiting_.end() && active_.size() < options_.max_parallel;) {
    Transfer& t = **it;
    if (t.host_key.empty()) t.host_key = ServerKey(t.req.url);
    if (t.host_key.empty()) {
      std::unique_ptr<Transfer> owned = std::move(*it);
      it = waiting_.erase(it);
      std::string msg = owned->req.url + ": not a valid URL";
      Finish(std::move(owned), DownloadResult{FetchError::kBadUrl, 0, std::move(msg), 0});
      continue;
    }
    auto limit = per_host_limit_.find(t.host_key);
    if (per_host_active_[t.host_key] >= (limit == per_host_limit_.end() ? options_.max_per_host : limit->second)) {
      ++it;
      continue;
    }
    std::unique_ptr<Transfer> owned = std::move(*it);
    it = waiting_.erase(it);
    StartOne(owned);
  }
}

CurlEasy Downloader::TakeEasy() {
  if (easy_pool_.empty()) return CurlEasy(curl_easy_init());
  CurlEasy e = std::move(easy_pool_.back());
  easy_pool_.pop_back();
  return e;
}

bool Downloader::StartOne(std::unique_ptr<Transfer>& t) {
  t->limit = std::min(t->req.expected_size, t->req.max_size);
  t->easy = TakeEasy();
  CURL* e = t->easy.get();
  if (!e) {
    std::string msg = t->req.url + ": curl_easy_init failed";
    Finish(std::move(t), DownloadResult{FetchError::kInternal, 0, std::move(msg), 0});
    return false;
  }
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption opt, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, value);
  };
  set(CURLOPT_URL, t->req.url.c_str());
  set(CURLOPT_PRIVATE, static_cast<void*>(t.get()));
  set(CURLOPT_WRITEFUNCTION, &Downloader::WriteCallback);
  set(CURLOPT_WRITEDATA, static_cast<void*>(t.get()));
  set(CURLOPT_ERRORBUFFER, t->errbuf);
  set(CURLOPT_NOSIGNAL, 1L);
  // Only the network: nothing jigdoofus downloads may read a local file
  // (a document from the network names what is fetched). An https
  // transfer may only be redirected to https.
  set(CURLOPT_PROTOCOLS_STR, "http,https,ftp");
  set(CURLOPT_REDIR_PROTOCOLS_STR, UriScheme(t->req.url) == "https" ? "https" : "http,https,ftp");
  set(CURLOPT_FOLLOWLOCATION, 1L);
  set(CURLOPT_MAXREDIRS, options_.max_redirects);
  set(CURLOPT_FAILONERROR, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_limit);
  set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  set(CURLOPT_USERAGENT, options_.user_agent.c_str());
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  // Over https a server may speak HTTP/2: wait for the first connection's
  // answer and multiplex on it. Plain http is HTTP/1.1 here, and there
  // PIPEWAIT parks every further transfer to a server not yet seen until the
  // first one ends (curl 7.88; for good where the server closes each
  // connection).
  if (UriScheme(t->req.url) == "https") set(CURLOPT_PIPEWAIT, 1L);
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  if (t->req.range) {
    t->range_spec = std::to_string(t->req.range->begin) + "-" + std::to_string(t->req.range->end - 1);
    set(CURLOPT_RANGE, t->range_spec.c_str());
    set(CURLOPT_HEADERFUNCTION, &Downloader::HeaderCallback);
    set(CURLOPT_HEADERDATA, static_cast<void*>(t.get()));
  }
  if (t->limit < static_cast<uint64_t>(std::numeric_limits<curl_off_t>::max())) {
    set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t->limit));
  }
  // Proxies: --proxy for everything, else curl honours
  // http_proxy/https_proxy/no_proxy.
  if (!options_.proxy.empty()) {
    set(CURLOPT_PROXY, options_.proxy.c_str());
    set(CURLOPT_NOPROXY, "");
  }
  if (rc != CURLE_OK) {
    std::string msg = t->req.url + ": curl_easy_setopt: " + curl_easy_strerror(rc);
    curl_easy_reset(e);
    easy_pool_.push_back(std::move(t->easy));
    Finish(std::move(t), DownloadResult{FetchError::kInternal, 0, std::move(msg), 0});
    return false;
  }
  CURLMcode mrc = curl_multi_add_handle(multi_.get(), e);
  if (mrc != CURLM_OK) {
    std::string msg = t->req.url + ": curl_multi_add_handle: " + curl_multi_strerror(mrc);
    curl_easy_reset(e);
    easy_pool_.push_back(std::move(t->easy));
    Finish(std::move(t), DownloadResult{FetchError::kInternal, 0, std::move(msg), 0});
    return false;
  }
  ++per_host_active_[t->host_key];
  uint64_t id = t->id;
  active_.emplace(id, std::move(t));
  return true;
}

bool Downloader::RangeRefused(const Transfer& t, long status) {
  // FTP ranges are curl's own REST; only HTTP can answer with something else.
  const std::string scheme = UriScheme(t.req.url);
  if (scheme != "http" && scheme != "https") return false;
  return status != 206 || !ContentRangeIs(t.content_range, *t.req.range);
}

size_t Downloader::HeaderCallback(char* data, size_t size, size_t nmemb, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->content_range.clear();  // a new response (after a redirect or a 100)
  } else if (line.size() > 14 && strncasecmp(line.data(), "content-range:", 14) == 0) {
    line.remove_prefix(14);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    t->content_range.assign(line);
  }
  return n;
}

size_t Downloader::WriteCallback(char* data, size_t size, size_t nmemb, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  size_t n = size * nmemb;
  if (t->req.range && !t->range_checked) {
    // The first body bytes: are they the range asked for? (FTP ranges are
    // curl's own REST; only HTTP can answer with something else.)
    t->range_checked = true;
    long status = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
    if (RangeRefused(*t, status)) {
      t->range_refused = true;
      return 0;  // CURLE_WRITE_ERROR, classified as kNoRange
    }
  }
  if (n > t->limit - t->bytes) {
    t->too_long = true;
    return 0;  // CURLE_WRITE_ERROR, classified as kTooLong
  }
  if (t->req.on_data) {
    switch (t->req.on_data(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), n))) {
      case DataAction::kContinue:
        break;
      case DataAction::kPause:
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
      case DataAction::kAbort:
        t->consumer_abort = true;
        return 0;
    }
  }
  t->bytes += n;
  return n;
}

void Downloader::ReapFinished() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    // msg dies with curl_multi_remove_handle: copy what we need first.
    CURL* e = msg->easy_handle;
    CURLcode rc = msg->data.result;
    Transfer* t = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);

    DownloadResult r{FetchError::kOk, status, "", t->bytes};
    const std::string& url = t->req.url;
    // A whole file announced longer than the range ends before any body
    // byte (the size limit): that too is a refused range.
    if (t->req.range && !t->range_checked && rc != CURLE_HTTP_RETURNED_ERROR) t->range_refused = RangeRefused(*t, status);
    if (rc == CURLE_OK) {
      if (t->req.expected_size != kUnknownSize && t->bytes != t->req.expected_size) {
        r.error = FetchError::kTruncated;
        r.message = url + ": got " + std::to_string(t->bytes) + " of " + std::to_string(t->req.expected_size) + " bytes";
      }
    } else if (t->range_refused) {
      r.error = FetchError::kNoRange;
      r.message = url + ": asked for bytes " + t->range_spec + ", got " +
                  (status == 206 ? "\"Content-Range:" + t->content_range + "\"" : "HTTP " + std::to_string(status));
    } else if (t->consumer_abort) {
      r.error = FetchError::kCancelled;
      r.message = url + ": aborted by the consumer";
    } else if (t->too_long || rc == CURLE_FILESIZE_EXCEEDED) {
      r.error = FetchError::kTooLong;
      r.message = url + ": body longer than " + std::to_string(t->limit) + " bytes";
    } else if (rc == CURLE_HTTP_RETURNED_ERROR) {
      r.error = ClassifyHttpStatus(status);
      r.message = url + ": HTTP " + std::to_string(status);
    } else {
      r.error = ClassifyCurlCode(rc);
      r.message = url + ": " + CurlCause(rc, t->errbuf);
    }
    FinishActive(t->id, std::move(r));
  }
}

void Downloader::FinishActive(uint64_t id, DownloadResult result) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  active_.erase(it);
  CURL* e = t->easy.get();
  curl_multi_remove_handle(multi_.get(), e);
  long connects = 0;
  if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && result.error != FetchError::kCancelled) {
    counters_.connections_opened.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);
    if (connects == 0) counters_.connections_reused.fetch_add(1, std::memory_order_relaxed);
  }
  if (--per_host_active_[t->host_key] == 0) per_host_active_.erase(t->host_key);
  curl_easy_reset(e);  // keeps the handle's caches; connections live in the multi
  if (easy_pool_.size() < options_.max_parallel) easy_pool_.push_back(std::move(t->easy));
  t->easy.reset();
  Finish(std::move(t), std::move(result));
}

void Downloader::Finish(std::unique_ptr<Transfer> t, DownloadResult result) {
  counters_.completed.fetch_add(1, std::memory_order_relaxed);
  counters_.body_bytes.fetch_add(result.bytes, std::memory_order_relaxed);
  if (result.ok()) {
    counters_.succeeded.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters_.failures[static_cast<size_t>(result.error)].fetch_add(1, std::memory_order_relaxed);
  }
  if (t->req.on_done) t->req.on_done(result);
}

void Downloader::AbortAll() {
  std::vector<uint64_t> ids;
  ids.reserve(active_.size());
  for (const auto& [id, t] : active_) ids.push_back(id);
  for (uint64_t id : ids) {
    std::string msg = active_.at(id)->req.url + ": downloader shutting down";
    FinishActive(id, DownloadResult{FetchError::kCancelled, 0, std::move(msg), 0});
  }
  std::deque<std::unique_ptr<Transfer>> rest;  // NOLINT
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(submitted_);  // stopping_ is set: nothing is added after this
    cancels_.clear();
  }
  for (auto& t : rest) waiting_.push_back(std::move(t));
  while (!waiting_.empty()) {
    std::unique_ptr<Transfer> t = std::move(waiting_.front());
    waiting_.pop_front();
    std::string msg = t->req.url + ": downloader shutting down";
    Finish(std::move(t), DownloadResult{FetchError::kCancelled, 0, std::move(msg), 0});
  }
}

}  // namespace jigdoofus
