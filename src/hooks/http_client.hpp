// HTTP/1.1 POSTs of JSON to the app's backend (docs/hooks.md): the proxy hooks and the webhooks. The
// client runs on a thread of its own, so no I/O thread ever waits for a backend, and keeps idle
// keep-alive connections per endpoint for the next request. Plain http:// only: a backend is reached on
// the private network (or through a TLS proxy beside it).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/endpoint.hpp"

namespace boost::asio {
class io_context;
}

namespace rtsync::hooks {

using common::Endpoint;

struct Request {
  std::string body;  // sent as application/json
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};  // the whole exchange: connect, write, read
};

struct Response {
  unsigned status = 0;  // 0: no HTTP answer, `error` says why
  std::string body;
  std::string error;  // "timeout", "connection refused", "answer over 1 MiB", …
  bool answered() const { return status != 0; }
};

// Bytes of an answer's body at most; a larger one is an error (a backend answers small JSON).
inline constexpr std::size_t kMaxAnswer = 1024 * 1024;

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();  // stops the thread; requests still pending then get no callback
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `req` to `to`; `done` runs on the client's thread. A request on a kept connection that the
  // backend had closed meanwhile is sent again once on a new one (nothing of it was answered).
  void post(const Endpoint& to, Request req, std::function<void(Response)> done);

  // The client's loop, for timers of its users (a webhook's retry), so they share its thread.
  boost::asio::io_context& context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::hooks
