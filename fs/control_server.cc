#include "fs/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <vector>

#include "fetch/mount/image_availability.h"
#include "fetch/mount/image_prefetch.h"
#include "fetch/mount/image_verify.h"
#include "fs/control_socket.h"
#include "fs/jigdo_fs.h"

namespace jigdoofus {

namespace {

using nlohmann::json;

constexpr int kProgressEveryMs = 500;
constexpr int kRequestTimeoutMs = 10000;

std::string Line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The state of one job, shared by the job thread and the connection.
struct Job {
  std::mutex mu;
  json progress;                   // the latest {"image", "index", "count", "done", "total", "failed"}
  json results = json::array();    // one per image, as they finish
  bool finished = false;
  bool ok = true;
};

}  // namespace

ControlServer::~ControlServer() {
  stopping_->Fire();
  if (stop_pipe_[1] >= 0) (void)!::write(stop_pipe_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Connection> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(connections_);
  }
  for (Connection& c : conns) c.thread.join();
  for (int fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

Status ControlServer::Start(const std::string& mountpoint) {
  JIGDOOFUS_ASSIGN_OR_RETURN(listen_, ListenControlSocket(mountpoint));
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::OK();
}

void ControlServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0 || stopping_->fired()) return;
    UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    std::lock_guard<std::mutex> lock(mu_);
    // Reap connections that ended (a monitor asking every few seconds
    // would otherwise pile up finished threads).
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back(Connection{std::thread([this, done, c = std::move(conn)]() mutable {
                                        Serve(std::move(c));
                                        done->store(true);
                                      }),
                                      done});
  }
}

void ControlServer::Serve(UniqueFd conn) {
  // No exception may leave a thread: it would end the daemon.
  try {
    ServeRequest(conn.get());
  } catch (const std::exception& e) {
    spdlog::error("control socket: {}", e.what());
    (void)SendLine(conn.get(), Line({{"error", std::string("internal error: ") + e.what()}}));
  }
}

void ControlServer::ServeRequest(int fd) {
  auto refuse = [fd](const std::string& why) { (void)SendLine(fd, Line({{"error", why}})); };
  pollfd pfd = {fd, POLLIN, 0};
  if (::poll(&pfd, 1, kRequestTimeoutMs) <= 0) return refuse("no request");
  LineReader reader(fd);
  Result<std::string> line = reader.Next();
  if (!line.ok()) return;
  json request = json::parse(*line, nullptr, false);
  // Read before refusing: closing on an unread request would reset the
  // connection and lose the reason.
  Result<uid_t> peer = PeerUid(fd);
  if (!peer.ok()) return refuse(peer.status().message());
  if (*peer != 0 && *peer != ::geteuid()) {
    return refuse("permission denied: this mount belongs to uid " + std::to_string(::geteuid()) +
                  "; only that user and root may control it");
  }
  if (request.is_discarded() || !request.is_object() || !request.contains("op") || !request["op"].is_string()) {
    return refuse("bad request");
  }
  const std::string op = request["op"];
  if (op == "status") {
    (void)SendLine(fd, Line({{"status", json::parse(fs_->StatusText())}}));
    return;
  }
  if (op != "prefetch" && op != "verify") return refuse("unknown request '" + op + "'");

  // The images asked for (all by default), by name.
  std::vector<const OpenImage*> chosen;
  if (request.contains("images") && request["images"].is_array() && !request["images"].empty()) {
    for (const json& name : request["images"]) {
      const OpenImage* found = nullptr;
      for (const OpenImage& image : images_->images()) {
        if (name.is_string() && image.name == name.get<std::string>()) found = &image;
      }
      if (found == nullptr) return refuse("no image named '" + (name.is_string() ? name.get<std::string>() : "?") + "'");
      chosen.push_back(found);
    }
  } else {
    for (const OpenImage& image : images_->images()) chosen.push_back(&image);
  }

  auto cancel = std::make_shared<CancelSignal>();
  CancelSignal::Subscription on_stop = stopping_->Subscribe([cancel] { cancel->Fire(); });
  const MountConfig& config = images_->config();
  if (op == "prefetch") {
    // Would the cache hold it all? Slices only a mirror has are kept there.
    uint64_t needed = 0;
    for (const OpenImage* image : chosen) needed += Availability(*image).missing_slice_bytes;
    if (auto use = images_->CacheUsage(); use && use->used + needed > use->bound) {
      (void)SendLine(fd, Line({{"warning", "the cache bound (" + std::to_string(use->bound) +
                                               " bytes) is smaller than what these images need there (" +
                                               std::to_string(use->used + needed) +
                                               " bytes with what it holds): reads of other images may evict "
                                               "them again; raise --cache-size"}}));
    }
  }
  Job job;
  // One image after the other; each result as it finishes.
  auto run_job = [&] {
    for (size_t i = 0; i < chosen.size() && !cancel->fired(); ++i) {
      const OpenImage& image = *chosen[i];
      auto report = [&](const JobProgress& p) {
        std::lock_guard<std::mutex> lock(job.mu);
        job.progress = {{"image", image.name}, {"index", i},          {"count", chosen.size()},
                        {"done", p.done_bytes}, {"total", p.total_bytes}, {"failed", p.failed}};
      };
      json result = {{"image", image.name}};
      bool ok = false;
      if (op == "prefetch") {
        const JobWorkers workers{config.jobs, config.job_budget, config.max_prefetch_threads};
        Status st = PrefetchImage(image, workers, config.fetch_timeout_s, cancel, stopping_, report);
        const ImageAvailability a = Availability(image);
        ok = st.ok() && a.missing_bytes == 0;
        result["available_bytes"] = a.available_bytes;
        result["missing_bytes"] = a.missing_bytes;
        if (!st.ok()) result["error"] = st.message();
      } else {
        auto v = VerifyImage(image, config, cancel, report);
        if (v.ok()) {
          ok = v->matches();
          result["algo"] = v->algo;
          result["expected"] = v->expected;
          result["actual"] = v->actual;
        } else {
          result["error"] = v.status().message();
        }
      }
      result["ok"] = ok;
      std::lock_guard<std::mutex> lock(job.mu);
      job.ok = job.ok && ok;
      job.results.push_back(std::move(result));
    }
  };
  std::thread worker([&] {
    try {
      run_job();
    } catch (const std::exception& e) {  // never out of a thread
      spdlog::error("control socket: {} failed: {}", op, e.what());
      std::lock_guard<std::mutex> lock(job.mu);
      job.ok = false;
      job.results.push_back({{"image", ""}, {"ok", false}, {"error", std::string("internal error: ") + e.what()}});
    }
    std::lock_guard<std::mutex> lock(job.mu);
    job.finished = true;
  });

  // Progress every half second; a client that hangs up stops the job.
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    int n = ::poll(&p, 1, kProgressEveryMs);
    if (n > 0) {
      char c;
      if (::recv(fd, &c, 1, MSG_DONTWAIT) <= 0) cancel->Fire();  // hung up (or spoke out of turn)
    }
    json progress;
    bool finished;
    {
      std::lock_guard<std::mutex> lock(job.mu);
      progress = job.progress;
      finished = job.finished;
    }
    if (finished) break;
    if (!progress.is_null() && !SendLine(fd, Line({{"progress", progress}})).ok()) cancel->Fire();
  }
  worker.join();
  if (!cancel->fired()) {
    for (const json& r : job.results) (void)SendLine(fd, Line({{"result", r}}));
  }
  (void)SendLine(fd, Line({{"done", true}, {"ok", job.ok && !cancel->fired()}}));
}

}  // namespace jigdoofus
