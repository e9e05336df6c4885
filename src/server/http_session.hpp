// One HTTP/1.1 connection: keep-alive requests routed to the REST API or static files, and the
// WebSocket upgrade on /v1/ws, after which the socket is handed to a WsSession.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory>
#include <optional>
#include <string>

#include "common/ip.hpp"
#include "server/context.hpp"
#include "server/http.hpp"

namespace rtsync::server {

class Worker;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Context& ctx, Worker& worker, boost::asio::ip::tcp::socket socket);
  void start();

 private:
  void do_read();
  void read_header();
  void on_read(boost::system::error_code ec, std::size_t n);
  void handle(Request& req);
  void upgrade(Request& req, Principal who, std::string set_cookie);
  // A connect hook's refusal: the WebSocket is opened and closed at once with it, so that a browser
  // sees the code and the reason (a refused upgrade would only be an error event).
  struct Refusal {
    std::uint16_t code;
    std::string reason;
  };
  // The 101, then the WebSocket session on this socket.
  void switch_protocols(std::string accept, Principal who, std::string set_cookie, std::optional<Refusal> refused);
  void send(http::message_generator msg, bool keep_alive);
  void on_write(bool keep_alive, boost::system::error_code ec, std::size_t n);
  void close();
  // Runs a function on this session's I/O thread (the services' completions).
  service::Post poster();
  // Answers an unreadable request with an error and closes the connection.
  void refuse(http::status status, std::string_view message);
  // 429 with Retry-After: `wait` seconds; PubNub paths in PubNub's error shapes.
  void too_many(const Request& req, long wait, bool api, bool pubnub);

  Context& ctx_;
  Worker& worker_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  common::Ip peer_{};  // the remote address, for the rate limit
};

}  // namespace rtsync::server
