// One connection to Redis that stays up: hiredis (0.14, asynchronous API) driven from an Asio loop, and
// reconnected whenever it fails or is lost. hiredis has no adapter for Asio, so the one here watches the
// redisAsyncContext's socket with asio::posix::stream_descriptor::async_wait, and hiredis'
// addRead/delRead/addWrite/delWrite/cleanup hooks start and stop those waits. A lost connection is opened
// again after a growing delay (0.1 s doubling to 5 s, with jitter, so that nodes do not all come back at
// once), which a successful connect resets.
//
// Everything here runs on the loop's thread: construct, call and destroy a RedisConnection there (or while
// the loop is not running). A command connection sends commands; a subscriber connection subscribes to one
// channel on every connect and passes on its messages.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"

struct redisReply;

namespace rtsync::broker {

class RedisConnection {
 public:
  using Reply = std::function<void(const redisReply*)>;  // null: the connection is gone

  // `what` names the connection in log lines.
  RedisConnection(boost::asio::io_context& io, const RedisAddress& addr, std::string what);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // A command connection: connects, authenticates (when the URL has a password), selects the URL's
  // database, then runs `on_up`; the same on every reconnect.
  void open(std::function<void()> on_up);
  // A subscriber connection: connects, authenticates, subscribes to `channel`; `on_subscribed` runs on
  // every confirmation (every reconnect), `on_message` with every message. Pub/sub channels span
  // databases, so no SELECT.
  void subscribe(std::string channel, std::function<void()> on_subscribed,
                 std::function<void(std::string_view)> on_message);

  // Connected, and not closing.
  bool up() const;
  // Queues a command; its reply (or null) goes to `done`, once. false (and `done` never runs) when not up.
  bool command(const std::vector<std::string>& args, Reply done = {});

  // Stops reconnecting; sends what is queued, waits for the replies still due, then disconnects.
  void close();
  // No connection is left: never opened, closed and disconnected, or killed.
  bool closed() const;
  // Frees the connection now, whatever is pending (their callbacks get null).
  void kill();

 private:
  class Context;

  void connect();
  void retry();
  void connected(Context& c);

  boost::asio::io_context& io_;
  const RedisAddress addr_;
  const std::string what_;
  std::function<void()> on_up_;
  std::string channel_;  // subscriber: the channel
  std::function<void()> on_subscribed_;
  std::function<void(std::string_view)> on_message_;

  std::shared_ptr<Context> ctx_;  // the current hiredis connection
  boost::asio::steady_timer retry_;
  std::chrono::milliseconds backoff_;
  bool closing_ = false;
};

// A reply callback that logs an error reply (as "redis broker: WHAT: ...").
RedisConnection::Reply log_error(std::string what);

}  // namespace rtsync::broker
