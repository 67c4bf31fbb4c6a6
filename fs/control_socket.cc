#include "fs/control_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/digest.h"

namespace jigdoofus {

namespace {

// sockaddr for an abstract name: sun_path[0] is NUL, no terminator.
socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

// /proc/self/mountinfo escapes ' ', '\t', '\n' and '\\' as octal.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string ControlSocketName(const std::string& mountpoint) {
  const Digest d = HashBytes(
      HashAlgo::kSha256, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(mountpoint.data()), mountpoint.size()));
  return "jigdoofus/" + d.ToHex().substr(0, 32);
}

Result<UniqueFd> ListenControlSocket(const std::string& mountpoint) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("control socket", errno);
  sockaddr_un addr;
  const socklen_t len = AbstractAddress(ControlSocketName(mountpoint), &addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno == EADDRINUSE) return Status::Unavailable("control socket for " + mountpoint + " is taken by another process");
    return Status::FromErrno("control socket: bind", errno);
  }
  if (::listen(fd.get(), 16) != 0) return Status::FromErrno("control socket: listen", errno);
  return fd;
}

Result<UniqueFd> ConnectControlSocket(const std::string& mountpoint) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  sockaddr_un addr;
  const socklen_t len = AbstractAddress(ControlSocketName(mountpoint), &addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno == ECONNREFUSED || errno == ENOENT) {
      return Status::NotFound(mountpoint + ": its jigdoofus does not answer (an older version, or it is gone)");
    }
    return Status::FromErrno(mountpoint + ": connect", errno);
  }
  return fd;
}

Result<uid_t> PeerUid(int fd) {
  ucred cred;
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Status::FromErrno("SO_PEERCRED", errno);
  return cred.uid;
}

std::optional<MountInfo> FindMount(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountInfo> found;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.size() < 7 || Unescape(w[4]) != mountpoint) continue;
    size_t dash = 6;
    while (dash < w.size() && w[dash] != "-") ++dash;
    if (dash + 1 >= w.size()) continue;
    MountInfo info;
    info.fstype = w[dash + 1];
    const std::string super = dash + 3 < w.size() ? w[dash + 3] : "";
    size_t at = super.find("user_id=");
    if (at != std::string::npos) info.owner = static_cast<uid_t>(std::stoul(super.substr(at + 8)));
    found = info;  // the last one wins: the mount on top
  }
  return found;
}

Status SendLine(int fd, const std::string& line) {
  std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == EPIPE || errno == ECONNRESET) return Status::Unavailable("the other end hung up");
      return Status::FromErrno("send", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Result<std::string> LineReader::Next() {
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (buf_.size() > (size_t{16} << 20)) return Status::Corruption("control message too long");
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("recv", errno);
    if (n == 0) return Status::NotFound("end of stream");
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace jigdoofus
