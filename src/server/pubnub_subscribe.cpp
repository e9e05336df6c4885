// PubNub subscribe v2: GET /v2/subscribe/{sub}/{channels}/0?tt=&tr=&uuid=&heartbeat=
//
// The handshake (no `tt`, or 0) answers at once with a cursor. A receive (`tt` = the last cursor) answers at
// once with what the channels keep past `tt` (from the hub's history, loaded from the store for durable
// channels, so it works across restarts), else it becomes a long poll: a Subscriber registered on the
// worker of its connection, like a WebSocket session, costing no thread. The first delivery answers it
// (deliveries of the same drain share the answer), or it answers empty after [pubnub] subscribe_timeout.
//
// Exactly once: a long poll registers on each channel with Channels::poll(), which returns what is past
// `tt` and the channel's offset N atomically; every later publication (> N) comes as a delivery. A client
// that polls again with the returned cursor gets, from history, what has a larger timetoken. Timetokens
// grow with offsets per channel, so within a channel nothing is missed or repeated. (Across channels of
// one request, a publication that was stamped before but delivered after another channel's message of a
// later timetoken is missed if it arrives between two polls: the cursor is one number for all channels.
// Only publications on a durable and an in-memory channel racing each other can do that.)
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <unordered_map>

#include "common/json_text.hpp"
#include "protocol/websocket.hpp"
#include "server/pubnub_detail.hpp"
#include "server/worker.hpp"

namespace rtsync::server::pubnub {

namespace asio = boost::asio;
using common::append_json_string;

namespace {

struct Item {
  core::PublicationPtr pub;
  const core::Channel* channel;  // one of the poll's, which it keeps in memory
  bool signal;
  const std::string* match;      // the subscription it came through (the poll's, like the channel)
  std::shared_ptr<const std::string> source{};  // relayed to a wildcard's channel: where it was published
};

// One envelope (PUBNUB.md §1.5). No "e" for messages and presence events: the SDK reads an explicit 0
// as a file event. "b" names the subscription: the channel itself, the group or the wildcard it came
// through; "c" the channel it was published on.
void append_envelope(std::string& out, const Item& it, std::string_view sub_key) {
  const core::Publication& p = *it.pub;
  out += "{\"a\":\"1\",\"f\":0,";
  if (it.signal) {
    // A transient: a signal, or a message action's event (pn_event 3).
    out += "\"e\":";
    common::append_int(out, it.pub->pn_event ? it.pub->pn_event : 1);
    out += ',';
  }
  const std::string& publisher = p.uuid.empty() ? p.from : p.uuid;
  if (!publisher.empty()) {
    out += "\"i\":";
    append_json_string(out, publisher);
    out += ',';
  }
  out += "\"p\":{\"t\":";
  append_tt(out, p.tt);
  out += ",\"r\":1},\"k\":";
  append_json_string(out, sub_key);
  out += ",\"c\":";
  append_json_string(out, it.source ? *it.source : it.channel->name());
  out += ",\"d\":";
  out += p.data;
  out += ",\"b\":";
  append_json_string(out, *it.match);
  if (!p.meta.empty()) {
    out += ",\"u\":";
    out += p.meta;
  }
  if (!p.ctype.empty()) {
    out += ",\"cmt\":";
    append_json_string(out, p.ctype);
  }
  out += '}';
}

// {"t":{"t":CURSOR,"r":1},"m":[…]}: the oldest `max_batch` items by timetoken; the cursor is the newest
// timetoken answered, so the rest comes from history on the next poll. Items that share the timetoken
// of the first one left out are left out too (else the next poll, asking for "after the cursor", would
// skip them).
std::string answer_body(std::uint64_t cursor, std::vector<Item>& items, std::string_view sub_key) {
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.pub->tt < b.pub->tt; });
  std::size_t n = items.size();
  if (n > max_batch) {
    n = max_batch;
    while (n > 0 && items[n - 1].pub->tt == items[n].pub->tt) --n;
    if (n == 0) n = items.size();
  }
  for (std::size_t i = 0; i < n; ++i) cursor = std::max(cursor, items[i].pub->tt);
  std::string body = "{\"t\":{\"t\":";
  append_tt(body, cursor);
  body += ",\"r\":";
  common::append_int(body, region);
  body += "},\"m\":[";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) body += ',';
    append_envelope(body, items[i], sub_key);
  }
  body += "]}";
  return body;
}

class Poll final : public Subscriber, public std::enable_shared_from_this<Poll> {
 public:
  // `matches[i]`: what the request named to get channels[i] (the channel, or a group); `groups`: the
  // groups it named, whose changes end the poll.
  Poll(Call& c, std::string sub_key, std::vector<core::ChannelRef> channels, std::vector<std::string> matches,
       std::vector<std::string> groups, std::uint64_t cursor, std::string uuid, std::optional<std::chrono::seconds> window)
      : ctx_(c.ctx),
        worker_(c.worker),
        socket_(c.socket),
        respond_(c.respond),
        caller_(c.caller()),
        sub_key_(std::move(sub_key)),
        channels_(std::move(channels)),
        matches_(std::move(matches)),
        groups_(std::move(groups)),
        cursor_(cursor),
        uuid_(std::move(uuid)),
        window_(window),
        timer_(c.worker.io()) {
    head_.version(c.req.version());
    head_.keep_alive(c.req.keep_alive());
    for (std::size_t i = 0; i < channels_.size(); ++i) match_of_.emplace(channels_[i].get(), &matches_[i]);
  }

