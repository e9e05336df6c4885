// PubNub presence: here_now (one, several or all channels), where_now, heartbeat and leave, over the
// members the hub keeps and the uuids service::PubnubPresence keeps present (presence state:
// pubnub_state_api.cpp). Answer shapes follow ../shared/PUBNUB.md.
#include <map>
#include <set>
#include <string>

#include "common/json_text.hpp"
#include "server/pubnub_detail.hpp"

namespace rtsync::server::pubnub {

using common::append_int;
using common::append_json_string;

namespace {

// With `objects` (state=1), each {"uuid":U[,"state":S]}: a user's state is its PubNub uuid's, else the
// info of one of its sessions.
void append_uuids(std::string& out, const core::PresenceResult& p, bool objects) {
  std::map<std::string_view, std::string_view> users;  // user -> state ("null": none)
  for (const auto& m : p.clients) {
    auto [it, added] = users.try_emplace(m.user, m.info);
    if (!added && (it->second == "null" || m.session == "pubnub:" + m.user)) it->second = m.info;
  }
  out += '[';
  bool first = true;
  for (auto [u, state] : users) {
    if (!first) out += ',';
    first = false;
    if (objects) out += "{\"uuid\":";
    append_json_string(out, u);
    if (objects && state != "null") {
      out += ",\"state\":";
      out += state;
    }
    if (objects) out += '}';
  }
  out += ']';
}

// here_now: one channel answers flat, several (or all, or groups) with a payload.
void here_now(Call& c, const std::vector<core::ChannelRef>* only, bool grouped = false) {
  const bool with_uuids = !c.flag("disable_uuids");
  const bool with_state = c.flag("state");
  std::vector<std::pair<std::string, core::PresenceResult>> all;
  if (only) {
    for (const auto& ch : *only) all.emplace_back(ch->name(), c.ctx.channels.members(*ch));
  } else {
    all = c.ctx.channels.presence_all(c.caller());
  }
  if (only && all.size() == 1 && !grouped) {
    std::string extra = ",\"occupancy\":";
    append_int(extra, all.front().second.users);
    if (with_uuids) {
      extra += ",\"uuids\":";
      append_uuids(extra, all.front().second, with_state);
    }
    return c.respond(presence_ok(c.req, extra));
  }
  std::string extra = ",\"payload\":{\"channels\":{";
  std::size_t total = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i) extra += ',';
    append_json_string(extra, all[i].first);
    extra += ":{\"occupancy\":";
    append_int(extra, all[i].second.users);
    if (with_uuids) {
      extra += ",\"uuids\":";
      append_uuids(extra, all[i].second, with_state);
    }
    extra += '}';
    total += all[i].second.users;
  }
  extra += "},\"total_channels\":";
  append_int(extra, all.size());
  extra += ",\"total_occupancy\":";
  append_int(extra, total);
  extra += '}';
  c.respond(presence_ok(c.req, extra));
}

void presence_on(Call& c, const std::vector<std::string>& names,
                 const std::map<std::string, std::vector<std::string>>& groups, bool grouped,
                 const std::set<std::string>& granted = {});

}  // namespace

// /v2/presence/sub-key/{sub}[/channel/{chs}[/heartbeat|/leave]] and /uuid/{uuid}
void presence(Call& c) {
  const auto& req = c.req;
  if (c.seg.size() == 4) return here_now(c, nullptr);
  if (c.seg.size() == 6 && c.seg[4] == "uuid") {
    auto uuid = pct_decode(c.seg[5]);
    if (!uuid || !valid_id(*uuid)) return c.respond(error(req, http::status::bad_request, "Invalid uuid", "Presence"));
    std::string extra = ",\"payload\":{\"channels\":[";
    bool first = true;
    for (const auto& name : c.ctx.channels.channels_of_user(*uuid, c.caller())) {
      if (!first) extra += ',';
      first = false;
      append_json_string(extra, name);
    }
    extra += "]}";
    return c.respond(presence_ok(req, extra));
  }
  if (c.seg.size() < 6 || c.seg[4] != "channel")
    return c.respond(error(req, http::status::bad_request, "Invalid presence path", "Presence"));
  auto names = name_list(c.seg[5]);
  if (!names) return c.respond(error(req, http::status::bad_request, "Invalid channel", "Presence"));
  // The channels of the groups named in `channel-group` too (their presence feeds are no presence).
  expand_groups(c, "Presence", [names = std::move(*names)](Call& held, std::vector<GroupChannel> via) mutable {
    std::map<std::string, std::vector<std::string>> groups;
    std::set<std::string> granted;
    for (auto& g : via) {
      if (g.group.ends_with(core::presence_feed_suffix)) continue;
      groups[g.group].push_back(g.channel);
      if (g.granted) granted.insert(g.channel);
      names.push_back(std::move(g.channel));
    }
    const auto* named = held.param("channel-group");
    presence_on(held, names, groups, named && !named->empty(), granted);
  });
}

namespace {

// …/channel/{chs}[/heartbeat|/leave|/uuid/{uuid}[/data]], over the named channels and those of the named
// groups (`grouped`: some were named).
void presence_on(Call& c, const std::vector<std::string>& names,
                 const std::map<std::string, std::vector<std::string>>& groups, bool grouped,
                 const std::set<std::string>& granted) {
  const auto& req = c.req;
  auto r = resolve_for_reading(c, names, "Presence", granted);
  if (r.failure) return c.respond(std::move(*r.failure));
  if (c.seg.size() == 6) return here_now(c, &r.channels, grouped);
  if (c.seg.size() == 7 && (c.seg[6] == "heartbeat" || c.seg[6] == "leave")) {
    const auto* uuid = c.param("uuid");
    if (!uuid || uuid->empty() || !valid_id(*uuid))
      return c.respond(error(req, http::status::bad_request, "Missing or invalid uuid", "Presence"));
    auto& presence = *c.ctx.pubnub_presence;
    if (c.seg[6] == "leave") {
      presence.leave(*uuid, r.channels);
      return c.respond(presence_ok(req, ",\"action\":\"leave\""));
    }
    std::optional<std::int64_t> asked;
    if (const auto* hb = c.param("heartbeat"))
      if (auto v = parse_uint(*hb); v && *v < 1'000'000) asked = static_cast<std::int64_t>(*v);
    auto states = state_param(c, r.channels, groups);
    if (!states) return c.respond(error(req, http::status::bad_request, "Invalid state", "Presence"));
    presence.touch(*uuid, r.channels, presence.window_for(asked), *states);
    return c.respond(presence_ok(req));
  }
  if (c.seg.size() >= 8) return presence_state(c, r.channels, grouped);
  c.respond(error(req, http::status::bad_request, "Invalid presence path", "Presence"));
}

}  // namespace

}  // namespace rtsync::server::pubnub
