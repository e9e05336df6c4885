// Accepting connections. See listener.hpp.
#include "server/listener.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "server/http_session.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// Out of descriptors, accepting again at once would fail at once: the acceptor pauses this long.
constexpr auto accept_pause = std::chrono::milliseconds(100);
constexpr auto accept_log_interval = std::chrono::seconds(10);
// Connections shed per pause at most, so that a flood of connects cannot hold the thread.
constexpr std::size_t max_shed = 1024;

// Errors that say the process or the kernel lacks resources: retrying at once only spins.
bool out_of_resources(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec == boost::system::error_code(ENFILE, boost::system::system_category());
}

tcp::endpoint resolve(asio::io_context& io, const std::string& listen) {
  auto [host, port] = config::split_listen(listen);
  tcp::resolver resolver(io);
  return resolver.resolve(host, std::to_string(port)).begin()->endpoint();
}
}  // namespace

Listener::Listener(Context& ctx, const std::vector<std::unique_ptr<Worker>>& workers, const std::string& listen)
    : ctx_(ctx), workers_(workers), acceptor_(workers.front()->io()), pause_(workers.front()->io()) {
  const tcp::endpoint ep = resolve(workers.front()->io(), listen);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  acceptor_.native_non_blocking(true);  // shedding accepts with accept4 and must never block
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Listener::~Listener() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

void Listener::start() {
  asio::post(workers_.front()->io(), [this] { accept(); });
}

void Listener::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pause_.cancel();
}

void Listener::accept() {
  Worker& w = *workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(w.io(), [this, &w](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(ctx_, w, std::move(socket))->start();
      return accept();
    }
    if (!out_of_resources(ec)) {
      log_accept_error(ec, 0);
      return accept();
    }
    pause_accepting(ec);
  });
}

// Out of descriptors (or memory), the pending connections would wait in the backlog, and every accept
// fail at once: a busy loop. As libuv does, the reserve descriptor is given up to accept the pending
// connections and close them at once (their clients learn it now instead of timing out), then accepting
// pauses; as nginx does, the error is logged once per interval, not once per attempt.
void Listener::pause_accepting(const boost::system::error_code& ec) {
  std::size_t shed = 0;
  if (spare_fd_ >= 0) {
    ::close(spare_fd_);
    for (int fd; shed < max_shed && (fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++shed)
      ::close(fd);
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // -1 if another thread took the slot: retried next time
  auto& wm = ctx_.metrics.worker(0);
  bump(wm.accept_exhausted, 1);
  bump(wm.connections_shed, shed);
  log_accept_error(ec, shed);
  pause_.expires_after(accept_pause);
  pause_.async_wait([this](boost::system::error_code e) {
    if (!e && acceptor_.is_open()) accept();
  });
}

void Listener::log_accept_error(const boost::system::error_code& ec, std::size_t shed) {
  ++errors_unlogged_;
  shed_unlogged_ += shed;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_log_ < accept_log_interval) return;
  spdlog::warn("accept failed: {} ({} times, {} connections closed unserved, since the last warning); "
               "raise the descriptor limit (ulimit -n) if it goes on", ec.message(), errors_unlogged_, shed_unlogged_);
  last_log_ = now;
  errors_unlogged_ = 0;
  shed_unlogged_ = 0;
}

}  // namespace rtsync::server
