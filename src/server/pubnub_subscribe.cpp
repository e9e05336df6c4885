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
// its resume point and the channel's offset N atomically; every later publication (> N) comes as a
// delivery. The cursor is one timetoken for all channels, but timetokens grow only within a stream of one
// channel (service::Resume): so every answer's cursor is unique on this node and remembered with where
// each stream was left (service/pubnub_cursors.hpp), and the next poll with it resumes there exactly,
// even for a durable publication stamped before, and appended after, another channel's later one. Only
// a cursor this node does not know (another node's, or one from before a restart) resumes by timetoken,
// where such a late publication is missed if it lands between the two polls.
//
// Channel groups (`channel-group`, service/pubnub_groups.hpp) add their channels, read from the store for
// each request; a change of one on this node ends the long polls through it, which poll again with the new
// channels. A wildcard (`a.*`, service/pubnub_wildcard.hpp) is a channel of its own to which the PubNub
// views relay what its matches get. Each envelope's "b" names what the request named to get it.
//
// A subscriber's filter expression (query/pubnub_filter.hpp) hides the messages it does not pass; so does
// v1 for signals, which SDK 3 does not know. Hidden messages still move the cursor past them: a poll whose
// catch-up holds only hidden ones answers at once with an empty list, and a hidden delivery does not end a
// long poll but is remembered, so that the answer's cursor covers it.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

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
  std::vector<std::string> matches;  // for each channel, what the request named to get it (itself, a group, a wildcard)
  std::vector<std::string> groups;   // the groups named (without -pnpres), whose changes end a long poll
  std::map<std::string, std::string> states;  // the `state` parameter's, by channel
  std::uint64_t cursor = 0;
  std::vector<service::Resume> from;  // for each channel, where the poll resumes (the cursor's marks)
  std::string uuid;
  std::optional<std::chrono::seconds> window;
  std::optional<query::PubnubFilter> filter;
  bool v1 = false;
};

// The streams of one channel, each in its own order (service::Resume).
enum class Stream : std::uint8_t { pubs, transients, relays };

struct Item {
  core::PublicationPtr pub;
  const core::Channel* channel;  // one of the poll's, which it keeps in memory
  std::size_t index;             // the channel's in the Ask
  Stream stream;
  std::uint64_t seq;             // relays: its place among the pattern's
  bool signal;                   // a signal or a message action's event: "e" (a store=0 message is a
                                 // transient too, but neither)
  bool shown;                    // else it only moves the cursor
  const std::string* match;      // the subscription it came through (the poll's, like the channel)
  std::shared_ptr<const std::string> source{};  // relayed to a wildcard's channel: where it was published
};

// Moves a resume point past an item of its channel.
void advance(service::Resume& m, Stream stream, std::uint64_t tt, std::uint64_t seq) {
  switch (stream) {
    case Stream::pubs:
      m.pub_tt = std::max(m.pub_tt, tt);
      break;
    case Stream::transients:
      m.transient_tt = std::max(m.transient_tt, tt);
      break;
    case Stream::relays:
      m.relay = m.relays_by_seq ? std::max(m.relay, seq) : seq;
      m.relays_by_seq = true;
      break;
  }
}

// Whether a resume point is past an item (it came before, in catch-up or in an earlier answer).
bool past(const service::Resume& m, Stream stream, std::uint64_t tt, std::uint64_t seq) {
  switch (stream) {
    case Stream::pubs: return tt <= m.pub_tt;
    case Stream::transients: return tt <= m.transient_tt;
    case Stream::relays: return m.relays_by_seq ? seq <= m.relay : tt <= m.relay;
  }
  return false;
}

// The channel an item was published on.
const std::string& channel_of(const Item& it) { return it.source ? *it.source : it.channel->name(); }

// Whether a subscriber sees an item: v1 has no signals; a filter judges messages, never presence events
// (which the server writes, with no meta) nor signals.
bool shows(const Ask& ask, const core::Publication& p, const core::Channel& ch, bool signal) {
  if (signal) return !ask.v1;
  if (!ask.filter || ch.name().ends_with(core::presence_feed_suffix)) return true;
  return ask.filter->matches(p.meta, p.data);
}

