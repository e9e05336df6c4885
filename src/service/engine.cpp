// The hub, its PubNub views, the broker and the services, wired. See engine.hpp.
#include "service/engine.hpp"

#include <spdlog/spdlog.h>

#include <variant>

#include "common/random.hpp"
#include "core/hub.hpp"
#include "protocol/messages.hpp"

namespace rtsync::service {

Engine::Engine(const config::Config& cfg, store::Store& store, std::size_t sinks,
               std::function<std::uint64_t()> next_session_no, HookSender send_hook) {
  core::Loader load = [&store](const std::string& name, std::size_t history, std::size_t bytes,
                               std::function<void(core::ChannelSnapshot)> done) {
    store.load(name, history, bytes, std::move(done));
  };
  hub_ = std::make_unique<core::Hub>(sinks, protocol::frame_encoder(), load, pubnub_feed_event);
  pubnub_views_ = std::make_unique<PubnubViews>(*hub_);
  if (cfg.cluster.broker == "local") {
    broker_ = broker::make_local(*hub_);
  } else {
    broker::RedisOptions o;
    o.url = cfg.cluster.broker;
    o.node = cfg.cluster.node.empty() ? "node-" + common::random_hex(4) : cfg.cluster.node;
    o.presence_ttl = std::chrono::seconds(cfg.cluster.presence_ttl);
    broker_ = broker::make_redis(*hub_, o, load, [this](std::string_view name) -> core::ChannelRef {
      auto r = channels_->resolve(name);
      auto* ch = std::get_if<core::ChannelRef>(&r);
      return ch ? std::move(*ch) : nullptr;
    });
    // URLs may carry passwords: not logged.
    spdlog::info("cluster node {}: Redis broker, {} store", o.node, cfg.cluster.store == "sqlite" ? "SQLite" : "PostgreSQL");
  }
  if (send_hook) hooks_ = std::make_unique<BackendHooks>(cfg.hooks, std::move(send_hook));
  channels_ = std::make_unique<Channels>(cfg, *hub_, *pubnub_views_, store, *broker_, hooks_.get());
  collections_ = std::make_unique<Collections>(cfg, store, *broker_, hooks_.get());
  pubnub_presence_ = std::make_unique<PubnubPresence>(hub_->presence(), std::chrono::seconds(cfg.pubnub.presence_timeout),
                                                      std::move(next_session_no));
  pubnub_groups_ = std::make_unique<ChannelGroups>(store, cfg.limits.max_subscriptions);
  pubnub_actions_ = std::make_unique<MessageActions>(store, *channels_);
  pubnub_deletions_ = std::make_unique<MessageDeletions>(store, *broker_);
  pubnub_objects_ = std::make_unique<AppContext>(store, *channels_);
  pubnub_tokens_ = std::make_unique<PubnubTokens>(store, cfg.pubnub.secret_key);
}

Engine::~Engine() = default;

void Engine::attach(std::size_t index, core::DeliverySink* sink) { hub_->attach(index, sink); }
void Engine::start() { broker_->start(); }
void Engine::stop() { broker_->stop(); }
std::size_t Engine::channel_count() { return hub_->channel_count(); }
std::uint64_t Engine::publication_count() const { return hub_->publication_count(); }
std::size_t Engine::unload_idle(std::chrono::steady_clock::time_point cutoff) { return hub_->unload_idle(cutoff); }

}  // namespace rtsync::service
