#include "fetch/sources/server_scores.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include <spdlog/spdlog.h>

namespace jigdoofus {

namespace {

constexpr double kAlpha = 0.3;            // weight of a new sample in the moving averages
constexpr double kGuessBps = 50e6;        // a first guess with nothing measured anywhere
constexpr double kGuessTtfbS = 0.05;
constexpr uint64_t kMinBytesForRate = 64 << 10;  // smaller bodies say little about the rate
constexpr size_t kMaxServersKept = 512;   // in the file
constexpr auto kSaveEvery = std::chrono::seconds(30);

double Mix(double old, double sample, uint64_t samples) {
  return samples == 0 ? sample : old + kAlpha * (sample - old);
}

}  // namespace

ServerScores::ServerScores(std::string path) : path_(std::move(path)) { Load(); }

ServerScores::~ServerScores() {
  Status st = Save();
  if (!st.ok()) spdlog::warn("{}", st.ToString());
}

int ServerScores::Began(const std::string& server) {
  std::lock_guard<std::mutex> lock(mu_);
  return ++scores_[server].in_flight;
}

void ServerScores::Ended(const std::string& server, bool ok, uint64_t bytes, double ttfb_s, double body_s,
                         double server_bps) {
  bool save = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ServerScore& s = scores_[server];
    s.in_flight = std::max(0, s.in_flight - 1);
    if (!ok) return;
    s.ttfb_s = Mix(s.ttfb_s, std::max(0.0, ttfb_s), s.samples);
    s.body_s = Mix(s.body_s, std::max(0.0, body_s), s.samples);
    const double first = std::max(0.0, ttfb_s);
    s.min_ttfb_s = s.samples == 0 || first < s.min_ttfb_s ? first : s.min_ttfb_s + (first - s.min_ttfb_s) / 32;
    if (bytes >= kMinBytesForRate && body_s > 0) {
      const double rate = static_cast<double>(bytes) / body_s;
      const bool had_rate = s.per_connection_bps > 0;
      s.per_connection_bps = had_rate ? Mix(s.per_connection_bps, rate, 1) : rate;
      // What the server gave everyone meanwhile; at least this download's rate.
      const double all = std::max(server_bps, rate);
      s.aggregate_bps = s.aggregate_bps > 0 ? Mix(s.aggregate_bps, all, 1) : all;
    }
    ++s.samples;
    const auto now = std::chrono::steady_clock::now();
    if (!path_.empty() && now - last_save_ >= kSaveEvery) {
      last_save_ = now;
      save = true;
    }
  }
  if (save) {
    Status st = Save();
    if (!st.ok()) spdlog::warn("{}", st.ToString());
  }
}

double ServerScores::ExpectedLocked(const ServerScore& s, uint64_t size, uint64_t backlog) const {
  double per = s.per_connection_bps, agg = s.aggregate_bps, ttfb = s.ttfb_s;
  if (per <= 0) {
    // Not measured: as good as the best measured server (so that it gets
    // tried), or a plain guess.
    per = 0;
    agg = 0;
    ttfb = kGuessTtfbS;
    for (const auto& [name, o] : scores_) {
      per = std::max(per, o.per_connection_bps);
      agg = std::max(agg, o.aggregate_bps);
      if (o.samples > 0) ttfb = std::min(ttfb, o.ttfb_s);
    }
    if (per <= 0) per = kGuessBps;
    if (agg <= 0) agg = 4 * per;
  }
  // Downloads share the server's uplink side by side: a new one's first
  // byte does not wait for the others' bytes, only its last one does.
  if (size == 0) return ttfb;
  const double capacity = std::min(std::max(agg, per), per * (s.in_flight + 1));
  return ttfb + static_cast<double>(backlog + size) / std::max(capacity, 1.0);
}

double ServerScores::ExpectedSeconds(const std::string& server, uint64_t size, const Backlog& backlog) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = scores_.find(server);
  auto b = backlog.find(server);
  return ExpectedLocked(it == scores_.end() ? ServerScore{} : it->second, size, b == backlog.end() ? 0 : b->second);
}

size_t ServerScores::Connections(const std::string& server, size_t base, size_t ceiling) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = scores_.find(server);
  if (it == scores_.end() || it->second.samples < kMinSamplesForConnections || base >= ceiling) return base;
  const ServerScore& s = it->second;
  const double want =
      std::ceil(static_cast<double>(base) * (s.min_ttfb_s + s.body_s) / (2 * std::max(s.body_s, 1e-3)));
  return want >= static_cast<double>(ceiling) ? ceiling : std::max(base, static_cast<size_t>(want));
}

