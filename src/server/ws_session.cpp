// A WebSocket connection: framing, commands and the coalescing write queue. See ws_session.hpp.
#include "server/ws_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/json_text.hpp"
#include "common/random.hpp"
#include "core/channel_name.hpp"
#include "protocol/websocket.hpp"
#include "server/worker.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
namespace json = boost::json;
namespace ws = protocol::ws;
using protocol::Code;
using protocol::Error;

namespace {
constexpr std::size_t max_batch = 16 * 1024;       // replies per frame before starting another frame
constexpr std::size_t max_iov = 64;                // frames per sendmsg (IOV_MAX is 1024; 64 fill a send buffer)
constexpr int reads_per_turn = 16;                 // then yield to the worker's other connections
constexpr std::size_t shrink_above = 256;          // frame slots kept by an emptied output queue
constexpr auto close_grace = std::chrono::seconds(2);
constexpr std::size_t max_history_limit = 1000;
constexpr std::size_t max_key = 256;
}  // namespace

WsSession::WsSession(Context& ctx, Worker& worker, asio::ip::tcp::socket socket, Principal who,
                     std::string remote, std::string already_read)
    : ctx_(ctx),
      worker_(worker),
      metrics_(ctx.metrics.worker(worker.index())),
      socket_(std::move(socket)),
      who_(std::move(who)),
      remote_(std::move(remote)),
      no_(ctx.next_session++),
      id_(common::random_hex(8)),
      caller_(caller_of(who_)) {
  in_.assign(already_read.begin(), already_read.end());
  in_len_ = in_.size();
}

WsSession::~WsSession() = default;

void WsSession::start() {
  worker_.add_session(shared_from_this());
  metrics_.connections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("ws open session={} user={} remote={}", id_, who_.user, remote_);
  last_rx_ = last_ping_check_ = std::chrono::steady_clock::now();
  bucket_ = common::TokenBucket::full(static_cast<double>(ctx_.cfg.limits.burst), last_rx_);
  queue_text(protocol::hello(id_, who_.user));
  process_input();
  maybe_read();
}

// ---- Reading ---------------------------------------------------------------------------------------

void WsSession::maybe_read() {
  // While a command is held back, the socket is not read either (backpressure), except to find the
  // peer's close once we are closing.
  if (!reading_ && !finished_ && (!blocked_ || closing_)) read_now();
}

// Reads until the socket would block, then waits for readability. By hand rather than async_read_some,
// which needs a buffer per pending read: this way an idle connection holds none, reads land in the
// worker's buffer, and only an incomplete frame's bytes are copied into the session's own. Reading until
// EAGAIN before waiting is what the edge-triggered reactor needs to report the next arrival.
void WsSession::read_now() {
  const int fd = socket_.native_handle();
  auto& shared = worker_.read_buffer();
  for (int turn = 0; !finished_ && (!blocked_ || closing_); ++turn) {
    if (turn == reads_per_turn) {
      // A client that keeps sending must not starve the others on this worker.
      reading_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->reading_ = false;
        self->maybe_read();
      });
      return;
    }
    const bool own = in_len_ > 0;  // an incomplete frame: its bytes go on in the session's buffer
    if (own && in_len_ == in_.size()) in_.resize(std::max<std::size_t>(2 * in_.size(), 4096));
    std::uint8_t* to = own ? in_.data() + in_len_ : shared.data();
    const std::size_t room = own ? in_.size() - in_len_ : shared.size();
    const ssize_t n = ::recv(fd, to, room, MSG_DONTWAIT);
    if (n == 0) return finish("peer closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return finish(std::strerror(errno));
      reading_ = true;
      socket_.async_wait(asio::ip::tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        self->reading_ = false;
        if (self->finished_) return;
        if (ec) return self->finish(ec.message());
        self->maybe_read();
      });
      return;
    }
    bump(metrics_.bytes_in, n);
    last_rx_ = std::chrono::steady_clock::now();
    if (own) {
      in_len_ += static_cast<std::size_t>(n);
      process_input();
    } else {
      std::size_t need = 0;
      const std::size_t used = consume(shared.data(), static_cast<std::size_t>(n), need);
      if (finished_) return;
      if (used < static_cast<std::size_t>(n)) {
        in_.assign(shared.data() + used, shared.data() + n);
        in_len_ = in_.size();
        if (need > in_.size()) in_.resize(need);
      }
    }
  }
}

