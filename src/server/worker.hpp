// One I/O thread: its io_context, the WebSocket sessions it owns, and its part of every channel's
// subscriber list. The hub hands each publication to a worker once (deliver(), any thread, under the
// channel lock); the worker queues it in its inbox and, on its own thread, pushes the shared frame to
// each local subscriber. No lock is taken per delivery.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/hub.hpp"

namespace rtsync::server {

class WsSession;

class Worker final : public core::DeliverySink {
 public:
  explicit Worker(std::size_t index);
  ~Worker() override;

  std::size_t index() const { return index_; }
  boost::asio::io_context& io() { return ioc_; }

  void start();
  void stop();  // stops the io_context and joins the thread

  // core::DeliverySink
  void deliver(core::Delivery d) override;

  // The calls below run on this worker's thread only.
  // Publications of `ch` with offset <= `after` are not delivered to `session` (they were in its
  // subscribe snapshot).
  void add_subscriber(const core::Channel* ch, WsSession* session, std::uint64_t session_no,
                      const std::string* user, std::uint64_t after, bool presence);
  void remove_subscriber(const core::Channel* ch, WsSession* session);
  void add_session(const std::shared_ptr<WsSession>& s);
  void remove_session(WsSession* s);
  // Says bye (going away) to every session of this worker.
  void close_sessions();
  std::size_t session_count() const { return sessions_.size(); }

 private:
  void drain();

  const std::size_t index_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;

  std::mutex inbox_mu_;
  std::vector<core::Delivery> inbox_;
  bool wake_posted_ = false;
  std::vector<core::Delivery> draining_;  // swapped with inbox_, reused to keep its capacity

  struct LocalSub {
    WsSession* session;
    std::uint64_t session_no;
    const std::string* user;  // the session's, for publications addressed to one user
    std::uint64_t after;
    bool presence;
  };
  std::unordered_map<const core::Channel*, std::vector<LocalSub>> subs_;
  std::unordered_map<WsSession*, std::weak_ptr<WsSession>> sessions_;
};

}  // namespace rtsync::server
