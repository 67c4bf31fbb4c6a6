// ProgressLine: "1.2 GiB of 3.9 GiB  31%  12.3 MB/s  3m40s left" for long
// jobs (jigdoofus-cat -o, jigdoofus-ctl prefetch/verify). On a terminal
// one line redrawn in place at most 5 times a second; otherwise (a log,
// a pipe) a plain line every `plain_interval`, if any. The rate is over
// the last few seconds. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

namespace jigdoofus {

// "1.5 GiB", "512 KiB", "37 B".
std::string HumanBytes(uint64_t bytes);
// "3m40s", "2h05m", "12s"; "?" for unknown (negative).
std::string HumanDuration(double seconds);

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;
  // `label` starts every line ("debian.iso: "). `plain_interval` zero:
  // nothing is printed when `out` is not a terminal.
  ProgressLine(std::FILE* out, std::string label, std::chrono::seconds plain_interval);
  void Update(uint64_t done, uint64_t total);
  // The last state, always printed (then a newline on a terminal).
  void Finish(const std::string& how);
  bool tty() const { return tty_; }
  double rate() const;  // bytes/s over the last few seconds

 private:
  std::string Text(uint64_t done, uint64_t total) const;
  std::FILE* out_;
  std::string label_;
  std::chrono::seconds plain_interval_;
  bool tty_;
  Clock::time_point last_print_{};
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
  uint64_t done_ = 0;
  uint64_t total_ = 0;
};

}  // namespace jigdoofus
