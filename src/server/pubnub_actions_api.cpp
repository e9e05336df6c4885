// PubNub message actions: add (POST /v1/message-actions/{sub}/channel/{ch}/message/{mt} with {type,value}),
// get (GET /v1/message-actions/{sub}/channel/{ch}?start=&end=&limit=), remove (DELETE …/message/{mt}/
// action/{at}), over service::MessageActions; and the actions of a page of history (fetch messages with
// actions). Answers are the actions API's: {"status":200,"data":…[,"more":…]}, errors
// {"status":N,"error":{"message":"…","source":"actions"}}.
#include <boost/json.hpp>

#include <string>

#include "common/client_json.hpp"
#include "common/json_text.hpp"
#include "server/pubnub_detail.hpp"
#include "service/pubnub_actions.hpp"

namespace rtsync::server::pubnub {

namespace json = boost::json;
using common::append_int;
using common::append_json_string;

namespace {

// Actions read for one page of history: enough for 25 messages with many reactions each.
constexpr std::size_t kActionsPerPage = 1000;

StringResponse actions_error(const Request& req, http::status status, std::string_view message) {
  std::string body = "{\"status\":";
  append_int(body, static_cast<int>(status));
  body += ",\"error\":{\"message\":";
  append_json_string(body, message);
  body += ",\"source\":\"actions\"}}";
  return reply(req, status, std::move(body));
}

StringResponse data(const Request& req, std::string_view data, std::string_view more = {}) {
  std::string body = "{\"status\":200,\"data\":";
  body += data;
  if (!more.empty()) {
    body += ",\"more\":";
    body += more;
  }
  body += '}';
  return reply(req, http::status::ok, std::move(body));
}

std::optional<std::uint64_t> timetoken(std::string_view segment) {
  auto v = parse_uint(segment);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

// The action's {type, value}: two strings, type 1-15 characters, value at most kMaxActionValue bytes.
bool parse_action(std::string_view body, store::MessageAction& a) {
  boost::system::error_code ec;
  auto v = common::parse_client_json(body, ec);
  if (ec || !v.is_object()) return false;
  const auto* type = v.as_object().if_contains("type");
  const auto* value = v.as_object().if_contains("value");
  if (!type || !value || !type->is_string() || !value->is_string()) return false;
  a.type = type->get_string();
  a.value = value->get_string();
  const auto chars = [](std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char ch) { return (ch & 0xC0) != 0x80; }));
  };
  return !a.type.empty() && chars(a.type) <= service::kMaxActionType && !a.value.empty() &&
         a.value.size() <= service::kMaxActionValue;
}

}  // namespace

