// The Broker seam: how a committed publication reaches every node's hub. The local broker (the default)
// hands it straight to this process's hub; the Redis broker (broker_redis.cpp) lets several nodes behind a
// load balancer behave as one server (docs/scaling.md): publications cross nodes with their offsets and
// timetokens, and presence members are shared, with a time-to-live per node.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/hub.hpp"
#include "core/publication.hpp"

namespace rtsync::broker {

class Broker {
 public:
  virtual ~Broker() = default;
  // Delivers a publication the store committed to the hubs of every node, this one included. Called from
  // the store's thread in commit order; this node's hub receives it before publish() returns, so the
  // publisher's ack (sent after) never overtakes its own message. Other nodes receive it later, and per
  // channel possibly out of order or not at all (a lost broker message): their hubs fill such gaps from
  // the store (core/hub.hpp), so delivery stays gap-free and in offset order everywhere.
  virtual void publish(const std::string& channel, core::PublicationPtr pub) = 0;
  // Starts talking to the other nodes (connects); the server calls it once its hub's sinks are attached.
  virtual void start() {}
  // Sends what is still queued (within a short deadline), withdraws this node's presence and disconnects.
  // Called at shutdown, after the store closed; publish() must not be called afterwards.
  virtual void stop() {}
};

std::unique_ptr<Broker> make_local(core::Hub& hub);

struct RedisOptions {
  std::string url;   // redis://[[user]:password@]host[:port][/db]
  std::string node;  // this node's name: unique within the cluster
  // A node that has not renewed its liveness key within this time is gone: its presence members time out
  // on every other node ([cluster] presence_ttl).
  std::chrono::milliseconds presence_ttl{15000};
  // How long a node waits for a publication that arrived out of order to be followed by the missing ones
  // before it reads them from the store (another node's message may simply be a little late).
  std::chrono::milliseconds fill_delay{50};
  std::string prefix = "rtsync";  // of every Redis key and channel: several clusters may share one Redis
};

// Finds or creates a hub channel by name (namespace resolution, service::Channels::resolve); null when the
// name is not valid on this node.
using Resolver = std::function<core::ChannelRef(std::string_view name)>;

// The Redis broker. `loader` reads a channel's snapshot from the store: the hub's gap filling (enabled
// here, with the member observer) uses it. Throws std::invalid_argument for a malformed URL; an
// unreachable Redis is not an error: the broker keeps trying, with backoff, and catches up once connected.
std::unique_ptr<Broker> make_redis(core::Hub& hub, const RedisOptions& opts, core::Loader loader, Resolver resolve);

// Parses a redis:// URL into its parts; false when malformed.
struct RedisAddress {
  std::string host;
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};
bool parse_redis_url(std::string_view url, RedisAddress& out);

}  // namespace rtsync::broker
