#include "tools/progress_line.h"

#include <unistd.h>

#include <cmath>

namespace jigdoofus {

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string HumanDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  const uint64_t s = static_cast<uint64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%luh%02lum", static_cast<unsigned long>(s / 3600),
                  static_cast<unsigned long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lum%02lus", static_cast<unsigned long>(s / 60), static_cast<unsigned long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lus", static_cast<unsigned long>(s));
  }
  return buf;
}

ProgressLine::ProgressLine(std::FILE* out, std::string label, std::chrono::seconds plain_interval)
    : out_(out), label_(std::move(label)), plain_interval_(plain_interval), tty_(::isatty(fileno(out)) == 1) {}

double ProgressLine::rate() const {
  if (samples_.size() < 2) return 0;
  const double dt = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
  if (dt <= 0) return 0;
  return static_cast<double>(samples_.back().second - samples_.front().second) / dt;
}

std::string ProgressLine::Text(uint64_t done, uint64_t total) const {
  std::string s = label_ + HumanBytes(done) + " of " + HumanBytes(total);
  char pct[16];
  std::snprintf(pct, sizeof pct, "  %3.0f%%", total ? 100.0 * static_cast<double>(done) / total : 100.0);
  s += pct;
  const double r = rate();
  if (r > 0) {
    s += "  " + HumanBytes(static_cast<uint64_t>(r)) + "/s";
    if (done < total) s += "  " + HumanDuration(static_cast<double>(total - done) / r) + " left";
  }
  return s;
}

void ProgressLine::Update(uint64_t done, uint64_t total) {
  const auto now = Clock::now();
  done_ = done;
  total_ = total;
  samples_.emplace_back(now, done);
  while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5)) samples_.pop_front();
  if (tty_) {
    if (now - last_print_ < std::chrono::milliseconds(200)) return;
    last_print_ = now;
    std::fprintf(out_, "\r\033[K%s", Text(done, total).c_str());
    std::fflush(out_);
  } else if (plain_interval_.count() > 0 && now - last_print_ >= plain_interval_) {
    last_print_ = now;
    std::fprintf(out_, "%s\n", Text(done, total).c_str());
    std::fflush(out_);
  }
}

void ProgressLine::Finish(const std::string& how) {
  if (!tty_ && plain_interval_.count() == 0) return;
  std::string line = Text(done_, total_);
  if (!how.empty()) line += "  " + how;
  std::fprintf(out_, tty_ ? "\r\033[K%s\n" : "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace jigdoofus