  // On the worker's thread, once every channel is in memory.
  void start() {
    std::vector<Item> items;
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      const auto& ch = channels_[i];
      auto r = ctx_.channels.poll(*ch, worker_.index(), cursor_, max_batch, caller_);
      worker_.add_subscriber(ch.get(), this, 0, &caller_.user, r.offset, false, true);
      for (auto& p : r.pubs) items.push_back(Item{std::move(p), ch.get(), false, &matches_[i]});
      for (auto& s : r.signals) items.push_back(Item{std::move(s), ch.get(), true, &matches_[i]});
      for (auto& x : r.relayed) {
        const bool sig = x.pub->offset == 0;
        items.push_back(Item{std::move(x.pub), ch.get(), sig, &matches_[i], std::move(x.source)});
      }
    }
    registered_ = true;
    if (!items.empty()) {
      items_ = std::move(items);
      return answer();
    }
    // Nothing yet: wait, keeping the uuid present meanwhile.
    if (!uuid_.empty()) {
      ctx_.pubnub_presence->hold(uuid_, channels_, window_);
      held_ = true;
    }
    timer_.expires_after(std::chrono::seconds(ctx_.cfg.pubnub.subscribe_timeout));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->answer();
    });
    worker_.add_pending(this, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->answer();
    });
    // A change of one of its groups here: answered, so that the client polls again with the new channels.
    if (!groups_.empty()) {
      watch_ = ctx_.pubnub_groups->watch(groups_, [weak = weak_from_this(), &io = worker_.io()] {
        asio::post(io, [weak] {
          if (auto self = weak.lock()) self->answer();
        });
      });
    }
    // The connection reads nothing while the request is pending, so readable means the client closed it
    // (the SDK aborts a long poll whenever its channels change) or, unusually, pipelined another
    // request: either way this one ends now, and the presence hold with it.
    socket_.async_wait(asio::ip::tcp::socket::wait_read, [weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->answer();
    });
  }

  void on_delivery(const core::Delivery& d) override {
    if (done_) return;
    const bool relayed = d.kind == core::Delivery::Kind::relayed;
    const bool signal = d.kind == core::Delivery::Kind::signal || (relayed && d.pub->offset == 0);
    // Publications are new to this poll by offset (the worker compared them with the registration's).
    // Signals have no offset: one at or before the cursor was in an earlier answer. A relay reaches the
    // pattern once, after the poll registered there (the earlier ones came from what it keeps).
    if (signal && !relayed && d.pub->tt <= cursor_) return;
    items_.push_back(Item{d.pub, d.channel, signal, match_of_.at(d.channel), relayed ? d.source : nullptr});
    if (posted_) return;
    // Not from here: the worker is walking its subscriber lists, and answering unregisters.
    posted_ = true;
    asio::post(worker_.io(), [self = shared_from_this()] { self->answer(); });
  }

  void fail(StringResponse res) {
    done_ = true;
    respond_(std::move(res));
    respond_ = nullptr;
  }

 private:
  void answer() {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    worker_.remove_pending(this);
    if (watch_) ctx_.pubnub_groups->unwatch(watch_);
    if (registered_) {
      for (const auto& ch : channels_) {
        ctx_.channels.unsubscribe(*ch, worker_.index(), 0, false, false);
        worker_.remove_subscriber(ch.get(), this);
      }
    }
    if (held_) ctx_.pubnub_presence->release(uuid_, channels_);
    respond_(reply(head_, http::status::ok, answer_body(cursor_, items_, sub_key_)));
    respond_ = nullptr;  // lets the connection go
  }

  Context& ctx_;
  Worker& worker_;
  asio::ip::tcp::socket& socket_;  // used before the answer only, while respond_ keeps the connection
  Request head_;                   // the request's version and keep-alive, for the answer
  Respond respond_;
  const service::Caller caller_;
  const std::string sub_key_;
  const std::vector<core::ChannelRef> channels_;
  const std::vector<std::string> matches_;
  const std::vector<std::string> groups_;
  std::unordered_map<const core::Channel*, const std::string*> match_of_;
  const std::uint64_t cursor_;
  const std::string uuid_;
  const std::optional<std::chrono::seconds> window_;
  asio::steady_timer timer_;
  std::vector<Item> items_;
  std::uint64_t watch_ = 0;  // of its groups (ChannelGroups::watch), 0: none
  bool registered_ = false;
  bool held_ = false;
  bool posted_ = false;
  bool done_ = false;
};

// The channels named and those of the named groups, resolved, each once (a channel named itself is
// matched as itself; else by the first group that has it).
void subscribe_to(Call& c, const std::string& sub_key, const std::vector<std::string>& names,
                  const std::vector<GroupChannel>& via);

}  // namespace

