#include "fs/daemon.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fetch/mount/image_set.h"
#include "fs/control_server.h"
#include "fs/jigdo_fs.h"

namespace jigdoofus {

namespace {

// ---------------------------------------------------------------- logging

// Where the log goes: `file` if given (appended), else syslog (the
// daemon) or stderr (-f).
Status SetUpLogging(bool to_syslog, const std::string& level, const std::string& file) {
  std::shared_ptr<spdlog::logger> logger;
  if (!file.empty()) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
      logger = std::make_shared<spdlog::logger>("jigdoofus", std::move(sink));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::InvalidArgument("--log-file " + file + ": " + e.what());
    }
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e jigdoofus[%P] %l: %v");
  } else if (to_syslog) {
    auto sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("jigdoofus", LOG_PID, LOG_DAEMON, true);
    logger = std::make_shared<spdlog::logger>("jigdoofus", std::move(sink));
    logger->set_pattern("%l: %v");
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>("jigdoofus", std::move(sink));
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e jigdoofus[%P] %l: %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(file.empty() ? spdlog::level::warn : spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return Status::OK();
}

// While set (on the thread doing the startup), libfuse's warnings and
// errors are collected here so the startup failure is one line.
thread_local std::string* t_libfuse_messages = nullptr;

void LibfuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  if (level == FUSE_LOG_DEBUG) {  // only with -d: keep libfuse's own format
    std::vfprintf(stderr, fmt, ap);
    return;
  }
  char buf[2048];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  if (t_libfuse_messages != nullptr && level <= FUSE_LOG_WARNING) {
    *t_libfuse_messages += msg;  // libfuse may print one line in pieces
    return;
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  auto spd = level <= FUSE_LOG_ERR       ? spdlog::level::err
             : level == FUSE_LOG_WARNING ? spdlog::level::warn
                                         : spdlog::level::info;
  spdlog::log(spd, "libfuse: {}", msg);
}

// Collects libfuse messages on this thread for its lifetime.
class LibfuseMessages {
 public:
  LibfuseMessages() { t_libfuse_messages = &text_; }
  ~LibfuseMessages() { t_libfuse_messages = nullptr; }
  LibfuseMessages(const LibfuseMessages&) = delete;
  LibfuseMessages& operator=(const LibfuseMessages&) = delete;
  // The messages so far, lines joined with "; ".
  std::string Take() {
    std::string t;
    t.swap(text_);
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    std::string out;
    for (char c : t) {
      if (c == '\n') {
        out += "; ";
      } else {
        out += c;
      }
    }
    return out;
  }

 private:
  std::string text_;
};

// Sends fd 2 to an anonymous file for its lifetime (fusermount3, run by
// libfuse for unprivileged mounts, writes its complaints there).
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = ::memfd_create("jigdoofus-stderr", MFD_CLOEXEC);
    saved_ = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (file_ < 0 || saved_ < 0 || ::dup2(file_, 2) < 0) Restore();
  }
  ~StderrCapture() {
    Restore();
    if (file_ >= 0) ::close(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores fd 2; returns what was written, on one line.
  std::string Finish() {
    Restore();
    std::string out;
    if (file_ < 0) return out;
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    while ((n = ::pread(file_, buf, sizeof buf, off)) > 0 && out.size() < 4096) {
      out.append(buf, static_cast<size_t>(n));
      off += n;
    }
    for (char& c : out) {
      if (c == '\n') c = ' ';
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

 private:
  void Restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
  }
  int file_ = -1;
  int saved_ = -1;
};

// ---------------------------------------------------------- mount point

// "\040" style escapes of /proc/self/mountinfo.
std::string UnescapeMountInfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool ListedInMountInfo(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    if (fields >> id >> parent >> devno >> root >> mount_point && UnescapeMountInfo(mount_point) == dir) return true;
  }
  return false;
}

Status CheckMountpoint(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOTCONN) {
      return Status::InvalidArgument("mountpoint busy: " + dir +
                                     " is a dead FUSE mount (unmount it with fusermount3 -u " + dir + ")");
    }
    return Status::InvalidArgument("mountpoint " + dir + ": " + std::strerror(err));
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument("mountpoint " + dir + " is not a directory");
  struct stat parent;
  std::string up = dir + "/..";
  bool busy = false;
  if (::stat(up.c_str(), &parent) == 0) {
    busy = parent.st_dev != st.st_dev || (parent.st_ino == st.st_ino && parent.st_dev == st.st_dev);
  }
  char real[PATH_MAX];
  if (!busy && ::realpath(dir.c_str(), real) != nullptr) busy = ListedInMountInfo(real);
  if (busy) return Status::InvalidArgument("mountpoint busy: " + dir + " is already a mount point");
  return Status::OK();
}

// ---------------------------------------------------------- FUSE session

// Kernel read-ahead for the mount, in KiB. The kernel starts a FUSE mount
// at 128 KiB and FUSE_INIT can only lower it; with 1 MiB requests allowed
// (JigdoFs::Init sets max_write, hence max_pages = 256) a 1 MiB window
// makes sequential readers send 1 MiB reads: measured ~1.7x the
// throughput of 128 KiB reads on a remount (doc/read_path.md). 4 MiB was
// slower than 1 MiB.
constexpr unsigned kReadAheadKb = 1024;

// "MAJ:MIN" of the newest mount on `dir` (a real path), from mountinfo.
// Reading it does not touch the mount (a stat would wait for our own loop).
std::string MountDevice(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    if (fields >> id >> parent >> devno >> root >> mount_point && UnescapeMountInfo(mount_point) == dir) {
      found = devno;
    }
  }
  return found;
}

