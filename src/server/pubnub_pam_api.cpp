// PubNub Access Manager v3 (docs/pubnub.md, section 7.7): who a request is when it is signed with the
// secret key (`signature=v2.…`, the holder of [pubnub] secret_key: no restriction) or carries a token
// rtsync granted (`auth`: its grant restricts it); grantToken (POST /v3/pam/{sub}/grant) and revokeToken
// (DELETE /v3/pam/{sub}/grant/{token}), which need the signature. Without a secret key Access Manager is
// off: grants are refused, tokens are not recognized, signatures not checked.
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include "common/base64url.hpp"
#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "server/pubnub.hpp"
#include "server/pubnub_detail.hpp"
#include "server/rate_limit.hpp"
#include "service/pubnub_tokens.hpp"

namespace rtsync::server::pubnub {

using common::append_json_string;
namespace pam = protocol::pam;

namespace {

// How far a signed request's `timestamp` may be from the server's clock.
constexpr std::int64_t kSignatureWindowS = 60;

StringResponse refused(const Request& req, std::string_view why) {
  return error(req, http::status::forbidden, "Forbidden: " + std::string(why));
}

StringResponse grant_error(const Request& req, http::status status, std::string_view message) {
  std::string body = "{\"status\":";
  common::append_int(body, static_cast<int>(status));
  body += ",\"error\":{\"message\":";
  append_json_string(body, message);
  body += ",\"source\":\"grant\"},\"service\":\"Access Manager\"}";
  return reply(req, status, std::move(body));
}

// Whether the request's `signature` is the secret key's over this very request.
bool signature_valid(const Call& c, std::string_view signature) {
  const auto* ts = c.param("timestamp");
  char* end = nullptr;
  const long long t = ts ? std::strtoll(ts->c_str(), &end, 10) : 0;
  if (!ts || ts->empty() || *end != '\0' || std::llabs(t - common::now_ms() / 1000) > kSignatureWindowS) return false;
  std::string_view target = c.req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  // The SDK signs every publish as a GET, whatever its method.
  const std::string_view method = path.starts_with("/publish/") ? "GET" : std::string_view(c.req.method_string());
  const std::string want = pam::request_signature(c.ctx.pubnub_tokens->key(), method, c.ctx.cfg.pubnub.publish_key,
                                                  path, c.query, c.req.body());
  return common::equal_constant_time(want, signature);
}

std::string request_uuid(const Call& c) {
  const auto* uuid = c.param("uuid");
  return uuid && valid_id(*uuid) ? *uuid : std::string();
}

}  // namespace

bool authenticate(Call& c) {
  auto& tokens = *c.ctx.pubnub_tokens;
  if (!tokens.enabled() || !c.who.anonymous) return true;
  if (const auto* signature = c.param("signature")) {
    if (!signature_valid(c, *signature)) {
      c.respond(refused(c.req, "the request's signature is not the secret key's"));
      return false;
    }
    c.secret = true;
    c.who = Principal{};
    c.who.user = request_uuid(c);
    c.who.anonymous = false;
    return true;
  }
  const auto* auth = c.param("auth");
  if (!auth || auth->empty()) return true;
  auto t = tokens.check(*auth, common::now_ms());
  if (!t.token) return true;  // a JWT, or a PAM v2 auth key: not an Access Manager token
  if (!t.grant) {
    c.respond(refused(c.req, "the token is " + (t.why == "bad signature" ? std::string("not one this server granted") : t.why)));
    return false;
  }
  const std::string uuid = request_uuid(c);
  if (!t.grant->authorized_uuid.empty() && uuid != t.grant->authorized_uuid) {
    c.respond(refused(c.req, "the token is for another uuid"));
    return false;
  }
  Principal p;
  p.user = t.grant->authorized_uuid.empty() ? uuid : t.grant->authorized_uuid;
  p.anonymous = false;
  p.expires = t.grant->expires_ms() / 1000;
  p.caps = std::make_shared<const protocol::jwt::Caps>();  // nothing of rtsync's own: no collections
  p.grant = std::move(t.grant);
  c.who = std::move(p);
  // The session counted the request for its address only: the token's user is known from here.
  if (auto wait = c.ctx.http_limit->by_user(c.who.user, std::chrono::steady_clock::now())) {
    c.respond(too_many_requests(c.req, wait));
    return false;
  }
  return true;
}

bool granted(const Call& c, pam::Resource r, std::string_view name, std::uint32_t bits) {
  return !c.who.grant || c.who.grant->allows(r, name, bits);
}

bool may_remove(const Call& c, const core::Channel& ch) {
  if (!c.who.grant) return !c.ctx.channels.check_publish(ch, c.caller());
  return ch.options().client_publish && c.who.grant->allows(pam::Resource::channel, ch.name(), pam::kDelete);
}

StringResponse forbidden(const Request& req, pam::Resource r, std::string_view name) {
  std::string body = "{\"message\":\"Forbidden\",\"payload\":{";
  body += r == pam::Resource::channel ? "\"channels\":[" : r == pam::Resource::group ? "\"channel-groups\":[" : "\"uuids\":[";
  append_json_string(body, name);
  body += "]},\"error\":true,\"service\":\"Access Manager\",\"status\":403}";
  return reply(req, http::status::forbidden, std::move(body));
}

// /v3/pam/{sub}/grant (POST) and /v3/pam/{sub}/grant/{token} (DELETE).
void access_manager(Call& c) {
  const auto& req = c.req;
  const auto& s = c.seg;
  if (s.size() < 4 || s.size() > 5 || s[3] != "grant")
    return c.respond(grant_error(req, http::status::bad_request, "Invalid Access Manager path"));
  if (!subscribe_key(c, s[2])) return;
  auto& tokens = *c.ctx.pubnub_tokens;
  if (!tokens.enabled())
    return c.respond(refused(req, "Access Manager is off on this server (no [pubnub] secret_key)"));
  if (!c.secret) return c.respond(refused(req, "granting and revoking need a request signed with the secret key"));
  const auto now = common::now_ms();
  if (s.size() == 4) {
    if (req.method() != http::verb::post)
      return c.respond(grant_error(req, http::status::method_not_allowed, "Method not allowed"));
    auto parsed = pam::parse_grant(req.body(), now / 1000);
    if (auto* why = std::get_if<std::string>(&parsed)) return c.respond(grant_error(req, http::status::bad_request, *why));
    std::string body = R"({"status":200,"data":{"message":"Success","token":)";
    append_json_string(body, tokens.issue(std::get<pam::Grant>(parsed)));
    body += R"(},"service":"Access Manager"})";
    return c.respond(reply(req, http::status::ok, std::move(body)));
  }
  if (req.method() != http::verb::delete_)
    return c.respond(grant_error(req, http::status::method_not_allowed, "Method not allowed"));
  auto token = pct_decode(s[4]);
  auto t = token ? tokens.check(*token, now) : service::PubnubTokens::Checked{};
  constexpr std::string_view ok = R"({"status":200,"data":{},"service":"Access Manager"})";
  if (!t.token || t.why == "bad signature")
    return c.respond(grant_error(req, http::status::bad_request, "Invalid token: not one this server granted"));
  if (!t.grant) return c.respond(reply(req, http::status::ok, std::string(ok)));  // expired or revoked already
  tokens.revoke(t, c.post, [&req, respond = c.respond, ok](bool done) {
    if (!done) return respond(grant_error(req, http::status::service_unavailable, "the store is unavailable"));
    respond(reply(req, http::status::ok, std::string(ok)));
  });
}

}  // namespace rtsync::server::pubnub
