// What the PubNub endpoints (pubnub.cpp) and the subscribe long poll (pubnub_subscribe.cpp) share: the
// parsed request, response builders with PubNub's error shapes, and timetoken text.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/pubnub_token.hpp"
#include "protocol/requests.hpp"
#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"
#include "server/rest.hpp"
#include "service/channels.hpp"

namespace rtsync::server {

class Worker;

namespace pubnub {

// PubNub's limit on a published message (its JSON text): larger ones get 413.
inline constexpr std::size_t max_message = 32 * 1024;
// Messages per subscribe answer: the SDK reports PNRequestMessageCountExceededCategory at 100.
inline constexpr std::size_t max_batch = 100;
// The region PubNub answers with; the SDK refuses a zero region on every receive after the handshake.
inline constexpr int region = 1;

// One request, split. Path segments stay percent-encoded until a handler decodes what it needs.
struct Call {
  Context& ctx;
  Worker& worker;
  boost::asio::ip::tcp::socket& socket;
  const Request& req;
  Principal who;
  service::Post post;
  Respond respond;
  std::vector<std::string_view> seg;
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  bool secret = false;  // signed with [pubnub] secret_key (authenticate())

  const std::string* param(std::string_view key) const {
    for (const auto& [k, v] : query)
      if (k == key) return &v;
    return nullptr;
  }
  bool flag(std::string_view key) const {
    const auto* v = param(key);
    return v && (*v == "true" || *v == "1");
  }
  service::Caller caller() const { return caller_of(who); }
};

std::optional<std::string> pct_decode(std::string_view s);
// A path segment of names separated by ',' (the segment "," is no names), decoded before it is split:
// SDK 11 encodes each name and joins them with ',', SDKs 3.x-7.x encode the joined list (`a%2Ca-pnpres`).
// A name cannot hold ',' (rtsync channel names do not). nullopt: bad encoding.
std::optional<std::vector<std::string>> name_list(std::string_view raw);
using protocol::parse_uint;

// A JSON answer with the PubNub CORS header.
StringResponse reply(const Request& req, http::status status, std::string body);
// PubNub's generic error object, which the SDK turns into its error data:
// {"message":"…","error":true,"service":"…","status":N}.
StringResponse error(const Request& req, http::status status, std::string_view message,
                     std::string_view service = "Access Manager");
// The subscribe key of a path segment, decoded and checked against [pubnub] subscribe_key; nullopt:
// answered with PubNub's "Invalid Subscribe Key".
std::optional<std::string> subscribe_key(Call& c, std::string_view segment);

// Runs `fn(ok)` on this worker once every channel is in memory (durable ones loaded from the store); ok
// false: the store is unavailable.
void when_all_ready(Call& c, const std::vector<core::ChannelRef>& channels, std::function<void(bool)> fn);

// "17..." (quoted: a timetoken exceeds JavaScript's exact integers).
void append_tt(std::string& out, std::uint64_t tt);

std::vector<std::string_view> split(std::string_view s, char sep);
// History v3 and message counts errors: {"status":N,"error":true,"error_message":"…","channels":{}}.
StringResponse history_error(const Request& req, http::status status, std::string_view message);
// Access Manager's 403 naming the channel, or another resource.
StringResponse forbidden(const Request& req, std::string_view channel);
StringResponse forbidden(const Request& req, protocol::pam::Resource r, std::string_view name);
// The HTTP status of an rtsync error, as PubNub answers it.
http::status status_for(const protocol::Error& e);

struct Resolved {
  std::vector<core::ChannelRef> channels;
  std::optional<StringResponse> failure;  // set: answer this instead
};
// Resolves names for reading (subscribe permission), at most limits.max_subscriptions of them, as a
// subscribe may name. Duplicates are dropped. `service` names the PubNub service in errors. Names in
// `granted` (channels of a group an Access Manager token grants) need no permission of their own.
Resolved resolve_for_reading(const Call& c, const std::vector<std::string>& names, std::string_view service,
                             const std::set<std::string>& granted = {});

// Access Manager (pubnub_pam_api.cpp). Who the request is when it is signed with the secret key (then
// c.secret) or carries a token rtsync granted (then c.who.grant); false: answered (a bad signature, a
// token refused).
bool authenticate(Call& c);
// Whether the caller's token grants every bit of `bits` on `name`; true for a caller without one.
bool granted(const Call& c, protocol::pam::Resource r, std::string_view name, std::uint32_t bits);
// Whether the caller may remove on `ch` (messages, message actions, files): with an Access Manager
// token its delete on the channel (PubNub's rule: write adds, delete removes), else the right to publish.
bool may_remove(const Call& c, const core::Channel& ch);
// POST /v3/pam/{sub}/grant, DELETE /v3/pam/{sub}/grant/{token}.
void access_manager(Call& c);

// App Context (pubnub_objects_api.cpp): /v2/objects/{sub}/uuids… and /v2/objects/{sub}/channels….
void app_context(Call& c);

// {"status":200,"message":"OK"EXTRA,"service":"Presence"}
StringResponse presence_ok(const Request& req, std::string_view extra = {});
// 400 for a PubNub API rtsync does not offer.
StringResponse unsupported(const Request& req, std::string_view what);
// A uuid (or key) that can go into JSON text as it is.
bool valid_id(std::string_view s);

// The presence endpoints (pubnub_presence_api.cpp): /v2/presence/sub-key/{sub}/…
void presence(Call& c);

// Presence state (pubnub_state_api.cpp): setState and getState, …/channel/{chs}/uuid/{uuid}[/data].
// `grouped`: the request named channel groups (getState then answers per channel, even for one).
void presence_state(Call& c, const std::vector<core::ChannelRef>& channels, bool grouped);
// The states that a heartbeat's or subscribe's `state` parameter gives `channels`, by name (none without
// one), `groups` being the request's groups and their channels; nullopt: malformed.
std::optional<std::map<std::string, std::string>> state_param(
    const Call& c, const std::vector<core::ChannelRef>& channels,
    const std::map<std::string, std::vector<std::string>>& groups = {});

// Channel groups (pubnub_groups_api.cpp): the channel registry, /v1/channel-registration/….
void channel_groups(Call& c);
// A channel that a request names through one of its groups: `group` as the request named it (GROUP, or
// GROUP-pnpres for the presence feeds of its channels, which `channel` then is), PubNub's `b`.
struct GroupChannel {
  std::string channel;
  std::string group;
  bool granted = false;  // the caller's Access Manager token grants the group: the channel needs no grant
};
// Runs `then` with the channels of the request's `channel-group` parameter, in the order named (at once,
// with none, without one; else after the store read, on this worker, with a copy of `c` that lives until
// `then` returns), or answers an error (a bad group name, the store unavailable) naming `service`.
void expand_groups(Call& c, std::string_view service, std::function<void(Call&, std::vector<GroupChannel>)> then);

// Files (pubnub_files_api.cpp): /v1/files/{sub}/channels/{ch}/… but publish-file (pubnub.cpp).
void files(Call& c);

// Message actions (pubnub_actions_api.cpp): /v1/message-actions/{sub}/channel/{ch}[/message/{mt}[/action/{at}]].
void message_actions(Call& c);
// The actions of the messages of `channel` with timetokens from..until (a page of history), then `then` on
// this worker: nullopt when the store failed.
void read_page_actions(Context& ctx, const service::Post& post, const std::string& channel, std::uint64_t from,
                       std::uint64_t until, std::function<void(std::optional<std::vector<store::MessageAction>>)> then);

// The history endpoints (pubnub_history.cpp).
// PubNub's start (exclusive) and end (inclusive) as a timetoken range, in either order; nullopt: not
// timetokens.
std::optional<service::TimetokenQuery> timetoken_range(const Call& c);
void history_v2(Call& c);                            // GET /v2/history/sub-key/{sub}/channel/{ch}
void fetch_messages(Call& c, bool with_actions);     // GET /v3/history[-with-actions]/sub-key/{sub}/channel/{chs}
void message_counts(Call& c);                        // GET /v3/history/sub-key/{sub}/message-counts/{chs}
void delete_messages(Call& c);                       // DELETE /v3/history/sub-key/{sub}/channel/{ch} (pubnub_delete_api.cpp)

// GET /v2/subscribe/{sub}/{channels}/0 and, SDK 3.x, GET /subscribe/{sub}/{channels}/{callback}/{tt}
// (pubnub_subscribe.cpp).
void subscribe(Call& c);
void subscribe_v1(Call& c);

}  // namespace pubnub
}  // namespace rtsync::server
