// The listening socket. It accepts on the first worker's thread and hands each connection to the next
// worker, round-robin, as an HttpSession; the connection then stays on that worker for good. Out of
// descriptors, it sheds the pending connections and pauses instead of spinning (listener.cpp).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/context.hpp"
#include "server/worker.hpp"

namespace rtsync::server {

class Listener {
 public:
  // Binds and listens on `listen` ("HOST:PORT"; port 0 picks one). Throws boost::system::system_error.
  Listener(Context& ctx, const std::vector<std::unique_ptr<Worker>>& workers, const std::string& listen);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  // Starts accepting (posted to the first worker).
  void start();
  // Stops accepting; on the first worker's thread.
  void stop();

 private:
  void accept();
  void pause_accepting(const boost::system::error_code& ec);
  void log_accept_error(const boost::system::error_code& ec, std::size_t shed);

  Context& ctx_;
  const std::vector<std::unique_ptr<Worker>>& workers_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer pause_;
  std::size_t next_worker_ = 0;
  int spare_fd_ = -1;  // a descriptor kept in reserve, to shed connections when none is left
  std::chrono::steady_clock::time_point last_log_{};
  std::uint64_t errors_unlogged_ = 0;
  std::uint64_t shed_unlogged_ = 0;
};

}  // namespace rtsync::server
