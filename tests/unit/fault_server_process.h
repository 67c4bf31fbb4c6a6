// FaultServer: runs tests/tools/fault_server.py (a real HTTP server on
// 127.0.0.1) over a fresh temp directory for one test: port learned from
// its port file (no sleeps), stopped by pid with SIGTERM in the destructor.
// Shared by the downloader and mirror-source tests. Not thread-safe.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "tests/unit/random_bytes.h"
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fetch/transport/downloader.h"

extern char** environ;

namespace jigdoofus::testing_util {

namespace fs = std::filesystem;
using std::chrono::seconds;

// Generous: only there so a broken downloader fails instead of hanging.
constexpr auto kHangGuard = seconds(60);


inline void WriteFile(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

// One fault_server.py process over a fresh temp directory.
class FaultServer {
 public:
  FaultServer() {
    char tmpl[] = "/tmp/jigdoofus-dl-XXXXXX";
    dir_ = mkdtemp(tmpl);
    root_ = dir_ / "root";
    fs::create_directories(root_);
  }
  ~FaultServer() {
    Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& root() const { return root_; }
  const fs::path& dir() const { return dir_; }

  // `tls`: HTTPS with a fresh self-signed certificate for 127.0.0.1
  // (ca_file() names it, for the clients to trust).
  void Start(const std::vector<std::string>& faults = {}, bool tls = false) {
    const std::string port_file = (dir_ / "port").string();
    std::vector<std::string> args = {"/usr/bin/python3", JIGDOOFUS_FAULT_SERVER, "--root", root_.string(),
                                     "--port", "0", "--port-file", port_file};
    if (tls) {
      scheme_ = "https";
      const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
      const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                              "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                              " >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
      args.push_back("--tls");
      args.push_back(cert + ":" + key);
    }
    for (const auto& f : faults) {
      args.push_back("--fault");
      args.push_back(f);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    auto give_up = std::chrono::steady_clock::now() + kHangGuard;
    while (!fs::exists(port_file)) {
      int status;
      ASSERT_EQ(waitpid(pid_, &status, WNOHANG), 0) << "fault_server.py exited early";
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "fault_server.py never wrote its port";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream(port_file) >> port_;
    ASSERT_GT(port_, 0);
    DownloaderOptions control_options;
    if (tls) control_options.ca_file = ca_file();
    auto control = Downloader::Create(control_options);
    ASSERT_TRUE(control.ok()) << control.status().ToString();
    control_ = std::move(control).value();
  }

  void Stop() {
    control_.reset();
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  std::string Url(const std::string& path) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string ca_file() const { return (dir_ / "cert.pem").string(); }
  int port() const { return port_; }

  nlohmann::json Stats() {
    auto body = FetchToString(*control_, Url("/__stats"), 1 << 20);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return body.ok() ? nlohmann::json::parse(*body) : nlohmann::json::object();
  }
  int Requests(const std::string& path) {
    auto j = Stats();
    return j["requests"].contains(path) ? j["requests"][path].get<int>() : 0;
  }
  // Requests with a Range header for `path` (decoded), and requests for
  // `raw` exactly as it was sent (percent-encoding and all).
  int RangedRequests(const std::string& path) {
    auto j = Stats();
    return j["ranged"].contains(path) ? j["ranged"][path].get<int>() : 0;
  }
  int RawRequests(const std::string& raw) {
    auto j = Stats();
    return j["raw"].contains(raw) ? j["raw"][raw].get<int>() : 0;
  }
  void AddFault(const std::string& pattern, const std::string& mode) {
    auto r = FetchToString(*control_, Url("/__fault?pattern=" + pattern + "&mode=" + mode), 1 << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

 private:
  fs::path dir_, root_;
  std::string scheme_ = "http";
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<Downloader> control_;
};

}  // namespace jigdoofus::testing_util
