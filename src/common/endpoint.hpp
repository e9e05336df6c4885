// The app's backend's address as the config names it (docs/hooks.md): an http:// URL. Parsed once, when
// the config is read, and used by hooks::HttpClient for every request.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rtsync::common {

struct Endpoint {
  std::string host;    // a name or an address
  std::string port;    // "80" when the URL names none
  std::string target;  // the path and query, "/" when the URL has none
  std::string key() const { return host + ':' + port; }
};
// The endpoint of an `http://HOST[:PORT][/PATH[?QUERY]]` URL; nullopt for anything else (another scheme,
// user info, a fragment, no host).
std::optional<Endpoint> parse_endpoint(std::string_view url);

}  // namespace rtsync::common
