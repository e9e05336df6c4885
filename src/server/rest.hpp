// The REST API (PROTOCOL §1, §5): health, readiness and the channel endpoints. Collections and the
// PubNub subset join here as they are built.
#pragma once

#include <functional>

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"
#include "service/channels.hpp"

namespace rtsync::server {

using Respond = std::function<void(StringResponse)>;

// Answers requests for /healthz, /readyz and /v1/… (404 for unknown API paths) and returns true; returns
// false for any other path (static files). `respond` may be called later, through `post`.
bool handle_api(Context& ctx, const Request& req, const Principal& who, const service::Post& post,
                Respond respond);

// The HTTP status of a protocol error code.
http::status status_of(protocol::Code code);

}  // namespace rtsync::server
