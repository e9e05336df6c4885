// Which site a browser request comes from: the Origin allow-list ([server] allowed_origins) behind CORS,
// the WebSocket upgrade check and the refusal of cross-site writes that ride the visitor's cookie (CSRF).
#pragma once

#include "server/context.hpp"
#include "server/http.hpp"
#include "server/identity.hpp"

namespace rtsync::server {

// Whether the request's Origin is allowed: listed in allowed_origins ("*": any), or, with an empty list,
// the page's host:port equals Host. True without Origin.
bool origin_allowed(const Context& ctx, const Request& req);

// Whether a browser sent the request from an allowed page: its Origin is allowed, or, lacking Origin (a
// GET navigation), Sec-Fetch-Site is not `cross-site`. Requests with neither header are not from a
// browser, which is what these checks protect, and pass.
bool from_allowed_site(const Context& ctx, const Request& req);

// A write (`write`: what the caller's route changes state with) whose only credential is the rtsync_uid
// cookie, sent from a site that is not allowed: a browser carrying its visitor's identity for another page.
inline bool cross_site_cookie_write(const Context& ctx, const Request& req, const Principal& who, bool write) {
  return write && who.cookie && !from_allowed_site(ctx, req);
}

}  // namespace rtsync::server