void WsSession::process_input() {
  std::size_t need = 0;
  const std::size_t used = consume(in_.data(), in_len_, need);
  if (finished_) return;
  in_len_ -= used;
  if (in_len_ == 0) {
    // Idle again: give the buffer back.
    std::vector<std::uint8_t>().swap(in_);
    return;
  }
  std::memmove(in_.data(), in_.data() + used, in_len_);
  if (need > in_.size()) in_.resize(need);
}

std::size_t WsSession::consume(std::uint8_t* data, std::size_t size, std::size_t& need) {
  std::size_t pos = 0;
  if (skip_ > 0) {
    pos = std::min(skip_, size);
    skip_ -= pos;
    if (skip_ > 0) return pos;
  }
  while (!finished_ && (!blocked_ || closing_)) {
    ws::FrameHeader h;
    auto r = ws::parse_client_header(data + pos, size - pos, h);
    if (r == ws::ParseResult::protocol_error) {
      if (closing_) {
        finish("protocol error while closing");
        return size;
      }
      // Drop the rest of the input; go on reading only to find the peer's close frame.
      close(protocol::close_code::protocol_error, "protocol error");
      return size;
    }
    if (r == ws::ParseResult::need_more) break;

    const bool data_frame = h.opcode == ws::Opcode::text || h.opcode == ws::Opcode::binary ||
                            h.opcode == ws::Opcode::cont;
    if (!closing_ && data_frame) {
      // Limits are enforced from the header, before any of the payload is buffered.
      if (h.opcode == ws::Opcode::binary) {
        close(protocol::close_code::unsupported, "binary frames are not supported");
        break;
      }
      if ((h.opcode == ws::Opcode::text && in_message_) || (h.opcode == ws::Opcode::cont && !in_message_)) {
        close(protocol::close_code::protocol_error, "bad fragmentation");
        break;
      }
      if (message_.size() + h.length > ctx_.cfg.limits.max_frame) {
        close(protocol::close_code::too_big, "message too big");
        break;
      }
    }
    const std::size_t total = h.header_size + static_cast<std::size_t>(h.length);
    if (closing_ && h.opcode != ws::Opcode::close) {
      // While closing, data is skipped without buffering it whole.
      std::size_t avail = size - pos;
      if (avail < total) {
        skip_ = total - avail;
        return size;
      }
      pos += total;
      continue;
    }
    if (size - pos < total) {
      need = total;
      break;
    }
    auto* payload = data + pos + h.header_size;
    ws::unmask(payload, static_cast<std::size_t>(h.length), h.mask, 0);
    std::string_view p(reinterpret_cast<const char*>(payload), static_cast<std::size_t>(h.length));
    pos += total;
    switch (h.opcode) {
      case ws::Opcode::text:
        if (h.fin) {
          on_message(p);
        } else {
          message_.assign(p);
          in_message_ = true;
        }
        break;
      case ws::Opcode::cont:
        message_.append(p);
        if (h.fin) {
          in_message_ = false;
          std::string whole = std::move(message_);
          message_.clear();
          on_message(whole);
        }
        break;
      case ws::Opcode::ping:
        push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::pong, p)));
        schedule_flush();
        break;
      case ws::Opcode::close:
        on_close_frame(p);
        break;
      default:  // pong: nothing to do; binary was refused above
        break;
    }
  }
  return pos;
}

void WsSession::on_close_frame(std::string_view payload) {
  if (closing_) {
    // The peer answered our close: the handshake is complete once our close frame is out.
    peer_closed_ = true;
    if (close_written_) finish(close_reason_);
    return;
  }
  std::uint16_t code = protocol::close_code::normal;
  if (payload.size() >= 2)
    code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
  const bool valid = payload.size() != 1 && (payload.size() < 2 || ((code >= 1000 && code <= 1014 &&
                     code != 1004 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999))) &&
                     (payload.size() <= 2 || ws::valid_utf8(payload.substr(2)));
  peer_closed_ = true;
  closing_ = true;
  close_code_ = valid ? code : protocol::close_code::protocol_error;
  close_reason_ = "closed by peer";
  // Echo the close; the connection ends once it is written.
  drop_unstarted();
  push(std::make_shared<const core::Frame>(
      ws::make_frame(ws::Opcode::close, ws::close_payload(close_code_, ""))));
  close_queued_ = true;
  schedule_flush();
}

