// PubNub presence state: setState (GET /v2/presence/sub-key/{sub}/channel/{chs}/uuid/{uuid}/data?state=),
// getState (GET /v2/presence/sub-key/{sub}/channel/{chs}/uuid/{uuid}), and the `state` parameter of
// heartbeats and subscribes. The state lives with the uuid's member (service/pubnub_state.hpp). Answer
// shapes follow the SDK's fixtures: one channel, the state itself as `payload`; several (or groups),
// {CH: STATE}.
#include <map>
#include <string>

#include "common/json_text.hpp"
#include "server/pubnub_detail.hpp"
#include "service/pubnub_state.hpp"

namespace rtsync::server::pubnub {

using common::append_json_string;

namespace {
// A state as the SDK reads it: {} for none.
std::string_view shown(const std::string& state) { return state == "null" ? std::string_view("{}") : state; }
}  // namespace

std::optional<std::map<std::string, std::string>> state_param(
    const Call& c, const std::vector<core::ChannelRef>& channels,
    const std::map<std::string, std::vector<std::string>>& groups) {
  const auto* param = c.param("state");
  if (!param || param->empty()) return std::map<std::string, std::string>{};
  std::vector<std::string> names;
  for (const auto& ch : channels) names.push_back(ch->name());
  return service::states_for(*param, names, groups);
}

void presence_state(Call& c, const std::vector<core::ChannelRef>& channels, bool grouped) {
  const auto& req = c.req;
  const bool set = c.seg.size() == 9 && c.seg[8] == "data";
  if (c.seg[6] != "uuid" || (c.seg.size() != 8 && !set))
    return c.respond(error(req, http::status::bad_request, "Invalid presence path", "Presence"));
  auto uuid = pct_decode(c.seg[7]);
  if (!uuid || uuid->empty() || !valid_id(*uuid))
    return c.respond(error(req, http::status::bad_request, "Invalid uuid", "Presence"));
  if (channels.empty())
    return c.respond(error(req, http::status::bad_request, "No channels given", "Presence"));
  auto& presence = *c.ctx.pubnub_presence;
  std::string extra = ",\"uuid\":";
  append_json_string(extra, *uuid);
  if (set) {
    const auto* param = c.param("state");
    auto state = param ? service::normalize_state(*param) : std::nullopt;
    if (!state) return c.respond(error(req, http::status::bad_request, "Invalid state: a JSON object of at most 32 KiB", "Presence"));
    std::map<std::string, std::string> states;
    for (const auto& ch : channels) states.emplace(ch->name(), *state);
    presence.touch(*uuid, channels, std::nullopt, states);
    extra += ",\"payload\":";
    extra += shown(*state);
    return c.respond(presence_ok(req, extra));
  }
  auto state_of = [&](core::Channel& ch) { return presence.state(*uuid, ch).value_or("null"); };
  extra += ",\"payload\":";
  if (channels.size() == 1 && !grouped) {
    extra += shown(state_of(*channels.front()));
    extra += ",\"channel\":";  // SDK 3 reads it
    append_json_string(extra, channels.front()->name());
  } else {
    extra += '{';
    for (std::size_t i = 0; i < channels.size(); ++i) {
      if (i) extra += ',';
      append_json_string(extra, channels[i]->name());
      extra += ':';
      extra += shown(state_of(*channels[i]));
    }
    extra += '}';
  }
  c.respond(presence_ok(req, extra));
}

}  // namespace rtsync::server::pubnub