void message_actions(Call& c) {
  const auto& req = c.req;
  const auto& s = c.seg;
  const auto method = req.method();
  if (s.size() < 5 || s[3] != "channel" || (s.size() > 5 && (s.size() < 7 || s[5] != "message")) ||
      (s.size() > 7 && (s.size() != 9 || s[7] != "action")))
    return c.respond(actions_error(req, http::status::bad_request, "Invalid message actions path"));
  auto key = subscribe_key(c, s[2]);
  if (!key) return;
  auto name = pct_decode(s[4]);
  if (!name) return c.respond(actions_error(req, http::status::bad_request, "Invalid channel"));
  auto res = c.ctx.channels.resolve(*name);
  if (auto* e = std::get_if<protocol::Error>(&res))
    return c.respond(actions_error(req, status_for(*e), "Invalid channel \"" + *name + "\": " + e->message));
  auto ch = std::get<core::ChannelRef>(std::move(res));
  if (!ch->options().durable || ch->name().ends_with(core::presence_feed_suffix))
    return c.respond(actions_error(req, http::status::bad_request,
                                   "Message actions need a durable channel (see docs/pubnub.md)"));
  auto& actions = *c.ctx.pubnub_actions;

  if (s.size() == 5) {
    if (method != http::verb::get && method != http::verb::head)
      return c.respond(actions_error(req, http::status::method_not_allowed, "Method not allowed"));
    if (c.ctx.channels.check_subscribe(*ch, c.caller())) return c.respond(forbidden(req, ch->name()));
    store::ActionQuery q;
    q.channel = ch->name();
    if (const auto* start = c.param("start"); start && !start->empty()) {
      auto v = parse_uint(*start);
      if (!v) return c.respond(actions_error(req, http::status::bad_request, "Invalid start"));
      q.before = *v;
    }
    if (const auto* end = c.param("end"); end && !end->empty()) {
      auto v = parse_uint(*end);
      if (!v) return c.respond(actions_error(req, http::status::bad_request, "Invalid end"));
      q.since = *v;
    }
    if (const auto* limit = c.param("limit"); limit && !limit->empty()) {
      auto v = parse_uint(*limit);
      if (!v || *v == 0) return c.respond(actions_error(req, http::status::bad_request, "Invalid limit"));
      q.limit = static_cast<std::size_t>(std::min<std::uint64_t>(*v, 100));
    }
    return actions.read(q, c.post, [&req, respond = c.respond, q, sub_key = *key](store::ActionsResult r) {
      if (!r.ok) return respond(actions_error(req, http::status::service_unavailable, "the store is unavailable"));
      std::string list = "[";
      for (std::size_t i = 0; i < r.actions.size(); ++i) {
        if (i) list += ',';
        service::append_action(list, r.actions[i]);
      }
      list += ']';
      std::string more;
      if (r.more && !r.actions.empty()) {
        // The next page: older than the oldest answered.
        const std::string start = std::to_string(r.actions.front().action_tt);
        more = "{\"url\":";
        std::string url = "/v1/message-actions/" + sub_key + "/channel/" + q.channel + "?start=" + start +
                          "&limit=" + std::to_string(q.limit);
        if (q.since > 0) url += "&end=" + std::to_string(q.since);
        append_json_string(more, url);
        more += ",\"start\":";
        append_json_string(more, start);
        if (q.since > 0) {
          more += ",\"end\":";
          append_json_string(more, std::to_string(q.since));
        }
        more += ",\"limit\":";
        append_int(more, q.limit);
        more += '}';
      }
      respond(data(req, list, more));
    });
  }

  const bool add = s.size() == 7;
  if (add ? method != http::verb::post : method != http::verb::delete_)
    return c.respond(actions_error(req, http::status::method_not_allowed, "Method not allowed"));
  // Adding writes on the channel; removing, with an Access Manager token, is its delete (PubNub's rule).
  if (add ? c.ctx.channels.check_publish(*ch, c.caller()).has_value() : !may_remove(c, *ch))
    return c.respond(forbidden(req, ch->name()));
  store::ActionWrite w;
  w.channel = ch->name();
  auto message_tt = timetoken(s[6]);
  if (!message_tt) return c.respond(actions_error(req, http::status::bad_request, "Invalid message timetoken"));
  w.action.message_tt = *message_tt;
  if (add) {
    if (!parse_action(req.body(), w.action))
      return c.respond(actions_error(req, http::status::bad_request,
                                     "The body must be {\"type\":\"…\",\"value\":\"…\"}: a type of 1-15 characters, "
                                     "a value of at most 1024 bytes"));
    const auto* uuid = c.param("uuid");
    if (!uuid || uuid->empty() || !valid_id(*uuid))
      return c.respond(actions_error(req, http::status::bad_request, "Missing or invalid uuid"));
    w.action.uuid = *uuid;
  } else {
    w.remove = true;
    auto action_tt = timetoken(s[8]);
    if (!action_tt) return c.respond(actions_error(req, http::status::bad_request, "Invalid action timetoken"));
    w.action.action_tt = *action_tt;
  }
  actions.write(ch, std::move(w), c.who.user, c.post, [&req, respond = c.respond, add](store::ActionWriteResult r) {
    if (r.exists) return respond(actions_error(req, http::status::conflict, "Action Already Added"));
    if (!r.ok) return respond(actions_error(req, http::status::service_unavailable, "the store is unavailable"));
    if (!add) return respond(data(req, "{}"));
    std::string action;
    service::append_action(action, r.action);
    respond(data(req, action));
  });
}

void read_page_actions(Context& ctx, const service::Post& post, const std::string& channel, std::uint64_t from,
                       std::uint64_t until, std::function<void(std::optional<std::vector<store::MessageAction>>)> then) {
  store::ActionQuery q;
  q.channel = channel;
  q.messages_from = from;
  q.messages_until = until;
  q.limit = kActionsPerPage;
  ctx.pubnub_actions->read(q, post, [then = std::move(then)](store::ActionsResult r) {
    if (!r.ok) return then(std::nullopt);
    then(std::move(r.actions));
  });
}

}  // namespace rtsync::server::pubnub
