// The Redis broker: several rtsync nodes on one Redis (docs/scaling.md). hiredis (0.14, asynchronous API)
// is driven from an Asio loop on the broker's own thread, through a small adapter below (hiredis has none
// for Asio): the redisAsyncContext's socket is watched with asio::posix::stream_descriptor::async_wait,
// and hiredis' addRead/delRead/addWrite/delWrite/cleanup hooks start and stop those waits. Nothing here
// blocks an I/O thread: they only post to this loop (publish() runs on the store's thread).
//
// Two connections: `cmd` sends commands (PUBLISH, the liveness and presence keys), `sub` is subscribed to
// the cluster's bus channel PREFIX:bus, where every node publishes what the others must know:
//   P  a committed publication, with its offset and timetoken: the receivers' hubs deliver it (filling
//      gaps from the store when it does not follow on; see core/hub.hpp);
//   S  a PubNub signal (transient: no offset, not stored; lost if Redis is down when it is sent);
//   J  a presence member of the sender joined (or was re-announced), L  one left;
//   E  the end of a full re-announcement of the sender's members: mirrored members of that node that
//      were not re-announced have left meanwhile;
//   H  a node (re)subscribed: every node re-announces its members to it;
//   R  the sender lost publications it could not send (its queue overflowed or a PUBLISH failed): every
//      node reloads its channels from the store.
// Messages are lists of length-prefixed fields ("5:hello"), so publication data travel byte for byte.
//
// Losing Redis loses no acknowledged publication: publications are committed in the store before they are
// published here. While disconnected, a node queues what it publishes (bounded); whoever reconnects
// reloads its loaded channels from the store (Hub::resync_all), so subscribers catch up in order.
//
// Presence: each node renews PREFIX:node:NAME (with a time-to-live of presence_ttl) every third of it,
// and keeps its members in the hash PREFIX:presence:NAME (same time-to-live), for operators. Every node
// mirrors the members of the others in its own hub (Member::remote), so presence reads stay local and
// synchronous; a node whose liveness key expired (it crashed) has its mirrored members time out.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "broker/broker.hpp"

namespace rtsync::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Publications queued while Redis is unreachable; past this the oldest are dropped and everyone
// reloads from the store once connected again.
constexpr std::size_t kMaxOutbox = 100000;
// PUBLISHes sent and not answered yet: past this Redis is not keeping up; the rest is dropped the same way.
constexpr std::size_t kMaxInflight = 100000;
constexpr auto kMinBackoff = 100ms;
constexpr auto kMaxBackoff = 5s;
// Mirrored members of other nodes are numbered from here, apart from this node's sessions.
constexpr std::uint64_t kRemoteSessionBase = std::uint64_t{1} << 62;

// --- Message fields ---

void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}
void put(std::string& out, std::uint64_t v) { put(out, std::to_string(v)); }

// A publication's fields, after its channel: a committed one (P) carries its offset and audience, a signal
// (S) neither.
void put(std::string& out, const core::Publication& p, bool committed) {
  if (committed) put(out, p.offset);
  put(out, p.tt);
  put(out, std::to_string(p.ts));
  put(out, p.from);
  if (committed) put(out, p.audience);
  put(out, p.uuid);
  put(out, p.meta);
  put(out, p.ctype);
  put(out, p.data);
}

class Fields {
 public:
  explicit Fields(std::string_view s) : s_(s) {}
  bool next(std::string_view& f) {
    auto colon = s_.find(':');
    if (colon == std::string_view::npos) return false;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(s_.data(), s_.data() + colon, n);
    if (ec != std::errc{} || p != s_.data() + colon || n > s_.size() - colon - 1) return false;
    f = s_.substr(colon + 1, n);
    s_.remove_prefix(colon + 1 + n);
    return true;
  }
  bool next(std::uint64_t& v) {
    std::string_view f;
    if (!next(f)) return false;
    auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
    return ec == std::errc{} && p == f.data() + f.size();
  }
  bool next(std::int64_t& v) {
    std::string_view f;
    if (!next(f)) return false;
    auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
    return ec == std::errc{} && p == f.data() + f.size();
  }
  bool next(std::string& s) {
    std::string_view f;
    if (!next(f)) return false;
    s = f;
    return true;
  }
  // What put(out, publication, committed) wrote.
  bool next(core::Publication& p, bool committed) {
    return (!committed || next(p.offset)) && next(p.tt) && next(p.ts) && next(p.from) &&
           (!committed || next(p.audience)) && next(p.uuid) && next(p.meta) && next(p.ctype) && next(p.data);
  }

