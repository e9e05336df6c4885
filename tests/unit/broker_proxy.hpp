// A TCP proxy between one test node's Redis broker and the test's Redis server, so that a test can cut
// that node off Redis and let it back, as a network failure or a crash would (the node's process, here
// its broker, goes on as if nothing happened; only its sockets see the cut). cut() drops every proxied
// connection and refuses new ones; restore() accepts them again, on the same port.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <future>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace rtsync::broker::testing {

class Proxy {
 public:
  explicit Proxy(unsigned short upstream) : upstream_(boost::asio::ip::make_address("127.0.0.1"), upstream) {
    listen(0);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Proxy() {
    on_loop([this] { drop(); });
    guard_.reset();
    thread_.join();
  }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  unsigned short port() const { return port_; }

  void cut() {
    on_loop([this] { drop(); });
  }
  void restore() {
    on_loop([this] { listen(port_); });
  }

 private:
  using tcp = boost::asio::ip::tcp;

  // Both sockets of one proxied connection; either side's end or error closes both.
  struct Pair {
    explicit Pair(boost::asio::io_context& io) : down(io), up(io) {}
    tcp::socket down, up;
  };

  void listen(unsigned short port) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    acceptor_.listen();
    accept();
  }

  void accept() {
    auto pair = std::make_shared<Pair>(io_);
    acceptor_.async_accept(pair->down, [this, pair](boost::system::error_code ec) {
      if (ec) return;  // closed by cut()
      pair->up.connect(upstream_, ec);
      if (ec) return;
      pairs_.push_back(pair);
      pump(pair, pair->down, pair->up);
      pump(pair, pair->up, pair->down);
      accept();
    });
  }

  void pump(const std::shared_ptr<Pair>& pair, tcp::socket& from, tcp::socket& to) {
    auto buf = std::make_shared<std::array<char, 16384>>();
    from.async_read_some(boost::asio::buffer(*buf), [this, pair, buf, &from, &to](boost::system::error_code ec,
                                                                                  std::size_t n) {
      if (ec) return close(*pair);
      boost::asio::async_write(to, boost::asio::buffer(*buf, n),
                               [this, pair, buf, &from, &to](boost::system::error_code wec, std::size_t) {
                                 if (wec) return close(*pair);
                                 pump(pair, from, to);
                               });
    });
  }

  static void close(Pair& p) {
    boost::system::error_code ignored;
    p.down.close(ignored);
    p.up.close(ignored);
  }

  void drop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& p : pairs_) close(*p);
    pairs_.clear();
  }

  template <class F>
  void on_loop(F f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{boost::asio::make_work_guard(io_)};
  tcp::acceptor acceptor_{io_};
  tcp::endpoint upstream_;
  unsigned short port_ = 0;
  std::vector<std::shared_ptr<Pair>> pairs_;
  std::thread thread_;
};

}  // namespace rtsync::broker::testing
