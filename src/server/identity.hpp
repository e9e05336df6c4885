// Identity (PROTOCOL §3): who is calling. A seam, because the anonymous cookie identity below is joined by
// JWT bearer tokens later; sessions and REST handlers only ever see a Principal.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/jwt.hpp"
#include "server/http.hpp"
#include "service/channels.hpp"

namespace rtsync::server {

struct Principal {
  std::string user;           // user id
  std::string info = "null";  // JSON text shown in presence
  bool anonymous = true;
  bool cookie = false;        // the identity came from a valid rtsync_uid cookie (no token, not a fresh id)
  std::int64_t expires = 0;   // a token's `exp` (seconds since the Unix epoch); 0: never
  std::shared_ptr<const protocol::jwt::Caps> caps{};  // a token's caps; null: no restriction
  std::shared_ptr<const protocol::pam::Grant> grant{};  // a PubNub Access Manager token's (service::Caller)
  bool api = false;           // a token with "api": true (the Server API accepts it)
  bool server = false;        // authenticated by the Server API (service::Caller::server)
};

// What the services need to know of a principal.
inline service::Caller caller_of(const Principal& p) {
  return service::Caller{p.user, p.anonymous, p.server ? nullptr : p.caps, p.grant, p.server};
}

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Identifies the caller of an HTTP request (the WebSocket upgrade included). A JWT in
  // `Authorization: Bearer` or `?token=` wins; a token that is present but invalid or expired sets
  // `error` (the request is refused, never downgraded to anonymous). Otherwise a browser without a valid
  // signed `rtsync_uid` cookie gets a fresh random user id, and `set_cookie` receives the Set-Cookie
  // header value that keeps it across reloads; else `set_cookie` is left empty.
  virtual Principal identify(const Request& req, std::string& set_cookie, std::string& error) = 0;
  // The identity a token grants (the `auth` op); nullopt with `error` set when it is not valid.
  virtual std::optional<Principal> from_token(std::string_view token, std::string& error) = 0;
  // A token signed like `rtsync token` (the Server API's POST /v1/api/tokens). `caps_json` and
  // `info_json`: JSON objects or empty.
  virtual std::string issue(std::string_view sub, std::int64_t exp, std::string_view caps_json,
                            std::string_view info_json, bool api) = 0;
};

// Tokens are HS256 JWTs signed with the server secret (protocol/jwt.hpp). Anonymous identities live in a
// cookie `rtsync_uid=<id>.<signature>`: HMAC-SHA256 of the id with the server secret, base64url;
// HttpOnly, SameSite=Lax, Path=/, one year, and Secure when `secure_cookie` (TLS in front). A cookie with
// a bad signature is ignored (and replaced), so a user cannot pick someone else's id.
std::unique_ptr<Authenticator> make_authenticator(std::string secret, bool secure_cookie = false);

// The server secret: 32 random bytes (hex) in DATA_DIR/secret, created with mode 0600 on first start;
// logs a warning when group or others may read it. Throws std::runtime_error when the file cannot be read
// or created, and when it is missing while `state` exists (a data dir in use that lost its secret: a new
// one would invalidate every token, cookie and anonymous owner, so the operator must decide).
std::string load_or_create_secret(const std::string& data_dir, const std::filesystem::path& state = {});

}  // namespace rtsync::server
