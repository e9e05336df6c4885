// Wiring and lifecycle of the server. See server.hpp.
#include "server/server.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/random.hpp"
#include "hooks/http_client.hpp"
#include "hooks/webhooks.hpp"
#include "server/context.hpp"
#include "server/data_dir.hpp"
#include "server/listener.hpp"
#include "server/identity.hpp"
#include "server/metrics.hpp"
#include "server/pubnub.hpp"
#include "server/static_files.hpp"
#include "server/worker.hpp"
#include "service/engine.hpp"
#include "store/store.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto drain_deadline = std::chrono::milliseconds(3000);  // of the 5 s PROTOCOL §1 allows
}  // namespace

// The composition root: every part of the server, built in dependency order by wire() and torn down in
// reverse by the destructor (members in declaration order), around listen(), serve() and shutdown().
struct Server::Impl {
  const config::Config cfg;
  std::unique_ptr<DataDirLock> lock;  // first, so that it is released last
  std::unique_ptr<store::Store> store;
  std::unique_ptr<service::Engine> engine;  // hub, broker, services
  // The app's backend ([hooks]): made before the engine, which posts through it, and stopped before it,
  // so that no answer arrives at a service being torn down.
  // Webhook delivery, on the backend client's thread: destroyed after it, which runs its handlers.
  std::unique_ptr<hooks::Webhooks> webhooks;
  std::unique_ptr<hooks::HttpClient> backend;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<StaticFiles> files;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<HttpRateLimit> http_limit;
  std::unique_ptr<service::PubnubCursors> pubnub_cursors;
  std::unique_ptr<service::PubnubFiles> pubnub_files;
  std::unique_ptr<Context> ctx;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<boost::asio::signal_set> signals;

  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false;

  explicit Impl(config::Config c) : cfg(std::move(c)) {}

  void wire();
  void listen();
  void serve();
  void shutdown();
};

void Server::Impl::wire() {
  // Before anything in the data dir is read or made: a second server there would interleave its commits
  // with ours. Nodes of a cluster take it too (each has its own data dir, even with a shared store).
  lock = std::make_unique<DataDirLock>(cfg.server.data);
  // Writes past RLIMIT_FSIZE then fail with EFBIG, like any other write the disk refuses, instead of
  // killing the process (the store reports them; PostgreSQL does the same).
  std::signal(SIGXFSZ, SIG_IGN);
  const bool sqlite = cfg.cluster.store == "sqlite";
  const auto db = cfg.server.data / "rtsync.db";
  auth = make_authenticator(load_or_create_secret(cfg.server.data.string(), sqlite ? db : std::filesystem::path{}),
                            cfg.server.cookie_secure);
  if (sqlite) {
    store = store::open_sqlite(
        store::SqliteOptions{db, cfg.store.synchronous, config::query_indexes(cfg), config::webhook_routes(cfg)});
  } else {
    store = store::open_postgres(
        store::PostgresOptions{cfg.cluster.store, config::query_indexes(cfg), config::webhook_routes(cfg)});
  }

  const unsigned threads =
      cfg.server.io_threads ? cfg.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
  service::HookSender send_hook;
  const auto& h = cfg.hooks;
  if (h.connect || h.subscribe || h.publish || h.write || h.rpc || !cfg.webhooks.empty())
    backend = std::make_unique<hooks::HttpClient>();
  if (h.connect || h.subscribe || h.publish || h.write || h.rpc) {
    send_hook = [client = backend.get()](const config::HookConfig& hook, std::string body,
                                         std::function<void(service::HookExchange)> done) {
      client->post(hook.endpoint, hooks::Request{std::move(body), {}, std::chrono::milliseconds(hook.timeout_ms)},
                   [done = std::move(done)](hooks::Response r) {
                     done(service::HookExchange{r.status, std::move(r.body), std::move(r.error)});
                   });
    };
  }
  engine = std::make_unique<service::Engine>(cfg, *store, threads, [this] { return ctx->next_session++; },
                                             std::move(send_hook));
  files = std::make_unique<StaticFiles>(cfg.server.web);
  http_limit = std::make_unique<HttpRateLimit>(cfg);
  metrics = std::make_unique<Metrics>(threads, [this] {
    auto s = store->stats();
    return ProcessGauges{engine->channel_count(), engine->publication_count(), s.commits, s.appends,
                         s.commit_seconds, s.commit_batch, http_limit->refused(), http_limit->clients(),
                         webhooks ? webhooks->metrics() : std::string()};
  });
  ctx.reset(new Context{cfg, engine->channels(), engine->collections(), *auth, *files, *metrics});
  ctx->http_limit = http_limit.get();
  ctx->hooks = engine->hooks();
  pubnub_cursors = std::make_unique<service::PubnubCursors>();
  ctx->pubnub_cursors = pubnub_cursors.get();
  pubnub_files = std::make_unique<service::PubnubFiles>(cfg.server.data / "files", cfg.pubnub.max_file_size);
  ctx->pubnub_files = pubnub_files.get();
  ctx->pubnub_presence = &engine->pubnub_presence();
  ctx->pubnub_groups = &engine->pubnub_groups();
  ctx->pubnub_actions = &engine->pubnub_actions();
  ctx->pubnub_deletions = &engine->pubnub_deletions();
  ctx->pubnub_objects = &engine->pubnub_objects();
  ctx->pubnub_tokens = &engine->pubnub_tokens();
  // Revoked tokens are refused from the first request on.
  if (engine->pubnub_tokens().enabled() && !engine->pubnub_tokens().load())
    throw std::runtime_error("cannot read the revoked PubNub tokens from the store");
  ctx->store = store.get();
  // Sessions tick at least twice per ping interval and every second (idle timeout, token expiry).
  const auto tick =
      std::min<std::chrono::milliseconds>(std::chrono::seconds(1), std::chrono::seconds(cfg.limits.ping_interval) / 2);
  for (unsigned i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(i, tick));
    engine->attach(i, workers.back().get());
  }
  ctx->workers = &workers;
  engine->start();
  if (!cfg.webhooks.empty()) {
    webhooks = std::make_unique<hooks::Webhooks>(cfg, *store, *backend,
                                                 cfg.cluster.node.empty() ? "node-" + common::random_hex(4) : cfg.cluster.node);
    ctx->webhooks = webhooks.get();
    webhooks->start();
  }
}

