// PubNub subscribe, both generations:
//   v2 (SDK 4 and later): GET /v2/subscribe/{sub}/{channels}/0?tt=&tr=&uuid=&heartbeat=&filter-expr=,
//      answering {"t":{"t":CURSOR,"r":1},"m":[ENVELOPE…]};
//   v1 (SDK 3.x): GET /subscribe/{sub}/{channels}/{callback}/{tt}?uuid=&heartbeat=, answering
//      [[MESSAGE…],"CURSOR"] and, when the request names several channels, a third element: the channel of
//      each message, joined by ',' (how SDK 3 routes each message to its channel's callback).
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
// Only publications on a durable and an in-memory channel racing each other, or a transient racing a
// durable publication, can do that.)
//
// A subscriber's filter expression (query/pubnub_filter.hpp) hides the messages it does not pass; so does
// v1 for signals, which SDK 3 does not know. Hidden messages still move the cursor past them: a poll whose
// catch-up holds only hidden ones answers at once with an empty list, and a hidden delivery does not end a
// long poll but is remembered, so that the answer's cursor covers it.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

#include "common/json_text.hpp"
#include "protocol/websocket.hpp"
#include "query/pubnub_filter.hpp"
#include "server/pubnub_detail.hpp"
#include "server/worker.hpp"

namespace rtsync::server::pubnub {

namespace asio = boost::asio;
using common::append_json_string;

namespace {

// What a subscribe request asks, decoded once for both generations.
struct Ask {
  std::string sub_key;
  std::vector<core::ChannelRef> channels;
  std::uint64_t cursor = 0;
  std::string uuid;
  std::optional<std::chrono::seconds> window;
  std::optional<query::PubnubFilter> filter;
  bool v1 = false;
};

struct Item {
  core::PublicationPtr pub;
  const core::Channel* channel;  // one of the poll's, which it keeps in memory
  bool signal;                   // a signal: "e":1 (a store=0 message is a transient too, but no signal)
  bool shown;                    // else it only moves the cursor
};

// Whether a subscriber sees an item: v1 has no signals; a filter judges messages, never presence events
// (which the server writes, with no meta) nor signals.
bool shows(const Ask& ask, const core::Publication& p, const core::Channel& ch, bool signal) {
  if (signal) return !ask.v1;
  if (!ask.filter || ch.name().ends_with(core::presence_feed_suffix)) return true;
  return ask.filter->matches(p.meta, p.data);
}

// One v2 envelope (PUBNUB.md §1.5). No "e" for messages and presence events: the SDK reads an explicit 0
// as a file event. "b" names the subscription, which is the channel itself (no wildcards or groups).
void append_envelope(std::string& out, const Item& it, std::string_view sub_key) {
  const core::Publication& p = *it.pub;
  out += "{\"a\":\"1\",\"f\":0,";
  if (it.signal) out += "\"e\":1,";
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
  append_json_string(out, it.channel->name());
  out += ",\"d\":";
  out += p.data;
  out += ",\"b\":";
  append_json_string(out, it.channel->name());
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

// The answer: the oldest `max_batch` items by timetoken, of which the shown ones are listed; the cursor is
// the newest timetoken among them, so the rest comes from history on the next poll. Items that share the
// timetoken of the first one left out are left out too (else the next poll, asking for "after the
// cursor", would skip them). `hidden` (a hidden delivery's timetoken) moves the cursor only when nothing
// was left out.
std::string answer_body(const Ask& ask, std::vector<Item>& items, std::uint64_t hidden) {
  std::uint64_t cursor = ask.cursor;
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.pub->tt < b.pub->tt; });
  std::size_t n = items.size();
  if (n > max_batch) {
    n = max_batch;
    while (n > 0 && items[n - 1].pub->tt == items[n].pub->tt) --n;
    if (n == 0) n = items.size();
  }
  for (std::size_t i = 0; i < n; ++i) cursor = std::max(cursor, items[i].pub->tt);
  if (n == items.size()) cursor = std::max(cursor, hidden);
  std::string body;
  if (ask.v1) {
    body = "[[";
    std::string where;  // the channel of each message
    bool first = true;
    for (std::size_t i = 0; i < n; ++i) {
      if (!items[i].shown) continue;
      if (!first) {
        body += ',';
        where += ',';
      }
      first = false;
      body += items[i].pub->data;
      where += items[i].channel->name();
    }
    body += "],";
    append_tt(body, cursor);
    if (ask.channels.size() > 1) {
      body += ',';
      append_json_string(body, where);
    }
    body += ']';
    return body;
  }
  body = "{\"t\":{\"t\":";
  append_tt(body, cursor);
  body += ",\"r\":";
  common::append_int(body, region);
  body += "},\"m\":[";
  bool first = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (!items[i].shown) continue;
    if (!first) body += ',';
    first = false;
    append_envelope(body, items[i], ask.sub_key);
  }
  body += "]}";
  return body;
}