void WsSession::on_message(std::string_view text) {
  if (!ws::valid_utf8(text)) {
    close(protocol::close_code::invalid_utf8, "text frames must be valid UTF-8");
    return;
  }
  for (auto& line : protocol::parse_message(text)) {
    if (closing_) return;
    if (blocked_) {
      held_.push_back(std::move(line));
    } else {
      dispatch(line);
    }
  }
  close_batch();
}

void WsSession::dispatch(protocol::ParsedLine& line) {
  if (!take_token()) {
    queue_text(protocol::reply_error(line.cmd.id, Code::rate_limited, "too many commands; slow down"));
    if (++strikes_ >= ctx_.cfg.limits.rate_abuse)
      close(protocol::close_code::rate_abuse, "rate limit exceeded repeatedly");
    return;
  }
  strikes_ = 0;
  if (!line.ok) return queue_text(protocol::reply_error(line.cmd.id, Code::bad_request, line.error));
  if (line.cmd.op == "history" && pending_writes_ > 0) {
    blocked_ = blocked_on_writes_ = true;
    held_.push_front(std::move(line));
    return;
  }
  handle(line.cmd);
}

void WsSession::resume() {
  blocked_ = false;
  while (!held_.empty() && !blocked_ && !closing_ && !finished_) {
    auto line = std::move(held_.front());
    held_.pop_front();
    dispatch(line);
  }
  if (blocked_ || finished_) return;
  process_input();
  maybe_read();
}

// ---- Commands --------------------------------------------------------------------------------------

void WsSession::handle(protocol::Command& cmd) {
  const auto& op = cmd.op;
  if (op == "pub") return op_pub(cmd);
  if (op == "sub") return op_sub(cmd);
  if (op == "unsub") return op_unsub(cmd);
  if (op == "history") return op_history(cmd);
  if (op == "presence") return op_presence(cmd);
  if (op == "ping") return queue_text(protocol::reply_ok(cmd.id));
  if (op == "list") return op_list(cmd);
  if (op == "get") return op_get(cmd);
  if (op == "create") return op_write(cmd, store::DocWrite::Op::create);
  if (op == "update") return op_write(cmd, store::DocWrite::Op::update);
  if (op == "patch") return op_write(cmd, store::DocWrite::Op::patch);
  if (op == "delete") return op_write(cmd, store::DocWrite::Op::remove);
  if (op == "tally") return op_tally(cmd);
  if (op == "auth") return op_auth(cmd);
  reply_error(cmd.id, Error{Code::unknown_op, "unknown op \"" + op + "\""});
}

void WsSession::reply_error(const json::value& id, const Error& e) {
  queue_text(protocol::reply_error(id, e.code, e.message, e.extra));
}

core::Channel* WsSession::channel_arg(protocol::Command& cmd) {
  auto* ch = cmd.body.if_contains("ch");
  if (!ch || !ch->is_string()) {
    reply_error(cmd.id, Error{Code::bad_request, "\"ch\" must be a string"});
    return nullptr;
  }
  auto r = ctx_.channels.resolve(ch->get_string());
  if (auto* e = std::get_if<Error>(&r)) {
    reply_error(cmd.id, *e);
    return nullptr;
  }
  return std::get<core::Channel*>(r);
}

service::Post WsSession::poster() {
  return [self = shared_from_this()](std::function<void()> fn) {
    asio::post(self->socket_.get_executor(), std::move(fn));
  };
}

namespace {
// Reads an optional non-negative integer field; false when present with another type.
bool read_uint(const json::object& o, std::string_view key, std::optional<std::uint64_t>& out) {
  auto* v = o.if_contains(key);
  if (!v) return true;
  if (auto* i = v->if_int64()) {
    if (*i < 0) return false;
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  if (auto* u = v->if_uint64()) {
    out = *u;
    return true;
  }
  return false;
}

bool read_bool(const json::object& o, std::string_view key, bool& out) {
  auto* v = o.if_contains(key);
  if (!v) return true;
  if (!v->is_bool()) return false;
  out = v->get_bool();
  return true;
}

void append_sub_reply(std::string& out, const core::SubscribeResult& r) {
  out += "{\"offset\":";
  common::append_int(out, r.offset);
  out += ",\"epoch\":";
  common::append_json_string(out, r.epoch);
  out += r.recovered ? ",\"recovered\":true,\"pubs\":" : ",\"recovered\":false,\"pubs\":";
  protocol::append_publications(out, r.pubs);
  out += '}';
}
}  // namespace

void WsSession::op_sub(protocol::Command& cmd) {
  core::Channel* ch = channel_arg(cmd);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe(*ch, caller_)) return reply_error(cmd.id, *e);

