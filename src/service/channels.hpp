// Channel operations shared by every front end (WebSocket, REST, and later PubNub): name and namespace
// resolution, permissions, and publishing through the store (durable) or the hub (in memory).
// Completions that may happen on the store's thread come back through the caller's `Post`, so front
// ends continue on their own I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>

#include "broker/broker.hpp"
#include "config/config.hpp"
#include "core/channel.hpp"
#include "core/idempotency.hpp"
#include "protocol/errors.hpp"
#include "protocol/jwt.hpp"
#include "protocol/pubnub_token.hpp"
#include "service/pubnub_views.hpp"
#include "store/store.hpp"

namespace rtsync::service {

class BackendHooks;

// Runs a function on the caller's thread (an I/O thread's executor).
using Post = std::function<void(std::function<void()>)>;

struct Caller {
  std::string user;
  bool anonymous = true;
  std::shared_ptr<const protocol::jwt::Caps> caps{};  // a token's channel patterns; null: no restriction
  // A PubNub Access Manager token's grant (docs/pubnub.md 7.7): when set, it alone says which channels
  // the caller may subscribe to (read) and publish on (write); `caps` then names nothing.
  std::shared_ptr<const protocol::pam::Grant> grant{};
  // The Server API (docs/protocol.md section 8): the app's backend, which every per-user rule lets
  // through (namespace and collection permissions, caps, owners); validation of what it writes still
  // applies. `user` is then the API principal's id (the publisher's `from`, a created document's owner
  // outside per_user collections).
  bool server = false;
  // The channels the subscribe hook allowed this caller (a WebSocket connection) to read; only its
  // connection adds to it, on its own thread.
  std::shared_ptr<const std::unordered_set<std::string>> hook_approved{};
};

struct PublishResult {
  std::optional<protocol::Error> error;
  std::uint64_t offset = 0;
  std::uint64_t tt = 0;  // the publication's timetoken (PubNub)
  std::string epoch{};   // the channel's epoch (empty for a replayed in-memory key)
};

// A channel in memory on this node, as the Server API lists it.
struct ChannelEntry {
  std::string name;
  std::uint64_t offset = 0;  // the last offset assigned
  std::string epoch;
  bool durable = false;
};

// What a PubNub publish stores with the publication besides its data (core::Publication).
struct PublishExtras {
  std::string uuid;   // the publisher's PubNub uuid
  std::string meta;   // compact JSON text, or empty
  std::string ctype;  // custom message type, or empty
  std::int64_t expires = 0;  // PubNub ttl as a time (core::Publication::expires), or 0
  std::uint8_t pn_event = 0; // PubNub message type (core::Publication::pn_event)
  std::optional<store::Outbox> outbox;  // an outbox write (then without key): applied once per seq
};

using HistoryOutcome = std::variant<core::HistoryResult, protocol::Error>;

// The answer to a write whose outbox client expired (store::Outbox).
protocol::Error outbox_expired();

class Channels {
 public:
  // `hooks`: the app's backend's proxy hooks (its publish hook decides publications on what it names,
  // its subscribe hook reads); null: none.
  Channels(const config::Config& cfg, core::Hub& hub, PubnubViews& views, store::Store& store,
           broker::Broker& broker, const BackendHooks* hooks);

  // Validates the name (bad_request) and finds its namespace (not_found when undeclared; `coll:` and
  // `tally:` name declared collections). NAME-pnpres is NAME's presence feed (see core/presence.hpp): in
  // memory, a short history, read-only for clients, whatever NAME's namespace says otherwise.
  // The reference keeps the channel in memory (core::ChannelRef): hold it for as long as it is used.
  std::variant<core::ChannelRef, protocol::Error> resolve(std::string_view name);
  // A PubNub wildcard pattern (`a.*`, service/pubnub_wildcard.hpp) as the channel its matches are relayed
  // to: in memory, no history, no presence, read-only, with the anonymous rule of the pattern's namespace
  // (not_found when undeclared; bad_request when no pattern). check_subscribe matches token caps against
  // the pattern itself, which a caps pattern matches only if it matches every channel the pattern does.
  std::variant<core::ChannelRef, protocol::Error> resolve_wildcard(std::string_view pattern);

  // A channel the subscribe hook decides (docs/hooks.md) is refused unless the caller's hook_approved
  // names it: only the WebSocket protocol asks the hook (once per connection and channel).
  std::optional<protocol::Error> check_subscribe(const core::Channel& ch, const Caller& caller) const;
  // check_subscribe without the subscribe hook, and whether the hook is still to be asked (the
  // WebSocket protocol's two steps).
  std::optional<protocol::Error> check_subscribe_rules(const core::Channel& ch, const Caller& caller) const;
  bool awaits_subscribe_hook(std::string_view name, const Caller& caller) const;
  // check_subscribe by name, without resolving (nor making) the channel: false for a name that does not
  // resolve too. Any thread.
  bool readable(std::string_view name, const Caller& caller) const;
  std::optional<protocol::Error> check_publish(const core::Channel& ch, const Caller& caller) const;
  // The Server API's publish: any channel but those the server alone writes (coll:, tally:, NAME-pnpres).
  std::optional<protocol::Error> check_server_publish(const core::Channel& ch) const;
  // too_large when a payload (compact JSON data and PubNub meta) exceeds limits.max_publication, the one
  // limit of every front end: any publication then fits every subscriber's queue (config checks it).
  std::optional<protocol::Error> check_size(std::string_view data, std::string_view meta = {}) const;

