// An I/O thread and its share of fan-out. See worker.hpp.
#include "server/worker.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "protocol/errors.hpp"
#include "server/ws_session.hpp"

namespace rtsync::server {

Worker::Worker(std::size_t index) : index_(index), guard_(boost::asio::make_work_guard(ioc_)) {}

Worker::~Worker() { stop(); }

void Worker::start() {
  thread_ = std::thread([this] { ioc_.run(); });
}

void Worker::stop() {
  guard_.reset();
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

void Worker::deliver(core::Delivery d) {
  std::lock_guard lock(inbox_mu_);
  inbox_.push_back(std::move(d));
  if (!wake_posted_) {
    // One wake-up per batch: everything delivered until the thread drains shares it.
    wake_posted_ = true;
    boost::asio::post(ioc_, [this] { drain(); });
  }
}

void Worker::drain() {
  {
    std::lock_guard lock(inbox_mu_);
    draining_.swap(inbox_);
    wake_posted_ = false;
  }
  for (const auto& d : draining_) {
    auto it = subs_.find(d.channel);
    if (it == subs_.end()) continue;
    for (const auto& s : it->second) {
      if (d.kind == core::Delivery::Kind::publication) {
        if (d.offset <= s.after) continue;
        if (!d.pub->audience.empty() && d.pub->audience != *s.user) continue;
      } else if (!s.presence || s.session_no == d.origin) {
        continue;
      }
      s.session->send_frame(d.frame);
    }
  }
  draining_.clear();
}

void Worker::add_subscriber(const core::Channel* ch, WsSession* session, std::uint64_t session_no,
                            const std::string* user, std::uint64_t after, bool presence) {
  subs_[ch].push_back(LocalSub{session, session_no, user, after, presence});
}

void Worker::remove_subscriber(const core::Channel* ch, WsSession* session) {
  auto it = subs_.find(ch);
  if (it == subs_.end()) return;
  auto& v = it->second;
  auto pos = std::find_if(v.begin(), v.end(), [&](const LocalSub& s) { return s.session == session; });
  if (pos != v.end()) {
    *pos = v.back();
    v.pop_back();
  }
  if (v.empty()) subs_.erase(it);
}

void Worker::add_session(const std::shared_ptr<WsSession>& s) { sessions_[s.get()] = s; }

void Worker::remove_session(WsSession* s) { sessions_.erase(s); }

void Worker::close_sessions() {
  std::vector<std::shared_ptr<WsSession>> live;
  for (auto& [raw, weak] : sessions_)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  for (auto& s : live) s->close(protocol::close_code::going_away, "server shutting down");
}

}  // namespace rtsync::server
