// Everything below the I/O layer, built in dependency order: the hub (core) with its PubNub views and
// PubNub's presence feed events, the broker (local, or Redis with [cluster] broker) and the services
// every front end uses. The server composes it with its store and its workers; nothing above the
// service layer sees the hub.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "config/config.hpp"
#include "core/delivery.hpp"
#include "service/backend_hooks.hpp"
#include "service/channels.hpp"
#include "service/collections.hpp"
#include "service/pubnub_actions.hpp"
#include "service/pubnub_deletion.hpp"
#include "service/pubnub_groups.hpp"
#include "service/pubnub_objects.hpp"
#include "service/pubnub_presence.hpp"
#include "service/pubnub_tokens.hpp"
#include "service/pubnub_views.hpp"
#include "store/store.hpp"

namespace rtsync::service {

class Engine {
 public:
  // `sinks`: how many I/O threads will be attached. `next_session_no` numbers PubNub presence members
  // from the same sequence as the server's sessions. `send_hook` posts to the app's backend ([hooks]);
  // empty: no proxy hooks.
  Engine(const config::Config& cfg, store::Store& store, std::size_t sinks,
         std::function<std::uint64_t()> next_session_no, HookSender send_hook = {});
  ~Engine();

  // Every sink, before start().
  void attach(std::size_t index, core::DeliverySink* sink);
  // Connects the broker (to the other nodes); stop() sends what it still has and disconnects, after the
  // store closed.
  void start();
  void stop();

  Channels& channels() { return *channels_; }
  const BackendHooks* hooks() const { return hooks_.get(); }  // null without [hooks]
  Collections& collections() { return *collections_; }
  PubnubPresence& pubnub_presence() { return *pubnub_presence_; }
  ChannelGroups& pubnub_groups() { return *pubnub_groups_; }
  MessageActions& pubnub_actions() { return *pubnub_actions_; }
  MessageDeletions& pubnub_deletions() { return *pubnub_deletions_; }
  AppContext& pubnub_objects() { return *pubnub_objects_; }
  PubnubTokens& pubnub_tokens() { return *pubnub_tokens_; }

  // For /metrics.
  std::size_t channel_count();
  std::uint64_t publication_count() const;
  // Unloads the channels nobody used since `cutoff` (core::Hub::unload_idle); returns how many.
  std::size_t unload_idle(std::chrono::steady_clock::time_point cutoff);

 private:
  std::unique_ptr<core::Hub> hub_;
  std::unique_ptr<PubnubViews> pubnub_views_;
  std::unique_ptr<broker::Broker> broker_;
  std::unique_ptr<BackendHooks> hooks_;
  std::unique_ptr<Channels> channels_;
  std::unique_ptr<Collections> collections_;
  std::unique_ptr<PubnubPresence> pubnub_presence_;
  std::unique_ptr<ChannelGroups> pubnub_groups_;
  std::unique_ptr<MessageActions> pubnub_actions_;
  std::unique_ptr<MessageDeletions> pubnub_deletions_;
  std::unique_ptr<AppContext> pubnub_objects_;
  std::unique_ptr<PubnubTokens> pubnub_tokens_;
};

}  // namespace rtsync::service