std::vector<size_t> ServerScores::Order(const std::vector<std::string>& servers, uint64_t size,
                                        const Backlog& backlog) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t decision = decisions_++;
  size_t known = 0;
  std::vector<double> expected(servers.size());
  std::vector<char> measured(servers.size());
  for (size_t i = 0; i < servers.size(); ++i) {
    auto it = scores_.find(servers[i]);
    const ServerScore s = it == scores_.end() ? ServerScore{} : it->second;
    measured[i] = s.per_connection_bps > 0;
    known += measured[i] ? 1 : 0;
    auto b = backlog.find(servers[i]);
    expected[i] = ExpectedLocked(s, size, b == backlog.end() ? 0 : b->second);
  }
  // Few servers measured: every choice may probe. Enough: one in kProbeEvery.
  // Large slices are not probes once anything is measured: a slow unknown
  // server would hold one for long.
  const bool may_probe = (known < kEnoughKnown || decision % kProbeEvery == 0) && (known == 0 || size <= kProbeMaxSize);
  std::vector<size_t> order(servers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (!may_probe && measured[a] != measured[b]) return measured[a] != 0;
    return expected[a] < expected[b];
  });
  return order;
}

void ServerScores::RefusesRanges(const std::string& server) {
  std::lock_guard<std::mutex> lock(mu_);
  scores_[server].refuses_ranges = true;
}

ServerScore ServerScores::Get(const std::string& server) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = scores_.find(server);
  return it == scores_.end() ? ServerScore{} : it->second;
}

std::map<std::string, ServerScore> ServerScores::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scores_;
}

void ServerScores::Load() {
  if (path_.empty()) return;
  std::ifstream in(path_);
  if (!in) return;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& [server, v] : j.at("servers").items()) {
      ServerScore s;
      s.ttfb_s = v.value("ttfb_s", 0.0);
      s.per_connection_bps = v.value("per_connection_bps", 0.0);
      s.aggregate_bps = v.value("aggregate_bps", 0.0);
      s.body_s = v.value("body_s", 0.0);
      s.min_ttfb_s = s.ttfb_s;
      s.samples = v.value("samples", uint64_t{0});
      s.refuses_ranges = v.value("refuses_ranges", false);
      const bool sane = std::isfinite(s.ttfb_s) && std::isfinite(s.per_connection_bps) &&
                        std::isfinite(s.aggregate_bps) && s.ttfb_s >= 0 && s.per_connection_bps >= 0 &&
                        s.aggregate_bps >= 0 && std::isfinite(s.body_s) && s.body_s >= 0;
      if (sane) scores_[server] = s;
    }
  } catch (const std::exception& e) {
    spdlog::warn("{}: ignored ({})", path_, e.what());
    scores_.clear();
  }
}

Status ServerScores::Save() const {
  if (path_.empty()) return Status::OK();
  std::lock_guard<std::mutex> saving(save_mu_);
  nlohmann::json servers = nlohmann::json::object();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The most measured servers, if there are very many.
    std::vector<std::pair<uint64_t, std::string>> by_samples;
    for (const auto& [server, s] : scores_) {
      if (s.samples > 0 || s.refuses_ranges) by_samples.emplace_back(s.samples, server);
    }
    std::sort(by_samples.rbegin(), by_samples.rend());
    if (by_samples.size() > kMaxServersKept) by_samples.resize(kMaxServersKept);
    for (const auto& [n, server] : by_samples) {
      const ServerScore& s = scores_.at(server);
      servers[server] = {{"ttfb_s", s.ttfb_s},
                         {"per_connection_bps", s.per_connection_bps},
                         {"aggregate_bps", s.aggregate_bps},
                         {"body_s", s.body_s},
                         {"samples", s.samples},
                         {"refuses_ranges", s.refuses_ranges}};
    }
  }
  const std::string text = nlohmann::json{{"version", 1}, {"servers", std::move(servers)}}.dump(1) + "\n";
  const std::string part = path_ + ".part";
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(part, errno);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written || ::rename(part.c_str(), path_.c_str()) != 0) {
    ::unlink(part.c_str());
    return Status::IOError(path_ + ": could not save the server scores");
  }
  return Status::OK();
}

}  // namespace jigdoofus
