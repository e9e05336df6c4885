// PubNub Access Manager v3 tokens (docs/pubnub.md, section 7.7) as rtsync issues them, in PubNub's own
// format so that the SDK's parseToken() reads them: unpadded base64url of a CBOR map
//   {"v":2, "t":ISSUED (Unix seconds), "ttl":MINUTES,
//    "res":{"chan":{NAME:BITS}, "grp":{…}, "uuid":{…}}, "pat":{the same, with regular expressions as keys},
//    "meta":{KEY:scalar}, ["uuid":AUTHORIZED_UUID,] ["n":NONCE,] "sig":HMAC-SHA256}
// where sig, the last entry, signs the CBOR encoding of the map without it with the configured
// [pubnub] secret_key. Only tokens rtsync issued verify. `n`, rtsync's (the SDK ignores it), makes every
// token unique, so that two grants of the same permissions in the same second are revoked apart. Request signatures (`signature=v2.…`, the
// secret-key holder's) are here too. Pure functions, no clock: callers pass the time.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

namespace rtsync::protocol::pam {

// PubNub's permission bits.
enum Bit : std::uint32_t {
  kRead = 1,
  kWrite = 2,
  kManage = 4,
  kDelete = 8,
  kCreate = 16,
  kGet = 32,
  kUpdate = 64,
  kJoin = 128,
};

enum class Resource : std::uint8_t { channel = 0, group = 1, uuid = 2 };
inline constexpr std::size_t kResources = 3;

// PubNub's limits on a token's life, in minutes (30 days at most).
inline constexpr std::int64_t kMaxTtlMinutes = 43200;

struct Pattern {
  std::string text;  // a regular expression (ECMAScript), searched for in a name: anchor it to match whole
  std::uint32_t bits = 0;
  std::shared_ptr<const std::regex> re;  // compiled by verify() / parse_grant()
};

struct Grant {
  std::int64_t issued = 0;       // t: Unix seconds
  std::int64_t ttl = 0;          // minutes
  std::string authorized_uuid;   // empty: any uuid may use it
  std::array<std::map<std::string, std::uint32_t>, kResources> resources{};  // exact names
  std::array<std::vector<Pattern>, kResources> patterns{};
  boost::json::object meta;      // scalars only
  std::string nonce;             // random bytes, set by the issuer; empty: none

  std::int64_t expires_ms() const { return (issued + ttl * 60) * 1000; }
  // The bits the grant gives `name`: its exact resource's and every matching pattern's.
  std::uint32_t bits(Resource r, std::string_view name) const;
  // Whether it gives `name` every bit of `wanted`.
  bool allows(Resource r, std::string_view name, std::uint32_t wanted) const {
    return (bits(r, name) & wanted) == wanted;
  }
};

// The token of a grant, signed with `key`.
std::string issue(const Grant& g, std::string_view key);

struct Verified {
  std::shared_ptr<const Grant> grant;
  std::string id;  // the signature, base64url: what a revocation names
};
// The grant of a token issued with `key`, or why it is refused ("malformed", "bad signature", "bad
// pattern"); its expiry is the caller's to check. A string that is not a CBOR token at all gives
// "malformed" too: the caller decides what else it could be.
std::variant<Verified, std::string> verify(std::string_view token, std::string_view key);

// The body of grantToken (POST /v3/pam/{sub}/grant): {"ttl":N,"permissions":{"resources":{"channels":
// {NAME:BITS},"groups":…,"uuids":…},"patterns":{…},"meta":{…},"uuid":"…"}} into a grant issued at
// `now_s`, or why it is refused (PubNub's words where it has them).
std::variant<Grant, std::string> parse_grant(std::string_view body, std::int64_t now_s);

// PubNub's request signature v2 for `secret`: "v2." + base64url(HMAC-SHA256(secret, METHOD\nPUB_KEY\nPATH\n
// QUERY\n[BODY])), QUERY being every parameter but `signature`, sorted by name, each value percent-encoded
// as the SDK does (encodeURIComponent, and ! ' ( ) * too). `path` as sent (still percent-encoded); the
// body counts for POST and PATCH only.
std::string request_signature(std::string_view secret, std::string_view method, std::string_view pub_key,
                              std::string_view path, const std::vector<std::pair<std::string, std::string>>& query,
                              std::string_view body);

}  // namespace rtsync::protocol::pam
