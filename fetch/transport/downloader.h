// Downloader: HTTP(S)/FTP/file downloads on libcurl's multi interface.
//
// One I/O thread owns a CURLM and every CURL easy handle. Callers hand it
// DownloadRequests through a thread-safe queue (Submit) and get the body
// streamed to on_data and the outcome to on_done, both on the I/O thread.
// The thread sleeps in curl_multi_poll (which honours curl's own timers)
// and is woken by curl_multi_wakeup on Submit/Cancel/shutdown: no polling.
//
// Limits: at most `max_parallel` transfers run at once (--jobs), and at
// most `max_per_host` of them to one scheme://host:port, or what
// SetHostLimit said for it (up to max_per_host_ceiling, which is also set
// as CURLMOPT_MAX_HOST_CONNECTIONS); the rest wait in FIFO order, a
// saturated host not blocking others. Easy handles are pooled and connections kept
// in the multi's cache for reuse; HTTP/2 multiplexing is used when a server
// offers it. Proxy environment variables work as in curl(1); https
// verifies certificates. Failures are classified as FetchError
// (fetch/fetch_error.h); see doc/downloader.md.
//
// Thread-safety: Submit, Cancel and stats may be called from any thread,
// including from inside on_data/on_done. The destructor must not run
// concurrently with other calls, nor from inside a callback; it aborts
// transfers still queued or running (their on_done gets kCancelled) and
// joins the I/O thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mount_defaults.h"
#include "core/result.h"
#include "core/slice_provider.h"
#include "fetch/transport/curl_handles.h"
#include "fetch/transport/fetch_error.h"

namespace jigdoofus {

struct DownloadResult {
  FetchError error = FetchError::kOk;
  long http_status = 0;       // last HTTP (or FTP) response code; 0 if none
  std::string message;        // one line: "<url>: <cause>"; empty when ok
  uint64_t bytes = 0;         // body bytes handed to on_data
  bool ok() const { return error == FetchError::kOk; }
};

// What on_data wants done after seeing a piece of the body.
enum class DataAction {
  kContinue,  // the bytes were taken
  kPause,     // the bytes were NOT taken: pause the transfer; Resume()
              // hands the same bytes again (flow control for consumers
              // that work off the I/O thread)
  kAbort,     // stop the transfer (on_done gets kCancelled)
};

struct DownloadRequest {
  std::string url;  // absolute, already percent-encoded (see fetch/server_url.h)
  // The exact body size when known (a slice); a different size fails the
  // transfer (kTooLong as soon as it is exceeded, kTruncated at the end).
  uint64_t expected_size = std::numeric_limits<uint64_t>::max();
  // Upper bound when the size is unknown (.jigdo, template): kTooLong past it.
  uint64_t max_size = std::numeric_limits<uint64_t>::max();
  // Body bytes, in order, on the I/O thread; never bytes of an HTTP error
  // page. Must be quick: it holds up every other transfer, so slow work
  // (hashing, storing) belongs on another thread, with kPause as the
  // brake. May be empty.
  std::function<DataAction(std::span<const uint8_t>)> on_data;
  // Called exactly once, on the I/O thread, when the transfer ends for any
  // reason (if Submit runs during shutdown: on the submitting thread).
  std::function<void(const DownloadResult&)> on_done;
  // A reader waits on it: queued ahead of the transfers that are not
  // (after the urgent ones already queued).
  bool urgent = false;
  // Only bytes [begin, end) of the file, of `total` bytes in all (0: not
  // checked), by an HTTP Range request (FTP: REST). end > begin; set
  // expected_size to end - begin. An HTTP answer that is not 206 with
  // exactly that Content-Range fails with kNoRange before any byte
  // reaches on_data (the server ignores ranges, or sent other bytes).
  struct ByteRange {
    uint64_t begin = 0, end = 0, total = 0;
  };
  std::optional<ByteRange> range;
};

struct DownloaderOptions {
  size_t max_parallel = mount_defaults::kJobs;  // transfers at once (--jobs); >= 1
  size_t max_per_host = mount_defaults::kMaxConnectionsPerHost;  // per server (ServerKey); >= 1
  // SetHostLimit may set a server's limit up to this (0: max_per_host).
  size_t max_per_host_ceiling = 0;
  std::chrono::milliseconds connect_timeout{15000};
  // A transfer slower than low_speed_limit bytes/s for low_speed_time
  // fails with kTimeout (this is also what ends a stalled server).
  long low_speed_limit = 512;
  std::chrono::seconds low_speed_time{30};
  long max_redirects = 10;
  std::string user_agent = "jigdoofus/" JIGDOOFUS_VERSION;
  std::string ca_file;  // empty: the system's CA store
  // Every transfer goes through this proxy (no_proxy does not apply);
  // empty: libcurl's environment (http_proxy, https_proxy, no_proxy).
  std::string proxy;
};

// Counters since Create(); a snapshot, cheap to take.
struct DownloaderStats {
  uint64_t submitted = 0;
  uint64_t completed = 0;          // on_done calls, any outcome
  uint64_t succeeded = 0;
  uint64_t body_bytes = 0;         // bytes handed to on_data
  uint64_t connections_opened = 0; // sum of CURLINFO_NUM_CONNECTS
  uint64_t connections_reused = 0; // transfers that opened no new connection
  std::array<uint64_t, kFetchErrorCount> failures{};  // indexed by FetchError
  uint64_t failed(FetchError e) const { return failures[static_cast<size_t>(e)]; }
};

// Identifies a submitted transfer; 0 is never a valid id.
struct TransferHandle {
  uint64_t id = 0;
};

class Downloader {
 public:
  // Starts the I/O thread. InvalidArgument for a zero limit; IOError if
  // curl cannot be set up.
  static Result<std::unique_ptr<Downloader>> Create(DownloaderOptions options);
  ~Downloader();
  Downloader(const Downloader&) = delete;
  Downloader& operator=(const Downloader&) = delete;