  std::optional<core::StreamPosition> since;
  if (auto* s = cmd.body.if_contains("since")) {
    std::optional<std::uint64_t> offset;
    auto* obj = s->if_object();
    auto* epoch = obj ? obj->if_contains("epoch") : nullptr;
    if (!obj || !read_uint(*obj, "offset", offset) || !offset || !epoch || !epoch->is_string())
      return reply_error(cmd.id, Error{Code::bad_request, "\"since\" must be {\"offset\":N,\"epoch\":\"E\"}"});
    since = core::StreamPosition{*offset, std::string(epoch->get_string())};
  }
  bool presence = false;
  if (!read_bool(cmd.body, "presence", presence))
    return reply_error(cmd.id, Error{Code::bad_request, "\"presence\" must be a boolean"});
  if (presence && !ch->options().presence)
    return reply_error(cmd.id, Error{Code::permission_denied, "presence is disabled for this channel"});
  if (subs_.contains(ch->name()))
    return reply_error(cmd.id, Error{Code::bad_request, "already subscribed to \"" + ch->name() + "\""});
  if (subs_.size() >= ctx_.cfg.limits.max_subscriptions)
    return reply_error(cmd.id, Error{Code::limit, "too many subscriptions on this connection"});

  subs_.emplace(ch->name(), Subscription{ch, false, false, true});
  const bool now = ctx_.channels.when_ready(*ch, poster(), [self = shared_from_this(), id = cmd.id, ch, since, presence](bool ok) {
    auto it = self->subs_.find(ch->name());
    if (self->finished_ || it == self->subs_.end() || !it->second.pending) return;
    struct Resume {  // whatever happens below, commands held back behind this one go on afterwards
      WsSession& s;
      ~Resume() { if (s.blocked_) s.resume(); }
    } resume{*self};
    if (!ok) {
      self->subs_.erase(it);
      return self->reply_error(id, Error{Code::unavailable, "the store is unavailable"});
    }
    const bool member = ch->options().presence;
    core::Member m{self->no_, self->id_, self->who_.user, self->who_.info};
    auto r = self->ctx_.hub.subscribe(*ch, self->worker_.index(), since, self->who_.user, member ? &m : nullptr,
                                      presence);
    self->metrics_.subscriptions.fetch_add(1, std::memory_order_relaxed);
    self->worker_.add_subscriber(ch, self.get(), self->no_, &self->who_.user, r.offset, presence);
    it->second = Subscription{ch, member, presence, false};
    std::string body;
    append_sub_reply(body, r);
    self->queue_text(protocol::reply_ok(id, body));
  }, since ? since->offset : 0);
  if (!now) blocked_ = true;
}

void WsSession::op_unsub(protocol::Command& cmd) {
  auto* name = cmd.body.if_contains("ch");
  if (!name || !name->is_string() || !core::valid_channel_name(name->get_string()))
    return reply_error(cmd.id, Error{Code::bad_request, "\"ch\" must be a valid channel name"});
  auto it = subs_.find(std::string(name->get_string()));
  if (it != subs_.end()) {
    auto s = it->second;
    subs_.erase(it);
    if (!s.pending) {
      metrics_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
      ctx_.hub.unsubscribe(*s.channel, worker_.index(), no_, s.member, s.presence);
      worker_.remove_subscriber(s.channel, this);
    }
  }
  queue_text(protocol::reply_ok(cmd.id));
}

