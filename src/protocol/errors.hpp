// The error codes clients see (PROTOCOL §4), and the close codes the server uses. Internal failures are
// mapped onto these at the edge; clients never see internal error text beyond a short message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rtsync::protocol {

enum class Code : std::uint8_t {
  bad_request,        // malformed command: not JSON, missing or mistyped field, bad channel name
  unknown_op,
  not_found,          // undeclared namespace or collection, missing document
  permission_denied,  // not allowed for this user or namespace (e.g. publishing on coll:)
  conflict,           // version mismatch in a collection write
  invalid,            // well-formed but rejected by validation (reserved attribute, tally value)
  too_large,
  rate_limited,
  limit,              // a per-connection limit (subscriptions)
  expired,            // a list cursor whose paging the server can no longer place: list from the first page
  unavailable,        // the store failed or is shutting down, or the app's backend did not answer; retry later
  refused,            // the app's backend refused it (a proxy hook, docs/hooks.md)
  internal,
};

constexpr std::string_view to_string(Code c) {
  switch (c) {
    case Code::bad_request: return "bad_request";
    case Code::unknown_op: return "unknown_op";
    case Code::not_found: return "not_found";
    case Code::permission_denied: return "permission_denied";
    case Code::conflict: return "conflict";
    case Code::invalid: return "invalid";
    case Code::too_large: return "too_large";
    case Code::rate_limited: return "rate_limited";
    case Code::limit: return "limit";
    case Code::expired: return "expired";
    case Code::unavailable: return "unavailable";
    case Code::refused: return "refused";
    case Code::internal: return "internal";
  }
  return "internal";
}

// An error as returned by the service layer to WebSocket and REST alike.
struct Error {
  Code code;
  std::string message;
  std::string extra{};  // more members of the error object, as JSON text without braces (e.g. "doc":{…})
};

// WebSocket close codes (also the `code` of the `bye` sent before closing).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;     // server shutdown
inline constexpr std::uint16_t protocol_error = 1002; // RFC 6455 violation
inline constexpr std::uint16_t unsupported = 1003;    // binary frames
inline constexpr std::uint16_t invalid_utf8 = 1007;
inline constexpr std::uint16_t too_big = 1009;        // message over limits.max_frame
inline constexpr std::uint16_t slow_consumer = 4001;  // outbound queue over limits.max_outbound
inline constexpr std::uint16_t token_expired = 4002;  // the connection's token expired and was not refreshed
inline constexpr std::uint16_t rate_abuse = 4003;     // limits.rate_abuse rate_limited replies in a row
inline constexpr std::uint16_t idle_timeout = 4004;   // nothing received for limits.idle_timeout seconds
inline constexpr std::uint16_t disconnected = 4005;   // the app's backend disconnected it (POST /v1/api/disconnect)
}  // namespace close_code

}  // namespace rtsync::protocol
