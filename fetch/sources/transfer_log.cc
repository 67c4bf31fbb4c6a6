#include "fetch/sources/transfer_log.h"

#include <algorithm>

#include "fetch/transport/server_url.h"

namespace jigdoofus {

namespace {

int64_t SecondOf(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

void RateMeter::Add(uint64_t bytes, std::chrono::steady_clock::time_point now) {
  const int64_t sec = SecondOf(now);
  const int slot = static_cast<int>(sec % kSlots);
  if (second_[slot] != sec) {
    second_[slot] = sec;
    bytes_[slot] = 0;
  }
  bytes_[slot] += bytes;
}

double RateMeter::Rate(std::chrono::steady_clock::time_point now) const {
  // The last kWindow whole seconds (the current one is still filling).
  const int64_t sec = SecondOf(now);
  uint64_t sum = 0;
  for (int i = 0; i < kSlots; ++i) {
    if (second_[i] < sec && second_[i] >= sec - kWindow) sum += bytes_[i];
  }
  return static_cast<double>(sum) / kWindow;
}

std::shared_ptr<TransferLog::Transfer> TransferLog::Begin(const std::string& url, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.push_back(Entry{url, ServerKey(url), size, 0, std::chrono::steady_clock::now()});
  return std::make_shared<Transfer>(this, std::prev(in_flight_.end()));
}

void TransferLog::Add(std::list<Entry>::iterator entry, uint64_t n) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  entry->bytes += n;
  bytes_ += n;
  rate_.Add(n, now);
  ServerState& s = servers_[entry->server];
  s.bytes += n;
  s.rate.Add(n, now);
}

void TransferLog::End(std::list<Entry>::iterator entry) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(entry);
}

void TransferLog::Finished(const std::string& url, bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ServerState& s = servers_[ServerKey(url)];
  if (ok) {
    ++s.ok;
  } else {
    ++s.failed;
    s.last_error = error;
  }
}

std::map<std::string, uint64_t> TransferLog::Backlog() const {
  std::map<std::string, uint64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& e : in_flight_) out[e.server] += e.size - std::min(e.bytes, e.size);
  return out;
}

uint64_t TransferLog::ServerBytes(const std::string& server) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = servers_.find(server);
  return it == servers_.end() ? 0 : it->second.bytes;
}

TransferSnapshot TransferLog::Snapshot() const {
  const auto now = std::chrono::steady_clock::now();
  TransferSnapshot out;
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int> busy;
  for (const Entry& e : in_flight_) {
    out.in_flight.push_back({e.url, e.size, e.bytes, std::chrono::duration<double>(now - e.started).count()});
    ++busy[e.server];
  }
  out.rate_bps = rate_.Rate(now);
  out.bytes = bytes_;
  for (const auto& [server, s] : servers_) {
    out.servers.push_back({server, s.bytes, s.rate.Rate(now), s.ok, s.failed, s.last_error, busy[server]});
  }
  return out;
}

}  // namespace jigdoofus
