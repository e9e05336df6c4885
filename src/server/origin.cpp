// Origin and Sec-Fetch-Site checks. See origin.hpp.
#include "server/origin.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <string>

namespace rtsync::server {

namespace beast = boost::beast;

bool origin_allowed(const Context& ctx, const Request& req) {
  auto origin = req.find(http::field::origin);
  if (origin == req.end()) return true;
  const auto& allowed = ctx.cfg.server.allowed_origins;
  if (!allowed.empty()) {
    for (const auto& a : allowed)
      if (a == "*" || beast::iequals(a, origin->value())) return true;
    return false;
  }
  auto url = boost::urls::parse_absolute_uri(origin->value());
  if (!url) return false;
  std::string host_port(url->encoded_host_and_port());
  return beast::iequals(host_port, req[http::field::host]);
}

bool from_allowed_site(const Context& ctx, const Request& req) {
  if (req.find(http::field::origin) != req.end()) return origin_allowed(ctx, req);
  return !beast::iequals(req["Sec-Fetch-Site"], "cross-site");
}

}  // namespace rtsync::server
