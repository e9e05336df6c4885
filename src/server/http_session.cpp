// HTTP/1.1 keep-alive, routing, and the WebSocket upgrade. See http_session.hpp.
#include "server/http_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "protocol/websocket.hpp"
#include "server/api.hpp"
#include "server/origin.hpp"
#include "server/pubnub.hpp"
#include "server/rest.hpp"
#include "server/worker.hpp"
#include "server/ws_session.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {
// PubNub's GET publish carries the message in the URL, which PubNub allows up to 32 KiB.
constexpr std::uint32_t header_limit = 48 * 1024;

bool header_has_token(std::string_view value, std::string_view token) {
  // Comma-separated, case-insensitive (Connection: keep-alive, Upgrade).
  while (!value.empty()) {
    auto comma = value.find(',');
    auto part = value.substr(0, comma);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (beast::iequals(part, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}
}  // namespace

// CORS for the REST API (/v1/…): allowed origins get their own origin back, so browsers let a page of
// another allowed site read answers; everyone else gets no CORS headers and the browser blocks them.
void add_cors(const Context& ctx, const Request& req, StringResponse& res) {
  auto origin = req.find(http::field::origin);
  if (origin == req.end() || !origin_allowed(ctx, req)) return;
  res.set(http::field::access_control_allow_origin, origin->value());
  res.set(http::field::vary, "Origin");
  res.set(http::field::access_control_allow_credentials, "true");
  res.set(http::field::access_control_expose_headers, "ETag, Location, X-Rtsync-Offset, X-Rtsync-Epoch");
}

bool is_api_path(std::string_view path) { return path.starts_with("/v1/"); }

namespace {
// POST /v1/files/{sub}/channels/{ch}/upload/{id}
bool is_file_upload(const Request& req) {
  const std::string_view target = req.target();
  return req.method() == http::verb::post && target.starts_with("/v1/files/") &&
         target.find("/upload/") != std::string_view::npos;
}
}  // namespace

HttpSession::HttpSession(Context& ctx, Worker& worker, asio::ip::tcp::socket socket)
    : ctx_(ctx), worker_(worker), stream_(std::move(socket)) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (ec) return;
  remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  const auto address = ep.address();
  peer_ = address.is_v6() ? address.to_v6().to_bytes()
                          : asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()).to_bytes();
}

void HttpSession::start() { do_read(); }

void HttpSession::do_read() {
  parser_.emplace();
  parser_->header_limit(header_limit);
  parser_->body_limit(ctx_.cfg.limits.max_http_body);
  stream_.expires_after(std::chrono::seconds(ctx_.cfg.limits.http_timeout));
  read_header();
}

// The head is read here rather than by Beast so that its raw bytes can be checked for what the parser
// accepts silently (obs-fold); the parser then takes the complete head at once, and Beast reads the body.
void HttpSession::read_header() {
  auto data = buffer_.data();
  std::string_view buffered(static_cast<const char*>(data.data()), data.size());
  auto end = buffered.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffered.size() >= header_limit) return on_read(http::error::header_limit, 0);
    return stream_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->on_read(ec, 0);
      self->read_header();
    });
  }
  if (has_obs_fold(buffered.substr(0, end + 2))) return refuse(http::status::bad_request, "obsolete line folding in a header");
  boost::system::error_code parsed;
  buffer_.consume(parser_->put(buffer_.data(), parsed));
  if (!parsed && !parser_->is_header_done()) parsed = http::error::bad_line_ending;  // a head the parser cannot end
  if (parsed) return on_read(parsed, 0);
  if (auto framing = check_framing(parser_->get())) return refuse(framing->status, framing->message);
  if (is_file_upload(parser_->get())) {
    // A PubNub file upload: the file and its multipart framing (pubnub_files_api.cpp).
    constexpr std::size_t framing_allowance = 64 * 1024;
    parser_->body_limit(std::max(ctx_.cfg.limits.max_http_body, ctx_.cfg.pubnub.max_file_size + framing_allowance));
  }
  if (parser_->is_done()) return on_read({}, 0);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpSession::on_read(boost::system::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    return close();
  }
  if (ec) {
    const bool too_big = ec == http::error::body_limit || ec == http::error::header_limit;
    if (too_big) return refuse(http::status::payload_too_large, ec.message());
    return refuse(http::status::bad_request, ec.message());
  }
  handle(parser_->get());
}

void HttpSession::refuse(http::status status, std::string_view message) {
  Request bad;
  bad.version(11);
  bad.keep_alive(false);
  auto res = error_response(bad, status, status == http::status::payload_too_large ? "too_large" : "bad_request", message);
  send(std::move(res), false);
}

