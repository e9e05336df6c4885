// Channel registry, offsets, history, presence and fan-out to I/O threads. See hub.hpp for the
// guarantees; the comments here say how they are kept.
#include "core/hub.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "common/random.hpp"

namespace rtsync::core {

namespace {
// Epochs are 16 hex chars: enough entropy that a restarted non-durable channel never repeats one.
std::string new_epoch() { return common::random_hex(8); }
}  // namespace

Hub::Hub(std::size_t sink_count, FrameEncoder encoder, Loader loader)
    : sinks_(sink_count, nullptr), encoder_(std::move(encoder)), loader_(std::move(loader)) {}

void Hub::attach(std::size_t index, DeliverySink* sink) { sinks_.at(index) = sink; }

Channel& Hub::channel(std::string_view name, const NamespaceOptions& opts) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(std::string(name));
  if (it != channels_.end()) return *it->second;
  auto ch = std::make_unique<Channel>(std::string(name), opts);
  ch->subscribers_.assign(sinks_.size(), 0);
  ch->presence_listeners_.assign(sinks_.size(), 0);
  if (!opts.durable) {
    // In-memory channels start empty with an epoch of their own: a restart loses their history,
    // and the new epoch is what tells recovering clients so.
    ch->state_ = Channel::State::ready;
    ch->epoch_ = new_epoch();
  }
  auto& ref = *ch;
  channels_.emplace(ref.name(), std::move(ch));
  return ref;
}

Channel* Hub::find(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(std::string(name));
  return it == channels_.end() ? nullptr : it->second.get();
}

std::size_t Hub::channel_count() {
  std::lock_guard lock(mu_);
  return channels_.size();
}

bool Hub::ready_or_wait(Channel& ch, std::function<void(bool)> on_loaded) {
  {
    std::unique_lock lock(ch.mu_);
    if (ch.state_ != Channel::State::ready) {
      ch.waiting_.push_back(std::move(on_loaded));
      if (ch.state_ == Channel::State::loading) return false;
      ch.state_ = Channel::State::loading;
      lock.unlock();
      loader_(ch.name(), ch.options().history_size, [&ch](ChannelSnapshot snap) {
        std::vector<std::function<void(bool)>> waiting;
        bool ok;
        {
          std::lock_guard l(ch.mu_);
          ch.epoch_ = std::move(snap.epoch);
          ch.offset_ = snap.offset;
          ch.history_.assign(snap.pubs.begin(), snap.pubs.end());
          // A load that failed (store closing) leaves no epoch; the channel is retried next time.
          ok = !ch.epoch_.empty();
          ch.state_ = ok ? Channel::State::ready : Channel::State::unloaded;
          waiting.swap(ch.waiting_);
        }
        for (auto& w : waiting) w(ok);
      });
      return false;
    }
  }
  return true;
}

namespace {
bool visible(const Publication& p, std::string_view user) { return p.audience.empty() || p.audience == user; }
}  // namespace

SubscribeResult Hub::subscribe(Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                               std::string_view user, const Member* member, bool listen_presence) {
  SubscribeResult r;
  std::lock_guard lock(ch.mu_);
  r.offset = ch.offset_;
  r.epoch = ch.epoch_;
  if (since && since->epoch == ch.epoch_ && since->offset <= ch.offset_) {
    // Recoverable only if nothing after since.offset was trimmed: the oldest kept publication must be
    // since.offset + 1 (or nothing was published after it).
    std::uint64_t first_kept = ch.history_.empty() ? ch.offset_ + 1 : ch.history_.front()->offset;
    if (since->offset + 1 >= first_kept) {
      r.recovered = true;
      for (const auto& p : ch.history_)
        if (p->offset > since->offset && visible(*p, user)) r.pubs.push_back(p);
    }
  }
  ++ch.subscribers_[sink];
  if (listen_presence) ++ch.presence_listeners_[sink];
  if (member) {
    ch.members_[member->session_no] = *member;
    Delivery d{&ch, encoder_.presence(ch.name(), "join", *member), nullptr, 0, Delivery::Kind::presence,
               member->session_no};
    fan_out(ch, d, ch.presence_listeners_);
  }
  return r;
}

