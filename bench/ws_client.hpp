// The generator's WebSocket client: raw TCP, the upgrade, and RFC 6455 framing by hand, so a connection
// costs a socket and two small buffers and the generator stays cheaper than the servers it measures.
#pragma once

#include <boost/asio.hpp>

#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Client frames must be masked; an all-zero key is valid and keeps the generator's CPU cost down.
inline void append_client_frame(std::string& out, std::string_view payload) {
  std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x81));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  out.append(4, '\0');
  out.append(payload);
}

// A connection with an outbound buffer that coalesces everything sent while a write is in flight, and a
// callback per incoming text line (frames split on '\n').
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using OnLine = std::function<void(std::string_view)>;
  using OnEvent = std::function<void()>;

  Connection(asio::io_context& io, tcp::endpoint server, asio::ip::address source, std::string host, std::string path)
      : socket_(io), server_(server), source_(source), host_(std::move(host)), path_(std::move(path)) {}

  OnLine on_line;
  OnEvent on_open;   // after the upgrade
  OnEvent on_close;  // connection lost

  void start() {
    boost::system::error_code ec;
    socket_.open(server_.protocol(), ec);
    if (!ec && !source_.is_unspecified()) {
      // Spreading source addresses (127.0.0.2, 127.0.0.3, ...) passes the ~28k ephemeral ports per address.
      socket_.set_option(asio::socket_base::reuse_address(true), ec);
      socket_.bind(tcp::endpoint(source_, 0), ec);
    }
    if (ec) return fail("bind", ec);
    socket_.async_connect(server_, [self = shared_from_this()](boost::system::error_code e) {
      if (e) return self->fail("connect", e);
      self->socket_.set_option(tcp::no_delay(true));
      self->out_ = "GET " + self->path_ + " HTTP/1.1\r\nHost: " + self->host_ +
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n";
      self->flush();
      self->read();
    });
  }

  void send_text(std::string_view payload) {
    append_client_frame(writing_ ? pending_ : out_, payload);
    if (!writing_) flush();
  }

  void close() {
    closed_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
  }

  bool open() const { return upgraded_ && !closed_; }

 private:
  void fail(const char* what, boost::system::error_code ec) {
    if (!closed_ && ec != asio::error::operation_aborted) std::fprintf(stderr, "connection: %s: %s\n", what, ec.message().c_str());
    const bool was_open = upgraded_ && !closed_;
    closed_ = true;
    if (was_open && on_close) on_close();
  }

  void flush() {
    if (out_.empty() || closed_) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->fail("write", ec);
      self->out_.clear();
      if (!self->pending_.empty()) {
        self->out_.swap(self->pending_);
        self->flush();
      }
    });
  }

  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) return self->fail("read", ec);
      self->in_.append(self->buf_.data(), n);
      self->parse();
      if (!self->closed_) self->read();
    });
  }

  void parse() {
    std::size_t pos = 0;
    if (!upgraded_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (in_.compare(0, 12, "HTTP/1.1 101") != 0) {
        std::fprintf(stderr, "upgrade refused: %.*s\n", int(std::min<std::size_t>(end, 200)), in_.data());
        closed_ = true;
        return;
      }
      upgraded_ = true;
      pos = end + 4;
      if (on_open) on_open();
    }
    for (;;) {
      if (in_.size() - pos < 2) break;
      const auto* d = reinterpret_cast<const unsigned char*>(in_.data() + pos);
      std::size_t len = d[1] & 0x7f, hdr = 2;
      if (len == 126) {
        if (in_.size() - pos < 4) break;
        len = (std::size_t{d[2]} << 8) | d[3];
        hdr = 4;
      } else if (len == 127) {
        if (in_.size() - pos < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | d[2 + i];
        hdr = 10;
      }
      if (in_.size() - pos < hdr + len) break;
      const int opcode = d[0] & 0x0f;
      std::string_view payload(in_.data() + pos + hdr, len);
      pos += hdr + len;
      if (opcode == 9) {  // ping: answer, as browsers do
        std::string pong;
        pong.push_back(static_cast<char>(0x8a));
        pong.push_back(static_cast<char>(0x80 | payload.size()));
        pong.append(4, '\0');
        pong.append(payload);
        (writing_ ? pending_ : out_).append(pong);
        if (!writing_) flush();
      } else if (opcode == 1 && on_line) {
        std::size_t start = 0;
        while (start < payload.size()) {
          auto nl = payload.find('\n', start);
          if (nl == std::string_view::npos) nl = payload.size();
          on_line(payload.substr(start, nl - start));
          start = nl + 1;
        }
      } else if (opcode == 8) {
        fail("server closed", asio::error::eof);
        return;
      }
    }
    in_.erase(0, pos);
  }

  tcp::socket socket_;
  tcp::endpoint server_;
  asio::ip::address source_;
  std::string host_, path_;
  std::string out_, pending_, in_;
  std::array<char, 16384> buf_{};
  bool writing_ = false, upgraded_ = false, closed_ = false;
};

// Extracts an unsigned integer following `key` (e.g. "\"s\":") in a JSON line; false if absent.
inline bool find_uint(std::string_view line, std::string_view key, std::uint64_t& out) {
  auto p = line.find(key);
  if (p == std::string_view::npos) return false;
  p += key.size();
  std::uint64_t v = 0;
  bool any = false;
  while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
    v = v * 10 + static_cast<std::uint64_t>(line[p++] - '0');
    any = true;
  }
  out = v;
  return any;
}

}  // namespace bench