  // Queues `request`; returns at once. on_done will be called exactly once.
  TransferHandle Submit(DownloadRequest request);
  // Aborts the transfer if it has not ended yet (its on_done then gets
  // kCancelled, promptly, on the I/O thread); a no-op otherwise.
  void Cancel(TransferHandle handle);
  // Restarts a transfer that on_data paused (kPause): on_data gets the
  // refused bytes again. A no-op if it is not paused or has ended. While
  // paused, a transfer does not count as slow (low_speed_limit).
  void Resume(TransferHandle handle);
  // The most transfers to run at once to `host_key` (a ServerKey) from
  // now on, instead of max_per_host; clamped to [1, max_per_host_ceiling].
  void SetHostLimit(const std::string& host_key, size_t limit);
  DownloaderStats stats() const;
  const DownloaderOptions& options() const { return options_; }

 private:
  struct Transfer;
  explicit Downloader(DownloaderOptions options);
  Status Init();
  void Run();  // the I/O thread
  void DrainQueues(bool* stopping);
  void StartWaiting();
  bool StartOne(std::unique_ptr<Transfer>& t);
  void ReapFinished();
  void Finish(std::unique_ptr<Transfer> t, DownloadResult result);
  void FinishActive(uint64_t id, DownloadResult result);
  void AbortAll();
  CurlEasy TakeEasy();
  static size_t WriteCallback(char* data, size_t size, size_t nmemb, void* userp);
  static size_t HeaderCallback(char* data, size_t size, size_t nmemb, void* userp);
  // The answer to a Range request is not the range asked for.
  static bool RangeRefused(const Transfer& t, long status);

  const DownloaderOptions options_;
  CurlMulti multi_;  // used only by the I/O thread (except curl_multi_wakeup)

  // Lock order: mu_ is a leaf; never held while calling curl or a callback.
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<Transfer>> submitted_;  // GUARDED_BY(mu_)
  std::vector<uint64_t> cancels_;                     // GUARDED_BY(mu_)
  std::vector<uint64_t> resumes_;                     // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                              // GUARDED_BY(mu_)
  std::unordered_map<std::string, size_t> host_limits_;  // GUARDED_BY(mu_)
  bool host_limits_changed_ = false;                  // GUARDED_BY(mu_)

  // I/O thread only.
  std::list<std::unique_ptr<Transfer>> waiting_;  // urgent first, then FIFO; saturated hosts skipped
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> active_;
  std::unordered_map<std::string, size_t> per_host_active_;
  std::unordered_map<std::string, size_t> per_host_limit_;  // a copy of host_limits_
  std::vector<CurlEasy> easy_pool_;

  struct Counters {
    std::atomic<uint64_t> submitted{0}, completed{0}, succeeded{0}, body_bytes{0};
    std::atomic<uint64_t> connections_opened{0}, connections_reused{0};
    std::array<std::atomic<uint64_t>, kFetchErrorCount> failures{};
  };
  Counters counters_;

  std::thread thread_;  // last: started after everything above exists
};

// Blocking fetch of a small file (.jigdo, template) into memory: at most
// max_size bytes. Gives up at ctx.deadline (TimedOut) or when
// ctx is cancelled (Cancelled; woken by the signal, no polling).
// Other failures map through FetchErrorToStatus. Thread-safe; must not be
// called on the Downloader's I/O thread (from a callback).
Result<std::string> FetchToString(Downloader& downloader, const std::string& url, uint64_t max_size,
                                  const FetchContext& ctx = {});

// As FetchToString, but streams into `path`: writes "<path>.part" and
// renames it to `path` only on success (the .part file is removed on
// failure). Returns the number of bytes written.
Result<uint64_t> FetchToFile(Downloader& downloader, const std::string& url, const std::string& path,
                             uint64_t max_size, const FetchContext& ctx = {});

}  // namespace jigdoofus
