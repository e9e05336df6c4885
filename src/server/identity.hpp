// Identity (PROTOCOL §3): who is calling. A seam, because the anonymous cookie identity below is joined by
// JWT bearer tokens later; sessions and REST handlers only ever see a Principal.
#pragma once

#include <memory>
#include <string>

#include "server/http.hpp"

namespace rtsync::server {

struct Principal {
  std::string user;           // user id
  std::string info = "null";  // JSON text shown in presence
  bool anonymous = true;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Identifies the caller of an HTTP request (the WebSocket upgrade included). A browser without a valid
  // signed `rtsync_uid` cookie gets a fresh random user id, and `set_cookie` receives the Set-Cookie
  // header value that keeps it across reloads; otherwise `set_cookie` is left empty.
  virtual Principal identify(const Request& req, std::string& set_cookie) = 0;
};

// Anonymous identities in a cookie `rtsync_uid=<id>.<signature>`: HMAC-SHA256 of the id with the server
// secret, base64url; HttpOnly, SameSite=Lax, Path=/, one year. A cookie with a bad signature is ignored
// (and replaced), so a user cannot pick someone else's id.
std::unique_ptr<Authenticator> make_cookie_authenticator(std::string secret);

// The server secret: 32 random bytes (hex) in DATA_DIR/secret, created with mode 0600 on first start.
// Throws std::runtime_error when the file cannot be read or created.
std::string load_or_create_secret(const std::string& data_dir);

}  // namespace rtsync::server
