// The Redis broker: several rtsync nodes on one Redis (docs/scaling.md). It runs on its own thread, an
// Asio loop with two connections (redis_connection.hpp): `cmd` sends commands (PUBLISH, the liveness and
// presence keys), `sub` is subscribed to the cluster's bus channel PREFIX:bus, where every node publishes
// what the others must know (the messages: bus_codec.hpp). Nothing here blocks an I/O thread or the store's:
// they only post to this loop.
//
// Losing Redis loses no acknowledged publication: publications are committed in the store before they are
// published here. While disconnected, a node queues what it publishes (bounded); whoever reconnects
// reloads its loaded channels from the store (resync()), so subscribers catch up in order.
//
// Presence: each node renews PREFIX:node:NAME (with a time-to-live of presence_ttl) every third of it,
// and keeps its members in the hash PREFIX:presence:NAME (same time-to-live), for operators. Every node
// mirrors the members of the others in its own hub (Member::remote), so presence reads stay local and
// synchronous; a node whose liveness key expired (it crashed) has its mirrored members time out.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "broker/broker.hpp"

#include "core/hub.hpp"
#include "broker/bus_codec.hpp"
#include "broker/redis_connection.hpp"

namespace rtsync::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Publications queued while Redis is unreachable; past this the oldest are dropped and everyone
// reloads from the store once connected again.
constexpr std::size_t kMaxOutbox = 100000;
// PUBLISHes sent and not answered yet: past this Redis is not keeping up; the rest is dropped the same way.
constexpr std::size_t kMaxInflight = 100000;
// Mirrored members of other nodes are numbered from here, apart from this node's sessions.
constexpr std::uint64_t kRemoteSessionBase = std::uint64_t{1} << 62;

RedisAddress parse_or_throw(const std::string& url) {
  RedisAddress a;
  if (!parse_redis_url(url, a)) throw std::invalid_argument("invalid Redis URL: " + url);
  return a;
}

class RedisBroker final : public Broker {
 public:
  RedisBroker(core::Hub& hub, RedisOptions opts, core::Loader loader, Resolver resolve)
      : hub_(hub), opts_(std::move(opts)), loader_(std::move(loader)), resolve_(std::move(resolve)),
        addr_(parse_or_throw(opts_.url)), bus_(opts_.prefix + ":bus"), node_key_(opts_.prefix + ":node:" + opts_.node),
        presence_key_(opts_.prefix + ":presence:" + opts_.node), guard_(asio::make_work_guard(io_)), heartbeat_(io_),
        cmd_(io_, addr_, "command connection"), sub_(io_, addr_, "subscription") {}

  ~RedisBroker() override { stop(); }

  void start() override {
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
    observe(hub_);
    thread_ = std::thread([this] { io_.run(); });
    asio::post(io_, [this] {
      cmd_.open([this] { on_cmd_up(); });
      sub_.subscribe(bus_, [this] { on_subscribed(); }, [this](std::string_view m) { on_bus(m); });
      tick();
    });
  }

  void publish(const std::string& channel, core::PublicationPtr pub) override {
    hub_.deliver_committed(channel, pub);
    std::string msg = bus::encode(opts_.node, bus::Publication{channel, std::move(pub)});
    asio::post(io_, [this, msg = std::move(msg)]() mutable { send_publication(std::move(msg)); });
  }

  void member(const std::string& channel, const core::Member& m, bool joined, std::string_view action) override {
    asio::post(io_, [this, channel, m, joined, action = std::string(action)] {
      on_local_member(channel, m, joined, action);
    });
  }

  // Not queued while disconnected: signals are transient (see broker.hpp).
  void signal(const std::string& channel, const core::PublicationPtr& sig) override {
    std::string msg = bus::encode(opts_.node, bus::Signal{channel, sig});
    asio::post(io_, [this, msg = std::move(msg)] { cmd_.command({"PUBLISH", bus_, msg}); });
  }

  std::size_t resync() override { return hub_.resync_all(); }

  // Not queued while disconnected, like signals (see broker.hpp).
  void erase(const std::string& channel, std::uint64_t after, std::uint64_t until) override {
    hub_.erase(channel, after, until);
    std::string msg = bus::encode(opts_.node, bus::Erased{channel, after, until});
    asio::post(io_, [this, msg = std::move(msg)] { cmd_.command({"PUBLISH", bus_, msg}); });
  }

