// The commands of a client (PROTOCOL §4): the op table and each op's handler, which decodes its request
// (protocol/requests.hpp), asks the service layer and encodes the answer (protocol/replies.hpp). A client's
// order, hold-back and rate limit are in client.cpp.
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <string>
#include <variant>

#include "protocol/replies.hpp"
#include "protocol/requests.hpp"
#include "server/worker.hpp"
#include "server/client.hpp"

namespace rtsync::server {

namespace json = boost::json;
using protocol::Code;
using protocol::Error;

namespace {
// The op table (Redis' command table is the model): each op's handler decodes its request
// (protocol/requests.hpp), asks the service layer, and encodes the answer (protocol/replies.hpp).
using Handler = void (Client::*)(protocol::Command&);
struct Op {
  std::string_view name;
  Handler run;
};
}  // namespace

void Client::handle(protocol::Command& cmd) {
  static constexpr Op ops[] = {
      {"pub", &Client::op_pub},         {"sub", &Client::op_sub},
      {"unsub", &Client::op_unsub},     {"history", &Client::op_history},
      {"presence", &Client::op_presence}, {"ping", &Client::op_ping},
      {"list", &Client::op_list},       {"get", &Client::op_get},
      {"create", &Client::op_create},   {"update", &Client::op_update},
      {"patch", &Client::op_patch},     {"delete", &Client::op_delete},
      {"tally", &Client::op_tally},     {"auth", &Client::op_auth},
      {"hello", &Client::op_hello},     {"rpc", &Client::op_rpc},
  };
  for (const auto& op : ops)
    if (op.name == cmd.op) return (this->*op.run)(cmd);
  reply_error(cmd.id, Error{Code::unknown_op, "unknown op \"" + cmd.op + "\""});
}

void Client::reply_error(const json::value& id, const Error& e) {
  reply(protocol::reply_error(id, e.code, e.message, e.extra));
}

template <class Request>
bool Client::decoded(const protocol::Command& cmd, protocol::Decoded<Request>& d) {
  if (auto* e = std::get_if<Error>(&d)) {
    reply_error(cmd.id, *e);
    return false;
  }
  return true;
}

core::ChannelRef Client::resolve(const protocol::Command& cmd, const std::string& name) {
  auto r = ctx_.channels.resolve(name);
  if (auto* e = std::get_if<Error>(&r)) {
    reply_error(cmd.id, *e);
    return nullptr;
  }
  return std::get<core::ChannelRef>(std::move(r));
}

void Client::op_ping(protocol::Command& cmd) { reply(protocol::reply_ok(cmd.id)); }

void Client::op_sub(protocol::Command& cmd) {
  auto d = protocol::decode_sub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::SubRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe_rules(*ch, caller_)) return reply_error(cmd.id, *e);
  if (req.presence && !ch->options().presence)
    return reply_error(cmd.id, Error{Code::permission_denied, "presence is disabled for this channel"});
  if (subs_.contains(ch->name()))
    return reply_error(cmd.id, Error{Code::bad_request, "already subscribed to \"" + ch->name() + "\""});
  if (subs_.size() >= ctx_.cfg.limits.max_subscriptions)
    return reply_error(cmd.id, Error{Code::limit, "too many subscriptions on this connection"});
  if (awaiting_approval(cmd, *ch)) return;