// Raises the mount's bdi read-ahead to kReadAheadKb unless the user chose
// -o max_readahead. Best effort: needs root (sysfs); otherwise a debug line.
// Must run after the kernel processed our FUSE_INIT reply (which sets
// ra_pages to min(current, max_readahead)): the caller stats the mount
// root first, which waits for INIT.
void RaiseReadAhead(const CommandLine& cl) {
  for (const std::string& o : cl.fuse_options) {
    if (o.rfind("max_readahead=", 0) == 0) return;
  }
  char real[PATH_MAX];
  if (::realpath(cl.mountpoint.c_str(), real) == nullptr) return;
  const std::string dev = MountDevice(real);
  if (dev.empty()) return;
  const std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  unsigned current = 0;
  {
    std::ifstream in(path);
    if (!(in >> current)) {
      spdlog::debug("read-ahead: cannot read {}", path);
      return;
    }
  }
  if (current >= kReadAheadKb) return;
  std::ofstream out(path);
  out << kReadAheadKb << "\n";
  out.flush();
  if (!out) {
    spdlog::debug("read-ahead: cannot raise {} from {} to {} KiB (needs root)", path, current, kReadAheadKb);
  } else {
    spdlog::debug("read-ahead: {} raised from {} to {} KiB", path, current, kReadAheadKb);
  }
}

// Owns a fuse_session: signal handlers, the mount, the session itself,
// torn down in reverse.
class Session {
 public:
  explicit Session(fuse_session* se) : se_(se) {}
  ~Session() {
    if (signals_) fuse_remove_signal_handlers(se_);
    if (mounted_) fuse_session_unmount(se_);
    fuse_session_destroy(se_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  fuse_session* get() const { return se_; }
  void set_signals() { signals_ = true; }
  void set_mounted() { mounted_ = true; }

 private:
  fuse_session* se_;
  bool signals_ = false;
  bool mounted_ = false;
};

Result<std::unique_ptr<Session>> StartSession(const CommandLine& cl, JigdoFs* fs) {
  LibfuseMessages messages;
  std::vector<std::string> strings = FuseArgs(cl);
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(strings.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, &JigdoFs::Ops(), sizeof(fuse_lowlevel_ops), fs);
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    std::string why = messages.Take();
    return Status::InvalidArgument("FUSE refused the options (" + strings[2] + ")" + (why.empty() ? "" : ": " + why));
  }
  auto session = std::make_unique<Session>(se);
  if (fuse_set_signal_handlers(se) != 0) return Status::IOError("cannot install signal handlers");
  session->set_signals();
  StderrCapture helper_output;
  int rc = fuse_session_mount(se, cl.mountpoint.c_str());
  std::string helper = helper_output.Finish();
  std::string why = messages.Take();
  if (!helper.empty()) why += (why.empty() ? "" : "; ") + helper;
  if (rc != 0) {
    return Status::IOError("cannot mount on " + cl.mountpoint + (why.empty() ? "" : ": " + why));
  }
  if (!why.empty()) spdlog::warn("mount: {}", why);
  session->set_mounted();
  return session;
}

int RunLoop(const CommandLine& cl, fuse_session* se) {
  int rc;
  if (cl.single_thread) {
    rc = fuse_session_loop(se);
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, 1);
    // Only a cap on threads: any max_idle_threads other than libfuse's
    // default (-1) makes its loop create and destroy a thread per request
    // once the idle pool is busy (seen here: one clone3 per 4 KiB read).
    fuse_loop_cfg_set_max_threads(config, 64);
    rc = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
  }
  if (rc < 0) {
    spdlog::error("FUSE loop failed: {}", std::strerror(-rc));
    return 1;
  }
  if (rc > 0) spdlog::info("signal {}: unmounting", rc);
  return 0;
}

