// rtsync-bench: a load generator that speaks rtsync's WebSocket protocol over raw sockets, so the
// numbers measure the server rather than a client library. One thread, many connections.
//
//   rtsync-bench tally --url ws://127.0.0.1:8080/v1/ws --coll bench --fields 20 --writers 256 --seconds 10
//
// Scenario `tally`: each writer connection (its own anonymous user) creates its per_user document, then
// replaces it with new random answers as fast as acknowledgements come back (one write in flight per
// writer, so latency is the ack latency). Prints writes/s and p50/p99 ack latency.
#include <boost/asio.hpp>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/json_text.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  std::vector<double> latencies_us;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  bool measuring = false;
};

// Client frames must be masked; an all-zero key is valid and keeps the generator's CPU cost down.
void append_client_frame(std::string& out, std::string_view payload) {
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

class Writer : public std::enable_shared_from_this<Writer> {
 public:
  Writer(asio::io_context& io, tcp::endpoint ep, std::string host, std::string coll, int fields, Stats& stats,
         unsigned seed)
      : socket_(io), ep_(ep), host_(std::move(host)), coll_(std::move(coll)), fields_(fields), stats_(stats),
        rng_(seed) {}

  void start() {
    socket_.async_connect(ep_, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("connect", ec);
      self->socket_.set_option(tcp::no_delay(true));
      self->handshake();
    });
  }
  void stop() { stopped_ = true; }

 private:
  void fail(const char* what, boost::system::error_code ec) {
    if (!stopped_) std::fprintf(stderr, "writer: %s: %s\n", what, ec.message().c_str());
    stopped_ = true;
  }

  void handshake() {
    out_ = "GET /v1/ws HTTP/1.1\r\nHost: " + host_ +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n";
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (ec) return self->fail("handshake write", ec);
      asio::async_read_until(self->socket_, asio::dynamic_buffer(self->in_), "\r\n\r\n",
                             [self](boost::system::error_code ec2, std::size_t n) {
                               if (ec2) return self->fail("handshake read", ec2);
                               self->in_.erase(0, n);
                               self->send_write();
                               self->read();
                             });
    });
  }

  void send_write() {
    if (stopped_) return;
    std::string cmd = "{\"id\":";
    rtsync::common::append_int(cmd, ++seq_);
    cmd += created_ ? ",\"op\":\"update\",\"doc\":\"me\"" : ",\"op\":\"create\"";
    cmd += ",\"coll\":";
    rtsync::common::append_json_string(cmd, coll_);
    cmd += ",\"data\":{";
    for (int f = 0; f < fields_; ++f) {
      if (f) cmd += ',';
      cmd += "\"f";
      rtsync::common::append_int(cmd, f);
      cmd += "\":";
      rtsync::common::append_int(cmd, static_cast<int>(rng_() % 4));
    }
    cmd += "}}";
    out_.clear();
    append_client_frame(out_, cmd);
    sent_at_ = Clock::now();
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (ec) self->fail("write", ec);
    });
  }

  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) return self->fail("read", ec);
      self->in_.append(self->buf_.data(), n);
      self->parse();
      if (!self->stopped_) self->read();
    });
  }

  void parse() {
    for (;;) {
      if (in_.size() < 2) return;
      auto b1 = static_cast<unsigned char>(in_[1]) & 0x7f;
      std::size_t pos = 2, len = b1;
      if (b1 == 126) {
        if (in_.size() < 4) return;
        len = (static_cast<unsigned char>(in_[2]) << 8) | static_cast<unsigned char>(in_[3]);
        pos = 4;
      } else if (b1 == 127) {
        if (in_.size() < 10) return;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(in_[2 + i]);
        pos = 10;
      }
      if (in_.size() < pos + len) return;
      on_payload(std::string_view(in_).substr(pos, len));
      in_.erase(0, pos + len);
    }
  }

  void on_payload(std::string_view p) {
    // Replies carry "id"; pushes (hello, msg) do not. One write is in flight, so any reply is its ack.
    std::size_t start = 0;
    while (start < p.size()) {
      auto nl = p.find('\n', start);
      auto line = p.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      start = nl == std::string_view::npos ? p.size() : nl + 1;
      if (!line.starts_with("{\"id\":")) continue;
      const bool ok = line.find("\"ok\":") != std::string_view::npos;
      if (ok) created_ = true;
      if (stats_.measuring) {
        (ok ? stats_.ok : stats_.errors)++;
        stats_.latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent_at_).count());
      }
      if (!ok && stats_.errors < 5) std::fprintf(stderr, "error reply: %.*s\n", int(line.size()), line.data());
      send_write();
    }
  }

  tcp::socket socket_;
  tcp::endpoint ep_;
  std::string host_, coll_;
  int fields_;
  Stats& stats_;
  std::minstd_rand rng_;
  std::string out_, in_;
  std::array<char, 16384> buf_{};
  std::uint64_t seq_ = 0;
  bool created_ = false;
  bool stopped_ = false;
  Clock::time_point sent_at_;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtsync-bench: load generator for rtsync"};
  app.require_subcommand(1);
  std::string url = "127.0.0.1:8080", coll = "bench";
  int writers = 16, fields = 20;
  double seconds = 10, warmup = 2;
  auto* tally = app.add_subcommand("tally", "durable tally writes: per_user documents replaced in a loop");
  tally->add_option("--server", url, "HOST:PORT of the server");
  tally->add_option("--coll", coll, "tally collection (per_user, fields f0..fN-1 with values 0-3)");
  tally->add_option("--writers", writers, "concurrent writer connections");
  tally->add_option("--fields", fields, "fields per document");
  tally->add_option("--seconds", seconds, "measured duration");
  tally->add_option("--warmup", warmup, "seconds before measuring");
  CLI11_PARSE(app, argc, argv);

  auto colon = url.rfind(':');
  std::string host = url.substr(0, colon);
  auto port = static_cast<unsigned short>(std::stoi(url.substr(colon + 1)));
  asio::io_context io(1);
  tcp::endpoint ep(asio::ip::make_address(host), port);

  Stats stats;
  std::vector<std::shared_ptr<Writer>> all;
  for (int i = 0; i < writers; ++i) {
    all.push_back(std::make_shared<Writer>(io, ep, url, coll, fields, stats, 1234u + static_cast<unsigned>(i)));
    all.back()->start();
  }
  asio::steady_timer timer(io);
  Clock::time_point began;
  timer.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup)));
  timer.async_wait([&](boost::system::error_code) {
    stats.measuring = true;
    began = Clock::now();
    timer.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
    timer.async_wait([&](boost::system::error_code) {
      stats.measuring = false;
      for (auto& w : all) w->stop();
      io.stop();
    });
  });
  io.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  auto n = stats.latencies_us.size();
  double p50 = percentile(stats.latencies_us, 0.50), p99 = percentile(stats.latencies_us, 0.99);
  std::printf("tally writers=%d fields=%d: %.0f writes/s, p50 %.2f ms, p99 %.2f ms (%llu ok, %llu errors, %zu samples)\n",
              writers, fields, static_cast<double>(stats.ok) / elapsed, p50 / 1000, p99 / 1000,
              static_cast<unsigned long long>(stats.ok), static_cast<unsigned long long>(stats.errors), n);
  return stats.errors > 0 ? 1 : 0;
}
