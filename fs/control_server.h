// ControlServer: answers jigdoofus-ctl on the mount's control socket
// (fs/control_socket.h): "status" (the status document), "prefetch" and
// "verify" (long jobs on images, with progress lines every half second
// and a result per image). A job stops when the client hangs up (Ctrl-C)
// or the mount goes away; what a prefetch got stays in the cache.
//
// One thread accepts; each connection is served by its own thread.
// Thread-safe; the destructor stops and joins everything.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/fetch_context.h"
#include "core/unique_fd.h"
#include "fetch/mount/image_set.h"

namespace jigdoofus {

class JigdoFs;

class ControlServer {
 public:
  ControlServer(const JigdoFs* fs, const ImageSet* images) : fs_(fs), images_(images) {}
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds the socket of `mountpoint` (canonical path) and starts serving.
  Status Start(const std::string& mountpoint);

 private:
  void AcceptLoop();
  void Serve(UniqueFd conn);         // catches everything
  void ServeRequest(int fd);          // one request on a connection

  const JigdoFs* fs_;
  const ImageSet* images_;
  UniqueFd listen_;
  int stop_pipe_[2] = {-1, -1};
  std::shared_ptr<CancelSignal> stopping_ = std::make_shared<CancelSignal>();
  std::thread acceptor_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mu_;
  std::list<Connection> connections_;  // GUARDED_BY(mu_)
};

}  // namespace jigdoofus
