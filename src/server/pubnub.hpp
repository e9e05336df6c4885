// The PubNub REST API subset (PROTOCOL §7; docs/pubnub.md): what the official PubNub JavaScript SDK calls
// for publish, signal, subscribe (v2 long poll), history (v2), fetch messages (v3), message counts, time
// and presence. A PubNub channel is the rtsync channel of the same name, so native WebSocket clients and
// PubNub clients share publications, history and presence. Other PubNub APIs answer a JSON error.
//
// Every answer is JSON (Content-Type application/json, errors included) with `Access-Control-Allow-Origin:
// *`: the SDK's GETs are simple CORS requests; POST publish, PATCH and DELETE get their preflight answered.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string_view>

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"
#include "server/rest.hpp"
#include "service/channels.hpp"
#include "service/pubnub_presence.hpp"
#include "service/pubnub_tokens.hpp"

namespace rtsync::server {

class Worker;

namespace pubnub {

// Whether `path` (the target without its query) belongs to PubNub's REST API: /time, /publish, /signal,
// /subscribe, anything under /v2 and /v3, and PubNub's /v1 services (channel groups, message actions,
// files, push). rtsync's own /v1/ws, /v1/channels and /v1/collections are not.
bool is_pubnub_path(std::string_view path);

// Answers a PubNub request, now or later (through `respond`, on this worker's thread). A subscribe long
// poll waits on `worker` without a thread of its own and watches `socket` (the request's connection,
// which reads nothing meanwhile) to notice a client that went away.
void handle(Context& ctx, Worker& worker, boost::asio::ip::tcp::socket& socket, const Request& req,
            const Principal& who, const service::Post& post, Respond respond);

// 429 in the error shape the SDK expects on that path (publish and signal: [0,"Too Many Requests"];
// history v3 and message counts: theirs; else the generic one), with Retry-After: `wait` seconds.
StringResponse too_many_requests(const Request& req, long wait);

// Times out silent PubNub uuids: checks `presence` twice a second on `io` until `io` stops.
void start_presence_sweep(boost::asio::io_context& io, service::PubnubPresence& presence);
// Reads the revoked tokens from the store every PubnubTokens::kRefreshEvery (those of other nodes).
void start_token_refresh(boost::asio::io_context& io, service::PubnubTokens& tokens);

}  // namespace pubnub
}  // namespace rtsync::server