 private:
  std::string_view s_;
};

// --- One hiredis connection on an Asio loop ---

// Owned by shared_ptrs: the broker's, and each pending wait's; hiredis holds a raw pointer (ev.data) for as
// long as its context lives, and the context's cleanup hook ends that. All calls on the loop's thread.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  using Reply = std::function<void(redisReply*)>;  // null reply: the connection is gone

  explicit Conn(asio::io_context& io) : sd_(io) {}
  ~Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Starts connecting. `up` runs once connected; `down(why)` runs once when the connection failed or is
  // lost (not after close()). false: it failed at once (then neither runs).
  bool open(const std::string& host, int port, std::function<void()> up, std::function<void(std::string)> down) {
    up_ = std::move(up);
    down_ = std::move(down);
    ac_ = redisAsyncConnect(host.c_str(), port);
    if (!ac_ || ac_->err) {
      error_ = ac_ ? ac_->errstr : "out of memory";
      if (ac_) redisAsyncFree(ac_);
      ac_ = nullptr;
      return false;
    }
    boost::system::error_code ec;
    sd_.assign(ac_->c.fd, ec);
    if (ec) {
      error_ = ec.message();
      redisAsyncFree(ac_);
      ac_ = nullptr;
      return false;
    }
    self_ = shared_from_this();
    ac_->data = this;
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* p) { static_cast<Conn*>(p)->want(true, true); };
    ac_->ev.delRead = [](void* p) { static_cast<Conn*>(p)->want(true, false); };
    ac_->ev.addWrite = [](void* p) { static_cast<Conn*>(p)->want(false, true); };
    ac_->ev.delWrite = [](void* p) { static_cast<Conn*>(p)->want(false, false); };
    ac_->ev.cleanup = [](void* p) { static_cast<Conn*>(p)->cleanup(); };
    // Hooks first: setting the connect callback asks for the first write event, which completes the connect.
    redisAsyncSetConnectCallback(ac_, [](const redisAsyncContext* c, int status) {
      auto* self = static_cast<Conn*>(c->data);
      if (status == REDIS_OK) {
        self->connected_ = true;
        if (self->up_) self->up_();
      } else {
        self->lost(c->errstr);
      }
    });
    redisAsyncSetDisconnectCallback(ac_, [](const redisAsyncContext* c, int status) {
      static_cast<Conn*>(c->data)->lost(status == REDIS_OK ? "closed" : c->errstr);
    });
    return true;
  }

  const std::string& error() const { return error_; }
  bool up() const { return ac_ && connected_ && !closing_; }

  // A command whose reply (or null) goes to `done`, once.
  bool command(const std::vector<std::string>& args, Reply done = {}) {
    if (!ac_ || closing_) return false;
    auto* cb = new Reply(std::move(done));
    if (!send(args, &Conn::once, cb)) {
      delete cb;
      return false;
    }
    return true;
  }

  // SUBSCRIBE: `on_message` gets the confirmation and every message, then null when the connection ends.
  bool subscribe(const std::string& channel, Reply on_message) {
    if (!ac_ || closing_) return false;
    sub_ = std::move(on_message);
    return send({"SUBSCRIBE", channel}, &Conn::persistent, this);
  }

  // Sends what is queued, waits for pending replies, then disconnects (no `down`).
  void close() {
    if (!ac_ || closing_) return;
    closing_ = true;
    down_ = nullptr;
    redisAsyncDisconnect(ac_);
  }

  // Frees the connection now, whatever is pending (their callbacks get null).
  void kill() {
    down_ = nullptr;
    if (ac_) redisAsyncFree(ac_);
  }

 private:
  bool send(const std::vector<std::string>& args, redisCallbackFn* fn, void* priv) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(ac_, fn, priv, static_cast<int>(args.size()), argv.data(), lens.data()) == REDIS_OK;
  }

  static void once(redisAsyncContext*, void* reply, void* priv) {
    std::unique_ptr<Reply> cb(static_cast<Reply*>(priv));
    if (*cb) (*cb)(static_cast<redisReply*>(reply));
  }
  static void persistent(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<Conn*>(priv);
    if (self->sub_) self->sub_(static_cast<redisReply*>(reply));
  }

  void lost(const char* why) {
    connected_ = false;
    error_ = why ? why : "connection lost";
    if (auto down = std::move(down_)) {
      down_ = nullptr;
      down(error_);
    }
  }

  // hiredis wants (or no longer wants) to know when the socket is readable / writable.
  void want(bool read, bool on) {
    (read ? want_read_ : want_write_) = on;
    if (on) arm(read);
  }

  void arm(bool read) {
    bool& waiting = read ? reading_ : writing_;
    if (waiting || !ac_) return;
    waiting = true;
    sd_.async_wait(read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
                   [self = shared_from_this(), read](boost::system::error_code ec) {
                     (read ? self->reading_ : self->writing_) = false;
                     if (ec || !self->ac_) return;
                     if (read ? self->want_read_ : self->want_write_) {
                       // May free the context (an error, or a close), which runs cleanup() and clears ac_.
                       read ? redisAsyncHandleRead(self->ac_) : redisAsyncHandleWrite(self->ac_);
                     }
                     if (self->ac_ && (read ? self->want_read_ : self->want_write_)) self->arm(read);
                   });
  }

  // hiredis frees the context: stop watching its socket (which hiredis closes, not us).
  void cleanup() {
    ac_ = nullptr;
    want_read_ = want_write_ = false;
    boost::system::error_code ec;
    sd_.cancel(ec);
    sd_.release();
    // The pending waits (cancelled) and the caller keep this object alive until they return.
    auto keep = std::move(self_);
    asio::post(sd_.get_executor(), [keep] {});
  }

  asio::posix::stream_descriptor sd_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<Conn> self_;  // while hiredis holds a pointer to this
  std::function<void()> up_;
  std::function<void(std::string)> down_;
  Reply sub_;
  std::string error_;
  bool connected_ = false;
  bool closing_ = false;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
};

