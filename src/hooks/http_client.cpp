#include "hooks/http_client.hpp"

#include <map>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace rtsync::hooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Idle connections kept per endpoint: enough for the hooks a busy node has in flight at once.
constexpr std::size_t kIdlePerEndpoint = 64;

std::string describe(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == http::error::body_limit || ec == http::error::buffer_overflow) return "answer over 1 MiB";
  return ec.message();
}

// The backend closed a kept connection before answering: nothing of the request was taken.
bool closed_before_answer(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

}  // namespace

struct HttpClient::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::map<std::string, std::vector<beast::tcp_stream>> idle;  // touched on the client's thread only
  std::thread thread{[this] { io.run(); }};                   // last: everything above exists first

  std::optional<beast::tcp_stream> take_idle(const Endpoint& to) {
    auto it = idle.find(to.key());
    if (it == idle.end() || it->second.empty()) return std::nullopt;
    beast::tcp_stream s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }

  asio::awaitable<void> run(Endpoint to, Request req, std::function<void(Response)> done) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    Response r;
    http::request<http::string_body> msg{http::verb::post, to.target, 11};
    msg.set(http::field::host, to.port == "80" ? to.host : to.key());
    msg.set(http::field::content_type, "application/json");
    msg.set(http::field::user_agent, "rtsync/" RTSYNC_VERSION);
    for (auto& [name, value] : req.headers) msg.set(name, value);
    msg.body() = std::move(req.body);
    msg.keep_alive(true);
    msg.prepare_payload();
    for (bool retry = true;;) {
      auto kept = take_idle(to);
      const bool reused = kept.has_value();
      beast::tcp_stream stream = reused ? std::move(*kept) : beast::tcp_stream(io);
      stream.expires_after(req.timeout);  // one deadline for the whole exchange
      if (!reused) {
        asio::ip::tcp::resolver resolver(io);
        auto [rec, found] = co_await resolver.async_resolve(to.host, to.port, tuple);
        if (rec) {
          r.error = "cannot resolve " + to.host + ": " + rec.message();
          break;
        }
        auto [cec, ep] = co_await stream.async_connect(found, tuple);
        if (cec) {
          r.error = describe(cec);
          break;
        }
      }
      auto [wec, wn] = co_await http::async_write(stream, msg, tuple);
      beast::flat_buffer buf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxAnswer);
      boost::system::error_code rec = wec;
      if (!wec) std::tie(rec, std::ignore) = co_await http::async_read(stream, buf, parser, tuple);
      if (rec) {
        if (reused && retry && closed_before_answer(rec) && !parser.got_some()) {
          retry = false;
          continue;
        }
        r.error = describe(rec);
        break;
      }
      auto& answer = parser.get();
      r.status = answer.result_int();
      r.body = std::move(answer.body());
      if (answer.keep_alive() && buf.size() == 0) {
        stream.expires_never();
        auto& kept_here = idle[to.key()];
        if (kept_here.size() < kIdlePerEndpoint) kept_here.push_back(std::move(stream));
      }
      break;
    }
    done(std::move(r));
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() {
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

void HttpClient::post(const Endpoint& to, Request req, std::function<void(Response)> done) {
  asio::co_spawn(impl_->io, impl_->run(to, std::move(req), std::move(done)), asio::detached);
}

asio::io_context& HttpClient::context() { return impl_->io; }

}  // namespace rtsync::hooks
