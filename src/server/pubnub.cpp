// PubNub REST endpoints: routing, time, publish and signal, and JSON errors for the APIs rtsync does not
// offer (history: pubnub_history.cpp; presence: pubnub_presence_api.cpp; subscribe: pubnub_subscribe.cpp).
// See pubnub.hpp; the parameters and answer shapes follow ../shared/PUBNUB.md.
#include "server/pubnub.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <set>

#include "common/clock.hpp"
#include "common/client_json.hpp"
#include "common/json_text.hpp"
#include "protocol/websocket.hpp"
#include "server/origin.hpp"
#include "server/pubnub_detail.hpp"

namespace rtsync::server::pubnub {

namespace asio = boost::asio;
namespace json = boost::json;
using common::append_int;
using common::append_json_string;
using protocol::Code;
using protocol::Error;

namespace {

// PubNub's rule for custom message types: 3-50 characters of A-Za-z0-9_-.
bool valid_ctype(std::string_view s) {
  if (s.size() < 3 || s.size() > 50) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- Answers --------------------------------------------------------------------------------------

// Publish and signal errors are arrays: [0,"reason"] (the SDK takes the reason as its error data).
StringResponse publish_error(const Request& req, http::status status, std::string_view reason) {
  std::string body = "[0,";
  append_json_string(body, reason);
  body += ']';
  return reply(req, status, std::move(body));
}

// ---- Time -----------------------------------------------------------------------------------------

void time_now(Call& c) {
  std::string body = "[";
  append_int(body, core::now_timetoken());
  body += ']';
  c.respond(reply(c.req, http::status::ok, std::move(body)));
}

// ---- Publish and signal ---------------------------------------------------------------------------

enum class Inflated { ok, bad, too_large };

// A zlib (RFC 1950) or gzip body, as the SDK's POST publish sends it (Content-Encoding: deflate).
Inflated inflate_body(std::string_view in, std::string& out, std::size_t limit) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Inflated::bad;  // +32: zlib or gzip header, detected
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[16 * 1024];
  int rc = Z_OK;
  Inflated result = Inflated::ok;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      result = Inflated::bad;
      break;
    }
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > limit) {
      result = Inflated::too_large;
      break;
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      result = Inflated::bad;  // truncated stream
      break;
    }
  }
  inflateEnd(&zs);
  return result;
}

// /publish/{pub}/{sub}/0/{channel}/0[/{payload}], /signal/… and /v1/files/publish-file/…: checks and the
// payload, or an answer. `base`: where the path's keys begin, less one (2 for publish-file).
struct Outgoing {
  core::ChannelRef channel;
  std::string data;  // compact JSON
  service::PublishExtras extras;
};