void HttpSession::handle(Request& req) {
  ctx_.metrics.worker(worker_.index()).http_requests.fetch_add(1, std::memory_order_relaxed);
  const bool keep_alive = req.keep_alive();
  auto target = req.target();
  auto path = target.substr(0, target.find('?'));
  const bool api = is_api_path(path);
  const bool pubnub = pubnub::is_pubnub_path(path);
  // A WebSocket connection has its own command bucket; every other request counts (docs/security.md).
  const bool websocket = path == "/v1/ws" && req.method() == http::verb::get &&
                         header_has_token(req[http::field::upgrade], "websocket");
  const auto now = std::chrono::steady_clock::now();
  if (!websocket) {
    if (auto wait = ctx_.http_limit->by_address(ctx_.http_limit->client_of(peer_, req), now))
      return too_many(req, wait, api, pubnub);
  }

  if (api && req.method() == http::verb::options) {
    // CORS preflight: only allowed origins get the methods and headers the API takes.
    StringResponse res{http::status::no_content, req.version()};
    res.keep_alive(keep_alive);
    if (req.find(http::field::origin) == req.end() || !origin_allowed(ctx_, req)) {
      res = error_response(req, http::status::forbidden, "permission_denied", "origin not allowed");
    } else {
      add_cors(ctx_, req, res);
      res.set(http::field::access_control_allow_methods, "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      res.set(http::field::access_control_allow_headers, "Content-Type, If-Match, Idempotency-Key, Authorization");
      res.set(http::field::access_control_max_age, "600");
    }
    return send(std::move(res), keep_alive);
  }

  const ApiTarget route = parse_api_target(target);
  if (route.route == ApiTarget::Route::metrics) return send(metrics_response(ctx_, req), keep_alive);

  if (is_server_api_path(path)) {
    // Its own authentication, from the Authorization header alone: no cookie, no ?token=, no Set-Cookie.
    auto self = shared_from_this();
    return handle_server_api(ctx_, req, poster(), [self, keep_alive](StringResponse res) {
      add_cors(self->ctx_, self->parser_->get(), res);
      self->send(std::move(res), keep_alive);
    });
  }

  std::string set_cookie, token_error;
  Principal who = ctx_.auth.identify(req, set_cookie, token_error);
  if (!token_error.empty()) {
    auto res = error_response(req, http::status::unauthorized, "permission_denied", token_error);
    res.set(http::field::www_authenticate, "Bearer");
    if (api) add_cors(ctx_, req, res);
    return send(std::move(res), keep_alive);
  }

  if (websocket) return upgrade(req, std::move(who), std::move(set_cookie));
  if (who.cookie || !who.anonymous) {
    if (auto wait = ctx_.http_limit->by_user(who.user, now)) return too_many(req, wait, api, pubnub);
  }

  const bool safe = req.method() == http::verb::get || req.method() == http::verb::head;
  if (!pubnub && cross_site_cookie_write(ctx_, req, who, !safe)) {
    auto res = error_response(req, http::status::forbidden, "permission_denied",
                              "a cross-site request may not write with the rtsync_uid cookie");
    if (api) add_cors(ctx_, req, res);
    return send(std::move(res), keep_alive);
  }

  auto self = shared_from_this();
  service::Post post = poster();
  Respond respond = [self, set_cookie, keep_alive, api](StringResponse res) {
    if (!set_cookie.empty()) res.set(http::field::set_cookie, set_cookie);
    if (api) add_cors(self->ctx_, self->parser_->get(), res);
    self->send(std::move(res), keep_alive);
  };
  if (pubnub)
    return pubnub::handle(ctx_, worker_, stream_.socket(), req, who, post, std::move(respond));
  if (handle_api(ctx_, req, route, who, post, std::move(respond))) return;
  send(ctx_.files.serve(req, set_cookie), keep_alive);
}

service::Post HttpSession::poster() {
  return [self = shared_from_this()](std::function<void()> fn) { asio::post(self->stream_.get_executor(), std::move(fn)); };
}

void HttpSession::upgrade(Request& req, Principal who, std::string set_cookie) {
  auto fail = [&](http::status status, std::string_view code, std::string_view message) {
    auto res = error_response(req, status, code, message);
    if (status == http::status::upgrade_required) res.set(http::field::sec_websocket_version, "13");
    res.keep_alive(false);
    send(std::move(res), false);
  };
  auto key = req[http::field::sec_websocket_key];
  if (!header_has_token(req[http::field::connection], "upgrade") || key.empty())
    return fail(http::status::bad_request, "bad_request", "not a WebSocket upgrade request");
  // RFC 6455 §4.1: an upgrade is an HTTP/1.1 request with one key of 16 bytes.
  if (req.version() < 11) return fail(http::status::bad_request, "bad_request", "a WebSocket upgrade needs HTTP/1.1");
  if (req.count(http::field::sec_websocket_key) != 1 || !valid_websocket_key(key))
    return fail(http::status::bad_request, "bad_request", "Sec-WebSocket-Key must be 16 bytes in base64");
  if (req[http::field::sec_websocket_version] != "13")
    return fail(http::status::upgrade_required, "bad_request", "WebSocket version 13 is required");
  if (!from_allowed_site(ctx_, req))
    return fail(http::status::forbidden, "permission_denied", "origin not allowed");

  std::string accept = protocol::ws::accept_key(key);
  if (!ctx_.hooks || !ctx_.hooks->connects())
    return switch_protocols(std::move(accept), std::move(who), std::move(set_cookie), {});
  // The connect hook decides who this is, or refuses, before the 101: the client sends nothing until it.
  service::ConnectRequest hook_req;
  const auto client = ctx_.http_limit->client_of(peer_, req);
  auto v6 = asio::ip::make_address_v6(client);
  hook_req.remote = v6.is_v4_mapped() ? asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string() : v6.to_string();
  for (const auto& field : req) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    hook_req.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  hook_req.user = who.user;
  hook_req.anonymous = who.anonymous;
  ctx_.hooks->connect(hook_req, [self = shared_from_this(), accept = std::move(accept), who = std::move(who),
                                 set_cookie = std::move(set_cookie)](service::ConnectVerdict v) mutable {
    asio::post(self->stream_.get_executor(), [self, accept = std::move(accept), who = std::move(who),
                                              set_cookie = std::move(set_cookie), v = std::move(v)]() mutable {
      if (v.claims) {
        Principal named;
        named.user = std::move(v.claims->sub);
        named.info = std::move(v.claims->info);
        named.anonymous = false;
        named.expires = v.claims->exp;
        named.caps = std::move(v.claims->caps);
        who = std::move(named);
      }
      std::optional<Refusal> refused;
      if (v.close) refused = Refusal{*v.close, std::move(v.reason)};
      self->switch_protocols(std::move(accept), std::move(who), std::move(set_cookie), std::move(refused));
    });
  });
}

void HttpSession::switch_protocols(std::string accept, Principal who, std::string set_cookie,
                                   std::optional<Refusal> refused) {
  const auto& req = parser_->get();
  auto res = std::make_shared<http::response<http::empty_body>>(http::status::switching_protocols, req.version());
  res->set(http::field::upgrade, "websocket");
  res->set(http::field::connection, "Upgrade");
  res->set(http::field::sec_websocket_accept, accept);
  res->set(http::field::server, "rtsync/" RTSYNC_VERSION);
  if (!set_cookie.empty()) res->set(http::field::set_cookie, set_cookie);

  stream_.expires_never();
  http::async_write(stream_, *res, [self = shared_from_this(), res, who = std::move(who), refused = std::move(refused)](
                                       boost::system::error_code ec, std::size_t) mutable {
    if (ec) return self->close();
    // Bytes the client sent right after its upgrade request are already in our buffer: hand them over.
    auto data = self->buffer_.data();
    std::string already(static_cast<const char*>(data.data()), data.size());
    auto session = std::make_shared<WsSession>(self->ctx_, self->worker_, self->stream_.release_socket(),
                                               std::move(who), self->remote_, std::move(already));
    if (refused) return session->refuse(refused->code, refused->reason);
    session->start();
  });
}

void HttpSession::too_many(const Request& req, long wait, bool api, bool pubnub) {
  auto res = pubnub ? pubnub::too_many_requests(req, wait)
                    : error_response(req, http::status::too_many_requests, "rate_limited",
                                     "too many requests; retry after " + std::to_string(wait) + " s");
  res.set(http::field::retry_after, std::to_string(wait));
  if (api) add_cors(ctx_, req, res);
  send(std::move(res), req.keep_alive());
}

void HttpSession::send(http::message_generator msg, bool keep_alive) {
  stream_.expires_after(std::chrono::seconds(ctx_.cfg.limits.http_timeout));
  beast::async_write(stream_, std::move(msg),
                     [self = shared_from_this(), keep_alive](boost::system::error_code ec, std::size_t n) {
                       self->on_write(keep_alive, ec, n);
                     });
}

void HttpSession::on_write(bool keep_alive, boost::system::error_code ec, std::size_t) {
  if (ec || !keep_alive) return close();
  do_read();
}

void HttpSession::close() {
  boost::system::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.close();
}

}  // namespace rtsync::server
