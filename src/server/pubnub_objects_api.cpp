// PubNub App Context (docs/pubnub.md, section 7.6), over service::AppContext:
//   /v2/objects/{sub}/uuids                    GET: getAllUUIDMetadata
//   /v2/objects/{sub}/uuids/{uuid}             GET, PATCH (If-Match), DELETE: get/set/removeUUIDMetadata
//   /v2/objects/{sub}/uuids/{uuid}/channels    GET, PATCH {"set"|"delete":[…]}: get/set/removeMemberships
//   /v2/objects/{sub}/channels…                the same for channel metadata, and …/{channel}/uuids for
//                                              get/set/removeChannelMembers
// Lists take include, count, limit (≤ 100), start/end (page cursors), filter and sort. Answers are App
// Context's: {"status":200,"data":…[,"totalCount":N][,"next":…][,"prev":…]}, errors {"status":N,"error":
// {"message":"…","source":"objects"}}, and Access Manager's 403.
//
// Who may: with an Access Manager token, what it grants (uuids: get, update, delete; channels: get,
// update, delete; memberships: update on the uuid and join on each channel; members: manage on the
// channel). Without one, as on PubNub without Access Manager anyone may change uuids and memberships, and
// rtsync's channel rules apply to channels: reading a channel's metadata or members needs the right to
// subscribe to it, changing them the right to publish there, and joining one (a membership) the right to
// subscribe. Channel ids are rtsync channel names.
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "common/client_json.hpp"
#include "server/pubnub_detail.hpp"
#include "service/pubnub_objects.hpp"
#include "store/store_objects.hpp"

