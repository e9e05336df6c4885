// What a worker keeps of each connection it owns, whatever its transport: the periodic sweep, the
// coalesced flush after a drain, and the bye at shutdown.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace rtsync::server {

class Connection {
 public:
  virtual ~Connection() = default;
  // Called by the worker's sweep (at least twice per ping interval): liveness and token expiry.
  virtual void tick(std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall) = 0;
  // Called for a connection on the worker's flush list (Worker::want_flush): writes everything queued.
  virtual void flush() = 0;
  virtual void close(std::uint16_t code, std::string_view reason) = 0;
  // Whether the connection is `user`'s (when not empty) or the session `session` (when not empty): the
  // Server API's disconnect. Connections without an identity of their own are never.
  virtual bool belongs_to(std::string_view user, std::string_view session) const {
    (void)user;
    (void)session;
    return false;
  }
};

}  // namespace rtsync::server
