// The commands of a WebSocket connection (PROTOCOL §4): the op table and each op's handler, which decodes
// its request (protocol/requests.hpp), asks the service layer and encodes the answer
// (protocol/replies.hpp). The session's reading and writing are in ws_session.cpp.
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <string>
#include <variant>

#include "protocol/replies.hpp"
#include "protocol/requests.hpp"
#include "server/worker.hpp"
#include "server/ws_session.hpp"

namespace rtsync::server {

namespace json = boost::json;
using protocol::Code;
using protocol::Error;

namespace {
// The op table (Redis' command table is the model): each op's handler decodes its request
// (protocol/requests.hpp), asks the service layer, and encodes the answer (protocol/replies.hpp).
using Handler = void (WsSession::*)(protocol::Command&);
struct Op {
  std::string_view name;
  Handler run;
};
}  // namespace

void WsSession::handle(protocol::Command& cmd) {
  static constexpr Op ops[] = {
      {"pub", &WsSession::op_pub},         {"sub", &WsSession::op_sub},
      {"unsub", &WsSession::op_unsub},     {"history", &WsSession::op_history},
      {"presence", &WsSession::op_presence}, {"ping", &WsSession::op_ping},
      {"list", &WsSession::op_list},       {"get", &WsSession::op_get},
      {"create", &WsSession::op_create},   {"update", &WsSession::op_update},
      {"patch", &WsSession::op_patch},     {"delete", &WsSession::op_delete},
      {"tally", &WsSession::op_tally},     {"auth", &WsSession::op_auth},
  };
  for (const auto& op : ops)
    if (op.name == cmd.op) return (this->*op.run)(cmd);
  reply_error(cmd.id, Error{Code::unknown_op, "unknown op \"" + cmd.op + "\""});
}

void WsSession::reply_error(const json::value& id, const Error& e) {
  queue_text(protocol::reply_error(id, e.code, e.message, e.extra));
}

template <class Request>
bool WsSession::decoded(const protocol::Command& cmd, protocol::Decoded<Request>& d) {
  if (auto* e = std::get_if<Error>(&d)) {
    reply_error(cmd.id, *e);
    return false;
  }
  return true;
}

core::ChannelRef WsSession::resolve(const protocol::Command& cmd, const std::string& name) {
  auto r = ctx_.channels.resolve(name);
  if (auto* e = std::get_if<Error>(&r)) {
    reply_error(cmd.id, *e);
    return nullptr;
  }
  return std::get<core::ChannelRef>(std::move(r));
}

void WsSession::op_ping(protocol::Command& cmd) { queue_text(protocol::reply_ok(cmd.id)); }

void WsSession::op_sub(protocol::Command& cmd) {
  auto d = protocol::decode_sub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::SubRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe(*ch, caller_)) return reply_error(cmd.id, *e);
  if (req.presence && !ch->options().presence)
    return reply_error(cmd.id, Error{Code::permission_denied, "presence is disabled for this channel"});
  if (subs_.contains(ch->name()))
    return reply_error(cmd.id, Error{Code::bad_request, "already subscribed to \"" + ch->name() + "\""});
  if (subs_.size() >= ctx_.cfg.limits.max_subscriptions)
    return reply_error(cmd.id, Error{Code::limit, "too many subscriptions on this connection"});

  subs_.emplace(ch->name(), Subscription{ch, false, false, true});
  const auto since = req.since;
  const bool presence = req.presence;
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
    auto r = self->ctx_.channels.subscribe(*ch, self->worker_.index(), since, self->caller_, member ? &m : nullptr,
                                           presence);
    self->metrics_.subscriptions.fetch_add(1, std::memory_order_relaxed);
    self->worker_.add_subscriber(ch.get(), self.get(), self->no_, &self->who_.user, r.offset, presence);
    it->second = Subscription{ch, member, presence, false};
    self->queue_text(protocol::reply_ok(id, protocol::sub_body(r, self->reply_room(id))));
  }, since ? since->offset : 0);
  if (!now) blocked_ = true;
}

void WsSession::op_unsub(protocol::Command& cmd) {
  auto d = protocol::decode_unsub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto it = subs_.find(std::get<protocol::ChannelRequest>(d).ch);
  if (it != subs_.end()) {
    auto s = it->second;
    subs_.erase(it);
    if (!s.pending) {
      metrics_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
      ctx_.channels.unsubscribe(*s.channel, worker_.index(), no_, s.member, s.presence);
      worker_.remove_subscriber(s.channel.get(), this);
    }
  }
  queue_text(protocol::reply_ok(cmd.id));
}