  auto& pending = subs_.emplace(ch->name(), Subscription{ch, false, false, true}).first->second;
  if (req.where) pending.view = std::make_unique<service::LiveView>(service::LiveView{ch->name(), std::move(*req.where)});
  const auto since = req.since;
  const bool presence = req.presence;
  const bool now = ctx_.channels.when_ready(*ch, poster(), [hold = transport_.hold(), this, id = cmd.id, ch, since, presence](bool ok) {
    auto it = subs_.find(ch->name());
    if (ended_ || it == subs_.end() || !it->second.pending) return;
    struct Resume {  // whatever happens below, commands held back behind this one go on afterwards
      Client& s;
      ~Resume() { if (s.blocked_) s.resume(); }
    } resume{*this};
    if (!ok) {
      subs_.erase(it);
      return reply_error(id, Error{Code::unavailable, "the store is unavailable"});
    }
    const bool member = ch->options().presence;
    core::Member m{no_, id_, who_.user, who_.info};
    auto r = ctx_.channels.subscribe(*ch, worker_.index(), since, caller_, member ? &m : nullptr,
                                           presence);
    metrics_.subscriptions.fetch_add(1, std::memory_order_relaxed);
    auto& s = it->second;
    if (s.view) r.pubs = service::view_of(*s.view, r.pubs);
    worker_.add_subscriber(ch.get(), this, no_, &who_.user, r.offset, presence, false, s.view.get());
    s.member = member;
    s.presence = presence;
    s.pending = false;
    reply(protocol::reply_ok(id, protocol::sub_body(r, transport_.reply_room(id))));
  }, since ? since->offset : 0);
  if (!now) blocked_ = true;
}

void Client::op_unsub(protocol::Command& cmd) {
  auto d = protocol::decode_unsub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto it = subs_.find(std::get<protocol::ChannelRequest>(d).ch);
  if (it != subs_.end()) {
    auto s = std::move(it->second);
    subs_.erase(it);
    if (!s.pending) {
      metrics_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
      ctx_.channels.unsubscribe(*s.channel, worker_.index(), no_, s.member, s.presence);
      worker_.remove_subscriber(s.channel.get(), this);
    }
  }
  reply(protocol::reply_ok(cmd.id));
}

void Client::op_pub(protocol::Command& cmd) {
  auto d = protocol::decode_pub(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::PubRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_publish(*ch, caller_)) return reply_error(cmd.id, *e);
  service::PublishExtras extras;
  if (!outbox_of(cmd, req.seq, extras.outbox)) return;
  const bool durable = ch->options().durable;
  const bool decided = ctx_.channels.decided_by_backend(*ch, caller_);
  if (durable) ++pending_writes_;
  if (decided) hold_for_backend();
  ctx_.channels.publish(*ch, caller_, json::serialize(*req.data), std::move(req.key), poster(),
                        [hold = transport_.hold(), this, id = cmd.id, durable, decided](service::PublishResult r) {
                          if (r.error) {
                            reply_error(id, *r.error);
                          } else {
                            reply(protocol::reply_ok(id, protocol::offset_body(r.offset)));
                          }
                          if (durable) write_done();
                          if (decided) backend_done();
                        },
                        std::move(extras));
}

void Client::op_history(protocol::Command& cmd) {
  auto d = protocol::decode_history(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::HistoryRequest>(d);
  core::ChannelRef ch = resolve(cmd, req.ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe_rules(*ch, caller_)) return reply_error(cmd.id, *e);
  if (awaiting_approval(cmd, *ch)) return;
  const bool now = ctx_.channels.history(ch, req.query, caller_, poster(), [hold = transport_.hold(), this, id = cmd.id](service::HistoryOutcome r) {
    struct Resume {
      Client& s;
      ~Resume() { if (s.blocked_ && !s.ended_) s.resume(); }
    } resume{*this};
    if (auto* e = std::get_if<Error>(&r)) return reply_error(id, *e);
    reply(
        protocol::reply_ok(id, protocol::history_body(std::get<core::HistoryResult>(r), transport_.reply_room(id))));
  });
  if (!now) blocked_ = true;
}

void Client::op_presence(protocol::Command& cmd) {
  auto d = protocol::decode_channel(cmd.body);
  if (!decoded(cmd, d)) return;
  core::ChannelRef ch = resolve(cmd, std::get<protocol::ChannelRequest>(d).ch);
  if (!ch) return;
  if (auto e = ctx_.channels.check_subscribe_rules(*ch, caller_)) return reply_error(cmd.id, *e);
  if (awaiting_approval(cmd, *ch)) return;
  auto p = ctx_.channels.presence(*ch, caller_);
  if (auto* e = std::get_if<Error>(&p)) return reply_error(cmd.id, *e);
  reply(protocol::reply_ok(cmd.id, protocol::presence_body(std::get<core::PresenceResult>(p))));
}

void Client::op_create(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::create); }
void Client::op_update(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::update); }
void Client::op_patch(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::patch); }
void Client::op_delete(protocol::Command& cmd) { op_write(cmd, protocol::WriteOp::remove); }