std::optional<Outgoing> prepare_publish(Call& c, bool signal, std::size_t base = 0) {
  const auto& req = c.req;
  const bool post = req.method() == http::verb::post;
  if (c.seg.size() != base + (post ? 6u : 7u) || (post && (signal || base > 0))) {
    c.respond(publish_error(req, http::status::bad_request, "Invalid publish path"));
    return std::nullopt;
  }
  auto pub_key = pct_decode(c.seg[base + 1]);
  const auto& cfg = c.ctx.cfg.pubnub;
  if (!pub_key || (!cfg.publish_key.empty() && *pub_key != cfg.publish_key)) {
    c.respond(error(req, http::status::bad_request, "Invalid Publish Key"));
    return std::nullopt;
  }
  if (!subscribe_key(c, c.seg[base + 2])) return std::nullopt;
  auto name = pct_decode(c.seg[base + 4]);
  if (!name) {
    c.respond(publish_error(req, http::status::bad_request, "Invalid channel"));
    return std::nullopt;
  }
  auto res = c.ctx.channels.resolve(*name);
  if (auto* e = std::get_if<Error>(&res)) {
    c.respond(publish_error(req, status_for(*e), "Invalid channel: " + e->message));
    return std::nullopt;
  }
  Outgoing out;
  out.channel = std::get<core::ChannelRef>(std::move(res));
  if (auto e = c.ctx.channels.check_publish(*out.channel, c.caller())) {
    c.respond(publish_error(req, http::status::forbidden, "Forbidden"));
    return std::nullopt;
  }

  std::string payload;
  if (post) {
    const auto encoding = req[http::field::content_encoding];
    if (boost::beast::iequals(encoding, "deflate") || boost::beast::iequals(encoding, "gzip")) {
      switch (inflate_body(req.body(), payload, max_message + 1)) {
        case Inflated::ok: break;
        case Inflated::too_large:
          c.respond(publish_error(req, http::status::payload_too_large, "Request Entity Too Large"));
          return std::nullopt;
        case Inflated::bad:
          c.respond(publish_error(req, http::status::bad_request, "Invalid compressed body"));
          return std::nullopt;
      }
    } else if (encoding.empty() || boost::beast::iequals(encoding, "identity")) {
      payload = req.body();
    } else {
      c.respond(publish_error(req, http::status::unsupported_media_type, "Unsupported Content-Encoding"));
      return std::nullopt;
    }
  } else {
    auto p = pct_decode(c.seg[base + 6]);
    if (!p) {
      c.respond(publish_error(req, http::status::bad_request, "Invalid JSON"));
      return std::nullopt;
    }
    payload = std::move(*p);
  }
  if (payload.size() > max_message) {
    c.respond(publish_error(req, http::status::payload_too_large, "Request Entity Too Large"));
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto value = common::parse_client_json(payload, ec);
  if (ec || !common::all_numbers_finite(value)) {
    c.respond(publish_error(req, http::status::bad_request, "Invalid JSON"));
    return std::nullopt;
  }
  out.data = json::serialize(value);

  if (const auto* uuid = c.param("uuid")) {
    if (!valid_id(*uuid)) {
      c.respond(publish_error(req, http::status::bad_request, "Invalid uuid"));
      return std::nullopt;
    }
    out.extras.uuid = *uuid;
  }
  if (const auto* meta = c.param("meta"); meta && !meta->empty()) {
    auto m = common::parse_client_json(*meta, ec);
    if (ec || meta->size() > max_message || !common::all_numbers_finite(m)) {
      c.respond(publish_error(req, http::status::bad_request, "Invalid meta parameter"));
      return std::nullopt;
    }
    out.extras.meta = json::serialize(m);
  }
  if (const auto* t = c.param("custom_message_type"); t && !t->empty()) {
    if (!valid_ctype(*t)) {
      c.respond(publish_error(req, http::status::bad_request, "Invalid custom message type"));
      return std::nullopt;
    }
    out.extras.ctype = *t;
  }
  // Beyond PubNub's own limits, the one of every front end (limits.max_publication), in PubNub's shape.
  if (c.ctx.channels.check_size(out.data, out.extras.meta)) {
    c.respond(publish_error(req, http::status::payload_too_large, "Request Entity Too Large"));
    return std::nullopt;
  }
  return out;
}

StringResponse sent(const Request& req, std::uint64_t tt) {
  std::string body = "[1,\"Sent\",";
  append_tt(body, tt);
  body += ']';
  return reply(req, http::status::ok, std::move(body));
}

// A transient publication: delivered to the long polls of the channel (the last few kept for those that
// catch up), no offset, no history, not sent to native clients. A signal, or a message published with
// store=0 (`unstored`: its envelope has no "e").
void transient(Call& c, Outgoing out, bool unstored) {
  auto ch = out.channel;
  auto pub = std::make_shared<core::Publication>();
  pub->data = std::move(out.data);
  pub->from = c.who.user;
  pub->ts = common::now_ms();
  pub->uuid = std::move(out.extras.uuid);
  pub->meta = std::move(out.extras.meta);
  pub->ctype = std::move(out.extras.ctype);
  pub->unstored = unstored;
  const Request& req = c.req;
  c.ctx.channels.when_ready(*ch, c.post, [&ctx = c.ctx, &req, respond = c.respond, ch, pub](bool ok) {
    if (!ok) return respond(publish_error(req, http::status::service_unavailable, "Service Unavailable"));
    auto s = ctx.channels.signal(*ch, std::move(*pub));
    respond(sent(req, s->tt));
  });
}

// PubNub's `ttl`: hours, integer or fractional; 0 (or none) keeps the message as long as the channel's
// history does. nullopt: not a number of hours.
std::optional<double> ttl_hours(const Call& c) {
  const auto* t = c.param("ttl");
  if (!t || t->empty()) return 0.0;
  double hours = 0;
  auto [p, ec] = std::from_chars(t->data(), t->data() + t->size(), hours);
  constexpr double max_hours = 24.0 * 365 * 100;  // beyond any history; keeps the milliseconds in range
  if (ec != std::errc{} || p != t->data() + t->size() || !(hours >= 0) || hours > max_hours) return std::nullopt;
  return hours;
}

// A message kept in the channel's history, expiring after the request's `ttl` hours: answered after the
// commit on durable channels.
void stored_publish(Call& c, Outgoing out) {
  const Request& req = c.req;
  auto hours = ttl_hours(c);
  if (!hours) return c.respond(publish_error(req, http::status::bad_request, "Invalid TTL"));
  if (*hours > 0) out.extras.expires = common::now_ms() + static_cast<std::int64_t>(*hours * 3'600'000.0 + 0.5);
  c.ctx.channels.publish(
      *out.channel, c.caller(), std::move(out.data), "", c.post,
      [&req, respond = c.respond](service::PublishResult r) {
        if (r.error) {
          const auto status = status_for(*r.error);
          return respond(publish_error(req, status, status == http::status::forbidden ? "Forbidden" : r.error->message));
        }
        respond(sent(req, r.tt));
      },
      std::move(out.extras));
}

// Published through the same service as native `pub`: durable channels answer after the commit, and the
// publication reaches WebSocket subscribers and long polls alike, expiring from history after `ttl`
// hours. `store=0` delivers it to PubNub subscribers without keeping it (a transient, which native
// clients, whose messages carry offsets in the history, do not see). `norep=true` with `store=0` (the
// SDK's fire()) reaches nobody: PubNub gives such a message to its Functions only, which rtsync has not.
// norep with storage (stored but not delivered) is refused rather than done differently.
void publish(Call& c) {
  auto out = prepare_publish(c, false);
  if (!out) return;
  const Request& req = c.req;
  const auto* store = c.param("store");
  const bool stored = !store || (*store != "0" && *store != "false");
  if (c.flag("norep")) {
    if (stored)
      return c.respond(publish_error(req, http::status::bad_request,
                                     "rtsync does not support norep without store=0 (see docs/pubnub.md)"));
    return c.respond(sent(req, core::now_timetoken()));
  }
  if (!stored) return transient(c, std::move(*out), true);
  stored_publish(c, std::move(*out));
}

// A file's message (the SDK's publishFile, after its upload): {"message":…,"file":{"id","name"}}, published
// like a message but typed 4 ("e" in subscribe, message_type in history). The file must be this
// channel's, unless the payload is encrypted (a string), which rtsync cannot read.
void publish_file(Call& c) {
  auto out = prepare_publish(c, false, 2);
  if (!out) return;
  const Request& req = c.req;
  boost::system::error_code ec;
  const auto value = json::parse(out->data, ec);
  if (const auto* o = value.if_object()) {
    const auto* file = o->if_contains("file");
    const auto* f = file ? file->if_object() : nullptr;
    const auto* id = f ? f->if_contains("id") : nullptr;
    const auto* name = f ? f->if_contains("name") : nullptr;
    if (!id || !name || !id->is_string() || !name->is_string())
      return c.respond(publish_error(req, http::status::bad_request, "Invalid file message"));
    if (!c.ctx.pubnub_files->find(out->channel->name(), id->get_string(), name->get_string()))
      return c.respond(publish_error(req, http::status::bad_request, "File not found"));
  } else if (!value.is_string()) {
    return c.respond(publish_error(req, http::status::bad_request, "Invalid file message"));
  }
  const auto* store = c.param("store");
  if (store && (*store == "0" || *store == "false"))
    return c.respond(publish_error(req, http::status::bad_request,
                                   "rtsync keeps every file message (see docs/pubnub.md)"));
  out->extras.pn_event = core::pn_file_event;
  stored_publish(c, std::move(*out));
}

// Signals go to subscribers (long polls) with "e":1 and are not kept in history.
void signal(Call& c) {
  auto out = prepare_publish(c, true);
  if (!out) return;
  transient(c, std::move(*out), false);
}

// ---- JSONP ----------------------------------------------------------------------------------------

// The JSONP callback a request names (SDK 3.x in browsers without CORS, or with `jsonp: true`): the path's
// callback segment where the path has one, else the `callback` parameter. "0" or none: no JSONP.
std::string_view jsonp_callback(const Call& c) {
  const auto& s = c.seg;
  std::string_view cb;
  if (s[0] == "time" && s.size() >= 2) cb = s[1];
  else if ((s[0] == "publish" || s[0] == "signal") && s.size() >= 6) cb = s[5];
  else if (s[0] == "subscribe" && s.size() >= 4) cb = s[3];
  else if (s[0] == "v2" && s.size() >= 5 && s[1] == "subscribe") cb = s[4];
  else if (const auto* p = c.param("callback")) cb = *p;
  return cb == "0" ? std::string_view{} : cb;
}

// A callback is a dotted JavaScript name, nothing that could close the call and add code.
bool valid_callback(std::string_view cb) {
  constexpr std::size_t max_callback = 128;
  if (cb.empty() || cb.size() > max_callback || (cb.front() >= '0' && cb.front() <= '9')) return false;
  return std::all_of(cb.begin(), cb.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '$' || ch == '.';
  });
}