void Hub::unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                      bool listened_presence) {
  std::lock_guard lock(ch.mu_);
  if (ch.subscribers_[sink] > 0) --ch.subscribers_[sink];
  if (listened_presence && ch.presence_listeners_[sink] > 0) --ch.presence_listeners_[sink];
  if (!was_member) return;
  auto it = ch.members_.find(session_no);
  if (it == ch.members_.end()) return;
  Delivery d{&ch, encoder_.presence(ch.name(), "leave", it->second), nullptr, 0, Delivery::Kind::presence,
             session_no};
  ch.members_.erase(it);
  fan_out(ch, d, ch.presence_listeners_);
}

void Hub::fan_out(Channel&, const Delivery& d, const std::vector<std::uint32_t>& targets) {
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (targets[i] > 0) sinks_[i]->deliver(d);
}

void Hub::append(Channel& ch, PublicationPtr pub) {
  ch.offset_ = pub->offset;
  if (ch.options().history_size > 0) {
    ch.history_.push_back(pub);
    while (ch.history_.size() > ch.options().history_size) ch.history_.pop_front();
  }
  Delivery d{&ch, encoder_.publication(ch.name(), *pub), pub, pub->offset, Delivery::Kind::publication, 0};
  fan_out(ch, d, ch.subscribers_);
}

PublicationPtr Hub::publish(Channel& ch, std::string data, std::string from, std::int64_t ts) {
  std::lock_guard lock(ch.mu_);
  auto pub = std::make_shared<const Publication>(Publication{ch.offset_ + 1, std::move(data), std::move(from), ts});
  append(ch, pub);
  return pub;
}

void Hub::deliver_committed(std::string_view name, PublicationPtr pub) {
  Channel* ch = find(name);
  if (!ch) return;
  std::lock_guard lock(ch->mu_);
  // Not in memory (or loading): the pending load reads this publication from the store instead.
  if (ch->state_ != Channel::State::ready) return;
  // The store assigns durable offsets in order; anything else means this channel's memory is stale.
  if (pub->offset != ch->offset_ + 1) {
    if (pub->offset <= ch->offset_) return;
    ch->history_.clear();  // a gap: keep only what follows it, so recovery never spans the hole
  }
  append(*ch, std::move(pub));
}

HistoryResult Hub::history(Channel& ch, const HistoryQuery& q, std::string_view user) {
  HistoryResult r;
  std::lock_guard lock(ch.mu_);
  r.offset = ch.offset_;
  r.epoch = ch.epoch_;
  const std::uint64_t since = q.since.value_or(0);
  auto wanted = [&](const PublicationPtr& p) { return p->offset > since && visible(*p, user); };
  if (q.reverse) {
    for (auto it = ch.history_.rbegin(); it != ch.history_.rend() && r.pubs.size() < q.limit; ++it) {
      if ((*it)->offset <= since) break;
      if (wanted(*it)) r.pubs.push_back(*it);
    }
  } else {
    auto it = std::partition_point(ch.history_.begin(), ch.history_.end(),
                                   [&](const PublicationPtr& p) { return p->offset <= since; });
    for (; it != ch.history_.end() && r.pubs.size() < q.limit; ++it)
      if (wanted(*it)) r.pubs.push_back(*it);
  }
  return r;
}

PresenceResult Hub::presence(Channel& ch) {
  PresenceResult r;
  std::lock_guard lock(ch.mu_);
  std::set<std::string_view> users;
  r.clients.reserve(ch.members_.size());
  for (const auto& [no, m] : ch.members_) {
    r.clients.push_back(m);
    users.insert(m.user);
  }
  r.users = users.size();
  r.sessions = ch.members_.size();
  return r;
}

}  // namespace rtsync::core
