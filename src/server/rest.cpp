// REST endpoints. See rest.hpp.
#include "server/rest.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>
#include <optional>
#include <variant>

#include "common/base64url.hpp"
#include "common/client_json.hpp"
#include "common/json_text.hpp"
#include "protocol/messages.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"

namespace rtsync::server {

namespace json = boost::json;
using protocol::Code;
using protocol::Error;

http::status status_of(Code code) {
  switch (code) {
    case Code::bad_request:
    case Code::unknown_op:
    case Code::invalid: return http::status::bad_request;
    case Code::not_found: return http::status::not_found;
    case Code::permission_denied:
    case Code::refused: return http::status::forbidden;
    case Code::conflict: return http::status::conflict;
    case Code::too_large: return http::status::payload_too_large;
    case Code::rate_limited:
    case Code::limit: return http::status::too_many_requests;
    case Code::expired: return http::status::gone;
    case Code::unavailable: return http::status::service_unavailable;
    case Code::internal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

namespace {

StringResponse error(const Request& req, const Error& e) {
  return error_response(req, status_of(e.code), protocol::to_string(e.code), e.message);
}

using protocol::parse_bool;
using protocol::parse_uint;

// since/limit/reverse of a history request; the first malformed one sets `error`.
void parse_history_query(const boost::urls::url_view& url, core::HistoryQuery& q, std::string& error) {
  for (auto param : url.params()) {
    if (param.key == "since") {
      auto v = parse_uint(param.value);
      if (!v) return void(error = "since must be a non-negative integer");
      q.since = *v;
    } else if (param.key == "limit") {
      auto v = parse_uint(param.value);
      if (!v || *v > protocol::max_history_limit) return void(error = "limit must be an integer from 0 to 1000");
      q.limit = static_cast<std::size_t>(*v);
    } else if (param.key == "reverse") {
      auto v = parse_bool(param.value);
      if (!v) return void(error = "reverse must be true or false");
      q.reverse = *v;
    }
  }
}

// where (URL-encoded JSON), order (a,-b), limit and after of a collection GET, as the WebSocket `list`
// takes them (protocol/requests.hpp decodes both).
std::variant<query::Query, Error> parse_list_query(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return Error{Code::bad_request, "malformed request target"};
  json::object req;
  for (auto param : url->params()) {
    if (param.key == "where") {
      boost::system::error_code ec;
      auto where = common::parse_client_json(param.value, ec);
      if (ec) return Error{Code::bad_request, "where must be URL-encoded JSON: " + common::client_json_error(ec)};
      req["where"] = std::move(where);
    } else if (param.key == "order") {
      json::array keys;
      std::string_view rest = param.value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        keys.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      req["order"] = std::move(keys);
    } else if (param.key == "limit") {
      auto v = parse_uint(param.value);
      if (!v) return Error{Code::bad_request, "limit must be an integer from 1 to 1000"};
      req["limit"] = static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1'000'001));  // past 1000 is refused
    } else if (param.key == "after") {
      req["after"] = param.value;
    }
  }
  auto q = query::parse_query(req);
  if (auto* e = std::get_if<query::Error>(&q)) return Error{Code::bad_request, std::move(e->message)};
  return std::get<query::Query>(std::move(q));
}

// RFC 8288: the same request with `after` set to the next page's cursor.
std::string next_link(std::string_view target, const std::string& cursor) {
  boost::urls::url u = *boost::urls::parse_origin_form(target);
  u.params().set("after", cursor);
  return "<" + std::string(u.buffer()) + ">; rel=\"next\"";
}

void channel_history(Context& ctx, const Request& req, const core::ChannelRef& ch, const ApiTarget& target,
                     const Principal& who, const service::Post& post, Respond respond) {
  if (auto e = ctx.channels.check_subscribe(*ch, caller_of(who)))
    return respond(error(req, *e));
  if (!target.query_error.empty()) return respond(error(req, Error{Code::bad_request, target.query_error}));
  const core::HistoryQuery& q = target.history;
  // Bounded like a WebSocket answer, so one request never buffers more than a connection may queue.
  ctx.channels.history(ch, q, caller_of(who), post, [&req, &ctx, respond](service::HistoryOutcome r) {
    if (auto* e = std::get_if<Error>(&r)) return respond(error(req, *e));
    respond(json_response(req, http::status::ok,
                          protocol::history_body(std::get<core::HistoryResult>(r), ctx.cfg.limits.max_outbound)));
  });
}

void channel_publish(Context& ctx, const Request& req, core::Channel& ch, const Principal& who,
                     const service::Post& post, Respond respond) {
  service::Caller caller = caller_of(who);
  if (auto e = ctx.channels.check_publish(ch, caller)) return respond(error(req, *e));
  boost::system::error_code ec;
  json::value data = common::parse_client_json(req.body(), ec);
  if (ec) return respond(error(req, Error{Code::bad_request, "the body must be JSON: " + common::client_json_error(ec)}));
  if (!common::all_numbers_finite(data))
    return respond(error(req, Error{Code::bad_request, "the body must be JSON: a number is out of range"}));
  std::string key;
  if (!idempotency_key(req, key))
    return respond(error(req, Error{Code::bad_request, "Idempotency-Key must be 1-256 characters"}));
  ctx.channels.publish(ch, caller, json::serialize(data), std::move(key), post,
                       [&req, respond](service::PublishResult r) {
                         if (r.error) return respond(error(req, *r.error));
                         respond(json_response(req, http::status::ok, protocol::offset_body(r.offset)));
                       });
}

std::optional<std::uint64_t> if_match(const Request& req) {
  auto h = req.find(http::field::if_match);
  if (h == req.end()) return std::nullopt;
  std::string_view v = h->value();
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return parse_uint(v);
}

// A document response: the JSON, its version as ETag.
StringResponse doc_response(const Request& req, http::status status, const std::string& doc) {
  auto res = json_response(req, status, doc);
  boost::system::error_code ec;
  auto v = json::parse(doc, ec);
  if (!ec && v.is_object()) {
    if (auto* ver = v.get_object().if_contains("_v"); ver && ver->is_int64())
      res.set(http::field::etag, "\"" + std::to_string(ver->get_int64()) + "\"");
  }
  return res;
}

void collection_write(Context& ctx, const Request& req, store::DocWrite::Op op, const std::string& name,
                      std::string id, const Principal& who, const service::Post& post, Respond respond) {
  // Where a created document is read again: the Server API's own path for its callers.
  const std::string base = who.server ? "/v1/api/collections/" : "/v1/collections/";
  service::WriteRequest w;
  w.op = op;
  w.collection = name;
  w.id = std::move(id);
  if (op != store::DocWrite::Op::remove) {
    boost::system::error_code ec;
    auto body = common::parse_client_json(req.body(), ec);
    if (ec) return respond(error(req, Error{Code::bad_request, "the body must be JSON: " + common::client_json_error(ec)}));
    if (!body.is_object() || !common::all_numbers_finite(body))
      return respond(error(req, Error{Code::bad_request, "the body must be a JSON object"}));
    w.data = std::move(body.get_object());
  }
  if (req.find(http::field::if_match) != req.end()) {
    w.expected_v = if_match(req);
    if (!w.expected_v) return respond(error(req, Error{Code::bad_request, "If-Match must hold a version number"}));
  }
  if (auto h = req.find(http::field::if_none_match); h != req.end()) {
    // RFC 9110 §13.1.2: "*" on a PUT means "only if there is no current representation": create only.
    if (h->value() != "*" || op != store::DocWrite::Op::update)
      return respond(error(req, Error{Code::bad_request, "If-None-Match is supported only as \"*\" on PUT"}));
    if (w.expected_v) return respond(error(req, Error{Code::bad_request, "If-Match and If-None-Match exclude each other"}));
    w.expected_v = 0;
  }
  if (!idempotency_key(req, w.key))
    return respond(error(req, Error{Code::bad_request, "Idempotency-Key must be 1-256 characters"}));
  ctx.collections.write(caller_of(who), std::move(w), post,
                        [&req, respond, op, name, base](service::WriteOutcome r) {
                          if (r.error) {
                            // Backbone's sync hands a 409's body to the model: the current document,
                            // when the caller may read it.
                            if (r.error->code == Code::conflict && !r.current.empty())
                              return respond(json_response(req, http::status::conflict, r.current));
                            return respond(error(req, *r.error));
                          }
                          if (op == store::DocWrite::Op::remove)
                            return respond(json_response(req, http::status::ok, protocol::version_body(r.v)));
                          // A PUT that created the document (version 1) is a 201 too (RFC 9110 §9.3.4).
                          const bool created = op == store::DocWrite::Op::create ||
                                               (op == store::DocWrite::Op::update && r.v == 1);
                          auto res = doc_response(req, created ? http::status::created : http::status::ok, r.doc);
                          if (created) {
                            boost::system::error_code ec;
                            auto doc = json::parse(r.doc, ec);
                            if (!ec && doc.is_object())
                              if (auto* new_id = doc.get_object().if_contains("id"); new_id && new_id->is_string())
                                res.set(http::field::location,
                                        base + name + "/" + std::string(new_id->get_string()));
                          }
                          respond(std::move(res));
                        });
}

}  // namespace

void collections_api(Context& ctx, const Request& req, const std::vector<std::string>& seg, const Principal& who,
                     const service::Post& post, Respond respond) {
  using Op = store::DocWrite::Op;
  const auto method = req.method();
  const std::string& name = seg[2];
  service::Caller caller = caller_of(who);
  auto not_allowed = [&] { respond(error_response(req, http::status::method_not_allowed, "bad_request", "method not allowed here")); };
  if (seg.size() == 3) {
    if (method == http::verb::get) {
      auto q = parse_list_query(req.target());
      if (auto* e = std::get_if<Error>(&q)) return respond(error(req, *e));
      return ctx.collections.list(caller, name, std::get<query::Query>(std::move(q)), post,
                                  [&req, respond](service::ListOutcome r) {
        if (r.error) return respond(error(req, *r.error));
        std::string body;
        protocol::append_json_texts(body, r.docs);
        auto res = json_response(req, http::status::ok, std::move(body));
        res.set("X-Rtsync-Offset", std::to_string(r.offset));
        res.set("X-Rtsync-Epoch", r.epoch);
        if (r.next) res.set(http::field::link, next_link(req.target(), *r.next));
        respond(std::move(res));
      });
    }
    if (method == http::verb::post) return collection_write(ctx, req, Op::create, name, "", who, post, std::move(respond));
    return not_allowed();
  }
  const std::string& id = seg[3];
  if (id == "_tally") {
    if (method != http::verb::get) return not_allowed();
    std::string group;
    if (auto url = boost::urls::parse_origin_form(req.target())) {
      if (auto it = url->params().find("group"); it != url->params().end()) {
        group = (*it).value;
        if (group.empty()) return respond(error(req, Error{Code::bad_request, "group must not be empty"}));
      }
    }
    return ctx.collections.tally(caller, name, group, post, [&req, respond](service::TallyOutcome r) {
      if (r.error) return respond(error(req, *r.error));
      respond(json_response(req, http::status::ok, protocol::tally_body(r.tally, r.offset, r.epoch)));
    });
  }
  switch (method) {
    case http::verb::get:
      return ctx.collections.get(caller, name, id, post, [&req, respond](service::DocOutcome r) {
        if (r.error) return respond(error(req, *r.error));
        respond(doc_response(req, http::status::ok, r.doc));
      });
    case http::verb::put: return collection_write(ctx, req, Op::update, name, id, who, post, std::move(respond));
    case http::verb::patch: return collection_write(ctx, req, Op::patch, name, id, who, post, std::move(respond));
    case http::verb::delete_: return collection_write(ctx, req, Op::remove, name, id, who, post, std::move(respond));
    default: return not_allowed();
  }
}

StringResponse rest_error(const Request& req, const Error& e) { return error(req, e); }

bool idempotency_key(const Request& req, std::string& key) {
  auto k = req.find("Idempotency-Key");
  if (k == req.end()) return true;
  if (!protocol::valid_key(k->value())) return false;
  key = std::string(k->value());
  return true;
}

StringResponse metrics_response(const Context& ctx, const Request& req) {
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return error_response(req, http::status::method_not_allowed, "bad_request", "use GET");
  if (const auto& token = ctx.cfg.server.metrics_token; !token.empty()) {
    std::string_view auth = req[http::field::authorization];
    const bool bearer = auth.size() > 7 && boost::beast::iequals(auth.substr(0, 7), "Bearer ");
    if (!bearer || !common::equal_constant_time(auth.substr(7), token)) {
      auto res = error_response(req, http::status::unauthorized, "permission_denied",
                                "/metrics needs Authorization: Bearer with [server] metrics_token");
      res.set(http::field::www_authenticate, "Bearer realm=\"metrics\"");
      return res;
    }
  }
  StringResponse res{http::status::ok, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = ctx.metrics.render();
  res.prepare_payload();
  return res;
}

ApiTarget parse_api_target(std::string_view target) {
  using Route = ApiTarget::Route;
  ApiTarget t;
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return t;
  auto& seg = t.segments;
  for (auto s : parsed->segments()) seg.emplace_back(s);
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz" || seg[0] == "metrics")) {
    t.route = seg[0] == "healthz" ? Route::healthz : seg[0] == "readyz" ? Route::readyz : Route::metrics;
  } else if (seg.empty() || seg[0] != "v1") {
    t.route = Route::other;
  } else if (seg.size() == 4 && seg[1] == "channels" && (seg[3] == "history" || seg[3] == "publish")) {
    t.route = seg[3] == "history" ? Route::channel_history : Route::channel_publish;
    if (t.route == Route::channel_history) parse_history_query(*parsed, t.history, t.query_error);
  } else if ((seg.size() == 3 || seg.size() == 4) && seg[1] == "collections") {
    t.route = Route::collections;
  } else {
    t.route = Route::not_found;
  }
  return t;
}

bool handle_api(Context& ctx, const Request& req, const ApiTarget& target, const Principal& who,
                const service::Post& post, Respond respond) {
  using Route = ApiTarget::Route;
  const auto& seg = target.segments;
  const auto method = req.method();
  const bool get = method == http::verb::get || method == http::verb::head;

  switch (target.route) {
    case Route::other: return false;
    case Route::healthz:
    case Route::readyz:
      if (!get) {
        respond(error_response(req, http::status::method_not_allowed, "bad_request", "use GET"));
      } else if (target.route == Route::healthz) {
        respond(json_response(req, http::status::ok, R"({"status":"ok"})"));
      } else if (ctx.ready.load() && ctx.store && ctx.store->failing()) {
        respond(json_response(req, http::status::service_unavailable, R"({"status":"unavailable","reason":"store"})"));
      } else if (ctx.ready.load()) {
        respond(json_response(req, http::status::ok, R"({"status":"ready"})"));
      } else {
        respond(json_response(req, http::status::service_unavailable, R"({"status":"unavailable"})"));
      }
      return true;
    case Route::metrics:
      respond(metrics_response(ctx, req));
      return true;
    case Route::channel_history:
    case Route::channel_publish: {
      auto r = ctx.channels.resolve(seg[2]);
      if (auto* e = std::get_if<Error>(&r)) {
        respond(error(req, *e));
        return true;
      }
      const auto& ch = std::get<core::ChannelRef>(r);
      if (target.route == Route::channel_history) {
        if (!get) respond(error_response(req, http::status::method_not_allowed, "bad_request", "use GET"));
        else channel_history(ctx, req, ch, target, who, post, std::move(respond));
      } else {
        if (method != http::verb::post) respond(error_response(req, http::status::method_not_allowed, "bad_request", "use POST"));
        else channel_publish(ctx, req, *ch, who, post, std::move(respond));
      }
      return true;
    }
    case Route::collections:
      collections_api(ctx, req, seg, who, post, std::move(respond));
      return true;
    case Route::not_found: break;
  }
  respond(error_response(req, http::status::not_found, "not_found", "no such endpoint"));
  return true;
}

}  // namespace rtsync::server
