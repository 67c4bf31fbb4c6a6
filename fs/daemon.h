// The jigdoofus process: startup protocol, logging, the FUSE session and
// its loop.
//
// Unless -f/-d, RunJigdoofus forks first (before any thread or LMDB
// environment exists); the child calls setsid() and does all the work:
// checks the mountpoint, ImageSet::Open, fuse_session_new,
// fuse_session_mount. It then writes "OK\n" or the one-line error to a
// pipe. The parent waits on that pipe and exits 0 after OK, or prints
// "jigdoofus: <error>" and exits 1 ("daemon died during startup" on EOF).
// So when the command returns 0, the mount is there and ready.
// After OK the child points stdin/stdout/stderr at /dev/null, does
// chdir("/"), logs to syslog, and runs the FUSE loop until unmounted or
// SIGTERM/SIGINT/SIGHUP (which unmount cleanly).
// In the foreground the same steps run without the fork, logging to stderr.
//
// REQUIRES: call from a single-threaded process (it forks).
#pragma once

#include "fs/options.h"

namespace jigdoofus {

// Returns the process exit status (0 success, 1 failure).
int RunJigdoofus(const CommandLine& command_line);

}  // namespace jigdoofus
