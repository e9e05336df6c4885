// The rtsync server process: store, hub, broker, services, the I/O worker pool, the listener, and the
// orderly shutdown of PROTOCOL §1 (stop accepting, bye to every client, flush the store, exit 0 in 5 s).
#pragma once

#include <memory>

#include "config/config.hpp"

namespace rtsync::server {

class Server {
 public:
  explicit Server(config::Config cfg);
  ~Server();
  // Serves until SIGTERM or SIGINT; returns the process exit code. Prints the listening line to stdout
  // once connections are accepted.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::server
