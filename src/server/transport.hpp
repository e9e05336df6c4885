// The seam between a client's commands (server/client.hpp) and the connection they arrive on: what a
// command handler may do to its connection. WebSocket (server/ws_session.hpp) is one implementation; a
// transport carries bytes and frames, and knows nothing of ops, subscriptions or permissions.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/frame.hpp"

namespace rtsync::server {

class Transport {
 public:
  virtual ~Transport() = default;

  // Queues a message of the client's protocol (a reply, hello). The replies produced while one incoming
  // message is handled go out together (PROTOCOL §4: one frame of lines).
  virtual void send_text(std::string_view json) = 0;
  // Queues a shared frame: a push built once for every subscriber (core/frame.hpp).
  virtual void send_frame(core::FramePtr frame) = 0;
  // Says bye with a close code of PROTOCOL §6 and ends the connection. Idempotent.
  virtual void close(std::uint16_t code, std::string_view reason) = 0;
  // The longest reply body to `id` the outbound queue can still take without going over
  // limits.max_outbound: a reply must never cut off its own connection.
  virtual std::size_t reply_room(const boost::json::value& id) const = 0;
  // Runs `fn` on the connection's thread (completions from the store come back this way).
  virtual void post(std::function<void()> fn) = 0;
  // Keeps the connection, and the client it owns, alive while a completion is outstanding.
  virtual std::shared_ptr<void> hold() = 0;
  // The client held commands back (and asked not to be fed input); it now takes input again.
  virtual void resumed() = 0;
};

}  // namespace rtsync::server