void Client::op_write(protocol::Command& cmd, protocol::WriteOp op) {
  auto d = protocol::decode_write(cmd.body, op);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::WriteRequest>(d);
  std::optional<store::Outbox> outbox;
  if (!outbox_of(cmd, req.seq, outbox)) return;
  service::WriteRequest w = service::write_request(std::move(req));
  w.outbox = std::move(outbox);
  const bool decided = ctx_.collections.decided_by_backend(w.collection, caller_);
  ++pending_writes_;
  if (decided) hold_for_backend();
  ctx_.collections.write(caller_, std::move(w), poster(),
                         [hold = transport_.hold(), this, id = cmd.id, op, decided](service::WriteOutcome r) {
                           if (r.error) {
                             reply_error(id, *r.error);
                           } else if (op == protocol::WriteOp::remove) {
                             reply(protocol::reply_ok(id, protocol::version_body(r.v)));
                           } else {
                             reply(protocol::reply_ok(id, protocol::doc_body(r.doc)));
                           }
                           write_done();
                           if (decided) backend_done();
                         });
}

namespace {
// The `list` reply body for a page, cut so that it takes at most `room` bytes: what the queue cannot take
// now comes with the next page (the cursor then follows the last document sent). None when not even one
// document fits.
std::optional<std::string> page_body(service::ListOutcome& r, const query::Query& q, std::size_t room) {
  std::string body = protocol::list_body(r.docs, r.offset, r.epoch, r.next);
  for (std::size_t budget = room; body.size() > room;) {
    // The documents may take what the rest of the body (its cursor included: room for one is kept while
    // there is none yet) leaves; each turn asks less.
    std::size_t docs = 2;
    for (const auto& doc : r.docs) docs += doc.size() + 1;
    const std::size_t rest = body.size() - docs + (r.next ? 0 : 256);
    budget = std::min(budget > 0 ? budget - 1 : 0, room > rest ? room - rest : 0);
    if (!service::fit_page(r, q, budget)) return std::nullopt;
    body = protocol::list_body(r.docs, r.offset, r.epoch, r.next);
  }
  return body;
}
}  // namespace