void Server::Impl::listen() {
  listener = std::make_unique<Listener>(*ctx, workers, cfg.server.listen);
  auto& io0 = workers[0]->io();
  signals = std::make_unique<asio::signal_set>(io0, SIGINT, SIGTERM);
  signals->async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    std::lock_guard l(mu);
    stop_requested = true;
    cv.notify_all();
  });
  pubnub::start_presence_sweep(io0, engine->pubnub_presence());
  if (engine->pubnub_tokens().enabled()) pubnub::start_token_refresh(io0, engine->pubnub_tokens());
  for (auto& w : workers) w->start();
  listener->start();
  ctx->ready = true;

  const auto local = listener->local_endpoint();
  std::string shown = local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string();
  std::printf("rtsync listening on http://%s:%u\n", shown.c_str(), static_cast<unsigned>(local.port()));
  std::fflush(stdout);
  spdlog::info("serving {} with {} I/O threads, data in {}, web root {}", cfg.server.listen, workers.size(),
               cfg.server.data.string(), files->root().string());
}

// Until a signal: meanwhile this thread unloads idle channels (core::Hub::unload_idle), so no I/O thread walks
// the registry.
void Server::Impl::serve() {
  std::unique_lock l(mu);
  const auto idle = std::chrono::seconds(cfg.limits.channel_idle);
  if (idle.count() == 0) return cv.wait(l, [&] { return stop_requested; });
  // Every half idle period: a channel leaves memory between one and one and a half periods after its
  // last use.
  const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(idle) / 2;
  while (!cv.wait_for(l, every, [&] { return stop_requested; })) {
    l.unlock();
    const std::size_t n = engine->unload_idle(std::chrono::steady_clock::now() - idle);
    if (n > 0) spdlog::debug("unloaded {} idle channels", n);
    l.lock();
  }
}

// Stop accepting, say bye, give clients a moment to take it, then flush the store.
void Server::Impl::shutdown() {
  ctx->ready = false;
  std::promise<void> stopped_accepting;
  asio::post(workers[0]->io(), [&] {
    boost::system::error_code ignored;
    listener->stop();
    signals->cancel(ignored);
    stopped_accepting.set_value();
  });
  stopped_accepting.get_future().wait();
  for (auto& w : workers) asio::post(w->io(), [&w] { w->close_sessions(); });

  auto deadline = std::chrono::steady_clock::now() + drain_deadline;
  for (;;) {
    std::size_t open = 0;
    for (auto& w : workers) {
      std::promise<std::size_t> count;
      asio::post(w->io(), [&] { count.set_value(w->session_count()); });
      open += count.get_future().get();
    }
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (webhooks) webhooks->stop();
  store->close();
  engine->stop();
  for (auto& w : workers) w->stop();
  spdlog::info("stopped");
}

Server::Server(config::Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Server::~Server() = default;

int Server::run() {
  impl_->wire();
  impl_->listen();
  impl_->serve();
  impl_->shutdown();
  return 0;
}

}  // namespace rtsync::server