void WsSession::op_pub(protocol::Command& cmd) {
  core::Channel* ch = channel_arg(cmd);
  if (!ch) return;
  if (auto e = ctx_.channels.check_publish(*ch, caller_)) return reply_error(cmd.id, *e);
  auto* data = cmd.body.if_contains("data");
  if (!data) return reply_error(cmd.id, Error{Code::bad_request, "\"data\" is required"});
  std::string key;
  if (auto* k = cmd.body.if_contains("key")) {
    if (!k->is_string() || k->get_string().empty() || k->get_string().size() > max_key)
      return reply_error(cmd.id, Error{Code::bad_request, "\"key\" must be a string of 1-256 characters"});
    key = std::string(k->get_string());
  }
  const bool durable = ch->options().durable;
  if (durable) ++pending_writes_;
  ctx_.channels.publish(*ch, caller_, json::serialize(*data), std::move(key), poster(),
                        [self = shared_from_this(), id = cmd.id, durable](service::PublishResult r) {
                          if (r.error) {
                            self->reply_error(id, *r.error);
                          } else {
                            std::string body = "{\"offset\":";
                            common::append_int(body, r.offset);
                            body += '}';
                            self->queue_text(protocol::reply_ok(id, body));
                          }
                          if (durable) self->write_done();
                        });
}

void WsSession::op_history(protocol::Command& cmd) {
  core::Channel* ch = channel_arg(cmd);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe(*ch, caller_)) return reply_error(cmd.id, *e);
  core::HistoryQuery q;
  std::optional<std::uint64_t> limit, since;
  if (!read_uint(cmd.body, "limit", limit) || (limit && *limit > max_history_limit))
    return reply_error(cmd.id, Error{Code::bad_request, "\"limit\" must be an integer from 0 to 1000"});
  if (!read_uint(cmd.body, "since", since))
    return reply_error(cmd.id, Error{Code::bad_request, "\"since\" must be a non-negative integer"});
  if (!read_bool(cmd.body, "reverse", q.reverse))
    return reply_error(cmd.id, Error{Code::bad_request, "\"reverse\" must be a boolean"});
  if (limit) q.limit = static_cast<std::size_t>(*limit);
  q.since = since;
  const bool now = ctx_.channels.history(*ch, q, caller_, poster(), [self = shared_from_this(), id = cmd.id](service::HistoryOutcome r) {
    struct Resume {
      WsSession& s;
      ~Resume() { if (s.blocked_ && !s.finished_) s.resume(); }
    } resume{*self};
    if (auto* e = std::get_if<Error>(&r)) return self->reply_error(id, *e);
    self->queue_text(protocol::reply_ok(id, protocol::history_body(std::get<core::HistoryResult>(r))));
  });
  if (!now) blocked_ = true;
}

void WsSession::op_presence(protocol::Command& cmd) {
  core::Channel* ch = channel_arg(cmd);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe(*ch, caller_)) return reply_error(cmd.id, *e);
  if (!ch->options().presence)
    return reply_error(cmd.id, Error{Code::permission_denied, "presence is disabled for this channel"});
  auto p = ctx_.hub.presence(*ch);
  std::string body = "{\"clients\":[";
  for (std::size_t i = 0; i < p.clients.size(); ++i) {
    const auto& m = p.clients[i];
    if (i) body += ',';
    body += "{\"session\":";
    common::append_json_string(body, m.session);
    body += ",\"user\":";
    common::append_json_string(body, m.user);
    body += ",\"info\":";
    body += m.info;
    body += '}';
  }
  body += "],\"users\":";
  common::append_int(body, p.users);
  body += ",\"sessions\":";
  common::append_int(body, p.sessions);
  body += '}';
  queue_text(protocol::reply_ok(cmd.id, body));
}

void WsSession::write_done() {
  if (--pending_writes_ == 0 && blocked_on_writes_) {
    blocked_on_writes_ = false;
    if (!finished_) resume();
  }
}

const std::string* WsSession::collection_arg(protocol::Command& cmd) {
  auto* c = cmd.body.if_contains("coll");
  if (!c || !c->is_string()) {
    reply_error(cmd.id, Error{Code::bad_request, "\"coll\" must be a string"});
    return nullptr;
  }
  auto it = ctx_.cfg.collections.find(std::string(c->get_string()));
  if (it == ctx_.cfg.collections.end()) {
    reply_error(cmd.id, Error{Code::not_found, "no collection \"" + std::string(c->get_string()) + "\""});
    return nullptr;
  }
  return &it->first;
}

