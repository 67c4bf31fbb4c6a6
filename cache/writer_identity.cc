#include "cache/writer_identity.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>


namespace jigdoofus {

namespace {

std::array<uint8_t, 16> BootId() {
  std::array<uint8_t, 16> out{};
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string s, hex;
  std::getline(f, s);
  for (char c : s) {
    if (c != '-') hex.push_back(c);
  }
  if (hex.size() != 2 * out.size()) return out;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::strtoul(hex.substr(2 * i, 2).c_str(), nullptr, 16));
  }
  return out;
}

// State letter and start time (clock ticks since boot) of a process, from
// /proc/<pid>/stat; nullopt if there is no such process.
std::optional<std::pair<char, uint64_t>> ProcStat(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return std::nullopt;
  std::string line;
  std::getline(f, line);
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  std::string tok;
  char state = '?';
  uint64_t start = 0;
  for (int i = 0; i < 20 && (rest >> tok); ++i) {
    if (i == 0) state = tok.empty() ? '?' : tok[0];
    if (i == 19) start = std::strtoull(tok.c_str(), nullptr, 10);
  }
  return std::make_pair(state, start);
}

}  // namespace

WriterIdentity SelfWriterIdentity() {
  WriterIdentity o;
  o.boot = BootId();
  o.pid = static_cast<uint32_t>(::getpid());
  if (auto st = ProcStat(o.pid)) o.start = st->second;
  return o;
}

bool IsOtherLiveProcess(const WriterIdentity& o, const WriterIdentity& self) {
  if (o == self) return false;
  if (o.boot != self.boot) return false;  // written before a reboot
  auto st = ProcStat(o.pid);
  if (!st) return false;
  if (st->first == 'Z' || st->first == 'X') return false;
  return st->second == o.start;
}

}  // namespace jigdoofus
