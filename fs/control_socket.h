// The control channel between a mount and jigdoofus-ctl: a Unix stream
// socket in the abstract namespace named after the mountpoint, so that
// both sides find it from the mountpoint alone, whoever runs them, without
// a file anyone could replace. Access is checked on both ends with the
// peer's credentials (SO_PEERCRED): the mount answers only root and the
// user who mounted; jigdoofus-ctl talks only to a server running as the
// mount's owner (user_id= in /proc/self/mountinfo), so another user who
// took the name first is not believed.
//
// Messages are JSON objects, one per line.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "core/result.h"
#include "core/unique_fd.h"

namespace jigdoofus {

// "jigdoofus/<32 hex digits of SHA256(mountpoint)>": `mountpoint` must be
// the canonical absolute path (realpath).
std::string ControlSocketName(const std::string& mountpoint);

// A listening socket bound to ControlSocketName(mountpoint).
// kUnavailable if the name is taken.
Result<UniqueFd> ListenControlSocket(const std::string& mountpoint);

// Connects to the mount's socket. kNotFound if nothing listens.
Result<UniqueFd> ConnectControlSocket(const std::string& mountpoint);

// The uid of the process at the other end of a connected socket.
Result<uid_t> PeerUid(int fd);

// The mount at exactly `mountpoint` from /proc/self/mountinfo: its type
// ("fuse.jigdoofus") and the user_id= of a FUSE mount.
struct MountInfo {
  std::string fstype;
  std::optional<uid_t> owner;
};
std::optional<MountInfo> FindMount(const std::string& mountpoint);

// Line I/O on a socket. SendLine never raises SIGPIPE (kUnavailable when
// the other end is gone); RecvLine returns kNotFound at end of stream.
Status SendLine(int fd, const std::string& line);
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  Result<std::string> Next();

 private:
  int fd_;
  std::string buf_;
};

}  // namespace jigdoofus