// One v2 envelope (PUBNUB.md §1.5). No "e" for messages and presence events: the SDK reads an explicit 0
// as a file event. "b" names the subscription: the channel itself, the group or the wildcard it came
// through; "c" the channel it was published on.
void append_envelope(std::string& out, const Item& it, std::string_view sub_key) {
  const core::Publication& p = *it.pub;
  out += "{\"a\":\"1\",\"f\":0,";
  if (it.signal || p.pn_event == core::pn_file_event) {
    // A signal (1), a message action's event (pn_event 3), or a file's message (4).
    out += "\"e\":";
    common::append_int(out, p.pn_event ? p.pn_event : 1);
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
  append_json_string(out, channel_of(it));
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

// Orders the items for the answer and returns how many it takes (at most max_batch): the merge, oldest
// timetoken first, of their streams, each kept in its own order, so that what is taken of each stream is a
// prefix of it and its resume point stays exact. Items that share the timetoken of the first one left out
// are left out too, so that resuming by the cursor's timetoken alone (on a node that does not know it)
// does not skip them.
std::size_t order(std::vector<Item>& items) {
  if (items.size() > 1) {
    std::map<std::pair<std::size_t, Stream>, std::deque<std::size_t>> streams;
    for (std::size_t i = 0; i < items.size(); ++i) streams[{items[i].index, items[i].stream}].push_back(i);
    using Head = std::pair<std::uint64_t, std::deque<std::size_t>*>;  // its first item's timetoken
    auto later = [](const Head& a, const Head& b) { return a.first > b.first; };
    std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
    for (auto& [key, q] : streams) heads.emplace(items[q.front()].pub->tt, &q);
    std::vector<Item> merged;
    merged.reserve(items.size());
    while (!heads.empty()) {
      auto* q = heads.top().second;
      heads.pop();
      merged.push_back(std::move(items[q->front()]));
      q->pop_front();
      if (!q->empty()) heads.emplace(items[q->front()].pub->tt, q);
    }
    items = std::move(merged);
  }
  if (items.size() <= max_batch) return items.size();
  std::size_t n = max_batch;
  while (n > 0 && items[n - 1].pub->tt == items[n].pub->tt) --n;
  return n > 0 ? n : max_batch;
}

// The answer: the first `n` items (order()), of which the shown ones are listed, and the cursor.
std::string answer_body(const Ask& ask, const std::vector<Item>& items, std::size_t n, std::uint64_t cursor) {
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
      where += channel_of(items[i]);
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
    for (std::size_t i = 0; i < ask_.channels.size(); ++i) index_of_.emplace(ask_.channels[i].get(), i);
  }

  // On the worker's thread, once every channel is in memory.
  void start() {
    std::vector<Item> items;
    marks_ = ask_.from;
    for (std::size_t i = 0; i < ask_.channels.size(); ++i) {
      const auto& ch = ask_.channels[i];
      auto r = ctx_.channels.poll(*ch, worker_.index(), ask_.from[i], max_batch, caller_);
      worker_.add_subscriber(ch.get(), this, 0, &caller_.user, r.offset, false, true);
      // A pattern's relays resumed by timetoken are all caught up to its newest unless the catch-up was
      // capped: from here on they resume by seq.
      if (!marks_[i].relays_by_seq && r.relay_seq > 0 && r.relayed.size() < max_batch) {
        marks_[i].relay = r.relay_seq;
        marks_[i].relays_by_seq = true;
      }
      for (auto& p : r.pubs) items.push_back(item(std::move(p), i, Stream::pubs, 0, false));
      for (auto& t : r.signals) {
        const bool signal = !t->unstored;
        items.push_back(item(std::move(t), i, Stream::transients, 0, signal));
      }
      for (auto& x : r.relayed) {
        const bool signal = x.pub->offset == 0 && !x.pub->unstored;
        items.push_back(item(std::move(x.pub), i, Stream::relays, x.seq, signal, std::move(x.source)));
      }
    }
    for (const auto& it : items) advance(marks_[it.index], it.stream, it.pub->tt, it.seq);
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
    // A change of one of its groups here: answered, so that the client polls again with the new channels.
    if (!ask_.groups.empty()) {
      watch_ = ctx_.pubnub_groups->watch(ask_.groups, [weak = weak_from_this(), &io = worker_.io()] {
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
    const bool transient = d.kind == core::Delivery::Kind::signal || (relayed && d.pub->offset == 0);
    const Stream stream = relayed ? Stream::relays : transient ? Stream::transients : Stream::pubs;
    const std::size_t index = index_of_.at(d.channel);
    const std::uint64_t seq = relayed ? d.offset : 0;
    // Publications are new to this poll by offset (the worker compared them with the registration's).
    // A transient or relay fanned out before the registration but drained after it was in the catch-up.
    if (stream != Stream::pubs && past(marks_[index], stream, d.pub->tt, seq)) return;
    advance(marks_[index], stream, d.pub->tt, seq);
    Item it = item(d.pub, index, stream, seq, transient && !d.pub->unstored, relayed ? d.source : nullptr);
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
  Item item(core::PublicationPtr p, std::size_t index, Stream stream, std::uint64_t seq, bool signal,
            std::shared_ptr<const std::string> source = nullptr) const {
    const core::Channel* ch = ask_.channels[index].get();
    const bool shown = shows(ask_, *p, *ch, signal);
    return Item{std::move(p), ch, index, stream, seq, signal, shown, &ask_.matches[index], std::move(source)};
  }

  // The answer's cursor, remembered with where each stream resumes: past every item delivered (listed or
  // hidden), except that a stream with items left out resumes after the last one listed.
  std::uint64_t issue_cursor(std::size_t n) {
    std::uint64_t covered = ask_.cursor;
    for (std::size_t i = 0; i < n; ++i) covered = std::max(covered, items_[i].pub->tt);
    std::vector<service::Resume> marks = marks_;
    if (n < items_.size()) {
      std::set<std::pair<std::size_t, Stream>> cut;
      for (std::size_t i = n; i < items_.size(); ++i) cut.emplace(items_[i].index, items_[i].stream);
      for (const auto& [index, stream] : cut) {
        auto& m = marks[index];
        const auto& from = ask_.from[index];
        if (stream == Stream::pubs) m.pub_tt = from.pub_tt;
        else if (stream == Stream::transients) m.transient_tt = from.transient_tt;
        else std::tie(m.relay, m.relays_by_seq) = std::pair{from.relay, from.relays_by_seq};
      }
      for (std::size_t i = 0; i < n; ++i)
        if (cut.contains({items_[i].index, items_[i].stream}))
          advance(marks[items_[i].index], items_[i].stream, items_[i].pub->tt, items_[i].seq);
    } else {
      covered = std::max(covered, hidden_);
    }
    service::PubnubCursors::Marks named;
    named.reserve(marks.size());
    for (std::size_t i = 0; i < marks.size(); ++i) named.emplace_back(ask_.channels[i]->name(), marks[i]);
    return ctx_.pubnub_cursors->issue(covered, ask_.uuid, std::move(named));
  }

  void answer() {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    worker_.remove_pending(this);
    if (watch_) ctx_.pubnub_groups->unwatch(watch_);
    if (registered_) {
      for (const auto& ch : ask_.channels) {
        ctx_.channels.unsubscribe(*ch, worker_.index(), 0, false, false);
        worker_.remove_subscriber(ch.get(), this);
      }
    }
    if (held_) ctx_.pubnub_presence->release(ask_.uuid, ask_.channels);
    const std::size_t n = order(items_);
    const std::uint64_t cursor = issue_cursor(n);
    respond_(reply(head_, http::status::ok, answer_body(ask_, items_, n, cursor)));
    respond_ = nullptr;  // lets the connection go
  }

  Context& ctx_;
  Worker& worker_;
  asio::ip::tcp::socket& socket_;  // used before the answer only, while respond_ keeps the connection
  Request head_;                   // the request's version and keep-alive, for the answer
  Respond respond_;
  const service::Caller caller_;
  const Ask ask_;
  std::unordered_map<const core::Channel*, std::size_t> index_of_;
  asio::steady_timer timer_;
  std::vector<Item> items_;
  std::vector<service::Resume> marks_;  // for each channel, past everything this poll got
  std::uint64_t hidden_ = 0;  // the newest hidden delivery's timetoken
  std::uint64_t watch_ = 0;   // of its groups (ChannelGroups::watch), 0: none
  bool registered_ = false;
  bool held_ = false;
  bool posted_ = false;
  bool done_ = false;
};

// Decodes what both generations share: the key, the channels named and those of the named groups `via`
// (each once, their permission checked: a channel named itself is matched as itself, else by the first
// group that has it), the uuid, the heartbeat window, the state and the filter. nullopt: answered with
// an error.
std::optional<Ask> decode(Call& c, std::string_view key_segment, std::string_view channels_segment,
                          const std::vector<GroupChannel>& via) {
  const auto& req = c.req;
  Ask ask;
  auto sub_key = subscribe_key(c, key_segment);
  if (!sub_key) return std::nullopt;
  ask.sub_key = std::move(*sub_key);
  auto names = name_list(channels_segment);
  std::string_view refusal;
  if (!names) refusal = "Invalid channel list";
  else if (names->empty() && via.empty()) refusal = "No channels to subscribe to";
  else if (names->size() + via.size() > c.ctx.cfg.limits.max_subscriptions)
    refusal = "Too many channels in one subscribe request";
  if (!refusal.empty()) {
    c.respond(error(req, http::status::bad_request, refusal));
    return std::nullopt;
  }
  auto add = [&](const std::string& name, const std::string& match, bool granted_group = false) -> bool {
    const bool wildcard = name.find('*') != std::string::npos;
    if (wildcard && name.ends_with(core::presence_feed_suffix)) {
      c.respond(error(req, http::status::bad_request,
                      "Invalid channel \"" + name + "\": rtsync offers no presence of a wildcard subscription"));
      return false;
    }
    auto res = wildcard ? c.ctx.channels.resolve_wildcard(name) : c.ctx.channels.resolve(name);
    if (auto* e = std::get_if<protocol::Error>(&res)) {
      c.respond(error(req, http::status::bad_request, "Invalid channel \"" + name + "\": " + e->message));
      return false;
    }
    auto& ch = std::get<core::ChannelRef>(res);
    if (!granted_group && c.ctx.channels.check_subscribe(*ch, c.caller())) {
      c.respond(forbidden(req, name));
      return false;
    }
    if (std::find(ask.channels.begin(), ask.channels.end(), ch) == ask.channels.end()) {
      ask.channels.push_back(std::move(ch));
      ask.matches.push_back(match);
    }
    return true;
  };
  for (const auto& name : *names)
    if (!add(name, name)) return std::nullopt;
  std::map<std::string, std::vector<std::string>> group_channels;  // for the state parameter
  for (const auto& g : via) {
    if (!add(g.channel, g.group, g.granted)) return std::nullopt;
    const bool feed = g.group.ends_with(core::presence_feed_suffix);
    const std::string base = g.group.substr(0, g.group.size() - (feed ? core::presence_feed_suffix.size() : 0));
    if (std::find(ask.groups.begin(), ask.groups.end(), base) == ask.groups.end()) ask.groups.push_back(base);
    if (!feed) group_channels[g.group].push_back(g.channel);
  }
  auto states = state_param(c, ask.channels, group_channels);
  if (!states) {
    c.respond(error(req, http::status::bad_request, "Invalid state"));
    return std::nullopt;
  }
  ask.states = std::move(*states);
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
      if (!ask.uuid.empty()) ctx.pubnub_presence->touch(ask.uuid, ask.channels, ask.window, ask.states);
      respond(reply(req, http::status::ok, answer_body(ask, {}, 0, now)));
    });
    return;
  }
  if (!ask.uuid.empty()) ctx.pubnub_presence->touch(ask.uuid, ask.channels, ask.window, ask.states);
  // Where each channel resumes: by the marks behind the cursor if this node issued it, else (and for a
  // channel added since) after its timetoken.
  const auto marks = ctx.pubnub_cursors->find(ask.cursor, ask.uuid);
  for (const auto& ch : ask.channels) {
    auto resume = service::Resume::after(ask.cursor);
    if (marks)
      for (const auto& [name, m] : *marks)
        if (name == ch->name()) resume = m;
    ask.from.push_back(resume);
  }
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

// Both generations take `channel-group`: its channels are read from the store first.
void subscribe(Call& c) {
  expand_groups(c, "Subscribe", [](Call& held, std::vector<GroupChannel> via) {
    auto ask = decode(held, held.seg[2], held.seg[3], via);
    if (!ask) return;
    auto tt = timetoken(held, held.param("tt"));
    if (!tt) return;
    ask->cursor = *tt;
    run(held, std::move(*ask));
  });
}

void subscribe_v1(Call& c) {
  expand_groups(c, "Subscribe", [](Call& held, std::vector<GroupChannel> via) {
    auto ask = decode(held, held.seg[1], held.seg[2], via);
    if (!ask) return;
    auto tt = pct_decode(held.seg[4]);
    if (!tt) return held.respond(error(held.req, http::status::bad_request, "Invalid timetoken"));
    auto cursor = timetoken(held, &*tt);
    if (!cursor) return;
    ask->cursor = *cursor;
    ask->v1 = true;
    run(held, std::move(*ask));
  });
}

}  // namespace rtsync::server::pubnub