void WsSession::op_write(protocol::Command& cmd, store::DocWrite::Op op) {
  const std::string* coll = collection_arg(cmd);
  if (!coll) return;
  service::WriteRequest req;
  req.op = op;
  req.collection = *coll;
  if (auto* d = cmd.body.if_contains("doc")) {
    if (!d->is_string()) return reply_error(cmd.id, Error{Code::bad_request, "\"doc\" must be a string (the id)"});
    req.id = std::string(d->get_string());
  } else if (op != store::DocWrite::Op::create) {
    return reply_error(cmd.id, Error{Code::bad_request, "\"doc\" (the document id) is required"});
  }
  if (op != store::DocWrite::Op::remove) {
    auto* data = cmd.body.if_contains("data");
    if (!data || !data->is_object())
      return reply_error(cmd.id, Error{Code::bad_request, "\"data\" must be an object"});
    req.data = std::move(data->get_object());
  }
  std::optional<std::uint64_t> v;
  if (!read_uint(cmd.body, "v", v))
    return reply_error(cmd.id, Error{Code::bad_request, "\"v\" must be a non-negative integer"});
  req.expected_v = v;
  if (auto* k = cmd.body.if_contains("key")) {
    if (!k->is_string() || k->get_string().empty() || k->get_string().size() > max_key)
      return reply_error(cmd.id, Error{Code::bad_request, "\"key\" must be a string of 1-256 characters"});
    req.key = std::string(k->get_string());
  }
  ++pending_writes_;
  ctx_.collections.write(caller_, std::move(req), poster(),
                         [self = shared_from_this(), id = cmd.id, op](service::WriteOutcome r) {
                           if (r.error) {
                             self->reply_error(id, *r.error);
                           } else if (op == store::DocWrite::Op::remove) {
                             std::string body = "{\"v\":";
                             common::append_int(body, r.v);
                             body += '}';
                             self->queue_text(protocol::reply_ok(id, body));
                           } else {
                             self->queue_text(protocol::reply_ok(id, "{\"doc\":" + r.doc + "}"));
                           }
                           self->write_done();
                         });
}

void WsSession::op_list(protocol::Command& cmd) {
  const std::string* coll = collection_arg(cmd);
  if (!coll) return;
  ctx_.collections.list(caller_, *coll, poster(), [self = shared_from_this(), id = cmd.id](service::ListOutcome r) {
    if (r.error) return self->reply_error(id, *r.error);
    std::string body = "{\"docs\":[";
    for (std::size_t i = 0; i < r.docs.size(); ++i) {
      if (i) body += ',';
      body += r.docs[i];
    }
    body += "],\"offset\":";
    common::append_int(body, r.offset);
    body += ",\"epoch\":";
    common::append_json_string(body, r.epoch);
    body += '}';
    self->queue_text(protocol::reply_ok(id, body));
  });
}

void WsSession::op_get(protocol::Command& cmd) {
  const std::string* coll = collection_arg(cmd);
  if (!coll) return;
  auto* d = cmd.body.if_contains("doc");
  if (!d || !d->is_string()) return reply_error(cmd.id, Error{Code::bad_request, "\"doc\" must be a string (the id)"});
  ctx_.collections.get(caller_, *coll, std::string(d->get_string()), poster(),
                       [self = shared_from_this(), id = cmd.id](service::DocOutcome r) {
                         if (r.error) return self->reply_error(id, *r.error);
                         self->queue_text(protocol::reply_ok(id, "{\"doc\":" + r.doc + "}"));
                       });
}

void WsSession::op_tally(protocol::Command& cmd) {
  const std::string* coll = collection_arg(cmd);
  if (!coll) return;
  ctx_.collections.tally(caller_, *coll, poster(), [self = shared_from_this(), id = cmd.id](service::TallyOutcome r) {
    if (r.error) return self->reply_error(id, *r.error);
    std::string body = "{\"tally\":" + r.tally + ",\"offset\":";
    common::append_int(body, r.offset);
    body += ",\"epoch\":";
    common::append_json_string(body, r.epoch);
    body += '}';
    self->queue_text(protocol::reply_ok(id, body));
  });
}