// --- The broker ---

class RedisBroker final : public Broker {
 public:
  RedisBroker(core::Hub& hub, RedisOptions opts, core::Loader loader, Resolver resolve)
      : hub_(hub), opts_(std::move(opts)), loader_(std::move(loader)), resolve_(std::move(resolve)),
        guard_(asio::make_work_guard(io_)), heartbeat_(io_) {
    if (!parse_redis_url(opts_.url, addr_)) throw std::invalid_argument("invalid Redis URL: " + opts_.url);
    bus_ = opts_.prefix + ":bus";
    node_key_ = opts_.prefix + ":node:" + opts_.node;
    presence_key_ = opts_.prefix + ":presence:" + opts_.node;
    // A publication past a hole waits fill_delay for the missing ones before the store is asked.
    hub_.enable_gap_fill([this](const std::string& name, std::size_t history, std::size_t bytes,
                                std::function<void(core::ChannelSnapshot)> done) {
      asio::post(io_, [this, name, history, bytes, done = std::move(done)]() mutable {
        auto t = std::make_shared<asio::steady_timer>(io_, opts_.fill_delay);
        t->async_wait([this, t, name, history, bytes, done = std::move(done)](boost::system::error_code) mutable {
          ++fills_;
          loader_(name, history, bytes, std::move(done));
        });
      });
    });
    hub_.set_member_observer([this](const std::string& ch, const core::Member& m, bool joined, std::string_view action) {
      asio::post(io_, [this, ch, m, joined, action = std::string(action)] { on_local_member(ch, m, joined, action); });
    });
    // PubNub signals are not stored: they cross nodes on the bus only (lost if Redis is down meanwhile).
    hub_.set_signal_observer([this](const std::string& ch, const core::PublicationPtr& sig) {
      std::string msg;
      put(msg, "S");
      put(msg, opts_.node);
      put(msg, ch);
      put(msg, *sig, false);
      asio::post(io_, [this, msg = std::move(msg)] {
        if (cmd_ && cmd_->up()) cmd_->command({"PUBLISH", bus_, msg});
      });
    });
  }

