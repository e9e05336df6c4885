// One I/O thread: its io_context, the connections it owns, and its part of every channel's subscriber list.
// The hub hands each publication to a worker once (deliver(), any thread, under the channel lock); the
// worker queues it in its inbox and, on its own thread, hands it to each local subscriber: a client
// (which pushes the shared frame through its transport) or a pending PubNub long poll (which answers its
// request). No lock is taken per delivery. After a drain, every connection that was handed something
// writes once (see flush_sessions): one socket write per connection per drain, however many publications
// it carried.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/delivery.hpp"
#include "server/connection.hpp"
#include "server/subscriber.hpp"
#include "service/live_view.hpp"

namespace rtsync::server {



class Worker final : public core::DeliverySink {
 public:
  // `tick`: how often the sessions' tick() runs (liveness, token expiry).
  Worker(std::size_t index, std::chrono::milliseconds tick);
  ~Worker() override;

  std::size_t index() const { return index_; }
  boost::asio::io_context& io() { return ioc_; }

  void start();
  void stop();  // stops the io_context and joins the thread

  // core::DeliverySink
  void deliver(core::Delivery d) override;

  // The calls below run on this worker's thread only.
  // Publications of `ch` with offset <= `after` are not delivered to `sub` (they were in its subscribe
  // snapshot); nor are those addressed to another user than `*user`. `presence`: also join/leave pushes
  // (except the subscriber's own, by `session_no`). `signals`: also PubNub signals (long polls only).
  // `view`: a live filtered view of a collection (service/live_view.hpp), which receives each change as
  // judged for it; it must outlive the subscription.
  void add_subscriber(const core::Channel* ch, Subscriber* sub, std::uint64_t session_no,
                      const std::string* user, std::uint64_t after, bool presence, bool signals = false,
                      const service::LiveView* view = nullptr);
  void remove_subscriber(const core::Channel* ch, Subscriber* sub);
  void add_connection(const std::shared_ptr<Connection>& s);
  void remove_connection(Connection* s);
  // Requests held open on this worker (PubNub long polls): `end` answers one early when the server shuts
  // down. Keyed by the request's address.
  void add_pending(const void* key, std::function<void()> end);
  void remove_pending(const void* key);
  // Says bye (going away) to every session of this worker and ends its pending requests.
  void close_sessions();
  // Closes with `code` every session of this worker that belongs_to(user, session); returns how many.
  std::size_t disconnect(std::string_view user, std::string_view session, std::uint16_t code, std::string_view reason);
  std::size_t session_count() const { return sessions_.size(); }
  // Puts a session on the flush list: it writes after the current drain, or at the end of the current
  // handler. `forget_flush` takes a finished session off.
  void want_flush(Connection* s);
  void forget_flush(Connection* s);
  // Where sessions read: one buffer per worker, since a worker reads one socket at a time.
  std::vector<std::uint8_t>& read_buffer() { return read_buffer_; }
  std::size_t pending_count() const { return pending_.size(); }

 private:
  void drain();
  void flush_sessions();
  void arm_tick();

  const std::size_t index_;
  const std::chrono::milliseconds tick_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  boost::asio::steady_timer tick_timer_{ioc_};

  std::mutex inbox_mu_;
  std::vector<core::Delivery> inbox_;
  bool wake_posted_ = false;
  std::vector<core::Delivery> draining_;  // swapped with inbox_, reused to keep its capacity

  struct LocalSub {
    Subscriber* sub;
    std::uint64_t session_no;
    const std::string* user;  // the subscriber's, for publications addressed to one user
    std::uint64_t after;
    bool presence;
    bool signals;
    const service::LiveView* view;
  };
  // One channel's local subscribers. Long polls come and go with every message, so removal is O(1):
  // swap with the last, and the index follows the moved entry.
  struct ChannelSubs {
    std::vector<LocalSub> list;
    std::unordered_map<Subscriber*, std::size_t> index;
  };
  std::unordered_map<const core::Channel*, ChannelSubs> subs_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> sessions_;
  std::unordered_map<const void*, std::function<void()>> pending_;

  std::vector<Connection*> to_flush_;
  std::vector<Connection*> flushing_;  // swapped with to_flush_ while flushing, reused for its capacity
  bool flush_posted_ = false;
  bool in_drain_ = false;  // the drain flushes when it ends: no post needed
  std::vector<std::uint8_t> read_buffer_;
};

}  // namespace rtsync::server
