// hooks::HttpClient against a scripted backend on a real socket: an answer with
// its status and body, a kept connection reused (and sent again once when the backend closed it), the
// deadline, a refused connection, an answer over the limit.
#include "hooks/http_client.hpp"

#include <future>
#include <string>
#include <thread>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

namespace rtsync::hooks {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A backend that serves one scripted exchange per accepted connection step: reads a request (headers and
// a Content-Length body) and writes `answer`; `keep` requests on the same connection before closing it.
class Backend {
 public:
  Backend() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  ~Backend() {
    if (thread_.joinable()) thread_.join();
  }
  Endpoint endpoint() const {
    return Endpoint{"127.0.0.1", std::to_string(acceptor_.local_endpoint().port()), "/hook"};
  }
  // Serves `connections` connections, each answering `per_connection` requests with `answer`.
  void serve(int connections, int per_connection, std::string answer, std::chrono::milliseconds delay = {}) {
    thread_ = std::thread([=, this] {
      for (int c = 0; c < connections; ++c) {
        tcp::socket s(io_);
        acceptor_.accept(s);
        ++accepted;
        for (int i = 0; i < per_connection; ++i) {
          if (!read_request(s)) break;
          std::this_thread::sleep_for(delay);
          boost::system::error_code ec;
          asio::write(s, asio::buffer(answer), ec);
        }
      }
    });
  }
  std::string last_request;
  std::atomic<int> accepted{0};

 private:
  bool read_request(tcp::socket& s) {
    std::string data;
    char buf[4096];
    boost::system::error_code ec;
    while (data.find("\r\n\r\n") == std::string::npos) {
      auto n = s.read_some(asio::buffer(buf), ec);
      if (ec) return false;
      data.append(buf, n);
    }
    auto head_end = data.find("\r\n\r\n") + 4;
    auto cl = data.find("Content-Length: ");
    std::size_t length = cl == std::string::npos ? 0 : std::stoul(data.substr(cl + 16));
    while (data.size() < head_end + length) {
      auto n = s.read_some(asio::buffer(buf), ec);
      if (ec) return false;
      data.append(buf, n);
    }
    last_request = data;
    return true;
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

Response post(HttpClient& client, const Endpoint& to, std::string body,
              std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::promise<Response> p;
  Request req{std::move(body), {{"X-Test", "yes"}}, timeout};
  client.post(to, std::move(req), [&](Response r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}";

TEST(HttpClient, PostsJsonAndReadsTheAnswer) {
  Backend b;
  b.serve(1, 1, kOk);
  HttpClient client;
  auto r = post(client, b.endpoint(), R"({"hello":1})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_TRUE(r.error.empty());
  EXPECT_NE(b.last_request.find("POST /hook HTTP/1.1"), std::string::npos);
  EXPECT_NE(b.last_request.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(b.last_request.find("X-Test: yes"), std::string::npos);
  EXPECT_TRUE(b.last_request.ends_with(R"({"hello":1})"));
}

TEST(HttpClient, ReusesAKeptConnection) {
  Backend b;
  b.serve(1, 2, kOk);
  HttpClient client;
  EXPECT_EQ(post(client, b.endpoint(), "{}").status, 200u);
  EXPECT_EQ(post(client, b.endpoint(), "{}").status, 200u);
  EXPECT_EQ(b.accepted, 1);
}

TEST(HttpClient, SendsAgainOnceWhenTheKeptConnectionWasClosed) {
  Backend b;
  b.serve(2, 1, kOk);  // closes after each answer although it did not say so
  HttpClient client;
  EXPECT_EQ(post(client, b.endpoint(), "{}").status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto r = post(client, b.endpoint(), "{}");
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(b.accepted, 2);
}

TEST(HttpClient, GivesUpAtTheDeadline) {
  Backend b;
  b.serve(1, 1, kOk, std::chrono::milliseconds(1500));
  HttpClient client;
  auto start = std::chrono::steady_clock::now();
  auto r = post(client, b.endpoint(), "{}", std::chrono::milliseconds(200));
  EXPECT_FALSE(r.answered());
  EXPECT_EQ(r.error, "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
}

TEST(HttpClient, SaysWhenTheBackendIsDown) {
  Endpoint nowhere;
  {
    Backend b;  // a port that was free a moment ago and has nobody listening now
    nowhere = b.endpoint();
  }
  HttpClient client;
  auto r = post(client, nowhere, "{}");
  EXPECT_FALSE(r.answered());
  EXPECT_EQ(r.error, "connection refused");
}

TEST(HttpClient, RefusesAnAnswerOverTheLimit) {
  Backend b;
  std::string big(kMaxAnswer + 1, 'x');
  b.serve(1, 1, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
  HttpClient client;
  auto r = post(client, b.endpoint(), "{}");
  EXPECT_FALSE(r.answered());
  EXPECT_EQ(r.error, "answer over 1 MiB");
}

}  // namespace
}  // namespace rtsync::hooks
