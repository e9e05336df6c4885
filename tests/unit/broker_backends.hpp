// The broker backends the broker contract suite runs on (value-parameterized by backend name), and a
// cluster of test nodes on one of them: each node is a Hub with one recording sink and that backend's
// broker, and all nodes share one store (SQLite on a fresh file), so that they agree on offsets as the
// nodes of a real cluster do on PostgreSQL. The local backend has one node, the Redis one two, each
// reaching the test Redis server through a Proxy of its own (broker_proxy.hpp), with its own node name
// and a key prefix of the test's own. The Redis server is real: ctest starts it (tests/cluster/redis.sh,
// fixture `redis`) and names its directory in RTSYNC_TEST_REDIS_DIR. It is never skipped: without it
// the Redis tests fail.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "broker_proxy.hpp"
#include "common/random.hpp"
#include "core/hub.hpp"
#include "service/pubnub_presence.hpp"
#include "service/pubnub_views.hpp"
#include "store/store.hpp"

namespace rtsync::broker::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// What a hub handed to its sink: a publication (its data), a presence push (its op) or a signal (its data).
struct Seen {
  core::Delivery::Kind kind;
  std::string channel;
  std::uint64_t offset = 0;
  std::string text;
};

class Sink final : public core::DeliverySink {
 public:
  void deliver(core::Delivery d) override {
    Seen s{d.kind, d.channel->name(), d.offset, {}};
    s.text = d.kind == core::Delivery::Kind::presence ? d.frame->bytes : d.pub->data;
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(s));
  }
  std::vector<Seen> seen(core::Delivery::Kind kind, const std::string& channel) {
    std::lock_guard lock(mu_);
    std::vector<Seen> out;
    for (const auto& s : seen_)
      if (s.kind == kind && s.channel == channel) out.push_back(s);
    return out;
  }
  std::vector<std::uint64_t> offsets(const std::string& channel) {
    std::vector<std::uint64_t> out;
    for (const auto& s : seen(core::Delivery::Kind::publication, channel)) out.push_back(s.offset);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Seen> seen_;
};

// Polls `pred` until it holds, for at most `limit`.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Presence feeds in memory (as service::Channels makes them), everything else durable.
inline core::NamespaceOptions options_for(std::string_view name) {
  core::NamespaceOptions o;
  o.history_size = 100;
  o.durable = !name.ends_with(core::presence_feed_suffix);
  return o;
}

inline core::FrameEncoder encoder() {
  core::FrameEncoder e;
  e.publication = [](const std::string&, const core::Publication&) { return std::make_shared<core::Frame>(); };
  e.presence = [](const std::string&, std::string_view op, const core::Member&) {
    auto f = std::make_shared<core::Frame>();
    f->bytes = op;
    return core::FramePtr(f);
  };
  return e;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::size_t nodes() const = 0;
  virtual std::unique_ptr<Broker> make(std::size_t node, core::Hub& hub, core::Loader loader, Resolver resolve) = 0;
};

class LocalBackend final : public Backend {
 public:
  std::size_t nodes() const override { return 1; }
  std::unique_ptr<Broker> make(std::size_t, core::Hub& hub, core::Loader, Resolver) override { return make_local(hub); }
};

// The test Redis server's port, from the fixture's directory.
inline unsigned short redis_port() {
  const char* dir = std::getenv("RTSYNC_TEST_REDIS_DIR");
  if (!dir || !*dir) {
    throw std::runtime_error("RTSYNC_TEST_REDIS_DIR is not set: run through ctest (fixture redis), or start one with "
                             "tests/cluster/redis.sh start DIR and set RTSYNC_TEST_REDIS_DIR=DIR");
  }
  std::ifstream in(fs::path(dir) / "url");
  std::string url;
  RedisAddress a;
  if (!std::getline(in, url) || !parse_redis_url(url, a)) throw std::runtime_error(std::string("no Redis test server in ") + dir);
  return static_cast<unsigned short>(a.port);
}

class RedisBackend final : public Backend {
 public:
  explicit RedisBackend(std::chrono::milliseconds presence_ttl = 15s) : ttl_(presence_ttl) {
    const unsigned short port = redis_port();
    for (std::size_t i = 0; i < nodes(); ++i) proxies_.push_back(std::make_unique<Proxy>(port));
  }
  std::size_t nodes() const override { return 2; }
  std::unique_ptr<Broker> make(std::size_t node, core::Hub& hub, core::Loader loader, Resolver resolve) override {
    RedisOptions o;
    o.url = "redis://127.0.0.1:" + std::to_string(proxies_[node]->port());
    o.node = "n" + std::to_string(node) + "-" + common::random_hex(3);
    o.presence_ttl = ttl_;
    o.prefix = prefix_;
    return make_redis(hub, o, std::move(loader), std::move(resolve));
  }
  // Node `node` loses Redis (its connections drop, new ones are refused), or gets it back.
  void cut(std::size_t node) { proxies_[node]->cut(); }
  void restore(std::size_t node) { proxies_[node]->restore(); }

 private:
  std::chrono::milliseconds ttl_;
  const std::string prefix_ = "t" + common::random_hex(4);  // this test's bus and keys
  std::vector<std::unique_ptr<Proxy>> proxies_;
};

