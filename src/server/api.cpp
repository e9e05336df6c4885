// The Server API: authentication, routing and the JSON of each endpoint. See api.hpp. The privileged
// work is the services' (a service::Caller with `server` set); documents go through the REST
// collection handlers (rest.cpp) with that caller, so validation, If-Match and tallies are theirs.
#include "server/api.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>

#include "common/client_json.hpp"
#include "common/clock.hpp"
#include "common/base64url.hpp"
#include "hooks/webhooks.hpp"
#include "protocol/errors.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"
#include "server/worker.hpp"

namespace rtsync::server {

namespace json = boost::json;
using protocol::Code;
using protocol::Error;

namespace {

constexpr std::int64_t kMaxTokenTtl = 366LL * 24 * 60 * 60;  // a year and a day
constexpr std::int64_t kDefaultTokenTtl = 3600;
constexpr std::size_t kDefaultChannelPage = 100;
constexpr std::size_t kMaxChannelPage = 1000;
// The id of a principal authenticated by an API key: the `from` of what it publishes, the owner of what
// it creates outside per_user collections. Not a valid anonymous or cookie id.
constexpr std::string_view kKeyUser = "rtsync:api";

StringResponse unauthorized(const Request& req, std::string_view message, bool invalid_token = false) {
  auto res = error_response(req, http::status::unauthorized, "permission_denied", message);
  res.set(http::field::www_authenticate, invalid_token ? "Bearer realm=\"api\", error=\"invalid_token\"" : "Bearer realm=\"api\"");
  return res;
}

StringResponse bad_request(const Request& req, std::string message) {
  return rest_error(req, Error{Code::bad_request, std::move(message)});
}

// The body as a JSON object, or why not.
std::variant<json::object, std::string> body_object(const Request& req) {
  boost::system::error_code ec;
  auto body = common::parse_client_json(req.body(), ec);
  if (ec) return "the body must be JSON: " + common::client_json_error(ec);
  if (!body.is_object()) return std::string("the body must be a JSON object");
  if (!common::all_numbers_finite(body)) return std::string("the body must be JSON: a number is out of range");
  return std::move(body.get_object());
}

// A string member, or nullopt (absent or not a string).
std::optional<std::string> string_member(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

void publish(Context& ctx, const Request& req, const Principal& who, const service::Post& post, Respond respond) {
  auto parsed = body_object(req);
  if (auto* why = std::get_if<std::string>(&parsed)) return respond(bad_request(req, *why));
  const auto& body = std::get<json::object>(parsed);
  auto name = string_member(body, "channel");
  if (!name) return respond(bad_request(req, "\"channel\" (a string) is required"));
  auto* data = body.if_contains("data");
  if (!data) return respond(bad_request(req, "\"data\" is required"));
  std::string key;
  if (!idempotency_key(req, key)) return respond(bad_request(req, "Idempotency-Key must be 1-256 characters"));
  auto r = ctx.channels.resolve(*name);
  if (auto* e = std::get_if<Error>(&r)) return respond(rest_error(req, *e));
  const auto& ch = std::get<core::ChannelRef>(r);
  if (auto e = ctx.channels.check_server_publish(*ch)) return respond(rest_error(req, *e));
  // The reference keeps the channel in memory until the answer.
  ctx.channels.publish(*ch, caller_of(who), json::serialize(*data), std::move(key), post,
                       [&req, respond, ch](service::PublishResult p) {
                         if (p.error) return respond(rest_error(req, *p.error));
                         json::object out;
                         out["offset"] = p.offset;
                         out["epoch"] = p.epoch;
                         // A timetoken passes 2^53: a string, as PubNub writes them.
                         out["tt"] = std::to_string(p.tt);
                         respond(json_response(req, http::status::ok, json::serialize(out)));
                       });
}

void presence(Context& ctx, const Request& req, const std::string& name, Respond respond) {
  auto r = ctx.channels.resolve(name);
  if (auto* e = std::get_if<Error>(&r)) return respond(rest_error(req, *e));
  respond(json_response(req, http::status::ok, protocol::presence_body(ctx.channels.members(*std::get<core::ChannelRef>(r)))));
}

// Closes the matching WebSocket connections of every I/O thread of this node, then answers the count.
void disconnect(Context& ctx, const Request& req, const service::Post& post, Respond respond) {
  auto parsed = body_object(req);
  if (auto* why = std::get_if<std::string>(&parsed)) return respond(bad_request(req, *why));
  const auto& body = std::get<json::object>(parsed);
  auto user = string_member(body, "user");
  auto session = string_member(body, "session");
  if ((body.contains("user") && (!user || user->empty())) || (body.contains("session") && (!session || session->empty())))
    return respond(bad_request(req, "\"user\" and \"session\" must be non-empty strings"));
  if (user.has_value() == session.has_value())
    return respond(bad_request(req, "give exactly one of \"user\" and \"session\""));
  struct Tally {
    std::atomic<std::size_t> closed{0};
    std::atomic<std::size_t> left;
  };
  const auto& workers = *ctx.workers;
  auto tally = std::make_shared<Tally>();
  tally->left = workers.size();
  const std::string who = user.value_or(""), sid = session.value_or("");
  for (const auto& w : workers) {
    Worker* worker = w.get();
    boost::asio::post(worker->io(), [worker, who, sid, tally, post, respond, &req] {
      tally->closed += worker->disconnect(who, sid, protocol::close_code::disconnected, "disconnected by the server");
      if (--tally->left != 0) return;
      post([tally, respond, &req] {
        json::object out;
        out["disconnected"] = tally->closed.load();
        respond(json_response(req, http::status::ok, json::serialize(out)));
      });
    });
  }
}

void issue_token(Context& ctx, const Request& req, const Principal& who, Respond respond) {
  auto parsed = body_object(req);
  if (auto* why = std::get_if<std::string>(&parsed)) return respond(bad_request(req, *why));
  const auto& body = std::get<json::object>(parsed);
  for (const auto& kv : body) {
    const std::string_view k = kv.key();
    if (k != "sub" && k != "ttl" && k != "caps" && k != "info" && k != "api")
      return respond(bad_request(req, "unknown member \"" + std::string(k) + "\" (sub, ttl, caps, info, api)"));
  }
  auto sub = string_member(body, "sub");
  if (!sub || sub->empty() || sub->size() > 128) return respond(bad_request(req, "\"sub\" must be a string of 1-128 characters"));
  std::int64_t ttl = kDefaultTokenTtl;
  if (auto* t = body.if_contains("ttl")) {
    if (!t->is_int64() || t->get_int64() < 1 || t->get_int64() > kMaxTokenTtl)
      return respond(bad_request(req, "\"ttl\" must be an integer of seconds from 1 to " + std::to_string(kMaxTokenTtl)));
    ttl = t->get_int64();
  }
  std::string caps, info;
  if (auto* c = body.if_contains("caps")) {
    if (!c->is_object()) return respond(bad_request(req, "\"caps\" must be an object"));
    caps = json::serialize(*c);
  }
  if (auto* i = body.if_contains("info")) {
    if (!i->is_object()) return respond(bad_request(req, "\"info\" must be an object"));
    info = json::serialize(*i);
  }
  bool api = false;
  if (auto* a = body.if_contains("api")) {
    if (!a->is_bool()) return respond(bad_request(req, "\"api\" must be true or false"));
    api = a->get_bool();
  }
  // A leaked api token must not be able to mint itself successors that outlive it.
  if (api && who.api)
    return respond(rest_error(req, Error{Code::permission_denied, "only an API key may issue tokens with \"api\": true"}));
  const std::int64_t exp = common::now_ms() / 1000 + ttl;
  std::string token = ctx.auth.issue(*sub, exp, caps, info, api);
  // What the WebSocket would say of it (caps lists of strings, …) is said now.
  std::string why;
  if (!ctx.auth.from_token(token, why)) return respond(rest_error(req, Error{Code::invalid, why}));
  json::object out;
  out["token"] = token;
  out["expires"] = exp;
  respond(json_response(req, http::status::ok, json::serialize(out)));
}

void list_channels(Context& ctx, const Request& req, const service::Post& post, Respond respond) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return respond(bad_request(req, "malformed request target"));
  std::string prefix, after;
  std::size_t limit = kDefaultChannelPage;
  for (auto param : url->params()) {
    if (param.key == "prefix") {
      prefix = param.value;
    } else if (param.key == "after") {
      after = param.value;
    } else if (param.key == "limit") {
      auto v = protocol::parse_uint(param.value);
      if (!v || *v < 1 || *v > kMaxChannelPage) return respond(bad_request(req, "limit must be an integer from 1 to 1000"));
      limit = static_cast<std::size_t>(*v);
    }
  }
  ctx.channels.list(std::move(prefix), std::move(after), limit, post,
                    [&req, respond](std::optional<service::Channels::ChannelPage> page) {
    if (!page) return respond(rest_error(req, Error{Code::unavailable, "the store is unavailable"}));
    json::array list;
    for (const auto& c : page->channels)
      list.push_back(json::object{{"name", c.name}, {"offset", c.offset}, {"epoch", c.epoch}, {"durable", c.durable}});
    json::object out;
    out["channels"] = std::move(list);
    if (page->more) out["next"] = page->channels.back().name;
    respond(json_response(req, http::status::ok, json::serialize(out)));
  });
}

// GET /v1/api/webhooks, GET|DELETE /v1/api/webhooks/NAME/dead, POST /v1/api/webhooks/NAME/replay.
void webhooks_api(Context& ctx, const Request& req, const std::vector<std::string>& seg, const service::Post& post,
                  Respond respond) {
  const auto method = req.method();
  auto* hooks = ctx.webhooks;
  auto down = [&req] { return rest_error(req, Error{Code::unavailable, "the store is unavailable"}); };
  auto answer = [post, respond](StringResponse res) {
    post([respond, res = std::move(res)]() mutable { respond(std::move(res)); });
  };
  if (seg.size() == 3) {
    if (method != http::verb::get) return respond(error_response(req, http::status::method_not_allowed, "bad_request", "use GET"));
    if (!hooks) return respond(json_response(req, http::status::ok, R"({"webhooks":[]})"));
    return hooks->counts([&req, &cfg = ctx.cfg, answer, down](auto counts) {
      if (!counts) return answer(down());
      json::array list;
      for (const auto& [name, w] : cfg.webhooks) {
        auto it = counts->find(name);
        const store::WebhookCounts c = it == counts->end() ? store::WebhookCounts{} : it->second;
        const bool held = !c.holder.empty() && c.until > common::now_ms();
        list.push_back(json::object{{"name", name}, {"url", w.url}, {"pending", c.pending}, {"dead", c.dead},
                                    {"delivering", held ? json::value(c.holder) : json::value(nullptr)}});
      }
      answer(json_response(req, http::status::ok, json::serialize(json::object{{"webhooks", std::move(list)}})));
    });
  }
  if (!hooks || !hooks->has(seg[3]))
    return respond(rest_error(req, Error{Code::not_found, "no webhook \"" + seg[3] + "\" in [webhooks]"}));
  const std::string& name = seg[3];
  if (seg.size() == 5 && seg[4] == "replay") {
    if (method != http::verb::post) return respond(error_response(req, http::status::method_not_allowed, "bad_request", "use POST"));
    return hooks->revive(name, true, [&req, answer, down](std::optional<std::uint64_t> n) {
      if (!n) return answer(down());
      answer(json_response(req, http::status::ok, json::serialize(json::object{{"replayed", *n}})));
    });
  }
  if (seg.size() == 5 && seg[4] == "dead" && method == http::verb::delete_) {
    return hooks->revive(name, false, [&req, answer, down](std::optional<std::uint64_t> n) {
      if (!n) return answer(down());
      answer(json_response(req, http::status::ok, json::serialize(json::object{{"discarded", *n}})));
    });
  }
  if (seg.size() == 5 && seg[4] == "dead") {
    if (method != http::verb::get) return respond(error_response(req, http::status::method_not_allowed, "bad_request", "use GET or DELETE"));
    auto url = boost::urls::parse_origin_form(req.target());
    std::uint64_t after = 0;
    std::size_t limit = kDefaultChannelPage;
    for (auto param : url->params()) {
      auto v = protocol::parse_uint(param.value);
      if (param.key == "after") {
        if (!v) return respond(bad_request(req, "after must be a dead letter's seq"));
        after = *v;
      } else if (param.key == "limit") {
        if (!v || *v < 1 || *v > kMaxChannelPage) return respond(bad_request(req, "limit must be an integer from 1 to 1000"));
        limit = static_cast<std::size_t>(*v);
      }
    }
    return hooks->dead_letters(name, after, limit, [&req, answer, down, limit](auto entries) {
      if (!entries) return answer(down());
      json::array list;
      const bool more = entries->size() > limit;
      if (more) entries->resize(limit);
      for (const auto& e : *entries) {
        boost::system::error_code ec;
        list.push_back(json::object{{"seq", e.seq},         {"channel", e.channel},   {"offset", e.offset},
                                    {"created", e.created}, {"attempts", e.attempts}, {"body", json::parse(e.body, ec)}});
      }
      json::object out{{"dead", std::move(list)}};
      if (more) out["next"] = entries->back().seq;
      answer(json_response(req, http::status::ok, json::serialize(out)));
    });
  }
  respond(error_response(req, http::status::not_found, "not_found", "no such Server API endpoint"));
}

}  // namespace

bool is_server_api_path(std::string_view path) { return path == "/v1/api" || path.starts_with("/v1/api/"); }

std::variant<Principal, StringResponse> authenticate_server_api(Context& ctx, const Request& req) {
  if (req.count(http::field::authorization) != 1)
    return unauthorized(req, "the Server API needs one Authorization: Bearer header with an API key or an api token");
  std::string_view auth = req[http::field::authorization];
  if (auth.size() <= 7 || !boost::beast::iequals(auth.substr(0, 7), "Bearer "))
    return unauthorized(req, "the Server API needs Authorization: Bearer with an API key or an api token");
  std::string_view credential = auth.substr(7);
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  while (!credential.empty() && credential.back() == ' ') credential.remove_suffix(1);
  // Every key is compared, in constant time, so the time taken tells nothing of which was close.
  bool key = false;
  for (const auto& k : ctx.cfg.api.keys) key |= common::equal_constant_time(credential, k);
  if (key) return Principal{.user = std::string(kKeyUser), .anonymous = false, .server = true};
  // A JWT has two dots; anything else is a wrong key.
  if (std::count(credential.begin(), credential.end(), '.') != 2) return unauthorized(req, "unknown API key", true);
  std::string error;
  auto who = ctx.auth.from_token(credential, error);
  if (!who) return unauthorized(req, error, true);
  if (!who->api)
    return rest_error(req, Error{Code::permission_denied, "this token has no \"api\": true claim: it is a user's, not the backend's"});
  who->server = true;
  return std::move(*who);
}

void handle_server_api(Context& ctx, const Request& req, const service::Post& post, Respond respond) {
  auto auth = authenticate_server_api(ctx, req);
  if (auto* refused = std::get_if<StringResponse>(&auth)) return respond(std::move(*refused));
  const Principal& who = std::get<Principal>(auth);

  auto url = boost::urls::parse_origin_form(req.target());
  std::vector<std::string> seg;
  if (url)
    for (auto s : url->segments()) seg.emplace_back(s);
  const auto method = req.method();
  const bool get = method == http::verb::get || method == http::verb::head;
  auto use = [&](std::string_view m) {
    respond(error_response(req, http::status::method_not_allowed, "bad_request", "use " + std::string(m)));
  };
  // seg[0..1] is "v1", "api".
  const std::string_view what = seg.size() >= 3 ? std::string_view(seg[2]) : std::string_view();
  if (seg.size() == 3 && what == "publish") return method == http::verb::post ? publish(ctx, req, who, post, respond) : use("POST");
  if (seg.size() == 3 && what == "disconnect") return method == http::verb::post ? disconnect(ctx, req, post, respond) : use("POST");
  if (seg.size() == 3 && what == "tokens") return method == http::verb::post ? issue_token(ctx, req, who, respond) : use("POST");
  if (seg.size() == 3 && what == "channels") return get ? list_channels(ctx, req, post, respond) : use("GET");
  if (seg.size() == 4 && what == "presence") return get ? presence(ctx, req, seg[3], respond) : use("GET");
  if (seg.size() >= 3 && seg.size() <= 5 && what == "webhooks") return webhooks_api(ctx, req, seg, post, std::move(respond));
  if ((seg.size() == 4 || seg.size() == 5) && what == "collections") {
    std::vector<std::string> rest{"v1", "collections", seg[3]};
    if (seg.size() == 5) rest.push_back(seg[4]);
    return collections_api(ctx, req, rest, who, post, std::move(respond));
  }
  respond(error_response(req, http::status::not_found, "not_found", "no such Server API endpoint"));
}

}  // namespace rtsync::server
