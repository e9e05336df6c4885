// The REST API (PROTOCOL §1, §5): health, readiness and the channel endpoints. Collections and the
// PubNub subset join here as they are built.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"
#include "service/channels.hpp"

namespace rtsync::server {

using Respond = std::function<void(StringResponse)>;

// The routing half of an API request, a pure function of the request target (fuzzed by fuzz/rest_target.cpp).
struct ApiTarget {
  enum class Route { other, healthz, readyz, metrics, channel_history, channel_publish, collections, not_found };
  Route route = Route::other;         // other: not an API path (static files), or not an origin-form target
  std::vector<std::string> segments;  // the percent-decoded path segments
  core::HistoryQuery history;         // channel_history: since, limit, reverse from the query
  std::string query_error;            // channel_history: why a query value is malformed (a 400), else empty
};
ApiTarget parse_api_target(std::string_view target);

// Answers requests for /healthz, /readyz and /v1/… (404 for unknown API paths) and returns true; returns
// false for any other path (static files). `target` is parse_api_target(req.target()). `respond` may be
// called later, through `post`.
bool handle_api(Context& ctx, const Request& req, const ApiTarget& target, const Principal& who,
                const service::Post& post, Respond respond);

// GET /metrics. With [server] metrics_token set, only for `Authorization: Bearer <that token>` (else 401):
// answered before identification, since that Bearer is not a JWT.
StringResponse metrics_response(const Context& ctx, const Request& req);

// The HTTP status of a protocol error code.
http::status status_of(protocol::Code code);
// A protocol error as a REST error answer (docs/protocol.md section 5).
StringResponse rest_error(const Request& req, const protocol::Error& e);

// The optional Idempotency-Key header, with the limits of the WebSocket `key` field; false when malformed.
bool idempotency_key(const Request& req, std::string& key);

// /v1/collections/NAME[/ID] (and the Server API's /v1/api/collections/…): `seg` is
// {"v1", "collections", NAME[, ID]}. List, create, get, put, patch, delete and _tally, as `who` may.
void collections_api(Context& ctx, const Request& req, const std::vector<std::string>& seg, const Principal& who,
                     const service::Post& post, Respond respond);

}  // namespace rtsync::server
