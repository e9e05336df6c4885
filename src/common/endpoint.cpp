#include "common/endpoint.hpp"

#include <boost/url/parse.hpp>

namespace rtsync::common {

std::optional<Endpoint> parse_endpoint(std::string_view url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u || u->scheme_id() != boost::urls::scheme::http || u->has_userinfo() || u->has_fragment() ||
      u->encoded_host().empty())
    return std::nullopt;
  Endpoint e;
  e.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->host_ipv6_address().to_string())
                                                           : std::string(u->encoded_host());
  e.port = u->has_port() && !u->port().empty() ? std::string(u->port()) : "80";
  e.target = u->encoded_path().empty() ? "/" : std::string(u->encoded_path());
  if (u->has_query()) e.target += "?" + std::string(u->encoded_query());
  return e;
}

}  // namespace rtsync::common