// Every answer to the request becomes the script `CALLBACK(BODY);`.
Respond wrap_jsonp(std::string callback, Respond inner) {
  return [callback = std::move(callback), inner = std::move(inner)](StringResponse res) {
    res.body() = callback + '(' + res.body() + ");";
    res.set(http::field::content_type, "text/javascript; charset=utf-8");
    res.prepare_payload();
    inner(std::move(res));
  };
}

// ---- Routing --------------------------------------------------------------------------------------

void route(Call& c) {
  const auto& s = c.seg;
  const auto method = c.req.method();
  const bool get = method == http::verb::get || method == http::verb::head;
  const auto& req = c.req;
  auto not_allowed = [&] { c.respond(error(req, http::status::method_not_allowed, "Method not allowed", "rtsync")); };

  if (s[0] == "time") return get ? time_now(c) : not_allowed();
  if (s[0] == "publish") return get || method == http::verb::post ? publish(c) : not_allowed();
  if (s[0] == "signal") return get ? signal(c) : not_allowed();
  if (s[0] == "subscribe") {
    if (!get) return not_allowed();
    if (s.size() != 5) return c.respond(error(req, http::status::bad_request, "Invalid subscribe path"));
    return subscribe_v1(c);
  }
  if (s.size() < 2) return c.respond(error(req, http::status::not_found, "Resource not found", "rtsync"));
  if (s[0] == "v2" && s[1] == "subscribe") {
    if (!get) return not_allowed();
    if (s.size() != 5) return c.respond(error(req, http::status::bad_request, "Invalid subscribe path"));
    return subscribe(c);
  }
  // /v2/presence/sub-key/{sub}/…, /v2/history/sub-key/{sub}/…, /v3/history/sub-key/{sub}/… (SDK 3.x
  // spells some of them sub_key).
  const bool keyed = s.size() >= 4 && (s[2] == "sub-key" || s[2] == "sub_key");
  if (keyed && (s[1] == "presence" || s[1] == "history" || s[1] == "history-with-actions")) {
    if (!subscribe_key(c, s[3])) return;
  }
  if (s[0] == "v2" && s[1] == "presence" && keyed) return get ? presence(c) : not_allowed();
  if (s[0] == "v2" && s[1] == "history" && keyed && s.size() == 6 && s[4] == "channel")
    return get ? history_v2(c) : not_allowed();
  if (s[0] == "v3" && (s[1] == "history" || s[1] == "history-with-actions") && keyed && s.size() == 6) {
    if (s[4] == "channel") {
      if (method == http::verb::delete_) return s[1] == "history" ? delete_messages(c) : not_allowed();
      return get ? fetch_messages(c, s[1] == "history-with-actions") : not_allowed();
    }
    if (s[4] == "message-counts" && s[1] == "history") return get ? message_counts(c) : not_allowed();
  }
  if (s[1] == "presence") return c.respond(error(req, http::status::bad_request, "Invalid presence path", "Presence"));
  if (s[1] == "history") return c.respond(history_error(req, http::status::bad_request, "Invalid history path"));
  if (s[1] == "channel-registration") return channel_groups(c);
  if (s[0] == "v2" && s[1] == "objects") return app_context(c);
  if (s[0] == "v3" && s[1] == "pam") return access_manager(c);
  if (s[1] == "message-actions") return message_actions(c);
  if (s[0] == "v1" && s[1] == "files") {
    if (s.size() >= 3 && s[2] == "publish-file") return get ? publish_file(c) : not_allowed();
    return files(c);
  }
  if (s[1] == "push") return c.respond(unsupported(req, "mobile push"));
  if (s[1] == "auth") return c.respond(unsupported(req, "Access Manager v2 (grant, audit): use grantToken"));
  c.respond(error(req, http::status::not_found, "Resource not found", "rtsync"));
}

}  // namespace