inline std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "redis") return std::make_unique<RedisBackend>();
  return std::make_unique<LocalBackend>();
}

inline const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names{"local", "redis"};
  return names;
}

struct Node {
  Sink sink;
  std::unique_ptr<core::Hub> hub;
  std::unique_ptr<service::PubnubViews> views;  // PubNub's signals, as the engine builds them
  std::unique_ptr<Broker> broker;
  std::vector<core::ChannelRef> held;  // subscribed channels stay loaded
};

// The nodes of `backend`, started, on one store; stopped and closed in the order the server does.
class Cluster {
 public:
  explicit Cluster(Backend& backend) : dir_(fs::temp_directory_path() / ("rtsync-broker-test-" + common::random_hex(6))) {
    fs::create_directories(dir_);
    store_ = store::open_sqlite(store::SqliteOptions{dir_ / "rtsync.db", "normal"});
    const core::Loader loader = [s = store_.get()](const std::string& name, std::size_t history, std::size_t bytes,
                                                    std::function<void(core::ChannelSnapshot)> done) {
      s->load(name, history, bytes, std::move(done));
    };
    for (std::size_t i = 0; i < backend.nodes(); ++i) {
      auto n = std::make_unique<Node>();
      n->hub = std::make_unique<core::Hub>(1, encoder(), loader, service::pubnub_feed_event);
      n->hub->attach(0, &n->sink);
      n->views = std::make_unique<service::PubnubViews>(*n->hub);
      core::Hub* hub = n->hub.get();
      n->broker = backend.make(i, *hub, loader, [hub](std::string_view name) { return hub->channel(name, options_for(name)); });
      n->broker->start();
      nodes_.push_back(std::move(n));
    }
  }
  ~Cluster() {
    for (auto& n : nodes_) n->broker->stop();
    store_->close();
    nodes_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::size_t size() const { return nodes_.size(); }
  Node& operator[](std::size_t i) { return *nodes_.at(i); }
  core::Hub& hub(std::size_t i) { return *nodes_.at(i)->hub; }

  // Loads `channel` on node `i` and subscribes its sink.
  core::Channel& subscribe(std::size_t i, const std::string& channel) {
    Node& n = *nodes_.at(i);
    core::ChannelRef ch = n.hub->channel(channel, options_for(channel));
    std::promise<bool> loaded;
    if (n.hub->ready_or_wait(*ch, [&loaded](bool ok) { loaded.set_value(ok); })) loaded.set_value(true);
    EXPECT_TRUE(loaded.get_future().get());
    n.hub->subscribe(*ch, 0, std::nullopt, "u", nullptr, false);
    n.held.push_back(ch);
    return *ch;
  }

  struct Published {
    std::uint64_t offset = 0;
    bool delivered_before_return = false;  // node i's sink had it when publish() returned
  };
  // Commits a publication in the store and hands it to node `i`'s broker, as the services do.
  Published publish(std::size_t i, const std::string& channel, const std::string& data) {
    Node& n = *nodes_.at(i);
    return commit(channel, data, [&n, channel](const core::PublicationPtr& pub) {
      n.broker->publish(channel, pub);
      for (auto o : n.sink.offsets(channel))
        if (o == pub->offset) return true;
      return false;
    });
  }
  // Commits a publication that no broker is told of, as when its broker message was lost.
  std::uint64_t commit_only(const std::string& channel, const std::string& data) {
    return commit(channel, data, [](const core::PublicationPtr&) { return false; }).offset;
  }

  // Returns once every node hears every other one (their brokers are connected): a probe member joined on
  // each node is seen on all of them, then leaves everywhere.
  void link() {
    for (std::size_t i = 0; i < size(); ++i) {
      core::Member m{900 + i, "probe-" + std::to_string(i), "probe-" + std::to_string(i)};
      hub(i).presence().join(*probe(i), m);
    }
    for (std::size_t j = 0; j < size(); ++j)
      ASSERT_TRUE(eventually([&] { return hub(j).presence().of(*probe(j)).sessions == size(); })) << "node " << j;
    for (std::size_t i = 0; i < size(); ++i) hub(i).presence().leave(*probe(i), 900 + i, "leave");
    for (std::size_t j = 0; j < size(); ++j)
      ASSERT_TRUE(eventually([&] { return hub(j).presence().of(*probe(j)).sessions == 0; })) << "node " << j;
  }

 private:
  core::ChannelRef probe(std::size_t i) { return hub(i).channel("probe", options_for("probe")); }

  Published commit(const std::string& channel, const std::string& data,
                   std::function<bool(const core::PublicationPtr&)> hand_over) {
    store::AppendRequest req;
    req.channel = channel;
    req.data = data;
    req.from = "alice";
    req.ts = 1700000000000;
    req.history_size = 100;
    std::promise<Published> done;
    store_->append(std::move(req), [&](store::AppendResult r) {
      Published p;
      if (r.ok) {
        p.offset = r.pub->offset;
        p.delivered_before_return = hand_over(r.pub);
      }
      done.set_value(p);
    });
    Published p = done.get_future().get();
    EXPECT_NE(p.offset, 0u) << "append failed";
    return p;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace rtsync::broker::testing