class Poll final : public Subscriber, public std::enable_shared_from_this<Poll> {
 public:
  Poll(Call& c, Ask ask)
      : ctx_(c.ctx),
        worker_(c.worker),
        socket_(c.socket),
        respond_(c.respond),
        caller_(c.caller()),
        ask_(std::move(ask)),
        timer_(c.worker.io()) {
    head_.version(c.req.version());
    head_.keep_alive(c.req.keep_alive());
  }

  // On the worker's thread, once every channel is in memory.
  void start() {
    std::vector<Item> items;
    for (const auto& ch : ask_.channels) {
      auto r = ctx_.channels.poll(*ch, worker_.index(), ask_.cursor, max_batch, caller_);
      worker_.add_subscriber(ch.get(), this, 0, &caller_.user, r.offset, false, true);
      for (auto& p : r.pubs) items.push_back(item(std::move(p), ch.get(), false));
      for (auto& s : r.signals) {
        const bool signal = !s->unstored;
        items.push_back(item(std::move(s), ch.get(), signal));
      }
    }
    registered_ = true;
    if (!items.empty()) {
      items_ = std::move(items);
      return answer();
    }
    // Nothing yet: wait, keeping the uuid present meanwhile.
    if (!ask_.uuid.empty()) {
      ctx_.pubnub_presence->hold(ask_.uuid, ask_.channels, ask_.window);
      held_ = true;
    }
    timer_.expires_after(std::chrono::seconds(ctx_.cfg.pubnub.subscribe_timeout));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->answer();
    });
    worker_.add_pending(this, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->answer();
    });
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
    const bool transient = d.kind == core::Delivery::Kind::signal;
    // Publications are new to this poll by offset (the worker compared them with the registration's).
    // Transients have no offset: one at or before the cursor was in an earlier answer.
    if (transient && d.pub->tt <= ask_.cursor) return;
    Item it = item(d.pub, d.channel, transient && !d.pub->unstored);
    if (!it.shown) {
      hidden_ = std::max(hidden_, it.pub->tt);
      return;
    }
    items_.push_back(std::move(it));
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
  Item item(core::PublicationPtr p, const core::Channel* ch, bool signal) const {
    const bool shown = shows(ask_, *p, *ch, signal);
    return Item{std::move(p), ch, signal, shown};
  }

  void answer() {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    worker_.remove_pending(this);
    if (registered_) {
      for (const auto& ch : ask_.channels) {
        ctx_.channels.unsubscribe(*ch, worker_.index(), 0, false, false);
        worker_.remove_subscriber(ch.get(), this);
      }
    }
    if (held_) ctx_.pubnub_presence->release(ask_.uuid, ask_.channels);
    respond_(reply(head_, http::status::ok, answer_body(ask_, items_, hidden_)));
    respond_ = nullptr;  // lets the connection go
  }

  Context& ctx_;
  Worker& worker_;
  asio::ip::tcp::socket& socket_;  // used before the answer only, while respond_ keeps the connection
  Request head_;                   // the request's version and keep-alive, for the answer
  Respond respond_;
  const service::Caller caller_;
  const Ask ask_;
  asio::steady_timer timer_;
  std::vector<Item> items_;
  std::uint64_t hidden_ = 0;  // the newest hidden delivery's timetoken
  bool registered_ = false;
  bool held_ = false;
  bool posted_ = false;
  bool done_ = false;
};

