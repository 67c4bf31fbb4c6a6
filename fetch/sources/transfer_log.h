// TransferLog: what the mirror source is downloading now and did lately,
// for a mount's status: downloads in flight with their bytes so far, the
// receive rate over the last seconds, per server its bytes, rate,
// successes, failures and last error.
//
// Bytes count as they arrive (Transfer::Add), not when a slice completes,
// so a slow download shows progress.
//
// Thread-safe. mu_ is a leaf lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>


namespace jigdoofus {

// Bytes per second over the last kWindow whole seconds.
class RateMeter {
 public:
  static constexpr int kWindow = 10;
  void Add(uint64_t bytes, std::chrono::steady_clock::time_point now);
  double Rate(std::chrono::steady_clock::time_point now) const;

 private:
  static constexpr int kSlots = kWindow + 2;
  uint64_t bytes_[kSlots] = {};
  int64_t second_[kSlots] = {};
};

struct TransferSnapshot {
  struct InFlight {
    std::string url;
    uint64_t size = 0;   // the slice's size
    uint64_t bytes = 0;  // received so far
    double seconds = 0;  // since it started
  };
  struct Server {
    std::string server;  // scheme://host:port
    uint64_t bytes = 0;  // received from it, in all
    double rate_bps = 0;
    uint64_t ok = 0;
    uint64_t failed = 0;
    std::string last_error;
    int in_flight = 0;
  };
  std::vector<InFlight> in_flight;
  double rate_bps = 0;
  uint64_t bytes = 0;  // received in all (partial downloads included)
  std::vector<Server> servers;
};

class TransferLog {
 public:
  class Transfer;
  // Registers a download of `size` bytes from `url`; it is listed in flight
  // until the returned object is destroyed.
  std::shared_ptr<Transfer> Begin(const std::string& url, uint64_t size);
  // How a download from `url` ended (after its Transfer is gone or not).
  void Finished(const std::string& url, bool ok, const std::string& error);
  TransferSnapshot Snapshot() const;
  // Per server: bytes still to come from the downloads running there.
  std::map<std::string, uint64_t> Backlog() const;
  // Bytes received from `server` so far (all downloads).
  uint64_t ServerBytes(const std::string& server) const;

 private:
  struct Entry {
    std::string url;
    std::string server;
    uint64_t size = 0;
    uint64_t bytes = 0;
    std::chrono::steady_clock::time_point started;
  };
  struct ServerState {
    uint64_t bytes = 0;
    RateMeter rate;
    uint64_t ok = 0;
    uint64_t failed = 0;
    std::string last_error;
  };
  void Add(std::list<Entry>::iterator entry, uint64_t n);
  void End(std::list<Entry>::iterator entry);

  mutable std::mutex mu_;
  std::list<Entry> in_flight_;                  // GUARDED_BY(mu_)
  std::map<std::string, ServerState> servers_;  // GUARDED_BY(mu_)
  RateMeter rate_;                              // GUARDED_BY(mu_)
  uint64_t bytes_ = 0;                          // GUARDED_BY(mu_)
};

// One registered download; counts bytes as the sink takes them.
class TransferLog::Transfer {
 public:
  Transfer(TransferLog* log, std::list<Entry>::iterator entry)
      : log_(log), entry_(entry), started_(std::chrono::steady_clock::now()) {}
  ~Transfer() { log_->End(entry_); }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  void Add(uint64_t n) {
    if (!got_byte_.exchange(true)) first_byte_ns_ = (std::chrono::steady_clock::now() - started_).count();
    bytes_ += n;
    log_->Add(entry_, n);
  }
  // Seconds from the start to the first body byte (the whole time so far
  // if none came), from then to now, and the bytes so far.
  struct Timing {
    double ttfb_s = 0;
    double body_s = 0;
    uint64_t bytes = 0;
  };
  Timing Times() const {
    const auto now = std::chrono::steady_clock::now() - started_;
    const double total = std::chrono::duration<double>(now).count();
    if (!got_byte_.load()) return {total, 0, 0};
    const double first = static_cast<double>(first_byte_ns_.load()) / 1e9;
    return {first, total - first, bytes_.load()};
  }

 private:
  TransferLog* log_;
  std::list<Entry>::iterator entry_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> got_byte_{false};
  std::atomic<int64_t> first_byte_ns_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace jigdoofus