  void stop() override {
    if (!thread_.joinable()) return;
    std::promise<void> closed;
    asio::post(io_, [this, &closed] {
      stopping_ = true;
      heartbeat_.cancel();
      if (cmd_.up()) {
        // Our members leave everywhere at once (an E with nothing re-announced), instead of timing out.
        cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::End{++round_})});
        cmd_.command({"DEL", node_key_, presence_key_});
      }
      cmd_.close();  // after the replies of everything sent
      sub_.close();
      closed.set_value();
    });
    closed.get_future().wait();
    // close() lets hiredis finish what it sent; give it a moment, then stop the loop whatever happens.
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::promise<bool> idle;
      asio::post(io_, [this, &idle] { idle.set_value(cmd_.closed() && sub_.closed()); });
      if (idle.get_future().get()) break;
      std::this_thread::sleep_for(10ms);
    }
    std::promise<void> killed;
    asio::post(io_, [this, &killed] {
      cmd_.kill();
      sub_.kill();
      killed.set_value();
    });
    killed.get_future().wait();
    guard_.reset();
    io_.stop();
    thread_.join();
    // Handlers still queued hold the hiredis contexts: run them here (stopping_ makes them do nothing).
    io_.restart();
    io_.poll();
    spdlog::info("redis broker: stopped ({} publications sent, {} reads from the store to fill gaps)", published_,
                 fills_.load());
  }

 private:
  struct Mirrored {
    core::ChannelRef channel;  // kept in memory while the member is mirrored
    std::uint64_t no = 0;      // the member's session number in this hub
    std::uint64_t round = 0;   // the announcement round that last named it
  };
  struct RemoteNode {
    std::map<std::pair<std::string, std::uint64_t>, Mirrored> members;  // (channel, its session no) -> ...
    bool checking = false;
  };

  void on_cmd_up() {
    spdlog::info("redis broker: connected to {}:{} as node {}", addr_.host, addr_.port, opts_.node);
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
    if (!cmd_.up()) {
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
    cmd_.command({"PUBLISH", bus_, std::move(msg)}, [this](const redisReply* r) {
      --inflight_;
      // No answer: it may not have reached Redis. The others reload from the store once told.
      if (!r || r->type == REDIS_REPLY_ERROR) lost_ = true;
      if (lost_ && inflight_ == 0 && cmd_.up()) announce_lost();
    });
  }

  void announce_lost() {
    lost_ = false;
    cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::Lost{})});
  }

  // --- The bus ---

  void on_bus(std::string_view payload) {
    auto msg = bus::decode(payload);
    if (!msg || msg->node == opts_.node) return;
    const std::string& node = msg->node;
    if (auto* p = std::get_if<bus::Publication>(&msg->body)) {
      hub_.deliver_committed(p->channel, std::move(p->pub));
    } else if (auto* s = std::get_if<bus::Signal>(&msg->body)) {
      hub_.deliver_transient(s->channel, std::move(s->signal));
    } else if (auto* j = std::get_if<bus::Join>(&msg->body)) {
      on_join(node, *j);
    } else if (auto* l = std::get_if<bus::Leave>(&msg->body)) {
      on_leave(node, *l);
    } else if (auto* e = std::get_if<bus::End>(&msg->body)) {
      on_end(node, e->round);
    } else if (auto* d = std::get_if<bus::Erased>(&msg->body)) {
      hub_.erase(d->channel, d->after, d->until);
    } else if (std::holds_alternative<bus::Hello>(msg->body)) {
      announce_all();
    } else if (std::holds_alternative<bus::Lost>(msg->body)) {
      spdlog::info("redis broker: node {} lost publications; reloading channels", node);
      resync();
    }
  }

  // Subscribed (again): whatever was published meanwhile is read from the store, every node tells us who
  // is present, and we tell them who is present here. Each is needed: a node that subscribed just before
  // us sent its hello before we could hear it, and may have missed our announcements, made before it
  // subscribed; whichever of two nodes subscribes last then announces to the other.
  void on_subscribed() {
    const auto n = resync();
    spdlog::info("redis broker: subscribed to {}; reloading {} channels", bus_, n);
    send_hello();
    announce_all();
  }

  void send_hello() {
    hello_pending_ = !cmd_.up();
    if (!hello_pending_) cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::Hello{})});
  }

  // --- Presence ---

  void on_local_member(const std::string& channel, const core::Member& m, bool joined, const std::string& action) {
    const auto key = std::make_pair(channel, m.session_no);
    if (joined) {
      local_[key] = m;
    } else {
      local_.erase(key);
    }
    if (!cmd_.up()) return;  // re-announced in full once connected
    const std::string field = bus::presence_field(channel, m.session_no);
    if (joined) {
      cmd_.command({"HSET", presence_key_, field, bus::presence_value(m)});
      cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::Join{round_, channel, m})});
    } else {
      cmd_.command({"HDEL", presence_key_, field});
      cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::Leave{channel, m.session_no, action})});
    }
  }

  // Tells every node all of our members, then E: they drop mirrored members of ours not named since.
  void announce_all() {
    if (!cmd_.up()) return;
    ++round_;
    cmd_.command({"DEL", presence_key_});
    for (const auto& [key, m] : local_) {
      cmd_.command({"HSET", presence_key_, bus::presence_field(key.first, key.second), bus::presence_value(m)});
      cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::Join{round_, key.first, m})});
    }
    cmd_.command({"PEXPIRE", presence_key_, std::to_string(opts_.presence_ttl.count())});
    cmd_.command({"PUBLISH", bus_, bus::encode(opts_.node, bus::End{round_})});
  }

  void on_join(const std::string& node, const bus::Join& j) {
    core::ChannelRef ch = resolve_(j.channel);
    if (!ch) return;
    auto& mirrored = nodes_[node].members[{j.channel, j.member.session_no}];
    if (mirrored.no == 0) {
      mirrored.no = next_remote_++;
      mirrored.channel = ch;
    }
    mirrored.round = j.round;
    core::Member m = j.member;
    m.session_no = mirrored.no;
    m.remote = true;
    hub_.presence().join(*ch, m);
  }

  void on_leave(const std::string& node, const bus::Leave& l) {
    auto n = nodes_.find(node);
    if (n == nodes_.end()) return;
    auto it = n->second.members.find({l.channel, l.session_no});
    if (it == n->second.members.end()) return;
    hub_.presence().leave(*it->second.channel, it->second.no, l.action);
    n->second.members.erase(it);
  }

  void on_end(const std::string& node, std::uint64_t round) {
    auto n = nodes_.find(node);
    if (n == nodes_.end()) return;
    auto& members = n->second.members;
    for (auto it = members.begin(); it != members.end();) {
      if (it->second.round < round) {
        hub_.presence().leave(*it->second.channel, it->second.no, "leave");
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
    for (auto& [key, m] : n->second.members) hub_.presence().leave(*m.channel, m.no, "timeout");
    cmd_.command({"DEL", opts_.prefix + ":presence:" + node});
    nodes_.erase(n);
    resync();
  }

  // --- Liveness ---

  // Every third of the time-to-live: renew ours, check theirs.
  void tick() {
    if (stopping_) return;
    renew();
    if (cmd_.up()) {
      for (auto& [name, n] : nodes_) {
        if (n.checking) continue;
        n.checking = true;
        cmd_.command({"EXISTS", opts_.prefix + ":node:" + name}, [this, name = name](const redisReply* r) {
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
    if (!cmd_.up()) return;
    const std::string ttl = std::to_string(opts_.presence_ttl.count());
    cmd_.command({"SET", node_key_, "1", "PX", ttl}, log_error("SET liveness"));
    if (!local_.empty()) cmd_.command({"PEXPIRE", presence_key_, ttl});
  }

  core::Hub& hub_;
  const RedisOptions opts_;
  core::Loader loader_;
  Resolver resolve_;
  const RedisAddress addr_;
  const std::string bus_, node_key_, presence_key_;

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  asio::steady_timer heartbeat_;

  // Loop-thread state.
  RedisConnection cmd_, sub_;
  std::deque<std::string> outbox_;
  std::size_t inflight_ = 0;
  bool lost_ = false;
  bool stopping_ = false;
  bool hello_pending_ = false;
  std::uint64_t round_ = 0;
  std::map<std::pair<std::string, std::uint64_t>, core::Member> local_;  // (channel, session no)
  std::map<std::string, RemoteNode> nodes_;
  std::uint64_t next_remote_ = kRemoteSessionBase;
  std::uint64_t published_ = 0;          // PUBLISHes of publications sent
  std::atomic<std::uint64_t> fills_{0};  // gap fills and resyncs that read the store
};

}  // namespace

std::unique_ptr<Broker> make_redis(core::Hub& hub, const RedisOptions& opts, core::Loader loader, Resolver resolve) {
  return std::make_unique<RedisBroker>(hub, opts, std::move(loader), std::move(resolve));
}

}  // namespace rtsync::broker
