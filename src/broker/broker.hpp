// The Broker seam: what the nodes of a cluster share, and how it reaches each node's hub. The local broker
// (broker_local.cpp, the default) serves one node: this process's hub is every hub there is. The Redis
// broker (broker_redis.cpp) lets several nodes behind a load balancer behave as one server
// (docs/scaling.md).
//
// The contract has five parts: committed publications (publish), presence members (member), PubNub
// signals (signal), catching up from the store when a node may have missed publications (resync), and
// publications deleted from the store (erase).
// Publications come from the services once the store has committed them, so the services call publish().
// Members and signals start in the hub instead: a member joins in the same critical section as its
// subscription's snapshot (core::Hub::subscribe, core/presence.hpp), a signal is a transient publication
// that takes its timetoken under its channel's lock (core::Hub::transient), and every front end
// (WebSocket sessions, PubNub requests, the PubNub presence service) reaches them through the hub. So the
// hub reports them: start() installs the hub's member and transient observers (observe()), which call
// member() and signal() in the order the hub made the changes. The front ends stay unaware of the
// cluster, and the order of a channel's events stays the hub's. Publications of other nodes may reach a
// hub out of order or not at all; a broker for which they can (Redis) turns on the hub's gap filling in
// start() too (core/hub.hpp, core/sequencer.hpp): a setting of the hub, with the broker's delay before it
// reads the store, rather than a part of the contract.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/channel.hpp"
#include "core/publication.hpp"

namespace rtsync::core {
class Hub;
}

namespace rtsync::broker {

class Broker {
 public:
  virtual ~Broker() = default;

  // Delivers a publication the store committed to the hubs of every node, this one included. Called from
  // the store's thread in commit order; this node's hub receives it before publish() returns, so the
  // publisher's ack (sent after) never overtakes its own message (unless that hub still waits for an
  // earlier publication of another node, and holds this one back until it has it). Other nodes receive
  // it later, and per channel possibly out of order or not at all (a lost broker message): their hubs
  // fill such gaps from the store (core/hub.hpp), so delivery stays gap-free and in offset order
  // everywhere. Local: core::Hub::deliver_committed.
  virtual void publish(const std::string& channel, core::PublicationPtr pub) = 0;

  // A presence member of this node joined (`joined`, also when a member's data changed) or left (with
  // `action` "leave" or "timeout"). The hub calls it for its own members only (core::Member::remote
  // false), with the channel's lock held, from any thread, in the order of the channel's changes: it must
  // only queue, never block or call back into the hub. Every other node mirrors the member in its hub
  // (as remote) until it leaves here, this node stops (then it leaves), or this node has been unreachable
  // for presence_ttl (then it times out). Local: nothing to do, the hub has it.
  virtual void member(const std::string& channel, const core::Member& m, bool joined, std::string_view action) = 0;

  // A PubNub signal was sent on this node (core::Hub::transient, which delivered it here already). The
  // hub calls it under the same rules as member(). Every other node hands it to its hub
  // (core::Hub::deliver_transient) with its timetoken. Signals are not stored: one sent while the broker
  // cannot reach the others reaches this node only. Local: nothing to do.
  virtual void signal(const std::string& channel, const core::PublicationPtr& sig) = 0;

  // This node may have missed publications: every durable channel its hub has loaded is read from the
  // store, and what the hub lacks is delivered in offset order after what it has (core::Hub::resync_all).
  // The Redis broker calls it itself whenever its subscription is (re)established, another node reports
  // publications it could not send, or another node is gone (it may have committed publications it never
  // published). Any thread; it returns once the reads are queued (they complete on the store's thread),
  // with their number. Local: the same on this hub, which on one node finds nothing missing.
  virtual std::size_t resync() = 0;

  // The store deleted a channel's publications with after < timetoken <= until (PubNub deleteMessages):
  // every node's hub drops them from what it keeps (core::Hub::erase), this node's before it returns.
  // Like signals, not queued while the broker cannot reach the others: a node that missed it keeps them in
  // memory until it loads the channel again (after unloading it, or a restart). Local: the hub's erase.
  virtual void erase(const std::string& channel, std::uint64_t after, std::uint64_t until) = 0;

  // Installs the hub's observers (and whatever else the hub needs to know of this broker), then starts
  // talking to the other nodes. The server calls it once, after attaching the hub's sinks and before
  // any session or request can reach the hub.
  virtual void start() = 0;
  // Sends what is still queued (within a short deadline), withdraws this node's presence and disconnects.
  // Called at shutdown, after the store closed; publish() must not be called afterwards.
  virtual void stop() = 0;

 protected:
  // For start(): the hub's member and transient observers call member() and signal().
  void observe(core::Hub& hub);
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

// The Redis broker. `loader` reads a channel's snapshot from the store, for the hub's gap filling and
// resync(); `resolve` finds the channels of other nodes' members. Throws std::invalid_argument for a
// malformed URL; an unreachable Redis is not an error: the broker keeps trying, with backoff, and catches
// up once connected.
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
