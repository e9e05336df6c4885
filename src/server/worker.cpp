// An I/O thread and its share of fan-out. See worker.hpp.
#include "server/worker.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <optional>

#include "protocol/errors.hpp"
#include "protocol/messages.hpp"
#include "server/connection.hpp"

namespace rtsync::server {

namespace {
constexpr std::size_t read_buffer_size = 64 * 1024;
}

Worker::Worker(std::size_t index, std::chrono::milliseconds tick)
    : index_(index), tick_(tick), guard_(boost::asio::make_work_guard(ioc_)), read_buffer_(read_buffer_size) {}

Worker::~Worker() { stop(); }

void Worker::start() {
  arm_tick();
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
  in_drain_ = true;
  {
    std::lock_guard lock(inbox_mu_);
    draining_.swap(inbox_);
    wake_posted_ = false;
  }
  using Kind = core::Delivery::Kind;
  for (const auto& d : draining_) {
    auto it = subs_.find(d.channel);
    if (it == subs_.end()) continue;
    // Live filtered views of this change: parsed once, a leave frame built once, for all of them.
    std::optional<service::Change> change;
    std::optional<core::Delivery> leave;
    for (const auto& s : it->second.list) {
      switch (d.kind) {
        case Kind::publication:
          if (d.offset <= s.after) continue;
          if (!d.pub->audience.empty() && d.pub->audience != *s.user) continue;
          if (s.view) {
            if (!change) change.emplace(*d.pub);
            const auto verdict = service::judge(s.view->where, *change);
            if (verdict == service::Verdict::skip) continue;
            if (verdict == service::Verdict::leave) {
              if (!leave) {
                leave = d;
                leave->pub = change->leave();
                leave->frame = protocol::msg_frame(s.view->channel, *leave->pub);
              }
              s.sub->on_delivery(*leave);
              continue;
            }
          }
          break;
        case Kind::presence:
          if (!s.presence || s.session_no == d.origin) continue;
          break;
        case Kind::signal:
          if (!s.signals) continue;
          break;
        case Kind::relayed:
          if (!s.signals || !core::visible_to(*d.pub, *s.user)) continue;
          break;
      }
      s.sub->on_delivery(d);
    }
  }
  draining_.clear();
  in_drain_ = false;
  flush_sessions();
}

void Worker::want_flush(Connection* s) {
  to_flush_.push_back(s);
  if (flush_posted_ || in_drain_) return;
  flush_posted_ = true;
  boost::asio::post(ioc_, [this] {
    flush_posted_ = false;
    flush_sessions();
  });
}

void Worker::forget_flush(Connection* s) {
  for (auto* list : {&to_flush_, &flushing_})
    std::replace(list->begin(), list->end(), s, static_cast<Connection*>(nullptr));
}

void Worker::flush_sessions() {
  flushing_.swap(to_flush_);
  // A session's pending handlers own it: a flush that finishes it does not destroy it here.
  for (auto* s : flushing_)
    if (s) s->flush();
  flushing_.clear();
}

void Worker::arm_tick() {
  tick_timer_.expires_after(tick_);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    const auto wall = std::chrono::system_clock::now();
    std::vector<std::shared_ptr<Connection>> live;
    live.reserve(sessions_.size());
    for (auto& [raw, weak] : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
    // tick() may close a session, which takes it out of sessions_: iterate over a copy.
    for (auto& s : live) s->tick(now, wall);
    arm_tick();
  });
}

void Worker::add_subscriber(const core::Channel* ch, Subscriber* sub, std::uint64_t session_no,
                            const std::string* user, std::uint64_t after, bool presence, bool signals,
                            const service::LiveView* view) {
  auto& c = subs_[ch];
  c.index[sub] = c.list.size();
  c.list.push_back(LocalSub{sub, session_no, user, after, presence, signals, view});
}

void Worker::remove_subscriber(const core::Channel* ch, Subscriber* sub) {
  auto it = subs_.find(ch);
  if (it == subs_.end()) return;
  auto& c = it->second;
  auto pos = c.index.find(sub);
  if (pos == c.index.end()) return;
  const std::size_t i = pos->second;
  c.index.erase(pos);
  if (i + 1 != c.list.size()) {
    c.list[i] = c.list.back();
    c.index[c.list[i].sub] = i;
  }
  c.list.pop_back();
  if (c.list.empty()) subs_.erase(it);
}

void Worker::add_connection(const std::shared_ptr<Connection>& s) { sessions_[s.get()] = s; }

void Worker::remove_connection(Connection* s) { sessions_.erase(s); }

void Worker::add_pending(const void* key, std::function<void()> end) { pending_[key] = std::move(end); }

void Worker::remove_pending(const void* key) { pending_.erase(key); }

void Worker::close_sessions() {
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [raw, weak] : sessions_)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  for (auto& s : live) s->close(protocol::close_code::going_away, "server shutting down");
  // Each `end` removes itself from pending_: take them out first.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [key, end] : pending) end();
}

std::size_t Worker::disconnect(std::string_view user, std::string_view session, std::uint16_t code,
                               std::string_view reason) {
  // close() may end a session and take it off sessions_: collect first.
  std::vector<std::shared_ptr<Connection>> matched;
  for (auto& [raw, weak] : sessions_)
    if (auto s = weak.lock(); s && s->belongs_to(user, session)) matched.push_back(std::move(s));
  for (auto& s : matched) s->close(code, reason);
  return matched.size();
}

}  // namespace rtsync::server
