// HTTP vocabulary shared by the server's handlers.
#pragma once

#include <boost/beast/http.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace rtsync::server {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using StringResponse = http::response<http::string_body>;

// A JSON response with the headers every API answer carries.
StringResponse json_response(const Request& req, http::status status, std::string body);
// {"error":{"code":"…","message":"…"}} with the given status.
StringResponse error_response(const Request& req, http::status status, std::string_view code,
                              std::string_view message);

// Why a request head that the parser accepted must still be refused (RFC 9112), answered and then the
// connection closed: its body cannot be delimited reliably, or it is ambiguous to a proxy in front.
struct FramingError {
  http::status status;
  std::string_view message;
};
// Host: exactly one on HTTP/1.1, at most one on 1.0, a valid uri-host[:port]. Transfer-Encoding: only
// `chunked` alone, on HTTP/1.1 (final coding not chunked: 400, other codings: 501).
std::optional<FramingError> check_framing(const Request& req);
// Whether a request head (up to its empty line) folds a header line (obs-fold: CRLF then SP or HTAB).
bool has_obs_fold(std::string_view head);
// RFC 6455 §4.2.1: Sec-WebSocket-Key is 16 bytes in canonical base64 (24 characters, "==" at the end).
bool valid_websocket_key(std::string_view key);

}  // namespace rtsync::server