void subscribe(Call& c) {
  const auto& req = c.req;
  auto sub_key = pct_decode(c.seg[2]);
  if (!sub_key) return c.respond(error(req, http::status::bad_request, "Invalid Subscribe Key"));
  if (auto bad = check_subscribe_key(c, *sub_key)) return c.respond(std::move(*bad));
  auto names = name_list(c.seg[3]);
  if (!names) return c.respond(error(req, http::status::bad_request, "Invalid channel list"));
  expand_groups(c, "Access Manager", [sub_key = *sub_key, names = std::move(*names)](Call& held, std::vector<GroupChannel> via) {
    subscribe_to(held, sub_key, names, via);
  });
}

namespace {

void subscribe_to(Call& c, const std::string& sub_key, const std::vector<std::string>& names,
                  const std::vector<GroupChannel>& via) {
  const auto& req = c.req;
  if (names.empty() && via.empty()) return c.respond(error(req, http::status::bad_request, "No channels to subscribe to"));
  if (names.size() + via.size() > c.ctx.cfg.limits.max_subscriptions)
    return c.respond(error(req, http::status::bad_request, "Too many channels in one subscribe request"));

  std::vector<core::ChannelRef> channels;
  std::vector<std::string> matches;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> group_channels;  // for the state parameter
  auto add = [&](const std::string& name, const std::string& match) -> bool {
    if (name.find('*') != std::string::npos && name.ends_with(core::presence_feed_suffix)) {
      c.respond(error(req, http::status::bad_request,
                      "Invalid channel \"" + name + "\": rtsync offers no presence of a wildcard subscription"));
      return false;
    }
    auto res = name.find('*') != std::string::npos ? c.ctx.channels.resolve_wildcard(name) : c.ctx.channels.resolve(name);
    if (auto* e = std::get_if<protocol::Error>(&res)) {
      c.respond(error(req, http::status::bad_request, "Invalid channel \"" + name + "\": " + e->message));
      return false;
    }
    auto& ch = std::get<core::ChannelRef>(res);
    if (c.ctx.channels.check_subscribe(*ch, c.caller())) {
      c.respond(forbidden(req, name));
      return false;
    }
    if (std::find(channels.begin(), channels.end(), ch) == channels.end()) {
      channels.push_back(std::move(ch));
      matches.push_back(match);
    }
    return true;
  };
  for (const auto& name : names)
    if (!add(name, name)) return;
  for (const auto& g : via) {
    if (!add(g.channel, g.group)) return;
    const bool feed = g.group.ends_with(core::presence_feed_suffix);
    const std::string base = g.group.substr(0, g.group.size() - (feed ? core::presence_feed_suffix.size() : 0));
    if (std::find(groups.begin(), groups.end(), base) == groups.end()) groups.push_back(base);
    if (!g.channel.ends_with(core::presence_feed_suffix)) group_channels[g.group].push_back(g.channel);
  }

  std::uint64_t cursor = 0;
  if (const auto* tt = c.param("tt"); tt && !tt->empty()) {
    auto v = parse_uint(*tt);
    if (!v) return c.respond(error(req, http::status::bad_request, "Invalid timetoken"));
    cursor = *v;
  }
  std::string uuid;
  if (const auto* u = c.param("uuid")) {
    if (u->size() > 256 || !protocol::ws::valid_utf8(*u))
      return c.respond(error(req, http::status::bad_request, "Invalid uuid"));
    uuid = *u;
  }
  std::optional<std::chrono::seconds> window;
  if (const auto* hb = c.param("heartbeat"))
    if (auto v = parse_uint(*hb); v && *v < 1'000'000)
      window = c.ctx.pubnub_presence->window_for(static_cast<std::int64_t>(*v));

  auto states = state_param(c, channels, group_channels);
  if (!states) return c.respond(error(req, http::status::bad_request, "Invalid state"));

  auto& ctx = c.ctx;
  if (cursor == 0) {
    // Handshake: the cursor is now (or the channels' newest timetoken, should the clock be behind it),
    // taken before this uuid joins, so that its own join event comes with the first receive.
    when_all_ready(
        c, channels, [&ctx, &req, respond = c.respond, channels, uuid, window, states = *states, sub_key](bool ok) {
          if (!ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable"));
          std::uint64_t now = core::now_timetoken() - 1;
          for (const auto& ch : channels) now = std::max(now, ctx.channels.last_timetoken(*ch));
          if (!uuid.empty()) ctx.pubnub_presence->touch(uuid, channels, window, states);
          std::vector<Item> none;
          respond(reply(req, http::status::ok, answer_body(now, none, sub_key)));
        });
    return;
  }

  if (!uuid.empty()) ctx.pubnub_presence->touch(uuid, channels, window, *states);
  auto poll = std::make_shared<Poll>(c, sub_key, channels, std::move(matches), std::move(groups), cursor, uuid, window);
  when_all_ready(c, channels, [poll, &req](bool ok) {
    if (!ok) return poll->fail(error(req, http::status::service_unavailable, "the store is unavailable"));
    poll->start();
  });
}

}  // namespace
}  // namespace rtsync::server::pubnub
