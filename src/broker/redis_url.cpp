// redis:// URLs ([cluster] broker): parsed here, without sockets, so the config can validate them.
#include <charconv>

#include "broker/broker.hpp"

namespace rtsync::broker {

namespace {
bool parse_int(std::string_view s, int lo, int hi, int& out) {
  if (s.empty()) return false;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}
}  // namespace

bool parse_redis_url(std::string_view url, RedisAddress& out) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) return false;
  url.remove_prefix(scheme.size());
  RedisAddress a;
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = url.substr(0, at);
    url.remove_prefix(at + 1);
    if (auto colon = cred.find(':'); colon != std::string_view::npos) {
      a.user = cred.substr(0, colon);
      a.password = cred.substr(colon + 1);
    } else {
      a.password = cred;
    }
  }
  std::string_view hostport = url;
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    hostport = url.substr(0, slash);
    std::string_view db = url.substr(slash + 1);
    if (!db.empty() && !parse_int(db, 0, 1 << 16, a.db)) return false;
  }
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return false;
    host = hostport.substr(1, close - 1);
    std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !parse_int(rest.substr(1), 1, 65535, a.port))) return false;
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    if (!parse_int(hostport.substr(colon + 1), 1, 65535, a.port)) return false;
  }
  if (host.empty()) return false;
  for (char c : host)
    if (c == '/' || c == '@' || c == ' ' || c == '?' || c == '#') return false;
  a.host = host;
  out = std::move(a);
  return true;
}

}  // namespace rtsync::broker