  // Runs `fn(ok)` on the caller's thread once the channel's state is in memory: inline when it already
  // is (returns true), otherwise posted after the store loaded it (returns false; ok false: the store is
  // unavailable).
  // `at_least`: an offset the caller has seen (a cluster node may have to catch up first; see
  // core::Hub::ready_or_wait).
  bool when_ready(core::Channel& ch, const Post& post, std::function<void(bool ok)> fn, std::uint64_t at_least = 0);

  // Publishes `data` (compact JSON) after check_publish; check_size is applied here. Durable channels answer after the commit, through
  // `post`; in-memory channels answer before publish() returns. A non-empty `key` makes a retry by the
  // same user within 24 h return the first result without publishing again; an outbox write does that
  // until its client settles it (store::Outbox; on an in-memory channel, while this process runs).
  // On a channel the publish hook decides (decided_by_backend), the backend answers first: it may refuse
  // (refused) or replace `data`, and `done` is always posted.
  void publish(core::Channel& ch, const Caller& caller, std::string data, std::string key, const Post& post,
               std::function<void(PublishResult)> done, PublishExtras extras = {});
  bool decided_by_backend(const core::Channel& ch, const Caller& caller) const;

  // Returns whether `done` ran inline (see when_ready).
  bool history(const core::ChannelRef& ch, const core::HistoryQuery& q, const Caller& caller, const Post& post,
               std::function<void(HistoryOutcome)> done);

  // The calls below take a channel that check_subscribe allowed and when_ready made ready, and hand it
  // to the hub or its PubNub views (core/hub.hpp, core/presence.hpp and pubnub_views.hpp have their
  // contracts), so that front ends never reach the hub themselves.

  // A subscription of the connection `member` describes (if it counts in presence), on `sink`.
  core::SubscribeResult subscribe(core::Channel& ch, std::size_t sink, const std::optional<core::StreamPosition>& since,
                                  const Caller& caller, const core::Member* member, bool listen_presence);
  void unsubscribe(core::Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                   bool listened_presence);
  // A PubNub long poll's registration (unregistered with unsubscribe(ch, sink, 0, false, false)).
  PollResult poll(core::Channel& ch, std::size_t sink, const Resume& from, std::size_t limit, const Caller& caller);
  std::uint64_t last_timetoken(core::Channel& ch);
  // A PubNub signal, or with draft.unstored a message published with store=0, after check_publish.
  core::PublicationPtr signal(core::Channel& ch, core::Publication draft);
  // PubNub history by timetoken, and counts after a timetoken, of what the caller may read.
  std::vector<core::PublicationPtr> history_tt(core::Channel& ch, const TimetokenQuery& q, const Caller& caller);
  std::size_t count_after(core::Channel& ch, std::uint64_t after, const Caller& caller);

  // The members of a channel the caller may subscribe to, when presence is on there.
  std::variant<core::PresenceResult, protocol::Error> presence(core::Channel& ch, const Caller& caller);
  // The members of one channel, as PubNub here_now shows them (presence need not be on).
  core::PresenceResult members(core::Channel& ch);
  // Every channel with members that the caller may subscribe to (PubNub here_now without channels).
  std::vector<std::pair<std::string, core::PresenceResult>> presence_all(const Caller& caller);
  // The channels where `user` is a member, among those the caller may subscribe to (PubNub where_now):
  // presence must not reveal who is in a private channel.
  std::vector<std::string> channels_of_user(std::string_view user, const Caller& caller);

  // A page of channels by name (bytewise), those whose names start with `prefix` and sort after `after`,
  // at most `limit`: the durable ones from the store (every node's, committed), and the in-memory ones
  // this node has loaded. `done` runs on the caller's thread, through `post`; nullopt: the store failed.
  struct ChannelPage {
    std::vector<ChannelEntry> channels;
    bool more = false;  // others follow the last one
  };
  void list(std::string prefix, std::string after, std::size_t limit, const Post& post,
            std::function<void(std::optional<ChannelPage>)> done);

 private:
  const core::NamespaceOptions* namespace_options(std::string_view ns, std::string_view rest) const;
  std::optional<protocol::Error> check_read(const core::NamespaceOptions& opts, std::string_view name,
                                            const Caller& caller) const;
  void publish_now(core::Channel& ch, const Caller& caller, std::string data, std::string key, const Post& post,
                   std::function<void(PublishResult)> done, PublishExtras extras);

  const config::Config& cfg_;
  core::Hub& hub_;
  PubnubViews& views_;
  store::Store& store_;
  broker::Broker& broker_;
  const BackendHooks* hooks_;
  core::NamespaceOptions server_owned_;  // coll: and tally: channels
  core::IdempotencyCache memory_keys_;
};

}  // namespace rtsync::service