// Decodes what both generations share: the key, the channels (and their permission), the uuid, the
// heartbeat window and the filter. nullopt: answered with an error.
std::optional<Ask> decode(Call& c, std::string_view key_segment, std::string_view channels_segment) {
  const auto& req = c.req;
  Ask ask;
  auto sub_key = subscribe_key(c, key_segment);
  if (!sub_key) return std::nullopt;
  ask.sub_key = std::move(*sub_key);
  if (const auto* groups = c.param("channel-group"); groups && !groups->empty()) {
    c.respond(error(req, http::status::bad_request, "rtsync does not support channel groups (see docs/pubnub.md)",
                    "rtsync"));
    return std::nullopt;
  }
  auto names = name_list(channels_segment);
  std::string_view refusal;
  if (!names) refusal = "Invalid channel list";
  else if (names->empty()) refusal = "No channels to subscribe to";
  else if (names->size() > c.ctx.cfg.limits.max_subscriptions) refusal = "Too many channels in one subscribe request";
  if (!refusal.empty()) {
    c.respond(error(req, http::status::bad_request, refusal));
    return std::nullopt;
  }
  for (const auto& name : *names) {
    auto res = c.ctx.channels.resolve(name);
    if (auto* e = std::get_if<protocol::Error>(&res)) {
      c.respond(error(req, http::status::bad_request, "Invalid channel \"" + name + "\": " + e->message));
      return std::nullopt;
    }
    auto& ch = std::get<core::ChannelRef>(res);
    if (c.ctx.channels.check_subscribe(*ch, c.caller())) {
      c.respond(forbidden(req, name));
      return std::nullopt;
    }
    if (std::find(ask.channels.begin(), ask.channels.end(), ch) == ask.channels.end())
      ask.channels.push_back(std::move(ch));
  }
  if (const auto* u = c.param("uuid")) {
    if (u->size() > 256 || !protocol::ws::valid_utf8(*u)) {
      c.respond(error(req, http::status::bad_request, "Invalid uuid"));
      return std::nullopt;
    }
    ask.uuid = *u;
  }
  if (const auto* hb = c.param("heartbeat"))
    if (auto v = parse_uint(*hb); v && *v < 1'000'000)
      ask.window = c.ctx.pubnub_presence->window_for(static_cast<std::int64_t>(*v));
  if (const auto* expr = c.param("filter-expr"); expr && !expr->empty()) {
    std::string why;
    ask.filter = query::PubnubFilter::parse(*expr, why);
    if (!ask.filter) {
      c.respond(error(req, http::status::bad_request, "Invalid filter expression: " + why, "Subscribe"));
      return std::nullopt;
    }
  }
  return ask;
}

// Both generations from here: the handshake answers at once, a receive catches up or waits.
void run(Call& c, Ask ask) {
  const auto& req = c.req;
  auto& ctx = c.ctx;
  if (ask.cursor == 0) {
    // Handshake: the cursor is now (or the channels' newest timetoken, should the clock be behind it),
    // taken before this uuid joins, so that its own join event comes with the first receive.
    auto channels = ask.channels;
    when_all_ready(c, channels, [&ctx, &req, respond = c.respond, ask = std::move(ask)](bool ok) mutable {
      if (!ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable"));
      std::uint64_t now = core::now_timetoken() - 1;
      for (const auto& ch : ask.channels) now = std::max(now, ctx.channels.last_timetoken(*ch));
      if (!ask.uuid.empty()) ctx.pubnub_presence->touch(ask.uuid, ask.channels, ask.window);
      ask.cursor = now;
      std::vector<Item> none;
      respond(reply(req, http::status::ok, answer_body(ask, none, 0)));
    });
    return;
  }
  if (!ask.uuid.empty()) ctx.pubnub_presence->touch(ask.uuid, ask.channels, ask.window);
  auto channels = ask.channels;
  auto poll = std::make_shared<Poll>(c, std::move(ask));
  when_all_ready(c, channels, [poll, &req](bool ok) {
    if (!ok) return poll->fail(error(req, http::status::service_unavailable, "the store is unavailable"));
    poll->start();
  });
}

std::optional<std::uint64_t> timetoken(Call& c, const std::string* tt) {
  if (!tt || tt->empty()) return 0;
  auto v = parse_uint(*tt);
  if (!v) c.respond(error(c.req, http::status::bad_request, "Invalid timetoken"));
  return v;
}

}  // namespace

void subscribe(Call& c) {
  auto ask = decode(c, c.seg[2], c.seg[3]);
  if (!ask) return;
  auto tt = timetoken(c, c.param("tt"));
  if (!tt) return;
  ask->cursor = *tt;
  run(c, std::move(*ask));
}

void subscribe_v1(Call& c) {
  auto ask = decode(c, c.seg[1], c.seg[2]);
  if (!ask) return;
  auto tt = pct_decode(c.seg[4]);
  if (!tt) return c.respond(error(c.req, http::status::bad_request, "Invalid timetoken"));
  auto cursor = timetoken(c, &*tt);
  if (!cursor) return;
  ask->cursor = *cursor;
  ask->v1 = true;
  run(c, std::move(*ask));
}

}  // namespace rtsync::server::pubnub