// ---- Shared helpers (pubnub_detail.hpp) -----------------------------------------------------------

StringResponse presence_ok(const Request& req, std::string_view extra) {
  std::string body = "{\"status\":200,\"message\":\"OK\"";
  body += extra;
  body += ",\"service\":\"Presence\"}";
  return reply(req, http::status::ok, std::move(body));
}

StringResponse unsupported(const Request& req, std::string_view what) {
  return error(req, http::status::bad_request,
               "rtsync does not support PubNub's " + std::string(what) + " API (see docs/pubnub.md)", "rtsync");
}

// A uuid (or key) that can go into JSON text as it is.
bool valid_id(std::string_view s) {
  constexpr std::size_t max_id = 256;  // PubNub allows 92 characters for a uuid
  return s.size() <= max_id && protocol::ws::valid_utf8(s);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

// History v3 and message counts errors.
StringResponse history_error(const Request& req, http::status status, std::string_view message) {
  std::string body = "{\"status\":";
  append_int(body, static_cast<int>(status));
  body += ",\"error\":true,\"error_message\":";
  append_json_string(body, message);
  body += ",\"channels\":{}}";
  return reply(req, status, std::move(body));
}

http::status status_for(const Error& e) {
  switch (e.code) {
    case Code::permission_denied:
    case Code::refused: return http::status::forbidden;
    case Code::unavailable: return http::status::service_unavailable;
    case Code::not_found: return http::status::not_found;
    case Code::too_large: return http::status::payload_too_large;
    default: return http::status::bad_request;
  }
}

StringResponse forbidden(const Request& req, std::string_view channel) {
  std::string body = "{\"message\":\"Forbidden\",\"payload\":{\"channels\":[";
  append_json_string(body, channel);
  body += "]},\"error\":true,\"service\":\"Access Manager\",\"status\":403}";
  return reply(req, http::status::forbidden, std::move(body));
}

// Resolves names for reading (subscribe permission), at most limits.max_subscriptions of them, as a
// subscribe may name. Duplicates are dropped.
Resolved resolve_for_reading(const Call& c, const std::vector<std::string>& names, std::string_view service,
                             const std::set<std::string>& granted) {
  Resolved r;
  if (names.size() > c.ctx.cfg.limits.max_subscriptions) {
    r.failure = error(c.req, http::status::bad_request, "Too many channels in one request", service);
    return r;
  }
  std::set<core::Channel*> seen;
  for (const auto& name : names) {
    auto res = c.ctx.channels.resolve(name);
    if (auto* e = std::get_if<Error>(&res)) {
      r.failure = error(c.req, status_for(*e), "Invalid channel \"" + name + "\": " + e->message, service);
      return r;
    }
    auto& ch = std::get<core::ChannelRef>(res);
    if (!granted.contains(name) && c.ctx.channels.check_subscribe(*ch, c.caller())) {
      r.failure = forbidden(c.req, name);
      return r;
    }
    if (seen.insert(ch.get()).second) r.channels.push_back(std::move(ch));
  }
  return r;
}

std::optional<std::string> pct_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<std::vector<std::string>> name_list(std::string_view raw) {
  auto decoded = pct_decode(raw);
  if (!decoded) return std::nullopt;
  std::vector<std::string> out;
  for (auto part : split(*decoded, ','))
    if (!part.empty()) out.emplace_back(part);
  return out;
}

StringResponse reply(const Request& req, http::status status, std::string body) {
  auto res = json_response(req, status, std::move(body));
  res.set(http::field::access_control_allow_origin, "*");
  return res;
}

StringResponse error(const Request& req, http::status status, std::string_view message, std::string_view service) {
  std::string body = "{\"message\":";
  append_json_string(body, message);
  body += ",\"error\":true,\"service\":";
  append_json_string(body, service);
  body += ",\"status\":";
  append_int(body, static_cast<int>(status));
  body += '}';
  return reply(req, status, std::move(body));
}

std::optional<std::string> subscribe_key(Call& c, std::string_view segment) {
  auto key = pct_decode(segment);
  const auto& want = c.ctx.cfg.pubnub.subscribe_key;
  if (key && (want.empty() || *key == want) && valid_id(*key)) return key;
  c.respond(error(c.req, http::status::bad_request, "Invalid Subscribe Key"));
  return std::nullopt;
}

void when_all_ready(Call& c, const std::vector<core::ChannelRef>& channels, std::function<void(bool)> fn) {
  struct Join {
    std::size_t left;
    bool ok = true;
    std::function<void(bool)> fn;
  };
  auto join = std::make_shared<Join>(Join{channels.size() + 1, true, std::move(fn)});
  auto one = [join](bool ok) {
    join->ok = join->ok && ok;
    if (--join->left == 0) join->fn(join->ok);
  };
  for (const auto& ch : channels) c.ctx.channels.when_ready(*ch, c.post, one);
  one(true);  // the caller's own share: fn runs once, after every channel, even when all were ready
}

void append_tt(std::string& out, std::uint64_t tt) {
  out += '"';
  append_int(out, tt);
  out += '"';
}

// ---- Entry points ---------------------------------------------------------------------------------

StringResponse too_many_requests(const Request& req, long wait) {
  constexpr std::string_view reason = "Too Many Requests";
  auto target = req.target();
  auto path = target.substr(0, target.find('?'));
  StringResponse res = path.starts_with("/publish/") || path.starts_with("/signal/")
                           ? publish_error(req, http::status::too_many_requests, reason)
                       : path.starts_with("/v3/history")
                           ? history_error(req, http::status::too_many_requests, reason)
                           : error(req, http::status::too_many_requests, reason, "Balancer");
  res.set(http::field::retry_after, std::to_string(wait));
  return res;
}

bool is_pubnub_path(std::string_view path) {
  auto parts = split(path.substr(path.starts_with('/') ? 1 : 0), '/');
  const auto first = parts[0];
  if (first == "time" || first == "publish" || first == "signal" || first == "subscribe") return true;
  if (first == "v2" || first == "v3") return parts.size() > 1;
  if (first == "v1" && parts.size() > 1) {
    const auto second = parts[1];
    return second == "channel-registration" || second == "message-actions" || second == "files" ||
           second == "push" || second == "auth";
  }
  return false;
}

void handle(Context& ctx, Worker& worker, asio::ip::tcp::socket& socket, const Request& req, const Principal& who,
            const service::Post& post, Respond respond) {
  if (req.method() == http::verb::options) {
    // CORS preflight (POST publish with Content-Encoding, PATCH, DELETE): any origin, since the SDK sends no
    // credentials and PubNub keys are not secrets.
    auto res = reply(req, http::status::ok, "{}");
    res.set(http::field::access_control_allow_methods, "GET, POST, PATCH, DELETE, OPTIONS");
    std::string_view asked = req[http::field::access_control_request_headers];
    res.set(http::field::access_control_allow_headers,
            asked.empty() ? std::string_view("Content-Type, Content-Encoding, Accept") : asked);
    res.set(http::field::access_control_max_age, "86400");
    return respond(std::move(res));
  }
  Call c{ctx, worker, socket, req, who, post, std::move(respond), {}, {}};
  std::string_view target = req.target();
  const auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.starts_with('/')) path.remove_prefix(1);
  c.seg = split(path, '/');
  if (q != std::string_view::npos) {
    for (auto pair : split(target.substr(q + 1), '&')) {
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      auto key = pct_decode(pair.substr(0, eq));
      auto value = pct_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
      if (!key || !value) return c.respond(error(req, http::status::bad_request, "Invalid query string", "rtsync"));
      c.query.emplace_back(std::move(*key), std::move(*value));
    }
  }
  if (!authenticate(c)) return;
  // PubNub's auth key (`auth`, the SDK's authKey or token) may carry an rtsync JWT. Anything that does not
  // look like one (nor an Access Manager token of this server's) is a PAM key, meaningless here, and
  // ignored like PubNub ignores it without Access Manager; a JWT that is not valid is refused rather than
  // taken as anonymous.
  if (const auto* auth = c.param("auth"); auth && std::count(auth->begin(), auth->end(), '.') == 2 && c.who.anonymous) {
    std::string why;
    auto token_who = ctx.auth.from_token(*auth, why);
    if (!token_who) {
      std::string body = "{\"message\":";
      append_json_string(body, "Forbidden: " + why);
      body += ",\"error\":true,\"service\":\"Access Manager\",\"status\":403}";
      return c.respond(reply(req, http::status::forbidden, std::move(body)));
    }
    c.who = std::move(*token_who);
    // The session counted the request for its address only: the token's user is known from here.
    if (auto wait = ctx.http_limit->by_user(c.who.user, std::chrono::steady_clock::now()))
      return c.respond(too_many_requests(req, wait));
  }
  // Publishing (and adding a message action) are the PubNub writes that carry the caller's identity
  // (`from`). A cross-site link, image or form pointing at them would carry the visitor's cookie: refused,
  // as REST writes are.
  const bool publishes = c.seg[0] == "publish" || c.seg[0] == "signal" ||
                         (c.seg.size() > 1 && c.seg[1] == "message-actions" && req.method() != http::verb::get);
  if (cross_site_cookie_write(ctx, req, c.who, publishes))
    return c.respond(publish_error(req, http::status::forbidden, "Forbidden"));
  if (auto cb = jsonp_callback(c); !cb.empty()) {
    if (!valid_callback(cb)) return c.respond(error(req, http::status::bad_request, "Invalid callback", "rtsync"));
    // A script any page may include: with the visitor's cookie as its only credential, it would hand that
    // visitor's reads to another site (cross-site script inclusion), so only allowed sites get one.
    if (cross_site_cookie_write(ctx, req, c.who, true))
      return c.respond(error(req, http::status::forbidden, "Forbidden", "Access Manager"));
    c.respond = wrap_jsonp(std::string(cb), std::move(c.respond));
  }
  route(c);
}

namespace {
// Runs `fn` every `period` on `io` until `io` stops; owned by its pending timer handler.
class Every : public std::enable_shared_from_this<Every> {
 public:
  Every(asio::io_context& io, std::chrono::milliseconds period, std::function<void()> fn)
      : timer_(io), period_(period), fn_(std::move(fn)) {}
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;
      self->fn_();
      self->arm();
    });
  }

 private:
  asio::steady_timer timer_;
  std::chrono::milliseconds period_;
  std::function<void()> fn_;
};
}  // namespace

void start_presence_sweep(asio::io_context& io, service::PubnubPresence& presence) {
  std::make_shared<Every>(io, std::chrono::milliseconds(500), [&presence] { presence.sweep(); })->arm();
}

void start_token_refresh(asio::io_context& io, service::PubnubTokens& tokens) {
  std::make_shared<Every>(io, service::PubnubTokens::kRefreshEvery, [&tokens] { tokens.refresh(); })->arm();
}

}  // namespace rtsync::server::pubnub
