// PubNub channel groups: the channel registry (/v1/channel-registration/sub-key/{sub}/channel-group…:
// add, remove and list channels, list groups, delete a group), and the `channel-group` parameter of
// subscribe, heartbeat, leave and here_now, expanded into the groups' channels. The groups are
// service::ChannelGroups' (kept by the store). Answer shapes are PubNub's channel-registry ones:
// {"status":200,"message":"OK","service":"channel-registry","error":false}, listings with a `payload`.
#include <memory>
#include <set>
#include <string>

#include "common/json_text.hpp"
#include "server/pubnub_detail.hpp"
#include "service/pubnub_groups.hpp"

namespace rtsync::server::pubnub {

using common::append_json_string;

namespace {

constexpr std::string_view kRegistry = "channel-registry";

StringResponse registry_ok(const Request& req, std::string_view payload = {}) {
  std::string body = "{\"status\":200,";
  if (payload.empty()) {
    body += "\"message\":\"OK\"";
  } else {
    body += "\"payload\":";
    body += payload;
  }
  body += ",\"service\":\"channel-registry\",\"error\":false}";
  return reply(req, http::status::ok, std::move(body));
}

void append_names(std::string& out, const std::vector<std::string>& names) {
  out += '[';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, names[i]);
  }
  out += ']';
}

// A `add=`/`remove=` list: names joined by ','; each a channel that resolves (a valid name, a declared
// namespace), so that a group never holds a channel no subscribe could reach.
std::optional<std::vector<std::string>> channel_names(Call& c, std::string_view list) {
  std::vector<std::string> out;
  for (auto part : split(list, ',')) {
    if (part.empty()) continue;
    std::string name(part);
    if (name.ends_with(core::presence_feed_suffix) ||
        std::holds_alternative<protocol::Error>(c.ctx.channels.resolve(name))) {
      c.respond(error(c.req, http::status::bad_request, "Invalid channel \"" + name + "\"", kRegistry));
      return std::nullopt;
    }
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace

// /v1/channel-registration/sub-key/{sub}/channel-group[/{group}[/remove]][?add=|remove=]
void channel_groups(Call& c) {
  const auto& req = c.req;
  const auto& s = c.seg;
  if (c.req.method() != http::verb::get && c.req.method() != http::verb::head)
    return c.respond(error(req, http::status::method_not_allowed, "Method not allowed", kRegistry));
  if (s.size() < 5 || s[2] != "sub-key" || s[4] != "channel-group" || s.size() > 7 || (s.size() == 7 && s[6] != "remove"))
    return c.respond(error(req, http::status::bad_request, "Invalid channel registry path", kRegistry));
  auto key = subscribe_key(c, s[3]);
  if (!key) return;
  auto& groups = *c.ctx.pubnub_groups;
  // An Access Manager token names the groups it may change (manage) or list (read or manage), and lists
  // no others.
  if (s.size() == 5 && c.who.grant) return c.respond(forbidden(req, protocol::pam::Resource::group, "*"));
  if (s.size() == 5) {
    return groups.read({}, c.post, [&req, respond = c.respond, sub_key = *key](store::GroupsResult r) {
      if (!r.ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable", kRegistry));
      std::vector<std::string> names;
      for (const auto& kv : r.groups) names.push_back(kv.first);
      std::string payload = "{\"groups\":";
      append_names(payload, names);
      payload += ",\"sub_key\":";
      append_json_string(payload, sub_key);
      payload += '}';
      respond(registry_ok(req, payload));
    });
  }
  auto group = pct_decode(s[5]);
  if (!group || !service::valid_group_name(*group))
    return c.respond(error(req, http::status::bad_request, "Invalid channel group name", kRegistry));
  const auto* add = c.param("add");
  const auto* remove = c.param("remove");
  const bool listing = s.size() == 6 && !add && !remove;
  if (!granted(c, protocol::pam::Resource::group, *group, protocol::pam::kManage) &&
      !(listing && granted(c, protocol::pam::Resource::group, *group, protocol::pam::kRead)))
    return c.respond(forbidden(req, protocol::pam::Resource::group, *group));
  if (listing) {
    return groups.read({*group}, c.post, [&req, respond = c.respond, group = *group](store::GroupsResult r) {
      if (!r.ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable", kRegistry));
      std::string payload = "{\"channels\":";
      append_names(payload, r.groups[group]);
      payload += ",\"group\":";
      append_json_string(payload, group);
      payload += '}';
      respond(registry_ok(req, payload));
    });
  }
  store::GroupWrite w;
  w.group = *group;
  if (s.size() == 7) {
    w.drop = true;
  } else {
    auto added = channel_names(c, add ? *add : "");
    if (!added) return;
    auto removed = channel_names(c, remove ? *remove : "");
    if (!removed) return;
    w.add = std::move(*added);
    w.remove = std::move(*removed);
  }
  groups.write(std::move(w), c.post, [&req, respond = c.respond, max = groups.max_channels()](store::GroupWriteResult r) {
    if (r.too_many)
      return respond(error(req, http::status::bad_request,
                           "A channel group may have at most " + std::to_string(max) + " channels", kRegistry));
    if (!r.ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable", kRegistry));
    respond(registry_ok(req));
  });
}

void expand_groups(Call& c, std::string_view service, std::function<void(Call&, std::vector<GroupChannel>)> then) {
  const auto* param = c.param("channel-group");
  if (!param || param->empty()) return then(c, {});
  std::vector<std::string> asked;  // as named: GROUP or GROUP-pnpres
  std::set<std::string> read;      // the groups themselves
  for (auto part : split(*param, ',')) {
    if (part.empty()) continue;
    std::string name(part);
    std::string group = name.ends_with(core::presence_feed_suffix)
                            ? name.substr(0, name.size() - core::presence_feed_suffix.size())
                            : name;
    if (!service::valid_group_name(group))
      return c.respond(error(c.req, http::status::bad_request, "Invalid channel group \"" + name + "\"", service));
    // A token's read on the group covers its channels (as on PubNub), which then need no grant of their own.
    if (!granted(c, protocol::pam::Resource::group, group, protocol::pam::kRead))
      return c.respond(forbidden(c.req, protocol::pam::Resource::group, group));
    asked.push_back(std::move(name));
    read.insert(std::move(group));
  }
  auto held = std::make_shared<Call>(c);
  c.ctx.pubnub_groups->read(
      {read.begin(), read.end()}, c.post,
      [held, asked = std::move(asked), service = std::string(service), then = std::move(then),
       by_grant = c.who.grant != nullptr](store::GroupsResult r) {
        if (!r.ok) return held->respond(error(held->req, http::status::service_unavailable, "the store is unavailable", service));
        std::vector<GroupChannel> out;
        for (const auto& name : asked) {
          const bool feed = name.ends_with(core::presence_feed_suffix);
          const auto& channels = r.groups[feed ? name.substr(0, name.size() - core::presence_feed_suffix.size()) : name];
          for (const auto& ch : channels)
            out.push_back(GroupChannel{feed ? ch + std::string(core::presence_feed_suffix) : ch, name, by_grant});
        }
        then(*held, std::move(out));
      });
}

}  // namespace rtsync::server::pubnub
