// PubNub Access Manager tokens: the CBOR subset they use (maps, text and byte strings, integers, floats,
// true/false/null), their signature, the grant request's body, and request signatures. See
// pubnub_token.hpp.
#include "protocol/pubnub_token.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/base64url.hpp"

namespace rtsync::protocol::pam {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, kResources> kCborScopes{"chan", "grp", "uuid"};
constexpr std::array<std::string_view, kResources> kGrantScopes{"channels", "groups", "uuids"};
constexpr std::size_t kMaxPattern = 512;
constexpr std::size_t kMaxEntries = 1000;  // names and patterns of one token

// ---- CBOR ---------------------------------------------------------------------------------------

enum Major : std::uint8_t { kUint = 0, kNegative = 1, kBytes = 2, kText = 3, kMap = 5, kSimple = 7 };

void head(std::string& out, Major major, std::uint64_t v) {
  const auto m = static_cast<char>(major << 5);
  if (v < 24) {
    out += static_cast<char>(m | static_cast<char>(v));
    return;
  }
  const int n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffULL ? 4 : 8;
  out += static_cast<char>(m | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
  for (int i = n - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void text(std::string& out, std::string_view s) {
  head(out, kText, s.size());
  out += s;
}

void scalar(std::string& out, const json::value& v) {
  if (v.is_string()) return text(out, v.get_string());
  if (v.is_bool()) return out.push_back(static_cast<char>(v.get_bool() ? 0xf5 : 0xf4));
  if (v.is_uint64()) return head(out, kUint, v.get_uint64());
  if (v.is_int64()) {
    const std::int64_t i = v.get_int64();
    return i >= 0 ? head(out, kUint, static_cast<std::uint64_t>(i)) : head(out, kNegative, static_cast<std::uint64_t>(-(i + 1)));
  }
  if (v.is_double()) {
    const double d = v.get_double();
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    out += static_cast<char>(0xfb);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
    return;
  }
  out.push_back(static_cast<char>(0xf6));  // null
}

// Everything but the signature, whose map header counts `entries`.
std::string payload(const Grant& g, std::size_t entries) {
  std::string out;
  head(out, kMap, entries);
  text(out, "v");
  head(out, kUint, 2);
  text(out, "t");
  head(out, kUint, static_cast<std::uint64_t>(g.issued));
  text(out, "ttl");
  head(out, kUint, static_cast<std::uint64_t>(g.ttl));
  text(out, "res");
  head(out, kMap, kResources);
  for (std::size_t r = 0; r < kResources; ++r) {
    text(out, kCborScopes[r]);
    head(out, kMap, g.resources[r].size());
    for (const auto& [name, bits] : g.resources[r]) {
      text(out, name);
      head(out, kUint, bits);
    }
  }
  text(out, "pat");
  head(out, kMap, kResources);
  for (std::size_t r = 0; r < kResources; ++r) {
    text(out, kCborScopes[r]);
    head(out, kMap, g.patterns[r].size());
    for (const auto& p : g.patterns[r]) {
      text(out, p.text);
      head(out, kUint, p.bits);
    }
  }
  text(out, "meta");
  head(out, kMap, g.meta.size());
  for (const auto& kv : g.meta) {
    text(out, kv.key());
    scalar(out, kv.value());
  }
  if (!g.authorized_uuid.empty()) {
    text(out, "uuid");
    text(out, g.authorized_uuid);
  }
  if (!g.nonce.empty()) {
    text(out, "n");
    head(out, kBytes, g.nonce.size());
    out += g.nonce;
  }
  return out;
}

std::size_t entries_of(const Grant& g) { return 7 + !g.authorized_uuid.empty() + !g.nonce.empty(); }

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::size_t pos() const { return pos_; }
  bool done() const { return pos_ == in_.size(); }

  bool item(Major& major, std::uint64_t& v) {
    if (pos_ >= in_.size()) return false;
    const auto b = static_cast<std::uint8_t>(in_[pos_++]);
    major = static_cast<Major>(b >> 5);
    const std::uint8_t info = b & 0x1f;
    if (major == kSimple) {
      v = info;
      if (info == 27) return skip(8, v);  // float64: its bits in v
      return info == 20 || info == 21 || info == 22;
    }
    if (info < 24) {
      v = info;
      return true;
    }
    if (info > 27) return false;  // no indefinite lengths
    return skip(std::size_t{1} << (info - 24), v);
  }
  bool string(Major want, std::string& out) {
    Major m{};
    std::uint64_t n = 0;
    if (!item(m, n) || m != want || n > in_.size() - pos_) return false;
    out.assign(in_.substr(pos_, static_cast<std::size_t>(n)));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  bool uint(std::uint64_t& v) {
    Major m{};
    return item(m, v) && m == kUint;
  }
  bool map(std::uint64_t& n) {
    Major m{};
    return item(m, n) && m == kMap && n <= kMaxEntries;
  }
  bool value(json::value& out) {
    const std::size_t at = pos_;
    Major m{};
    std::uint64_t v = 0;
    if (!item(m, v)) return false;
    switch (m) {
      case kUint: out = v; return true;
      case kNegative: out = -1 - static_cast<std::int64_t>(v); return v < (1ULL << 63);
      case kText: {
        pos_ = at;
        std::string s;
        if (!string(kText, s)) return false;
        out = json::string(s);
        return true;
      }
      case kSimple: {
        const auto b = static_cast<std::uint8_t>(in_[at]);
        if (b == 0xf4 || b == 0xf5) out = b == 0xf5;
        else if (b == 0xf6) out = nullptr;
        else {
          double d = 0;
          std::memcpy(&d, &v, sizeof d);
          out = d;
        }
        return true;
      }
      default: return false;
    }
  }

 private:
  bool skip(std::size_t n, std::uint64_t& v) {
    if (n > in_.size() - pos_) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

// A resources or patterns map: {"chan":{NAME:BITS},"grp":…,"uuid":…}.
template <class Each>
bool read_scopes(Reader& r, Each&& each) {
  std::uint64_t scopes = 0;
  if (!r.map(scopes)) return false;
  for (std::uint64_t i = 0; i < scopes; ++i) {
    std::string scope;
    std::uint64_t n = 0;
    if (!r.string(kText, scope) || !r.map(n)) return false;
    const auto it = std::find(kCborScopes.begin(), kCborScopes.end(), scope);
    if (it == kCborScopes.end()) return false;
    for (std::uint64_t k = 0; k < n; ++k) {
      std::string name;
      std::uint64_t bits = 0;
      if (!r.string(kText, name) || !r.uint(bits) || bits > 0xff) return false;
      if (!each(static_cast<std::size_t>(it - kCborScopes.begin()), std::move(name), static_cast<std::uint32_t>(bits)))
        return false;
    }
  }
  return true;
}

bool compile(Pattern& p) {
  if (p.text.size() > kMaxPattern) return false;
  try {
    p.re = std::make_shared<const std::regex>(p.text, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    return false;
  }
  return true;
}

// PubNub's encodeString: encodeURIComponent, and ! ' ( ) * ~ escaped too.
void pct_encode(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
}

}  // namespace

std::uint32_t Grant::bits(Resource r, std::string_view name) const {
  const auto idx = static_cast<std::size_t>(r);
  std::uint32_t out = 0;
  if (const auto it = resources[idx].find(std::string(name)); it != resources[idx].end()) out = it->second;
  for (const auto& p : patterns[idx])
    if (p.re && std::regex_search(name.begin(), name.end(), *p.re)) out |= p.bits;
  return out;
}

std::string issue(const Grant& g, std::string_view key) {
  const std::size_t n = entries_of(g);
  std::string body = payload(g, n);
  const std::string sig = common::hmac_sha256(key, payload(g, n - 1));
  text(body, "sig");
  head(body, kBytes, sig.size());
  body += sig;
  return common::base64url_encode(body);
}

std::variant<Verified, std::string> verify(std::string_view token, std::string_view key) {
  const auto raw = common::base64url_decode(token);
  if (!raw) return std::string("malformed");
  Reader r(*raw);
  std::uint64_t n = 0;
  if (!r.map(n) || n < 2) return std::string("malformed");
  const std::size_t entries_at = r.pos();
  auto g = std::make_shared<Grant>();
  std::string sig;
  std::size_t sig_at = 0;
  bool has_version = false;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::size_t at = r.pos();
    std::string k;
    if (!r.string(kText, k)) return std::string("malformed");
    std::uint64_t v = 0;
    bool ok = true;
    if (k == "v") {
      ok = r.uint(v) && v == 2;
      has_version = ok;
    } else if (k == "t" || k == "ttl") {
      ok = r.uint(v) && v < (1ULL << 40);
      (k == "t" ? g->issued : g->ttl) = static_cast<std::int64_t>(v);
    } else if (k == "res" || k == "pat") {
      const bool res = k == "res";
      ok = read_scopes(r, [&](std::size_t scope, std::string name, std::uint32_t bits) {
        if (res) {
          g->resources[scope][std::move(name)] = bits;
          return true;
        }
        Pattern p{std::move(name), bits, nullptr};
        if (!compile(p)) return false;
        g->patterns[scope].push_back(std::move(p));
        return true;
      });
    } else if (k == "meta") {
      ok = r.map(v);
      for (std::uint64_t m = 0; ok && m < v; ++m) {
        std::string mk;
        json::value mv;
        ok = r.string(kText, mk) && r.value(mv);
        if (ok) g->meta[mk] = std::move(mv);
      }
    } else if (k == "uuid") {
      ok = r.string(kText, g->authorized_uuid);
    } else if (k == "n") {
      ok = r.string(kBytes, g->nonce);
    } else if (k == "sig") {
      sig_at = at;
      ok = r.string(kBytes, sig) && i == n - 1;  // last: what precedes it is what it signs
    } else {
      ok = false;
    }
    if (!ok) return std::string("malformed");
  }
  if (!r.done() || !has_version || sig_at == 0) return std::string("malformed");
  std::string signed_part;
  head(signed_part, kMap, n - 1);
  signed_part.append(*raw, entries_at, sig_at - entries_at);
  if (!common::equal_constant_time(sig, common::hmac_sha256(key, signed_part))) return std::string("bad signature");
  return Verified{std::move(g), common::base64url_encode(sig)};
}

std::variant<Grant, std::string> parse_grant(std::string_view body, std::int64_t now_s) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::string("Invalid RequestBody: the body must be a JSON object");
  const json::object& o = v.as_object();
  Grant g;
  g.issued = now_s;
  const auto* ttl = o.if_contains("ttl");
  if (!ttl || !(ttl->is_int64() || ttl->is_uint64()))
    return std::string("Invalid RequestBody: ttl must be a number of minutes");
  const auto minutes = ttl->to_number<std::int64_t>();
  if (minutes < 1 || minutes > kMaxTtlMinutes)
    return std::string("Invalid RequestBody: ttl must be within 1 and " + std::to_string(kMaxTtlMinutes));
  g.ttl = minutes;
  const auto* perms = o.if_contains("permissions");
  if (!perms || !perms->is_object()) return std::string("Invalid RequestBody: permissions are missing");
  std::size_t entries = 0, given = 0;
  for (const bool res : {true, false}) {
    const auto* part = perms->as_object().if_contains(res ? "resources" : "patterns");
    if (!part) continue;
    if (!part->is_object()) return std::string("Invalid RequestBody: resources and patterns are objects");
    for (const auto& scope : part->as_object()) {
      auto it = std::find(kGrantScopes.begin(), kGrantScopes.end(), scope.key());
      // The SDK sends the retired `users` and `spaces` too, empty.
      const bool legacy = scope.key() == "users" || scope.key() == "spaces";
      if (it == kGrantScopes.end() && !legacy) return std::string("Invalid RequestBody: unknown " + std::string(scope.key()));
      if (!scope.value().is_object()) return std::string("Invalid RequestBody: " + std::string(scope.key()) + " must be an object");
      if (legacy && !scope.value().as_object().empty())
        return std::string("Invalid RequestBody: users and spaces are not supported: grant uuids and channels");
      if (legacy) continue;
      const auto idx = static_cast<std::size_t>(it - kGrantScopes.begin());
      for (const auto& entry : scope.value().as_object()) {
        const auto& bits = entry.value();
        if (!bits.is_int64() && !bits.is_uint64()) return std::string("Invalid RequestBody: permissions are numbers");
        const auto b = bits.to_number<std::int64_t>();
        if (b < 0 || b > 0xff || entry.key().empty()) return std::string("Invalid RequestBody: bad permission");
        if (++entries > kMaxEntries) return std::string("Invalid RequestBody: too many resources");
        if (b != 0) ++given;
        if (res) {
          g.resources[idx][std::string(entry.key())] = static_cast<std::uint32_t>(b);
        } else {
          Pattern p{std::string(entry.key()), static_cast<std::uint32_t>(b), nullptr};
          if (!compile(p)) return std::string("Invalid RequestBody: bad pattern " + p.text);
          g.patterns[idx].push_back(std::move(p));
        }
      }
    }
  }
  if (given == 0) return std::string("Invalid RequestBody: no permissions granted");
  if (const auto* meta = perms->as_object().if_contains("meta")) {
    if (!meta->is_object()) return std::string("Invalid RequestBody: meta must be an object");
    for (const auto& kv : meta->as_object()) {
      if (kv.value().is_object() || kv.value().is_array())
        return std::string("Invalid RequestBody: meta values are scalars");
    }
    g.meta = meta->as_object();
  }
  if (const auto* uuid = perms->as_object().if_contains("uuid")) {
    if (!uuid->is_string() || uuid->get_string().empty() || uuid->get_string().size() > 256)
      return std::string("Invalid RequestBody: uuid must be a string");
    g.authorized_uuid = uuid->get_string();
  }
  return g;
}

std::string request_signature(std::string_view secret, std::string_view method, std::string_view pub_key,
                              std::string_view path, const std::vector<std::pair<std::string, std::string>>& query,
                              std::string_view body) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& kv : query)
    if (kv.first != "signature") params.push_back(kv);
  std::sort(params.begin(), params.end());
  std::string input(method);
  input += '\n';
  input += pub_key;
  input += '\n';
  input += path;
  input += '\n';
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i) input += '&';
    input += params[i].first;
    input += '=';
    pct_encode(input, params[i].second);
  }
  input += '\n';
  if (method == "POST" || method == "PATCH") input += body;
  return "v2." + common::base64url_encode(common::hmac_sha256(secret, input));
}

}  // namespace rtsync::protocol::pam