void Client::op_list(protocol::Command& cmd) {
  auto d = protocol::decode_list(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::ListRequest>(d);
  auto q = req.query;
  ctx_.collections.list(caller_, req.coll, std::move(req.query), poster(),
                        [hold = transport_.hold(), this, id = cmd.id, q = std::move(q)](service::ListOutcome r) {
                          if (r.error) return reply_error(id, *r.error);
                          // A page never cuts off its own connection.
                          auto body = page_body(r, q, transport_.reply_room(id));
                          if (!body)
                            return reply_error(id, Error{Code::limit, "the page does not fit the connection's "
                                                                      "outbound queue now: read what is queued, "
                                                                      "or ask for fewer documents"});
                          reply(protocol::reply_ok(id, *body));
                        });
}

void Client::op_get(protocol::Command& cmd) {
  auto d = protocol::decode_get(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::GetRequest>(d);
  ctx_.collections.get(caller_, req.coll, req.doc, poster(), [hold = transport_.hold(), this, id = cmd.id](service::DocOutcome r) {
    if (r.error) return reply_error(id, *r.error);
    reply(protocol::reply_ok(id, protocol::doc_body(r.doc)));
  });
}

void Client::op_tally(protocol::Command& cmd) {
  auto d = protocol::decode_tally(cmd.body);
  if (!decoded(cmd, d)) return;
  const auto& req = std::get<protocol::TallyRequest>(d);
  ctx_.collections.tally(caller_, req.coll, req.group, poster(),
                         [hold = transport_.hold(), this, id = cmd.id](service::TallyOutcome r) {
                           if (r.error) return reply_error(id, *r.error);
                           reply(protocol::reply_ok(id, protocol::tally_body(r.tally, r.offset, r.epoch)));
                         });
}

bool Client::awaiting_approval(protocol::Command& cmd, const core::Channel& ch) {
  if (!ctx_.channels.awaits_subscribe_hook(ch.name(), caller_)) return false;
  hold_for_backend();
  ctx_.hooks->subscribe(caller_, ch.name(), [post = poster(), hold = transport_.hold(), this, cmd = std::move(cmd),
                                             name = ch.name()](service::HookVerdict v) mutable {
    post([hold = std::move(hold), this, cmd = std::move(cmd), name = std::move(name), v = std::move(v)]() mutable {
      if (ended_) return;
      blocked_ = false;  // the command runs again and may hold back for its own reasons (a load)
      if (v.error) {
        reply_error(cmd.id, *v.error);
      } else {
        approved_->insert(std::move(name));
        handle(cmd);
      }
      if (!blocked_) resume();
    });
  });
  return true;
}

void Client::op_rpc(protocol::Command& cmd) {
  auto d = protocol::decode_rpc(cmd.body);
  if (!decoded(cmd, d)) return;
  auto& req = std::get<protocol::RpcRequest>(d);
  if (!ctx_.hooks || !ctx_.hooks->answers_rpc())
    return reply_error(cmd.id, Error{Code::not_found, "this server has no rpc hook ([hooks.rpc])"});
  // Not held back: calls are independent, and their replies carry their ids.
  ctx_.hooks->rpc(caller_, req.method, req.data, [post = poster(), hold = transport_.hold(), this, id = cmd.id](
                                                     service::RpcOutcome r) mutable {
    post([hold = std::move(hold), this, id = std::move(id), r = std::move(r)] {
      if (ended_) return;
      if (r.error) return reply_error(id, *r.error);
      reply(protocol::reply_ok(id, protocol::data_body(r.data)));
    });
  });
}

void Client::op_hello(protocol::Command& cmd) {
  auto d = protocol::decode_hello(cmd.body);
  if (!decoded(cmd, d)) return;
  outbox_ = std::move(std::get<protocol::HelloRequest>(d));
  reply(protocol::reply_ok(cmd.id));
}

bool Client::outbox_of(const protocol::Command& cmd, const std::optional<std::uint64_t>& seq,
                       std::optional<store::Outbox>& out) {
  if (!seq) return true;
  if (!outbox_) {
    reply_error(cmd.id, Error{Code::bad_request, "\"seq\" needs an outbox client: send hello with \"client\" first"});
    return false;
  }
  if (*seq <= outbox_->settled) {
    reply_error(cmd.id, Error{Code::bad_request, fmt::format("seq {} is settled (hello said settled {}): it is never "
                                                             "applied again", *seq, outbox_->settled)});
    return false;
  }
  out = store::Outbox{outbox_->client, *seq, outbox_->settled};
  return true;
}

void Client::op_auth(protocol::Command& cmd) {
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
  service::Caller next = caller_of(*who);
  // What the subscribe hook allowed, it allowed this user.
  if (who->user != who_.user) approved_ = std::make_shared<std::unordered_set<std::string>>();
  next.hook_approved = approved_;
  for (const auto& [name, s] : subs_)
    if (ctx_.channels.check_subscribe(*s.channel, next))
      return reply_error(cmd.id, Error{Code::permission_denied, "the token does not allow \"" + name +
                                       "\", which this connection is subscribed to: unsubscribe first"});
  spdlog::info("ws auth session={} user={} (was {})", id_, who->user, who_.user);
  who_ = std::move(*who);
  caller_ = next;
  reply(protocol::reply_ok(cmd.id, protocol::user_body(who_.user)));
}

}  // namespace rtsync::server
