// Wiring and lifecycle of the server. See server.hpp.
#include "server/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <variant>

#include "broker/broker.hpp"
#include "common/random.hpp"
#include "core/hub.hpp"
#include "protocol/messages.hpp"
#include "server/context.hpp"
#include "server/data_dir.hpp"
#include "server/http_session.hpp"
#include "server/identity.hpp"
#include "server/metrics.hpp"
#include "server/pubnub.hpp"
#include "server/static_files.hpp"
#include "server/worker.hpp"
#include "service/channels.hpp"
#include "service/collections.hpp"
#include "service/pubnub_presence.hpp"
#include "store/store.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto drain_deadline = std::chrono::milliseconds(3000);  // of the 5 s PROTOCOL §1 allows
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
}  // namespace

struct Server::Impl {
  config::Config cfg;
  std::unique_ptr<DataDirLock> lock;  // first, so that it is released last
  std::unique_ptr<store::Store> store;
  std::unique_ptr<core::Hub> hub;
  std::unique_ptr<broker::Broker> broker;
  std::unique_ptr<service::Channels> channels;
  std::unique_ptr<service::Collections> collections;
  std::unique_ptr<service::PubnubPresence> pubnub_presence;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<StaticFiles> files;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<HttpRateLimit> http_limit;
  std::unique_ptr<Context> ctx;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::size_t next_worker = 0;

  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false;

  explicit Impl(config::Config c) : cfg(std::move(c)) {}

  // Accepting (all on worker 0's thread): a descriptor kept in reserve, the pause timer, and the log state.
  int spare_fd = -1;
  std::unique_ptr<asio::steady_timer> accept_timer;
  std::chrono::steady_clock::time_point last_accept_log{};
  std::uint64_t accept_errors_unlogged = 0;
  std::uint64_t shed_unlogged = 0;

  ~Impl() {
    if (spare_fd >= 0) ::close(spare_fd);
  }