void WsSession::op_auth(protocol::Command& cmd) {
  auto* token = cmd.body.if_contains("token");
  if (!token || !token->is_string()) return reply_error(cmd.id, Error{Code::bad_request, "\"token\" must be a string"});
  std::string error;
  auto who = ctx_.auth.from_token(token->get_string(), error);
  if (!who) return reply_error(cmd.id, Error{Code::permission_denied, error});
  // Refreshing keeps the identity; switching users is only possible before subscribing, since
  // subscriptions and presence were granted to the old one.
  if (who->user != who_.user && !subs_.empty())
    return reply_error(cmd.id, Error{Code::bad_request, "unsubscribe from every channel before switching users"});
  // For the same reason a refresh may not narrow the caps below a subscription the connection holds: no
  // subscription outlives its permission.
  const service::Caller next = caller_of(*who);
  for (const auto& [name, s] : subs_)
    if (ctx_.channels.check_subscribe(*s.channel, next))
      return reply_error(cmd.id, Error{Code::permission_denied, "the token does not allow \"" + name +
                                       "\", which this connection is subscribed to: unsubscribe first"});
  spdlog::info("ws auth session={} user={} (was {})", id_, who->user, who_.user);
  who_ = std::move(*who);
  caller_ = next;
  std::string body = "{\"user\":";
  common::append_json_string(body, who_.user);
  body += '}';
  queue_text(protocol::reply_ok(cmd.id, body));
}

bool WsSession::take_token() {
  const auto& limits = ctx_.cfg.limits;
  if (limits.rate == 0) return true;
  return bucket_.take(static_cast<double>(limits.rate), static_cast<double>(limits.burst), std::chrono::steady_clock::now());
}

void WsSession::tick(std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall) {
  if (finished_ || closing_) return;
  if (who_.expires != 0 && wall >= std::chrono::system_clock::time_point(std::chrono::seconds(who_.expires)))
    return close(protocol::close_code::token_expired, "token expired");
  const auto& l = ctx_.cfg.limits;
  const auto quiet = now - last_rx_;
  if (quiet >= std::chrono::seconds(l.idle_timeout))
    return close(protocol::close_code::idle_timeout, "no traffic from the client");
  if (now - last_ping_check_ < std::chrono::seconds(l.ping_interval)) return;
  last_ping_check_ = now;
  // Ping whenever the peer was quiet for half an interval: checks drift, so waiting for a full interval of
  // silence could skip a ping and let a live peer that only answers pings reach the idle timeout.
  if (quiet * 2 >= std::chrono::seconds(l.ping_interval)) {
    // Any frame, the pong included, counts as a sign of life.
    push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::ping, "")));
    schedule_flush();
  }
}

// ---- Writing ---------------------------------------------------------------------------------------

void WsSession::queue_text(std::string_view json) {
  if (closing_ || finished_) return;
  if (batch_.empty()) {
    batch_.assign(ws::max_header, '\0');
  } else {
    batch_.push_back('\n');
  }
  batch_.append(json);
  if (batch_.size() >= max_batch) close_batch();
  schedule_flush();
}

void WsSession::close_batch() {
  if (batch_.empty()) return;
  push(std::make_shared<const core::Frame>(ws::finish_frame(std::move(batch_), ws::Opcode::text)));
  batch_.clear();
}

void WsSession::send_frame(core::FramePtr frame) {
  if (closing_ || finished_) return;
  close_batch();  // replies queued before this push go out before it
  bump(metrics_.deliveries, 1);
  push(std::move(frame));
  schedule_flush();
}

void WsSession::push(core::FramePtr frame) {
  out_bytes_ += frame->size();
  out_.push_back(std::move(frame));
  if (!closing_ && out_bytes_ > ctx_.cfg.limits.max_outbound) {
    metrics_.slow_consumers.fetch_add(1, std::memory_order_relaxed);
    close(protocol::close_code::slow_consumer, "slow consumer: outbound queue over its limit");
  }
}

void WsSession::schedule_flush() {
  // While waiting for writability the session is not flushed: the wait's completion writes.
  if (dirty_ || writing_ || finished_) return;
  dirty_ = true;
  worker_.want_flush(this);
}

void WsSession::flush() {
  dirty_ = false;
  close_batch();
  if (!writing_ && !finished_) write_now();
}

