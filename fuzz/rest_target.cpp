// Fuzz target: routing of REST request targets (server/rest.cpp's parse_api_target: origin-form URL
// parsing, percent-decoded path segments, the history query's since/limit/reverse), the static-file
// path check that shares the same targets, and PubNub's path classification.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/pubnub.hpp"
#include "server/rest.hpp"

using rtsync::server::ApiTarget;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view target(reinterpret_cast<const char*>(data), size);
  ApiTarget t = rtsync::server::parse_api_target(target);
  using Route = ApiTarget::Route;
  const auto& seg = t.segments;
  switch (t.route) {
    case Route::healthz:
    case Route::readyz:
    case Route::metrics:
      if (seg.size() != 1) std::abort();
      break;
    case Route::channel_history:
    case Route::channel_publish:
      if (seg.size() != 4 || seg[0] != "v1" || seg[1] != "channels") std::abort();
      if (t.route == Route::channel_publish && !t.query_error.empty()) std::abort();
      if (t.query_error.empty() && t.history.limit > 1000) std::abort();
      break;
    case Route::collections:
      if ((seg.size() != 3 && seg.size() != 4) || seg[0] != "v1" || seg[1] != "collections") std::abort();
      break;
    case Route::not_found:
      if (seg.empty() || seg[0] != "v1") std::abort();
      break;
    case Route::other:
      break;
  }
  // Parsing is a pure function of the target.
  ApiTarget again = rtsync::server::parse_api_target(target);
  if (again.route != t.route || again.segments != t.segments || again.query_error != t.query_error) std::abort();
  (void)rtsync::server::pubnub::is_pubnub_path(target.substr(0, target.find('?')));
  return 0;
}