  void accept() {
    // Connections are spread round-robin; each socket lives on its worker's io_context for good.
    Worker& w = *workers[next_worker++ % workers.size()];
    acceptor->async_accept(w.io(), [this, &w](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<HttpSession>(*ctx, w, std::move(socket))->start();
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
  void pause_accepting(const boost::system::error_code& ec) {
    std::size_t shed = 0;
    if (spare_fd >= 0) {
      ::close(spare_fd);
      for (int fd; shed < max_shed && (fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++shed)
        ::close(fd);
    }
    spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // -1 if another thread took the slot: retried next time
    auto& wm = metrics->worker(0);
    bump(wm.accept_exhausted, 1);
    bump(wm.connections_shed, shed);
    log_accept_error(ec, shed);
    accept_timer->expires_after(accept_pause);
    accept_timer->async_wait([this](boost::system::error_code e) {
      if (!e && acceptor->is_open()) accept();
    });
  }

  void log_accept_error(const boost::system::error_code& ec, std::size_t shed) {
    ++accept_errors_unlogged;
    shed_unlogged += shed;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_accept_log < accept_log_interval) return;
    spdlog::warn("accept failed: {} ({} times, {} connections closed unserved, since the last warning); "
                 "raise the descriptor limit (ulimit -n) if it goes on", ec.message(), accept_errors_unlogged, shed_unlogged);
    last_accept_log = now;
    accept_errors_unlogged = 0;
    shed_unlogged = 0;
  }
};

Server::Server(config::Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Server::~Server() = default;

int Server::run() {
  auto& m = *impl_;
  const auto& cfg = m.cfg;

  const bool cluster = cfg.cluster.broker != "local";
  if (cluster) {
    // Every node must agree on every channel's offsets and epochs, so in a cluster nothing is kept in one
    // node's memory alone: in-memory namespaces are stored like durable ones (docs/scaling.md). Presence
    // feeds (NAME-pnpres) stay per node: every node derives the same events from the shared presence.
    m.cfg.channels.durable = true;
    for (auto& [name, ns] : m.cfg.namespaces) ns.durable = true;
  }

  // Before anything in the data dir is read or made: a second server there would interleave its commits
  // with ours. Nodes of a cluster take it too (each has its own data dir, even with a shared store).
  m.lock = std::make_unique<DataDirLock>(cfg.server.data);
  // Writes past RLIMIT_FSIZE then fail with EFBIG, like any other write the disk refuses, instead of
  // killing the process (the store reports them; PostgreSQL does the same).
  std::signal(SIGXFSZ, SIG_IGN);
  const bool sqlite = cfg.cluster.store == "sqlite";
  const auto db = cfg.server.data / "rtsync.db";
  m.auth = make_authenticator(load_or_create_secret(cfg.server.data.string(), sqlite ? db : std::filesystem::path{}),
                              cfg.server.cookie_secure);
  if (sqlite) {
    m.store = store::open_sqlite(store::SqliteOptions{db, cfg.store.synchronous});
  } else {
    m.store = store::open_postgres(store::PostgresOptions{cfg.cluster.store});
  }

  unsigned threads = cfg.server.io_threads ? cfg.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
  m.hub = std::make_unique<core::Hub>(threads, protocol::frame_encoder(),
                                      [&store = *m.store](const std::string& name, std::size_t history,
                                                          std::size_t bytes,
                                                          std::function<void(core::ChannelSnapshot)> done) {
                                        store.load(name, history, bytes, std::move(done));
                                      });
  if (!cluster) {
    m.broker = broker::make_local(*m.hub);
  } else {
    broker::RedisOptions o;
    o.url = cfg.cluster.broker;
    o.node = cfg.cluster.node.empty() ? "node-" + common::random_hex(4) : cfg.cluster.node;
    o.presence_ttl = std::chrono::seconds(cfg.cluster.presence_ttl);
    m.broker = broker::make_redis(
        *m.hub, o,
        [&store = *m.store](const std::string& name, std::size_t history, std::size_t bytes,
                            std::function<void(core::ChannelSnapshot)> done) {
          store.load(name, history, bytes, std::move(done));
        },
        [&m](std::string_view name) -> core::ChannelRef {
          auto r = m.channels->resolve(name);
          auto* ch = std::get_if<core::ChannelRef>(&r);
          return ch ? std::move(*ch) : nullptr;
        });
    // URLs may carry passwords: not logged.
    spdlog::info("cluster node {}: Redis broker, {} store", o.node, cfg.cluster.store == "sqlite" ? "SQLite" : "PostgreSQL");
  }
  m.channels = std::make_unique<service::Channels>(cfg, *m.hub, *m.store, *m.broker);
  m.collections = std::make_unique<service::Collections>(cfg, *m.store, *m.broker);
  m.files = std::make_unique<StaticFiles>(cfg.server.web);
  m.http_limit = std::make_unique<HttpRateLimit>(cfg);
  m.metrics = std::make_unique<Metrics>(threads, [&m] {
    auto s = m.store->stats();
    return ProcessGauges{m.hub->channel_count(), m.hub->publication_count(), s.commits, s.appends,
                         s.commit_seconds, s.commit_batch, m.http_limit->refused(), m.http_limit->clients()};
  });
  m.ctx.reset(new Context{cfg, *m.channels, *m.collections, *m.auth, *m.files, *m.metrics});
  m.ctx->http_limit = m.http_limit.get();
  m.pubnub_presence = std::make_unique<service::PubnubPresence>(
      *m.hub, std::chrono::seconds(cfg.pubnub.presence_timeout), [&ctx = *m.ctx] { return ctx.next_session++; });
  m.ctx->pubnub_presence = m.pubnub_presence.get();
  m.ctx->store = m.store.get();
  for (unsigned i = 0; i < threads; ++i) {
    // Sessions tick at least twice per ping interval and every second (idle timeout, token expiry).
    const auto tick = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), std::chrono::seconds(cfg.limits.ping_interval) / 2);
    m.workers.push_back(std::make_unique<Worker>(i, tick));
    m.hub->attach(i, m.workers.back().get());
  }
  m.broker->start();

  auto [host, port] = config::split_listen(cfg.server.listen);
  auto& io0 = m.workers[0]->io();
  tcp::resolver resolver(io0);
  auto endpoints = resolver.resolve(host, std::to_string(port));
  tcp::endpoint ep = endpoints.begin()->endpoint();
  m.acceptor = std::make_unique<tcp::acceptor>(io0);
  m.acceptor->open(ep.protocol());
  m.acceptor->set_option(tcp::acceptor::reuse_address(true));
  m.acceptor->bind(ep);
  m.acceptor->listen(asio::socket_base::max_listen_connections);
  m.acceptor->native_non_blocking(true);  // shedding accepts with accept4 and must never block
  m.accept_timer = std::make_unique<asio::steady_timer>(io0);
  m.spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto local = m.acceptor->local_endpoint();

  asio::signal_set signals(io0, SIGINT, SIGTERM);
  signals.async_wait([&m](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    std::lock_guard lock(m.mu);
    m.stop_requested = true;
    m.cv.notify_all();
  });

  pubnub::start_presence_sweep(io0, *m.pubnub_presence);
  for (auto& w : m.workers) w->start();
  asio::post(io0, [&m] { m.accept(); });
  m.ctx->ready = true;

  std::string shown = local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string();
  std::printf("rtsync listening on http://%s:%u\n", shown.c_str(), static_cast<unsigned>(local.port()));
  std::fflush(stdout);
  spdlog::info("serving {} with {} I/O threads, data in {}, web root {}", cfg.server.listen, threads,
               cfg.server.data.string(), m.files->root().string());

  {
    // Meanwhile this thread unloads idle channels (Hub::unload_idle), so no I/O thread walks the registry.
    std::unique_lock lock(m.mu);
    const auto idle = std::chrono::seconds(cfg.limits.channel_idle);
    if (idle.count() == 0) {
      m.cv.wait(lock, [&] { return m.stop_requested; });
    } else {
      // Every half idle period: a channel leaves memory between one and one and a half periods after its
      // last use.
      const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(idle) / 2;
      while (!m.cv.wait_for(lock, every, [&] { return m.stop_requested; })) {
        lock.unlock();
        const std::size_t n = m.hub->unload_idle(std::chrono::steady_clock::now() - idle);
        if (n > 0) spdlog::debug("unloaded {} idle channels", n);
        lock.lock();
      }
    }
  }

  // Shutdown: stop accepting, say bye, give clients a moment to take it, then flush the store.
  m.ctx->ready = false;
  std::promise<void> stopped_accepting;
  asio::post(io0, [&] {
    boost::system::error_code ignored;
    m.acceptor->close(ignored);
    m.accept_timer->cancel();
    signals.cancel(ignored);
    stopped_accepting.set_value();
  });
  stopped_accepting.get_future().wait();
  for (auto& w : m.workers) asio::post(w->io(), [&w] { w->close_sessions(); });

  auto deadline = std::chrono::steady_clock::now() + drain_deadline;
  for (;;) {
    std::size_t open = 0;
    for (auto& w : m.workers) {
      std::promise<std::size_t> count;
      asio::post(w->io(), [&] { count.set_value(w->session_count()); });
      open += count.get_future().get();
    }
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  m.store->close();
  m.broker->stop();
  for (auto& w : m.workers) w->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace rtsync::server
