// JSON Web Tokens as rtsync accepts them (PROTOCOL §3): HS256 only, signed with the server secret.
// `alg: none` and every other algorithm are refused before any signature work; signatures are compared
// in constant time. Claims: `sub` (user id), `exp` (required), optional `info` (an object shown in
// presence) and `caps` ({"sub":[…],"pub":[…],"read":[…],"write":[…]} of patterns, `*` matching any run of
// characters), and `api` (true: the holder may call the Server API, docs/protocol.md section 8). A payload with a duplicate key at any depth is refused: readers disagree on which one wins.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

namespace rtsync::protocol::jwt {

struct Caps {
  std::vector<std::string> sub;  // channels the holder may subscribe to (and read history/presence of)
  std::vector<std::string> pub;  // channels the holder may publish on
  std::vector<std::string> read;   // collections the holder may list, get and tally (and follow: coll:, tally:)
  std::vector<std::string> write;  // collections the holder may create, update, patch and delete in
};

struct Claims {
  std::string sub;
  std::int64_t exp = 0;          // seconds since the Unix epoch; later than 2100-01-01 is clamped to it
  std::string info = "null";     // JSON text
  std::shared_ptr<const Caps> caps;  // null: no restriction beyond the namespaces'
  bool api = false;              // "api": true: the Server API accepts this token
};

// Verifies a compact JWS and returns its claims, or why it is refused ("expired", "bad signature", …).
std::variant<Claims, std::string> verify(std::string_view token, std::string_view secret, std::int64_t now_s);

// The claims of a decoded payload (sub, exp, info, caps, api), or why they are refused. Without `exp`
// (allowed when !exp_required) the claims never expire: Claims::exp is 0.
std::variant<Claims, std::string> claims_of(const boost::json::object& payload, std::int64_t now_s, bool exp_required);

// Signs claims (header {"alg":"HS256","typ":"JWT"}). `caps_json` is a JSON object or empty.
std::string sign(std::string_view sub, std::int64_t exp, std::string_view secret, std::string_view caps_json = {},
                 std::string_view info_json = {}, bool api = false);

// '*' matches any run of characters (possibly empty); everything else matches itself.
bool match(std::string_view pattern, std::string_view channel);
bool match_any(const std::vector<std::string>& patterns, std::string_view channel);

}  // namespace rtsync::protocol::jwt
