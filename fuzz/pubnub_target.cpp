// Fuzz target: PubNub request targets as server/pubnub.cpp splits them: path classification, path
// segments and comma-separated channel lists (percent-decoded), and query pairs, each value also read as
// a subscribe filter expression (query/pubnub_filter.hpp) and, when it is one, evaluated.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "query/pubnub_filter.hpp"
#include "server/pubnub.hpp"
#include "server/pubnub_detail.hpp"

namespace pn = rtsync::server::pubnub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view target(reinterpret_cast<const char*>(data), size);
  const auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  (void)pn::is_pubnub_path(path);
  while (!path.empty()) {
    auto slash = path.find('/');
    auto segment = path.substr(0, slash);
    (void)pn::pct_decode(segment);
    (void)pn::name_list(segment);
    (void)pn::parse_uint(segment);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    (void)pn::pct_decode(pair.substr(0, eq));
    if (auto v = pn::pct_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1))) {
      (void)pn::parse_uint(*v);
      std::string error;
      if (auto f = rtsync::query::PubnubFilter::parse(*v, error))
        (void)f->matches(R"({"a":1,"b":"x","c":[1,"y"],"d":{"e":null}})", R"({"a":2})");
    }
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return 0;
}
