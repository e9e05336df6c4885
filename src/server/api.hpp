// The Server API (docs/protocol.md section 8): /v1/api/… for the app's own backend. Authenticated only
// by `Authorization: Bearer` with an [api] key or a token holding "api": true, never by the rtsync_uid
// cookie or a ?token= parameter. The caller is privileged (service::Caller::server): it publishes on any
// channel clients may not write to as well, reads and writes any document (still validated by its
// collection), reads presence, disconnects users and sessions, issues tokens and lists channels.
#pragma once

#include <string_view>
#include <variant>

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"
#include "server/rest.hpp"

namespace rtsync::server {

bool is_server_api_path(std::string_view path);

// Who calls the Server API, from the request's Authorization header alone: the principal (server set;
// `api` set when it came from a token rather than a key), or the 401/403 answer.
std::variant<Principal, StringResponse> authenticate_server_api(Context& ctx, const Request& req);

// Answers a request for is_server_api_path (routing, parsing, the answer); `respond` may be called
// later, through `post`, on the request's I/O thread.
void handle_server_api(Context& ctx, const Request& req, const service::Post& post, Respond respond);

}  // namespace rtsync::server
