// Channel members, occupancy and presence feeds. See presence.hpp.
#include "core/presence.hpp"

#include <algorithm>
#include <set>

#include "common/clock.hpp"
#include "core/hub.hpp"

namespace rtsync::core {

bool ChannelPresence::idle() const {
  return members_.empty() && std::all_of(listeners_.begin(), listeners_.end(), [](std::uint32_t n) { return n == 0; });
}

void Presence::subscribe(Channel& ch, std::size_t sink, const Member* member, bool listen) {
  if (listen) ++ch.presence_.listeners_[sink];
  if (member) add(ch, *member);
}

void Presence::unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member, bool listened) {
  auto& listeners = ch.presence_.listeners_;
  if (listened && listeners[sink] > 0) --listeners[sink];
  if (!was_member) return;
  auto it = ch.presence_.members_.find(session_no);
  if (it != ch.presence_.members_.end()) remove(ch, it, "leave");
}

void Presence::join(Channel& ch, const Member& member) {
  std::lock_guard lock(ch.mu_);
  add(ch, member);
}

void Presence::leave(Channel& ch, std::uint64_t session_no, std::string_view action) {
  std::lock_guard lock(ch.mu_);
  ch.touch();
  auto it = ch.presence_.members_.find(session_no);
  if (it != ch.presence_.members_.end()) remove(ch, it, action);
}

// Membership by session, occupancy by user: only a user's first session joins and its last one leaves
// in the feed; every session is a join/leave push for native presence listeners. A member already there
// with other info is a state-change in the feed (the feed of every node: mirrored members change too).
void Presence::add(Channel& ch, const Member& m) {
  ChannelPresence& p = ch.presence_;
  // A member that is there already under another user id leaves first, so users_ stays a true count.
  auto old = p.members_.find(m.session_no);
  if (old != p.members_.end() && old->second.user != m.user) {
    remove(ch, old, "leave");
    old = p.members_.end();
  }
  const bool changed = old != p.members_.end() && old->second.info != m.info;
  auto [it, added] = p.members_.insert_or_assign(m.session_no, m);
  if (observer_ && !m.remote) observer_(ch.name(), m, true, "join");
  Delivery d{&ch, hub_.encoder_.presence(ch.name(), "join", m), nullptr, 0, Delivery::Kind::presence, m.session_no};
  hub_.fan_out(d, p.listeners_);
  if (added && ++p.users_[m.user] == 1) feed_event(ch, "join", m.user, m.info);
  else if (changed) feed_event(ch, "state-change", m.user, m.info);
}

void Presence::remove(Channel& ch, std::map<std::uint64_t, Member>::iterator it, std::string_view action) {
  ChannelPresence& p = ch.presence_;
  Delivery d{&ch, hub_.encoder_.presence(ch.name(), "leave", it->second), nullptr, 0, Delivery::Kind::presence,
             it->first};
  if (observer_ && !it->second.remote) observer_(ch.name(), it->second, false, action);
  const std::string user = std::move(it->second.user);
  p.members_.erase(it);
  hub_.fan_out(d, p.listeners_);
  auto u = p.users_.find(user);
  if (u != p.users_.end() && --u->second == 0) {
    p.users_.erase(u);
    feed_event(ch, action, user);
  }
}

void Presence::feed_event(Channel& ch, std::string_view action, const std::string& user, std::string_view info) {
  if (!feed_event_) return;
  ChannelPresence& p = ch.presence_;
  if (!p.feed_) {
    // Only a feed somebody asked for exists; events nobody can be waiting for are not made.
    std::string name = ch.name();
    name += presence_feed_suffix;
    p.feed_ = hub_.find(name);  // held: the feed stays in memory as long as its channel does
    if (!p.feed_) return;
  }
  Channel& feed = *p.feed_;
  Publication event;
  event.ts = common::now_ms();
  event.data = feed_event_(FeedEvent{action, user, p.users_.size(), event.ts, info});
  std::lock_guard lock(feed.mu_);
  if (feed.state_ != Channel::State::ready) return;  // a feed is in memory; anything else is not one
  hub_.append_next(feed, std::move(event));
}

PresenceResult Presence::of(Channel& ch) {
  PresenceResult r;
  std::lock_guard lock(ch.mu_);
  const auto& members = ch.presence_.members_;
  std::set<std::string_view> users;
  r.clients.reserve(members.size());
  for (const auto& [no, m] : members) {
    r.clients.push_back(m);
    users.insert(m.user);
  }
  r.users = users.size();
  r.sessions = members.size();
  return r;
}

std::vector<std::pair<std::string, PresenceResult>> Presence::all() {
  // Channel locks are never waited for under the registry's (see the top of hub.hpp): copy, then visit.
  std::vector<std::pair<std::string, PresenceResult>> out;
  for (const ChannelRef& ch : hub_.all_channels()) {
    auto p = of(*ch);
    if (p.sessions > 0) out.emplace_back(ch->name(), std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::string> Presence::channels_of_user(std::string_view user) {
  std::vector<std::string> out;
  for (const ChannelRef& ch : hub_.all_channels()) {
    std::lock_guard lock(ch->mu_);
    if (ch->presence_.users_.contains(std::string(user))) out.push_back(ch->name());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace rtsync::core
