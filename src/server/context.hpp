// What every session and handler of one server shares. Owned by Server; outlives all sessions. Front ends
// reach channels through service::Channels, never the hub itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "server/identity.hpp"
#include "server/metrics.hpp"
#include "server/rate_limit.hpp"
#include "server/static_files.hpp"
#include "service/backend_hooks.hpp"
#include "service/channels.hpp"
#include "service/collections.hpp"
#include "service/pubnub_actions.hpp"
#include "service/pubnub_deletion.hpp"
#include "service/pubnub_cursors.hpp"
#include "service/pubnub_files.hpp"
#include "service/pubnub_groups.hpp"
#include "service/pubnub_objects.hpp"
#include "service/pubnub_presence.hpp"
#include "service/pubnub_tokens.hpp"
#include "store/store.hpp"

namespace rtsync::hooks {
class Webhooks;
}

namespace rtsync::server {

class Worker;

struct Context {
  const config::Config& cfg;
  service::Channels& channels;
  service::Collections& collections;
  Authenticator& auth;
  const StaticFiles& files;
  Metrics& metrics;
  std::atomic<bool> ready{false};       // /readyz: store open, accepting, not shutting down
  std::atomic<std::uint64_t> next_session{1};
  service::PubnubPresence* pubnub_presence = nullptr;  // PubNub uuids kept present (server/pubnub.hpp)
  service::ChannelGroups* pubnub_groups = nullptr;     // PubNub channel groups
  service::MessageActions* pubnub_actions = nullptr;   // PubNub message actions
  service::MessageDeletions* pubnub_deletions = nullptr;  // PubNub deleteMessages
  service::PubnubCursors* pubnub_cursors = nullptr;    // where PubNub subscribe answers left off
  service::PubnubFiles* pubnub_files = nullptr;        // PubNub files, under server.data/files
  service::AppContext* pubnub_objects = nullptr;       // PubNub App Context
  service::PubnubTokens* pubnub_tokens = nullptr;      // PubNub Access Manager
  const store::Store* store = nullptr;                 // /readyz also needs it not failing
  const service::BackendHooks* hooks = nullptr;        // [hooks]: the app's backend's proxy hooks; null: none
  hooks::Webhooks* webhooks = nullptr;                 // [webhooks]; null: none
  HttpRateLimit* http_limit = nullptr;                 // [limits] http_* (server/rate_limit.hpp)
  const std::vector<std::unique_ptr<Worker>>* workers = nullptr;  // the I/O threads (the Server API's disconnect)
};

}  // namespace rtsync::server