void WsSession::op_pub(protocol::Command& cmd) {
  auto d = protocol::decode_pub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::PubRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_publish(*ch, caller_)) return reply_error(cmd.id, *e);
  const bool durable = ch->options().durable;
  if (durable) ++pending_writes_;
  ctx_.channels.publish(*ch, caller_, json::serialize(*req.data), std::move(req.key), poster(),
                        [self = shared_from_this(), id = cmd.id, durable](service::PublishResult r) {
                          if (r.error) {
                            self->reply_error(id, *r.error);
                          } else {
                            self->queue_text(protocol::reply_ok(id, protocol::offset_body(r.offset)));
                          }
                          if (durable) self->write_done();
                        });
}

void WsSession::op_history(protocol::Command& cmd) {
  auto d = protocol::decode_history(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::HistoryRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe(*ch, caller_)) return reply_error(cmd.id, *e);
  const bool now = ctx_.channels.history(ch, req.query, caller_, poster(), [self = shared_from_this(), id = cmd.id](service::HistoryOutcome r) {
    struct Resume {
      WsSession& s;
      ~Resume() { if (s.blocked_ && !s.finished_) s.resume(); }
    } resume{*self};
    if (auto* e = std::get_if<Error>(&r)) return self->reply_error(id, *e);
    self->queue_text(
        protocol::reply_ok(id, protocol::history_body(std::get<core::HistoryResult>(r), self->reply_room(id))));
  });
  if (!now) blocked_ = true;
}

void WsSession::op_presence(protocol::Command& cmd) {
  auto d = protocol::decode_channel(cmd.body);
  if (!decoded(cmd, d)) return;
  core::ChannelRef ch = resolve(cmd, std::get<protocol::ChannelRequest>(d).ch);
  if (!ch) return;
  auto p = ctx_.channels.presence(*ch, caller_);
  if (auto* e = std::get_if<Error>(&p)) return reply_error(cmd.id, *e);
  queue_text(protocol::reply_ok(cmd.id, protocol::presence_body(std::get<core::PresenceResult>(p))));
}

void WsSession::write_done() {
  if (--pending_writes_ == 0 && blocked_on_writes_) {
    blocked_on_writes_ = false;
    if (!finished_) resume();
  }
}

void WsSession::op_create(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::create); }
void WsSession::op_update(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::update); }
void WsSession::op_patch(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::patch); }
void WsSession::op_delete(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::remove); }

void WsSession::op_write(protocol::Command& cmd, protocol::WriteOp op) {
  auto d = protocol::decode_write(cmd.body, op);
  if (!decoded(cmd, d)) return;
  ++pending_writes_;
  ctx_.collections.write(caller_, service::write_request(std::move(std::get<protocol::WriteRequest>(d))), poster(),
                         [self = shared_from_this(), id = cmd.id, op](service::WriteOutcome r) {
                           if (r.error) {
                             self->reply_error(id, *r.error);
                           } else if (op == protocol::WriteOp::remove) {
                             self->queue_text(protocol::reply_ok(id, protocol::version_body(r.v)));
                           } else {
                             self->queue_text(protocol::reply_ok(id, protocol::doc_body(r.doc)));
                           }
                           self->write_done();
                         });
}

void WsSession::op_list(protocol::Command& cmd) {
  auto d = protocol::decode_collection(cmd.body);
  if (!decoded(cmd, d)) return;
  ctx_.collections.list(caller_, std::get<protocol::CollectionRequest>(d).coll, poster(),
                        [self = shared_from_this(), id = cmd.id](service::ListOutcome r) {
                          if (r.error) return self->reply_error(id, *r.error);
                          self->queue_text(protocol::reply_ok(id, protocol::list_body(r.docs, r.offset, r.epoch)));
                        });
}

void WsSession::op_get(protocol::Command& cmd) {
  auto d = protocol::decode_get(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::GetRequest>(d);
  ctx_.collections.get(caller_, req.coll, req.doc, poster(), [self = shared_from_this(), id = cmd.id](service::DocOutcome r) {
    if (r.error) return self->reply_error(id, *r.error);
    self->queue_text(protocol::reply_ok(id, protocol::doc_body(r.doc)));
  });
}

void WsSession::op_tally(protocol::Command& cmd) {
  auto d = protocol::decode_collection(cmd.body);
  if (!decoded(cmd, d)) return;
  ctx_.collections.tally(caller_, std::get<protocol::CollectionRequest>(d).coll, poster(),
                         [self = shared_from_this(), id = cmd.id](service::TallyOutcome r) {
                           if (r.error) return self->reply_error(id, *r.error);
                           self->queue_text(protocol::reply_ok(id, protocol::tally_body(r.tally, r.offset, r.epoch)));
                         });
}

void WsSession::op_auth(protocol::Command& cmd) {
  auto d = protocol::decode_auth(cmd.body);
  if (!decoded(cmd, d)) return;
  std::string error;
  auto who = ctx_.auth.from_token(std::get<protocol::AuthRequest>(d).token, error);
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
  queue_text(protocol::reply_ok(cmd.id, protocol::user_body(who_.user)));
}

}  // namespace rtsync::server