// Writes everything queued with non-blocking gather writes until done or the send buffer is full. By hand
// rather than async_write: a connection that keeps up (nearly all of them) then costs one sendmsg per
// flush and no allocation, and waits for writability only when the kernel pushes back.
void WsSession::write_now() {
  const int fd = socket_.native_handle();
  while (out_head_ < out_.size()) {
    iovec iov[max_iov];
    std::size_t n = 0;
    std::size_t total = 0;
    for (std::size_t i = out_head_; i < out_.size() && n < max_iov; ++i, ++n) {
      auto v = out_[i]->view();
      if (i == out_head_) v.remove_prefix(head_written_);
      iov[n].iov_base = const_cast<char*>(v.data());
      iov[n].iov_len = v.size();
      total += v.size();
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    const ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return finish(std::string("write failed: ") + std::strerror(errno));
    } else {
      bump(metrics_.writes, 1);
      metrics_.flush_frames.observe(static_cast<double>(n));
      written(static_cast<std::size_t>(w));
      if (static_cast<std::size_t>(w) == total) continue;
    }
    // The send buffer is full: wait until the peer reads.
    writing_ = true;
    socket_.async_wait(asio::ip::tcp::socket::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
      self->writing_ = false;
      if (self->finished_) return;
      if (ec) return self->finish("write failed: " + ec.message());
      self->flush();
    });
    return;
  }
  out_.clear();
  out_head_ = 0;
  if (out_.capacity() > shrink_above) std::vector<core::FramePtr>().swap(out_);
  if (close_queued_ && !close_written_) {
    close_written_ = true;
    if (peer_closed_) return finish(close_reason_);
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
}

void WsSession::written(std::size_t n) {
  bump(metrics_.bytes_out, n);
  out_bytes_ -= n;
  std::int64_t now = 0;
  while (n > 0) {
    auto& f = out_[out_head_];
    const std::size_t rest = f->size() - head_written_;
    if (n < rest) {
      head_written_ += n;
      return;
    }
    n -= rest;
    head_written_ = 0;
    if (f->built_ns) {
      if (!now)
        now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
      metrics_.publish_to_flush.observe(static_cast<double>(now - f->built_ns) * 1e-9);
    }
    f.reset();
    ++out_head_;
  }
  // A consumer that never empties its queue must not keep the written slots: compact now and then.
  if (out_head_ >= shrink_above && out_head_ * 2 >= out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
}

void WsSession::drop_unstarted() {
  // A frame partly written must be finished, or the peer could not parse what follows.
  const std::size_t keep = out_head_ + (head_written_ > 0 ? 1 : 0);
  out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(std::min(keep, out_.size())), out_.end());
  out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
  out_head_ = 0;
  out_bytes_ = out_.empty() ? 0 : out_.front()->size() - head_written_;
  batch_.clear();
}

void WsSession::close(std::uint16_t code, std::string_view reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::string(reason);
  // What has not started is dropped: bye must not wait behind a full queue, and the peer is leaving.
  drop_unstarted();
  batch_.assign(ws::max_header, '\0');
  batch_.append(protocol::bye(code, reason));
  close_batch();
  push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::close, ws::close_payload(code, reason))));
  close_queued_ = true;
  close_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor(), close_grace);
  close_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->finish(self->close_reason_.empty() ? "close timed out" : self->close_reason_);
  });
  schedule_flush();
  held_.clear();
  // Keep reading for the peer's close even if a command was holding reads back. Posted: close() may run
  // inside consume(), whose buffer (perhaps the worker's shared one) a read must not overwrite yet.
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->maybe_read(); });
}

void WsSession::finish(std::string_view why) {
  if (finished_) return;
  finished_ = true;
  if (close_timer_) close_timer_->cancel();
  if (dirty_) {
    worker_.forget_flush(this);
    dirty_ = false;
  }
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  metrics_.connections.fetch_sub(1, std::memory_order_relaxed);
  for (auto& [name, s] : subs_) {
    if (s.pending) continue;
    metrics_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    ctx_.hub.unsubscribe(*s.channel, worker_.index(), no_, s.member, s.presence);
    worker_.remove_subscriber(s.channel, this);
  }
  subs_.clear();
  out_.clear();
  out_head_ = head_written_ = out_bytes_ = 0;
  batch_.clear();
  if (close_code_)
    spdlog::info("ws close session={} user={} code={} reason=\"{}\"", id_, who_.user, close_code_, why);
  else
    spdlog::info("ws close session={} user={} reason=\"{}\"", id_, who_.user, why);
  worker_.remove_session(this);
}

}  // namespace rtsync::server