namespace rtsync::server::pubnub {

namespace json = boost::json;
namespace pam = protocol::pam;
using Of = store::ObjectQuery::Of;

namespace {

// PubNub's most records in one page and one membership change.
constexpr std::size_t kMaxPage = 100;

StringResponse objects_error(const Request& req, http::status status, std::string_view message) {
  json::object body{{"status", static_cast<int>(status)},
                    {"error", json::object{{"message", message}, {"source", "objects"}}}};
  return reply(req, status, json::serialize(body));
}

StringResponse data(const Request& req, json::value value) {
  return reply(req, http::status::ok, json::serialize(json::object{{"status", 200}, {"data", std::move(value)}}));
}

std::string if_match(const Request& req) {
  std::string_view v = req[http::field::if_match];
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

pam::Resource resource(store::ObjectKind k) {
  return k == store::ObjectKind::uuid ? pam::Resource::uuid : pam::Resource::channel;
}

// One request to one of the paths, decoded.
struct Target {
  store::ObjectKind kind = store::ObjectKind::uuid;
  std::string id;       // empty: the listing of every object of the kind
  bool related = false; // …/channels of a uuid (memberships), …/uuids of a channel (members)
};

// A channel id must be an rtsync channel: its metadata and events live on it. Answers when it is not.
std::optional<core::ChannelRef> channel_of(Call& c, const std::string& id) {
  auto res = c.ctx.channels.resolve(id);
  if (auto* e = std::get_if<protocol::Error>(&res)) {
    c.respond(objects_error(c.req, http::status::bad_request, "Invalid channel \"" + id + "\": " + e->message));
    return std::nullopt;
  }
  if (id.ends_with(core::presence_feed_suffix)) {
    c.respond(objects_error(c.req, http::status::bad_request, "Invalid channel \"" + id + "\": a presence feed"));
    return std::nullopt;
  }
  return std::get<core::ChannelRef>(std::move(res));
}

// Whether the caller may do `bits` (get, update, delete, manage) to the object (see the file's top);
// answers when it may not.
bool allowed(Call& c, store::ObjectKind kind, const std::string& id, std::uint32_t bits) {
  if (c.who.grant) {
    if (granted(c, resource(kind), id, bits)) return true;
    c.respond(forbidden(c.req, resource(kind), id));
    return false;
  }
  if (kind == store::ObjectKind::uuid) return true;
  auto ch = channel_of(c, id);
  if (!ch) return false;
  const auto refusal = bits == pam::kGet ? c.ctx.channels.check_subscribe(**ch, c.caller())
                                         : c.ctx.channels.check_publish(**ch, c.caller());
  if (refusal) c.respond(forbidden(c.req, id));
  return !refusal;
}

// The listing parameters of a request into `q`; false: answered.
bool list_params(Call& c, store::ObjectQuery& q) {
  const auto& req = c.req;
  if (const auto* limit = c.param("limit"); limit && !limit->empty()) {
    auto v = parse_uint(*limit);
    if (!v || *v > kMaxPage) {
      c.respond(objects_error(req, http::status::bad_request, "limit must be 0-100"));
      return false;
    }
    q.limit = static_cast<std::size_t>(*v);
  }
  if (const auto* start = c.param("start")) q.start = *start;
  if (const auto* end = c.param("end"); end && q.start.empty()) q.end = *end;  // next wins, as in the SDK
  if (const auto* filter = c.param("filter"); filter && !filter->empty()) {
    std::string why;
    auto f = query::PubnubFilter::parse(*filter, why, query::Dialect::objects);
    if (!f) {
      c.respond(objects_error(req, http::status::bad_request, "Invalid filter: " + why));
      return false;
    }
    q.filter = std::make_shared<const query::PubnubFilter>(std::move(*f));
  }
  for (const auto& [k, v] : c.query) {
    if (k != "sort") continue;
    for (auto item : split(v, ',')) {
      if (item.empty()) continue;
      const auto colon = item.find(':');
      const std::string_view path = item.substr(0, colon);
      const std::string_view dir = colon == std::string_view::npos ? "asc" : item.substr(colon + 1);
      const bool ok_path = !path.empty() && std::all_of(path.begin(), path.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
      });
      if (!ok_path || (dir != "asc" && dir != "desc")) {
        c.respond(objects_error(req, http::status::bad_request, "Invalid sort \"" + std::string(item) + "\""));
        return false;
      }
      q.sort.emplace_back(std::string(path), dir == "desc");
    }
  }
  return true;
}

// Reads a listing and answers it: the records as `include` asks, totalCount with count=true, the cursors.
void answer_list(Call& c, store::ObjectQuery q, std::string_view side) {
  const auto* inc = c.param("include");
  const auto include = service::parse_include(inc ? *inc : "", side);
  const bool count = c.flag("count");
  c.ctx.pubnub_objects->read(
      std::move(q), c.post, [&req = c.req, respond = c.respond, include, count, side](store::ObjectsResult r) {
        if (r.bad_cursor) return respond(objects_error(req, http::status::bad_request, "Invalid page cursor"));
        if (!r.ok) return respond(objects_error(req, http::status::service_unavailable, "the store is unavailable"));
        json::array records;
        for (auto& rec : r.records) records.push_back(service::included(std::move(rec), include, side));
        json::object body{{"status", 200}, {"data", std::move(records)}};
        if (count) body["totalCount"] = r.total;
        if (!r.next.empty()) body["next"] = r.next;
        if (!r.prev.empty()) body["prev"] = r.prev;
        respond(reply(req, http::status::ok, json::serialize(body)));
      });
}

std::optional<json::value> body_json(Call& c) {
  boost::system::error_code ec;
  auto v = common::parse_client_json(c.req.body(), ec);
  if (ec || c.req.body().size() > service::kMaxObjectBytes) {
    c.respond(objects_error(c.req, http::status::bad_request, "The body must be a JSON object of at most 32 KiB"));
    return std::nullopt;
  }
  return v;
}

void one_object(Call& c, const Target& t) {
  const auto& req = c.req;
  const auto method = req.method();
  const auto* inc = c.param("include");
  const auto include = service::parse_include(inc ? *inc : "", "");
  const auto kind = t.kind;
  if (method == http::verb::get || method == http::verb::head) {
    if (!allowed(c, kind, t.id, pam::kGet)) return;
    store::ObjectQuery q;
    q.of = kind == store::ObjectKind::uuid ? Of::uuid : Of::channel;
    q.id = t.id;
    return c.ctx.pubnub_objects->read(std::move(q), c.post, [&req, respond = c.respond, include](store::ObjectsResult r) {
      if (!r.ok) return respond(objects_error(req, http::status::service_unavailable, "the store is unavailable"));
      if (r.records.empty()) return respond(objects_error(req, http::status::not_found, "Requested object was not found."));
      respond(data(req, service::included(std::move(r.records.front()), include, "")));
    });
  }
  const bool remove = method == http::verb::delete_;
  if (!remove && method != http::verb::patch)
    return c.respond(objects_error(req, http::status::method_not_allowed, "Method not allowed"));
  if (!allowed(c, kind, t.id, remove ? pam::kDelete : pam::kUpdate)) return;
  store::ObjectWrite w;
  w.kind = kind;
  w.id = t.id;
  w.remove = remove;
  if (!remove) {
    auto body = body_json(c);
    if (!body) return;
    std::string why;
    auto fields = service::object_fields(kind, *body, why);
    if (!fields) return c.respond(objects_error(req, http::status::bad_request, why));
    w.fields = std::move(*fields);
    w.if_match = if_match(req);
  }
  const auto* uuid = c.param("uuid");
  c.ctx.pubnub_objects->write(
      std::move(w), c.who.user, uuid ? *uuid : std::string(), c.post,
      [&req, respond = c.respond, include, kind, remove](store::ObjectWriteResult r) {
        if (r.mismatch)
          return respond(objects_error(req, http::status::precondition_failed,
                                       "The object was changed since that eTag (If-Match)"));
        if (!r.ok) return respond(objects_error(req, http::status::service_unavailable, "the store is unavailable"));
        if (remove) return respond(data(req, nullptr));
        respond(data(req, service::included(store::served_object(kind, r.object), include, "")));
      });
}

// setMemberships / removeMemberships (of a uuid) and setChannelMembers / removeChannelMembers (of a
// channel): {"set":[{"channel":{"id"}|"uuid":{"id"}, status, type, custom}]} or {"delete":[…]}; then the
// listing, as PubNub answers them.
void change_related(Call& c, const Target& t, Of of, std::string_view side) {
  const auto& req = c.req;
  const bool of_uuid = of == Of::memberships;
  auto body = body_json(c);
  if (!body) return;
  store::MembershipWrite w;
  std::string why;
  const auto* root = body->if_object();
  std::size_t entries = 0;
  for (const char* op : {"set", "delete"}) {
    const auto* list = root ? root->if_contains(op) : nullptr;
    if (!list) continue;
    if (!list->is_array()) return c.respond(objects_error(req, http::status::bad_request, std::string(op) + " must be a list"));
    for (const auto& entry : list->as_array()) {
      const auto* e = entry.if_object();
      const auto* other = e ? e->if_contains(side) : nullptr;
      const auto* id = other && other->is_object() ? other->as_object().if_contains("id") : nullptr;
      if (!id || !id->is_string() || id->get_string().empty() || !valid_id(id->get_string()))
        return c.respond(objects_error(req, http::status::bad_request,
                                       "Each entry names its " + std::string(side) + ": {\"" + std::string(side) +
                                           "\":{\"id\":\"…\"}}"));
      if (++entries > kMaxPage)
        return c.respond(objects_error(req, http::status::bad_request, "At most 100 changes in one request"));
      const std::string other_id(id->get_string());
      const std::string uuid = of_uuid ? t.id : other_id;
      const std::string channel = of_uuid ? other_id : t.id;
      if (of_uuid) {
        // Joining (or leaving) a channel: a token's join on it, else the right to subscribe to it.
        auto ch = channel_of(c, channel);
        if (!ch) return;
        if (c.who.grant ? !granted(c, pam::Resource::channel, channel, pam::kJoin)
                        : c.ctx.channels.check_subscribe(**ch, c.caller()).has_value())
          return c.respond(forbidden(req, channel));
      }
      if (std::string_view(op) == "delete") {
        w.remove.emplace_back(uuid, channel);
        continue;
      }
      auto fields = service::membership_fields(*e, why);
      if (!fields) return c.respond(objects_error(req, http::status::bad_request, why));
      w.set.push_back(store::MembershipChange{uuid, channel, std::move(*fields)});
    }
  }
  if (!root) return c.respond(objects_error(req, http::status::bad_request, "The body must be a JSON object"));
  store::ObjectQuery q;
  q.of = of;
  q.id = t.id;
  if (!list_params(c, q)) return;
  const auto* uuid = c.param("uuid");
  auto held = std::make_shared<Call>(c);
  c.ctx.pubnub_objects->write(std::move(w), c.who.user, uuid ? *uuid : std::string(), c.post,
                              [held, q = std::move(q), side](store::MembershipWriteResult r) mutable {
                                if (!r.ok)
                                  return held->respond(objects_error(held->req, http::status::service_unavailable,
                                                                     "the store is unavailable"));
                                answer_list(*held, std::move(q), side);
                              });
}

void related(Call& c, const Target& t) {
  const auto& req = c.req;
  const auto method = req.method();
  const Of of = t.kind == store::ObjectKind::uuid ? Of::memberships : Of::members;
  const std::string_view side = of == Of::memberships ? "channel" : "uuid";
  const bool get = method == http::verb::get || method == http::verb::head;
  if (!get && method != http::verb::patch)
    return c.respond(objects_error(req, http::status::method_not_allowed, "Method not allowed"));
  // A uuid's memberships are read with get on it and changed with update; a channel's members with get
  // and manage.
  const std::uint32_t bits = get ? pam::kGet : t.kind == store::ObjectKind::uuid ? pam::kUpdate : pam::kManage;
  if (!allowed(c, t.kind, t.id, bits)) return;
  if (!get) return change_related(c, t, of, side);
  store::ObjectQuery q;
  q.of = of;
  q.id = t.id;
  if (!list_params(c, q)) return;
  answer_list(c, std::move(q), side);
}

}  // namespace

void app_context(Call& c) {
  const auto& req = c.req;
  const auto& s = c.seg;
  if (s.size() < 4 || s.size() > 6 || (s[3] != "uuids" && s[3] != "channels"))
    return c.respond(objects_error(req, http::status::bad_request, "Invalid App Context path"));
  if (!subscribe_key(c, s[2])) return;
  Target t;
  t.kind = s[3] == "uuids" ? store::ObjectKind::uuid : store::ObjectKind::channel;
  if (s.size() == 4) {
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return c.respond(objects_error(req, http::status::method_not_allowed, "Method not allowed"));
    store::ObjectQuery q;
    q.of = t.kind == store::ObjectKind::uuid ? Of::uuids : Of::channels;
    if (!list_params(c, q)) return;
    // Only what the caller may read is listed: a token's get, else (channels) the right to subscribe.
    if (auto grant = c.who.grant) {
      q.visible = [grant, r = resource(t.kind)](const std::string& id) { return grant->allows(r, id, pam::kGet); };
    } else if (t.kind == store::ObjectKind::channel) {
      q.visible = [&channels = c.ctx.channels, caller = c.caller()](const std::string& id) {
        return channels.readable(id, caller);
      };
    }
    return answer_list(c, std::move(q), "");
  }
  auto id = pct_decode(s[4]);
  if (!id || id->empty() || !valid_id(*id))
    return c.respond(objects_error(req, http::status::bad_request, "Invalid id"));
  t.id = std::move(*id);
  if (t.kind == store::ObjectKind::channel && !channel_of(c, t.id)) return;
  if (s.size() == 5) return one_object(c, t);
  if (s[5] != (t.kind == store::ObjectKind::uuid ? "channels" : "uuids"))
    return c.respond(objects_error(req, http::status::bad_request, "Invalid App Context path"));
  related(c, t);
}

}  // namespace rtsync::server::pubnub
