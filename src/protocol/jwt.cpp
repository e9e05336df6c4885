// HS256 JWT verification and signing. See jwt.hpp.
#include "protocol/jwt.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/base64url.hpp"
#include "common/client_json.hpp"

namespace rtsync::protocol::jwt {

namespace json = boost::json;

namespace {

constexpr std::size_t max_token = 8192;
// exp values beyond 2100-01-01 are treated as that date: any later one means "does not expire" in
// practice, and the bound keeps exp well inside system_clock's nanosecond range.
constexpr std::int64_t max_exp = 4'102'444'800;

// Boost.JSON keeps the last of duplicate keys, another reader may keep the first: a token whose claims
// mean different things to different readers is refused. This handler only records each object's keys.
struct DuplicateKeyFinder {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  std::vector<std::set<std::string>> objects;
  std::string key;
  bool found = false;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { objects.emplace_back(); return true; }
  bool on_object_end(std::size_t, boost::system::error_code&) { objects.pop_back(); return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) { key.append(s); return true; }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code&) {
    key.append(s);
    found = found || !objects.back().insert(std::move(key)).second;
    key.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }
};

bool has_duplicate_keys(std::string_view text) {
  json::basic_parser<DuplicateKeyFinder> p{json::parse_options{}};
  boost::system::error_code ec;
  p.write_some(false, text.data(), text.size(), ec);
  return !ec && p.handler().found;
}

// A segment's JSON object, or the reason it is refused.
std::variant<json::object, std::string> decode_object(std::string_view segment, std::string_view what) {
  auto bytes = common::base64url_decode(segment);
  boost::system::error_code ec;
  auto v = bytes ? common::parse_client_json(*bytes, ec) : json::value{};
  if (!bytes || ec || !v.is_object() || !common::all_numbers_finite(v)) return fmt::format("malformed token {}", what);
  if (has_duplicate_keys(*bytes)) return fmt::format("duplicate key in the token {}", what);
  return std::move(v.get_object());
}

std::optional<std::vector<std::string>> patterns(const json::object& caps, std::string_view key) {
  std::vector<std::string> out;
  auto* v = caps.if_contains(key);
  if (!v) return out;
  if (!v->is_array()) return std::nullopt;
  for (const auto& p : v->get_array()) {
    if (!p.is_string()) return std::nullopt;
    out.emplace_back(p.get_string());
  }
  return out;
}

}  // namespace

std::variant<Claims, std::string> claims_of(const json::object& payload, std::int64_t now_s, bool exp_required) {
  Claims c;
  auto* sub = payload.if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string().empty() || sub->get_string().size() > 128)
    return std::string("\"sub\" must be a string of 1-128 characters");
  c.sub = std::string(sub->get_string());
  if (auto* exp = payload.if_contains("exp")) {
    if (!(exp->is_int64() || exp->is_uint64() || exp->is_double())) return std::string("\"exp\" is required");
    // Any JSON number is accepted, but far-future values are clamped (to_number would throw on a uint64
    // beyond int64, a cast of a huge double is undefined, and sessions turn exp into a nanosecond timer).
    if (exp->is_int64()) {
      c.exp = std::min(exp->get_int64(), max_exp);
    } else if (exp->is_uint64()) {
      c.exp = max_exp;  // beyond int64: the far future
    } else {
      const double d = exp->get_double();  // finite: the callers refuse infinities
      c.exp = d >= static_cast<double>(max_exp) ? max_exp : d <= 0 ? 0 : static_cast<std::int64_t>(d);
    }
    if (c.exp <= now_s) return std::string("expired");
  } else if (exp_required) {
    return std::string("\"exp\" is required");
  }
  if (auto* info = payload.if_contains("info")) {
    if (!info->is_object()) return std::string("\"info\" must be an object");
    c.info = json::serialize(*info);
  }
  if (auto* caps = payload.if_contains("caps")) {
    if (!caps->is_object()) return std::string("\"caps\" must be an object");
    const auto& o = caps->get_object();
    auto s = patterns(o, "sub");
    auto p = patterns(o, "pub");
    auto r = patterns(o, "read");
    auto w = patterns(o, "write");
    if (!s || !p || !r || !w) return std::string("\"caps\" lists must be arrays of strings");
    c.caps = std::make_shared<const Caps>(Caps{std::move(*s), std::move(*p), std::move(*r), std::move(*w)});
  }
  if (auto* api = payload.if_contains("api")) {
    if (!api->is_bool()) return std::string("\"api\" must be true or false");
    c.api = api->get_bool();
  }
  return c;
}

std::variant<Claims, std::string> verify(std::string_view token, std::string_view secret, std::int64_t now_s) {
  if (token.size() > max_token) return std::string("token too long");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return std::string("malformed token");
  auto decoded_header = decode_object(token.substr(0, dot1), "header");
  if (auto* why = std::get_if<std::string>(&decoded_header)) return std::move(*why);
  auto* header = &std::get<json::object>(decoded_header);
  auto* alg = header->if_contains("alg");
  // The algorithm is fixed by the server, never chosen by the token: "none" and RS/ES/PS are refused.
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") return std::string("unsupported algorithm");
  if (auto* crit = header->if_contains("crit"); crit) return std::string("unsupported critical header");

  auto signature = common::base64url_decode(token.substr(dot2 + 1));
  if (!signature) return std::string("malformed signature");
  auto expected = common::hmac_sha256(secret, token.substr(0, dot2));
  if (!common::equal_constant_time(*signature, expected)) return std::string("bad signature");

  auto decoded_payload = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1), "payload");
  if (auto* why = std::get_if<std::string>(&decoded_payload)) return std::move(*why);
  auto* payload = &std::get<json::object>(decoded_payload);
  return claims_of(*payload, now_s, true);
}

std::string sign(std::string_view sub, std::int64_t exp, std::string_view secret, std::string_view caps_json,
                 std::string_view info_json, bool api) {
  json::object payload;
  payload["sub"] = sub;
  payload["exp"] = exp;
  if (api) payload["api"] = true;
  if (!info_json.empty()) payload["info"] = json::parse(info_json);
  if (!caps_json.empty()) payload["caps"] = json::parse(caps_json);
  std::string signing_input = common::base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." +
                              common::base64url_encode(json::serialize(payload));
  return signing_input + "." + common::base64url_encode(common::hmac_sha256(secret, signing_input));
}

bool match(std::string_view pattern, std::string_view s) {
  // Iterative glob with one backtrack point: linear in practice, no recursion for hostile patterns.
  std::size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pattern.size() && pattern[p] == s[i]) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool match_any(const std::vector<std::string>& patterns_, std::string_view channel) {
  for (const auto& p : patterns_)
    if (match(p, channel)) return true;
  return false;
}

}  // namespace rtsync::protocol::jwt
