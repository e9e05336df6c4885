// The generator's client connection: raw TCP with the framing of the server under test done by hand, so a
// connection costs a socket and two small buffers and the generator stays cheaper than the servers it
// measures. Three framings:
//   websocket  the HTTP upgrade, then RFC 6455 (client frames masked with a zero key; pings answered);
//              each text frame is split on '\n' and every line goes to on_line.
//   resp       Redis RESP: a pub/sub "message" push gives its payload to on_line, a "subscribe"
//              confirmation gives "+subscribed", a simple string ("+PONG") itself; integers are dropped.
//   http       HTTP/1.1 keep-alive responses (Content-Length or chunked); each body goes to on_line whole.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Client frames must be masked; an all-zero key is valid and keeps the generator's CPU cost down.
inline void append_client_frame(std::string& out, std::string_view payload, int opcode = 1) {
  std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | opcode));
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

enum class Framing { websocket, resp, http };

// A connection with an outbound buffer that coalesces everything sent while a write is in flight.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using OnLine = std::function<void(std::string_view)>;
  using OnEvent = std::function<void()>;

  Connection(asio::io_context& io, tcp::endpoint server, asio::ip::address source, std::string host, std::string path,
             Framing framing = Framing::websocket)
      : socket_(io), server_(server), source_(source), host_(std::move(host)), path_(std::move(path)), framing_(framing) {}

  OnLine on_line;
  OnEvent on_open;   // after the upgrade (websocket) or the TCP connect (resp, http)
  OnEvent on_close;  // connection lost after it was open
  OnEvent on_error;  // connection failed before it was open (connect, upgrade refused)
  static inline bool quiet = false;  // no "connection: …" lines on stderr (churn, slow consumers)

  void start() {
    boost::system::error_code ec;
    socket_.open(server_.protocol(), ec);
    if (!ec && rcvbuf_ > 0) socket_.set_option(asio::socket_base::receive_buffer_size(rcvbuf_), ec);
    if (!ec && !source_.is_unspecified()) {
      // Spreading source addresses (127.0.0.2, 127.0.0.3, ...) passes the ~28k ephemeral ports of one
      // address. IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), so a port is unique per
      // 4-tuple rather than per bound address.
      int one = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket_.bind(tcp::endpoint(source_, 0), ec);
    }
    if (ec) return fail("bind", ec);
    socket_.async_connect(server_, [self = shared_from_this()](boost::system::error_code e) {
      if (e) return self->fail("connect", e);
      self->socket_.set_option(tcp::no_delay(true));
      if (self->framing_ == Framing::websocket) {
        self->out_ = "GET " + self->path_ + " HTTP/1.1\r\nHost: " + self->host_ +
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
        self->flush();
      } else {
        self->upgraded_ = true;
        if (self->on_open) self->on_open();
      }
      self->read();
    });
  }

  // A text message (websocket) or raw bytes (resp, http).
  void send_text(std::string_view payload) {
    if (closed_) return;
    auto& buf = writing_ ? pending_ : out_;
    if (framing_ == Framing::websocket) append_client_frame(buf, payload);
    else buf.append(payload);
    if (!writing_) flush();
  }

  void close() {
    closed_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
  }

  // A small receive buffer (before start()): a consumer that stops reading then backs up into the server
  // after kilobytes rather than megabytes of kernel buffering.
  void set_receive_buffer(int bytes) { rcvbuf_ = bytes; }

  // Stops reading the socket (a consumer that stopped reading), or resumes.
  void set_reading(bool on) {
    const bool was = reading_enabled_;
    reading_enabled_ = on;
    if (on && !was && !read_pending_ && !closed_) read();
  }

  bool open() const { return upgraded_ && !closed_; }
  bool ended() const { return closed_; }
  std::uint64_t bytes_in() const { return bytes_in_; }

 private:
  void fail(const char* what, boost::system::error_code ec) {
    if (closed_) return;  // closed by us, or already failed
    if (!quiet && ec != asio::error::operation_aborted) std::fprintf(stderr, "connection: %s: %s\n", what, ec.message().c_str());
    const bool was_open = upgraded_;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (was_open && on_close) on_close();
    else if (!was_open && on_error) on_error();
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
    read_pending_ = true;
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      self->read_pending_ = false;
      if (ec) return self->fail("read", ec);
      self->bytes_in_ += n;
      self->in_.append(self->buf_.data(), n);
      switch (self->framing_) {
        case Framing::websocket: self->parse_ws(); break;
        case Framing::resp: self->parse_resp(); break;
        case Framing::http: self->parse_http(); break;
      }
      if (!self->closed_ && self->reading_enabled_) self->read();
    });
  }

  void parse_ws() {
    std::size_t pos = 0;
    if (!upgraded_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (in_.compare(0, 12, "HTTP/1.1 101") != 0) {
        if (!quiet) std::fprintf(stderr, "upgrade refused: %.*s\n", int(std::min<std::size_t>(end, 200)), in_.data());
        fail("upgrade", asio::error::connection_refused);
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
        append_client_frame(pong, payload, 0xa);
        (writing_ ? pending_ : out_).append(pong);
        if (!writing_) flush();
      } else if ((opcode == 1 || opcode == 2) && on_line) {
        std::size_t start = 0;
        while (start < payload.size()) {
          auto nl = payload.find('\n', start);
          if (nl == std::string_view::npos) nl = payload.size();
          on_line(payload.substr(start, nl - start));
          if (closed_) return;
          start = nl + 1;
        }
      } else if (opcode == 8) {
        fail("server closed", asio::error::eof);
        return;
      }
    }
    in_.erase(0, pos);
  }

  // Reads "<prefix><digits>\r\n" at p; returns the position after it, or npos if incomplete.
  std::size_t resp_number(std::size_t p, long& value) const {
    auto e = in_.find("\r\n", p);
    if (e == std::string::npos) return std::string::npos;
    value = std::strtol(in_.data() + p + 1, nullptr, 10);
    return e + 2;
  }

  void parse_resp() {
    std::size_t pos = 0;
    std::vector<std::string_view> items;
    for (;;) {
      if (pos >= in_.size()) break;
      const char type = in_[pos];
      if (type == '+' || type == '-' || type == ':') {
        auto e = in_.find("\r\n", pos);
        if (e == std::string::npos) break;
        std::string_view line(in_.data() + pos, e - pos);
        pos = e + 2;
        if (type == '-') std::fprintf(stderr, "redis: %.*s\n", int(line.size()), line.data());
        else if (type == '+' && on_line) on_line(line);
        continue;
      }
      if (type != '*') {
        std::fprintf(stderr, "redis: unexpected byte %d\n", type);
        close();
        return;
      }
      long n = 0;
      std::size_t p = resp_number(pos, n);
      if (p == std::string::npos) break;
      items.clear();
      bool complete = true;
      for (long i = 0; i < n; ++i) {
        if (p >= in_.size()) { complete = false; break; }
        long len = 0;
        std::size_t q = resp_number(p, len);
        if (q == std::string::npos) { complete = false; break; }
        if (in_[p] == ':') { items.emplace_back(); p = q; continue; }
        if (in_.size() < q + static_cast<std::size_t>(len) + 2) { complete = false; break; }
        items.emplace_back(in_.data() + q, static_cast<std::size_t>(len));
        p = q + static_cast<std::size_t>(len) + 2;
      }
      if (!complete) break;
      pos = p;
      if (items.size() == 3 && items[0] == "message" && on_line) on_line(items[2]);
      else if (!items.empty() && items[0] == "subscribe" && on_line) on_line("+subscribed");
      if (closed_) return;
    }
    in_.erase(0, pos);
  }

  void parse_http() {
    std::size_t pos = 0;
    for (;;) {
      auto end = in_.find("\r\n\r\n", pos);
      if (end == std::string::npos) break;
      std::string_view head(in_.data() + pos, end - pos);
      std::size_t body = end + 4;
      auto header = [&](std::string_view name) -> std::string_view {
        for (std::size_t i = head.find("\r\n"); i != std::string_view::npos; i = head.find("\r\n", i + 2)) {
          auto line = head.substr(i + 2, head.find("\r\n", i + 2) - (i + 2));
          if (line.size() > name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0 && line[name.size()] == ':') {
            auto v = line.substr(name.size() + 1);
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            return v;
          }
        }
        return {};
      };
      if (!head.starts_with("HTTP/1.1 200")) {
        std::fprintf(stderr, "http: %.*s\n", int(std::min<std::size_t>(head.size(), 200)), head.data());
      }
      if (auto cl = header("Content-Length"); !cl.empty()) {
        std::size_t len = std::strtoul(std::string(cl).c_str(), nullptr, 10);
        if (in_.size() < body + len) break;
        if (on_line) on_line(std::string_view(in_.data() + body, len));
        pos = body + len;
      } else if (header("Transfer-Encoding") == "chunked") {
        std::string content;
        std::size_t p = body;
        bool done = false;
        for (;;) {
          auto e = in_.find("\r\n", p);
          if (e == std::string::npos) break;
          std::size_t len = std::strtoul(in_.data() + p, nullptr, 16);
          if (len == 0) {
            if (in_.size() < e + 4) break;
            p = e + 4;
            done = true;
            break;
          }
          if (in_.size() < e + 2 + len + 2) break;
          content.append(in_.data() + e + 2, len);
          p = e + 2 + len + 2;
        }
        if (!done) break;
        if (on_line) on_line(content);
        pos = p;
      } else {
        if (on_line) on_line({});
        pos = body;
      }
      if (closed_) return;
    }
    in_.erase(0, pos);
  }

  tcp::socket socket_;
  tcp::endpoint server_;
  asio::ip::address source_;
  std::string host_, path_;
  Framing framing_;
  std::string out_, pending_, in_;
  std::array<char, 16384> buf_{};
  std::uint64_t bytes_in_ = 0;
  int rcvbuf_ = 0;
  bool writing_ = false, upgraded_ = false, closed_ = false, reading_enabled_ = true, read_pending_ = false;
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