// ------------------------------------------------------- startup protocol

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Where the startup outcome goes: the parent's pipe (daemon) or stderr.
class Reporter {
 public:
  explicit Reporter(int pipe_fd) : fd_(pipe_fd) {}
  ~Reporter() {
    if (fd_ >= 0) ::close(fd_);
  }
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  int Fail(const std::string& message) {
    std::string line = message;
    for (char& c : line) {
      if (c == '\n') c = ' ';
    }
    if (fd_ >= 0) {
      WriteAll(fd_, line + "\n");
    } else {
      std::fprintf(stderr, "jigdoofus: %s\n", line.c_str());
    }
    return 1;
  }
  // A warning that does not stop the mount: on the terminal of whoever
  // started it (the daemon's stderr is still theirs until Ready), and in
  // the log.
  void Warn(const std::string& message) {
    if (fd_ >= 0) std::fprintf(stderr, "jigdoofus: warning: %s\n", message.c_str());
    spdlog::warn("{}", message);
  }
  void Ready() {
    if (fd_ < 0) return;
    WriteAll(fd_, "OK\n");
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

void DetachStdio() {
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::dup2(null, 2);
  if (null > 2) ::close(null);
}

// All the work, in the daemon child or in the foreground. `report_fd`: the
// pipe to the waiting parent, or -1.
int Serve(const CommandLine& cl, int report_fd) {
  Reporter report(report_fd);
  fuse_set_log_func(LibfuseLog);
  Status st = CheckMountpoint(cl.mountpoint);
  if (!st.ok()) return report.Fail(st.message());
  const MountConfig config = ResolveMountConfig(cl.images, RaiseOpenFileLimit());
  auto images = ImageSet::Open(config);
  if (!images.ok()) return report.Fail(images.status().message());
  for (const std::string& warning : (*images)->warnings()) report.Warn(warning);
  JigdoFsOptions fs_options;
  fs_options.fetch_timeout_s = config.fetch_timeout_s;
  fs_options.prefetch_threads = config.prefetch_threads;
  fs_options.prefetch_budget = config.job_budget;
  fs_options.max_prefetch_threads = config.max_prefetch_threads;
  fs_options.read_ahead = config.read_ahead;
  JigdoFs fs(images->get(), fs_options);
  // The control socket is named after the canonical mountpoint, resolved
  // now: once mounted, resolving it would ask this (not yet serving) loop.
  char real[PATH_MAX];
  const std::string canonical = ::realpath(cl.mountpoint.c_str(), real) != nullptr ? real : cl.mountpoint;
  auto session = StartSession(cl, &fs);
  if (!session.ok()) return report.Fail(session.status().message());
  ControlServer control(&fs, images->get());
  if (Status cs = control.Start(canonical); !cs.ok()) {
    report.Warn("jigdoofus-ctl will not reach this mount: " + cs.message());
  }

  spdlog::info("mounted {} image(s) on {}", (*images)->images().size(), cl.mountpoint);
  report.Ready();
  if (report_fd >= 0) DetachStdio();
  if (::chdir("/") != 0) spdlog::warn("chdir /: {}", std::strerror(errno));
  // Once the loop has answered INIT (the stat waits for that), raise the
  // kernel's read-ahead. A thread, because the stat needs the loop.
  // (cl.mountpoint is absolute: the chdir above does not matter.)
  std::thread read_ahead([&cl] {
    struct stat root;
    if (::stat(cl.mountpoint.c_str(), &root) == 0) RaiseReadAhead(cl);
  });
  int rc = RunLoop(cl, (*session)->get());
  session->reset();  // unmount before the images go away (also ends a pending stat)
  read_ahead.join();
  spdlog::info("unmounted {}", cl.mountpoint);
  return rc;
}

// Parent side of the daemon startup: wait for "OK" or the error.
int AwaitChild(pid_t child, int read_fd) {
  std::string text;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(read_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(read_fd);
  if (text.rfind("OK\n", 0) == 0) return 0;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  int wstatus = 0;
  std::string how;
  if (::waitpid(child, &wstatus, 0) == child && WIFSIGNALED(wstatus)) {
    how = std::string(" (killed by signal ") + std::to_string(WTERMSIG(wstatus)) + ")";
  }
  if (text.empty()) text = "daemon died during startup" + how;
  std::fprintf(stderr, "jigdoofus: %s\n", text.c_str());
  return 1;
}

}  // namespace

int RunJigdoofus(const CommandLine& cl) {
  if (cl.foreground) {
    if (Status st = SetUpLogging(/*to_syslog=*/false, cl.log_level, cl.log_file); !st.ok()) {
      std::fprintf(stderr, "jigdoofus: %s\n", st.message().c_str());
      return 1;
    }
    return Serve(cl, -1);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "jigdoofus: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "jigdoofus: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    Status logging = SetUpLogging(/*to_syslog=*/true, cl.log_level, cl.log_file);
    int rc = logging.ok() ? Serve(cl, fds[1]) : Reporter(fds[1]).Fail(logging.message());
    spdlog::shutdown();
    std::_Exit(rc);
  }
  ::close(fds[1]);
  return AwaitChild(pid, fds[0]);
}

}  // namespace jigdoofus