  ~RedisBroker() override { stop(); }

  void start() override {
    thread_ = std::thread([this] { io_.run(); });
    asio::post(io_, [this] {
      connect(true);
      connect(false);
      tick();
    });
  }

  void publish(const std::string& channel, core::PublicationPtr pub) override {
    hub_.deliver_committed(channel, pub);
    std::string msg;
    put(msg, "P");
    put(msg, opts_.node);
    put(msg, channel);
    put(msg, *pub, true);
    asio::post(io_, [this, msg = std::move(msg)]() mutable { send_publication(std::move(msg)); });
  }

  void stop() override {
    if (!thread_.joinable()) return;
    std::promise<void> closed;
    asio::post(io_, [this, &closed] {
      stopping_ = true;
      heartbeat_.cancel();
      if (cmd_ && cmd_->up()) {
        // Our members leave everywhere at once (an E with nothing re-announced), instead of timing out.
        ++gen_;
        std::string e;
        put(e, "E");
        put(e, opts_.node);
        put(e, gen_);
        cmd_->command({"PUBLISH", bus_, e});
        cmd_->command({"DEL", node_key_, presence_key_});
        cmd_->close();  // after the replies of everything sent
      }
      if (sub_) sub_->close();
      closed.set_value();
    });
    closed.get_future().wait();
    // close() lets hiredis finish what it sent; give it a moment, then stop the loop whatever happens.
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::promise<bool> idle;
      asio::post(io_, [this, &idle] { idle.set_value(!(cmd_ && cmd_->up()) && !(sub_ && sub_->up())); });
      if (idle.get_future().get()) break;
      std::this_thread::sleep_for(10ms);
    }
    std::promise<void> killed;
    asio::post(io_, [this, &killed] {
      if (cmd_) cmd_->kill();
      if (sub_) sub_->kill();
      killed.set_value();
    });
    killed.get_future().wait();
    guard_.reset();
    io_.stop();
    thread_.join();
    // Handlers still queued hold the connections: run them here (stopping_ makes them do nothing).
    cmd_.reset();
    sub_.reset();
    io_.restart();
    io_.poll();
    spdlog::info("redis broker: stopped ({} publications sent, {} reads from the store to fill gaps)", published_,
                 fills_.load());
  }

 private:
  struct Mirrored {
    core::ChannelRef channel;  // kept in memory while the member is mirrored
    std::uint64_t no = 0;   // the member's session number in this hub
    std::uint64_t gen = 0;  // the announcement round that last named it
  };
  struct RemoteNode {
    std::map<std::pair<std::string, std::uint64_t>, Mirrored> members;  // (channel, its session no) -> ...
    bool checking = false;
  };

  // --- Connections ---

  std::vector<std::string> auth_command() const {
    if (addr_.user.empty()) return {"AUTH", addr_.password};
    return {"AUTH", addr_.user, addr_.password};
  }

  // Opens the command connection (`cmd`) or the subscriber one; retry() opens it again when it fails or is lost.
  void connect(bool cmd) {
    if (stopping_) return;
    auto& conn = cmd ? cmd_ : sub_;
    conn = std::make_shared<Conn>(io_);
    // The callbacks live in the connection: they name it by address, never by a shared_ptr (a cycle).
    Conn* c = conn.get();
    const bool ok = c->open(
        addr_.host, addr_.port,
        [this, c, cmd] {
          if (!addr_.password.empty()) c->command(auth_command(), log_error("AUTH"));
          (cmd ? cmd_backoff_ : sub_backoff_) = kMinBackoff;
          if (!cmd) {
            c->subscribe(bus_, [this, c](redisReply* r) {
              if (sub_.get() == c && r) on_bus(r);
            });
            return;
          }
          // Pub/sub channels span databases: only the command connection selects one.
          if (addr_.db != 0) c->command({"SELECT", std::to_string(addr_.db)}, log_error("SELECT"));
          spdlog::info("redis broker: connected to {}:{} as node {}", addr_.host, addr_.port, opts_.node);
          on_cmd_up();
        },
        [this, c, cmd](std::string why) {
          if ((cmd ? cmd_ : sub_).get() != c) return;
          spdlog::warn("redis broker: {} lost: {}", cmd ? "command connection" : "subscription", why);
          retry(cmd);
        });
    if (!ok) {
      spdlog::warn("redis broker: cannot connect to {}:{}: {}", addr_.host, addr_.port, c->error());
      retry(cmd);
    }
  }

  // Reconnects after a growing delay (with jitter, so that nodes do not all come back at once).
  void retry(bool cmd) {
    if (stopping_) return;
    auto& backoff = cmd ? cmd_backoff_ : sub_backoff_;
    const auto delay = backoff + std::chrono::milliseconds(std::rand() % (backoff.count() / 2 + 1));
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
    auto t = std::make_shared<asio::steady_timer>(io_, delay);
    t->async_wait([this, t, cmd](boost::system::error_code) { connect(cmd); });
  }

  Conn::Reply log_error(std::string what) {
    return [what = std::move(what)](redisReply* r) {
      if (r && r->type == REDIS_REPLY_ERROR) spdlog::error("redis broker: {}: {}", what, std::string(r->str, r->len));
    };
  }

  void on_cmd_up() {
    renew();
    // What could not be sent while disconnected, in order; then, if some of it was lost, everyone reloads.
    auto queued = std::move(outbox_);
    outbox_.clear();
    for (auto& m : queued) send_publication(std::move(m));
    if (lost_) announce_lost();
    announce_all();
    if (hello_pending_) send_hello();
  }

  // --- Publications ---

  void send_publication(std::string msg) {
    if (!cmd_ || !cmd_->up()) {
      if (outbox_.size() >= kMaxOutbox) {
        outbox_.pop_front();
        lost_ = true;
      }
      outbox_.push_back(std::move(msg));
      return;
    }
    if (inflight_ >= kMaxInflight) {
      lost_ = true;
      return;
    }
    ++inflight_;
    ++published_;
    cmd_->command({"PUBLISH", bus_, std::move(msg)}, [this](redisReply* r) {
      --inflight_;
      // No answer: it may not have reached Redis. The others reload from the store once told.
      if (!r || r->type == REDIS_REPLY_ERROR) lost_ = true;
      if (lost_ && inflight_ == 0 && cmd_ && cmd_->up()) announce_lost();
    });
  }

  void announce_lost() {
    lost_ = false;
    std::string m;
    put(m, "R");
    put(m, opts_.node);
    cmd_->command({"PUBLISH", bus_, m});
  }

  // --- The bus ---

  void on_bus(redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string_view kind(r->element[0]->str, r->element[0]->len);
    if (kind == "subscribe") {
      on_subscribed();
      return;
    }
    if (kind != "message") return;
    const redisReply* payload = r->element[2];
    if (payload->type != REDIS_REPLY_STRING) return;
    Fields f(std::string_view(payload->str, payload->len));
    std::string_view type, node;
    if (!f.next(type) || !f.next(node) || node == opts_.node) return;
    if (type == "P" || type == "S") {
      on_publication(f, type == "P");
    } else if (type == "J") {
      on_join(std::string(node), f);
    } else if (type == "L") {
      on_leave(std::string(node), f);
    } else if (type == "E") {
      std::uint64_t gen = 0;
      if (f.next(gen)) on_end(std::string(node), gen);
    } else if (type == "H") {
      announce_all();
    } else if (type == "R") {
      spdlog::info("redis broker: node {} lost publications; reloading channels", node);
      hub_.resync_all();
    }
  }

  // Subscribed (again): whatever was published meanwhile is read from the store, and every node tells us
  // who is present.
  void on_subscribed() {
    const auto n = hub_.resync_all();
    spdlog::info("redis broker: subscribed to {}; reloading {} channels", bus_, n);
    send_hello();
  }

  void send_hello() {
    hello_pending_ = !cmd_ || !cmd_->up();
    if (hello_pending_) return;
    std::string h;
    put(h, "H");
    put(h, opts_.node);
    cmd_->command({"PUBLISH", bus_, h});
  }

  // P (committed) or S (a signal) from another node.
  void on_publication(Fields& f, bool committed) {
    std::string_view channel;
    auto p = std::make_shared<core::Publication>();
    if (!f.next(channel) || !f.next(*p, committed)) return;
    if (committed) {
      hub_.deliver_committed(channel, std::move(p));
    } else {
      hub_.deliver_signal(channel, std::move(p));
    }
  }

  // --- Presence ---

  static std::string field_of(const std::string& channel, std::uint64_t no) {
    return channel + "\n" + std::to_string(no);
  }

  std::string join_message(const std::string& channel, const core::Member& m) const {
    std::string j;
    put(j, "J");
    put(j, opts_.node);
    put(j, gen_);
    put(j, channel);
    put(j, m.session_no);
    put(j, m.session);
    put(j, m.user);
    put(j, m.info);
    return j;
  }

  std::string member_value(const core::Member& m) const {
    std::string v;
    put(v, m.session);
    put(v, m.user);
    put(v, m.info);
    return v;
  }

  void on_local_member(const std::string& channel, const core::Member& m, bool joined, const std::string& action) {
    const auto key = std::make_pair(channel, m.session_no);
    if (joined) {
      local_[key] = m;
    } else {
      local_.erase(key);
    }
    if (!cmd_ || !cmd_->up()) return;  // re-announced in full once connected
    if (joined) {
      cmd_->command({"HSET", presence_key_, field_of(channel, m.session_no), member_value(m)});
      cmd_->command({"PUBLISH", bus_, join_message(channel, m)});
    } else {
      cmd_->command({"HDEL", presence_key_, field_of(channel, m.session_no)});
      std::string l;
      put(l, "L");
      put(l, opts_.node);
      put(l, channel);
      put(l, m.session_no);
      put(l, action);
      cmd_->command({"PUBLISH", bus_, l});
    }
  }

  // Tells every node all of our members, then E: they drop mirrored members of ours not named since.
  void announce_all() {
    if (!cmd_ || !cmd_->up()) return;
    ++gen_;
    cmd_->command({"DEL", presence_key_});
    for (const auto& [key, m] : local_) {
      cmd_->command({"HSET", presence_key_, field_of(key.first, key.second), member_value(m)});
      cmd_->command({"PUBLISH", bus_, join_message(key.first, m)});
    }
    cmd_->command({"PEXPIRE", presence_key_, std::to_string(opts_.presence_ttl.count())});
    std::string e;
    put(e, "E");
    put(e, opts_.node);
    put(e, gen_);
    cmd_->command({"PUBLISH", bus_, e});
  }

  void on_join(const std::string& node, Fields& f) {
    std::uint64_t gen = 0, no = 0;
    std::string_view channel, session, user, info;
    if (!f.next(gen) || !f.next(channel) || !f.next(no) || !f.next(session) || !f.next(user) || !f.next(info)) return;
    core::ChannelRef ch = resolve_(channel);
    if (!ch) return;
    auto& mirrored = nodes_[node].members[{std::string(channel), no}];
    if (mirrored.no == 0) {
      mirrored.no = next_remote_++;
      mirrored.channel = ch;
    }
    mirrored.gen = gen;
    core::Member m;
    m.session_no = mirrored.no;
    m.session = session;
    m.user = user;
    m.info = info;
    m.remote = true;
    hub_.join(*ch, m);
  }

  void on_leave(const std::string& node, Fields& f) {
    std::string_view channel, action;
    std::uint64_t no = 0;
    if (!f.next(channel) || !f.next(no) || !f.next(action)) return;
    auto n = nodes_.find(node);
    if (n == nodes_.end()) return;
    auto it = n->second.members.find({std::string(channel), no});
    if (it == n->second.members.end()) return;
    hub_.leave(*it->second.channel, it->second.no, action == "timeout" ? "timeout" : "leave");
    n->second.members.erase(it);
  }

  void on_end(const std::string& node, std::uint64_t gen) {
    auto n = nodes_.find(node);
    if (n == nodes_.end()) return;
    auto& members = n->second.members;
    for (auto it = members.begin(); it != members.end();) {
      if (it->second.gen < gen) {
        hub_.leave(*it->second.channel, it->second.no, "leave");
        it = members.erase(it);
      } else {
        ++it;
      }
    }
  }

  // A node that stopped renewing its liveness key crashed: its members time out, and what it may have
  // committed without publishing is read from the store.
  void node_gone(const std::string& node) {
    auto n = nodes_.find(node);
    if (n == nodes_.end()) return;
    spdlog::warn("redis broker: node {} is gone; its {} members time out", node, n->second.members.size());
    for (auto& [key, m] : n->second.members) hub_.leave(*m.channel, m.no, "timeout");
    if (cmd_ && cmd_->up()) cmd_->command({"DEL", opts_.prefix + ":presence:" + node});
    nodes_.erase(n);
    hub_.resync_all();
  }

  // Every third of the time-to-live: renew ours, check theirs.
  void tick() {
    if (stopping_) return;
    renew();
    if (cmd_ && cmd_->up()) {
      for (auto& [name, n] : nodes_) {
        if (n.checking) continue;
        n.checking = true;
        cmd_->command({"EXISTS", opts_.prefix + ":node:" + name}, [this, name = name](redisReply* r) {
          auto it = nodes_.find(name);
          if (it == nodes_.end()) return;
          it->second.checking = false;
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) node_gone(name);
        });
      }
    }
    heartbeat_.expires_after(std::max<std::chrono::milliseconds>(opts_.presence_ttl / 3, 100ms));
    heartbeat_.async_wait([this](boost::system::error_code ec) {
      if (!ec) tick();
    });
  }

  void renew() {
    if (!cmd_ || !cmd_->up()) return;
    const std::string ttl = std::to_string(opts_.presence_ttl.count());
    cmd_->command({"SET", node_key_, "1", "PX", ttl}, log_error("SET liveness"));
    if (!local_.empty()) cmd_->command({"PEXPIRE", presence_key_, ttl});
  }

  core::Hub& hub_;
  const RedisOptions opts_;
  core::Loader loader_;
  Resolver resolve_;
  RedisAddress addr_;
  std::string bus_, node_key_, presence_key_;

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  asio::steady_timer heartbeat_;

  // Loop-thread state.
  std::shared_ptr<Conn> cmd_, sub_;
  std::chrono::milliseconds cmd_backoff_{kMinBackoff}, sub_backoff_{kMinBackoff};
  std::deque<std::string> outbox_;
  std::size_t inflight_ = 0;
  bool lost_ = false;
  bool stopping_ = false;
  bool hello_pending_ = false;
  std::uint64_t gen_ = 0;
  std::map<std::pair<std::string, std::uint64_t>, core::Member> local_;  // (channel, session no)
  std::map<std::string, RemoteNode> nodes_;
  std::uint64_t next_remote_ = kRemoteSessionBase;
  std::uint64_t published_ = 0;           // PUBLISHes of publications sent
  std::atomic<std::uint64_t> fills_{0};   // gap fills and resyncs that read the store
};

}  // namespace

std::unique_ptr<Broker> make_redis(core::Hub& hub, const RedisOptions& opts, core::Loader loader, Resolver resolve) {
  return std::make_unique<RedisBroker>(hub, opts, std::move(loader), std::move(resolve));
}

}  // namespace rtsync::broker
