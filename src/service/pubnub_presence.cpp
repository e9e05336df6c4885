// PubNub uuids as channel members, kept alive by heartbeats and long polls. See pubnub_presence.hpp.
#include "service/pubnub_presence.hpp"

#include "core/hub.hpp"

#include <algorithm>

#include "common/json_text.hpp"

namespace rtsync::service {

std::string pubnub_feed_event(const core::FeedEvent& e) {
  std::string out = "{\"action\":";
  common::append_json_string(out, e.action);
  out += ",\"timestamp\":";
  common::append_int(out, e.ts / 1000);
  out += ",\"uuid\":";
  common::append_json_string(out, e.user);
  out += ",\"occupancy\":";
  common::append_int(out, e.occupancy);
  if ((e.action == "state-change" || e.action == "join") && !e.info.empty() && e.info != "null") {
    out += ",\"data\":";
    out += e.info;
  }
  out += '}';
  return out;
}

PubnubPresence::PubnubPresence(core::Presence& presence, std::chrono::seconds window,
                               std::function<std::uint64_t()> next_session_no)
    : presence_(presence), window_(window), next_session_no_(std::move(next_session_no)) {}

std::optional<std::chrono::seconds> PubnubPresence::window_for(std::optional<std::int64_t> requested) const {
  if (!requested || *requested <= 0) return std::nullopt;
  return std::min(window_, std::chrono::seconds(*requested));
}

PubnubPresence::Entry& PubnubPresence::present(const core::ChannelRef& ch, const std::string& uuid,
                                               std::optional<std::chrono::seconds> window, const std::string* info) {
  auto [it, added] = entries_.try_emplace(Key{ch.get(), uuid});
  Entry& e = it->second;
  if (window) e.window = *window;
  else if (added) e.window = window_;
  const bool changed = info && *info != e.info;
  if (info) e.info = *info;
  if (added) {
    e.channel = ch;
    e.session_no = next_session_no_();
  }
  // Joining again with other info is the hub's state-change (core::Presence).
  if (added || changed) join(ch, uuid, e);
  return e;
}

void PubnubPresence::join(const core::ChannelRef& ch, const std::string& uuid, const Entry& e) {
  core::Member m;
  m.session_no = e.session_no;
  m.session = "pubnub:" + uuid;
  m.user = uuid;
  m.info = e.info;
  presence_.join(*ch, m);
}

void PubnubPresence::touch(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
                           std::optional<std::chrono::seconds> window, Clock::time_point now) {
  touch(uuid, channels, window, {}, now);
}

void PubnubPresence::touch(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
                           std::optional<std::chrono::seconds> window, const std::map<std::string, std::string>& states,
                           Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (const core::ChannelRef& ch : channels) {
    if (!ch->options().presence) continue;
    auto s = states.find(ch->name());
    Entry& e = present(ch, uuid, window, s == states.end() ? nullptr : &s->second);
    e.expires = now + e.window;
  }
}

void PubnubPresence::hold(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
                          std::optional<std::chrono::seconds> window, Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (const core::ChannelRef& ch : channels) {
    if (!ch->options().presence) continue;
    Entry& e = present(ch, uuid, window);
    ++e.holds;
    e.expires = std::max(e.expires, now + e.window);
  }
}

void PubnubPresence::release(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
                             Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (const core::ChannelRef& ch : channels) {
    auto it = entries_.find(Key{ch.get(), uuid});
    if (it == entries_.end()) continue;  // left meanwhile
    Entry& e = it->second;
    if (e.holds > 0) --e.holds;
    // The window starts again when the poll ends: a client that is still there re-polls at once.
    e.expires = now + e.window;
  }
}

std::optional<std::string> PubnubPresence::state(const std::string& uuid, core::Channel& ch) {
  // The uuid's own member (of any node) first; a native user of that id has its token's info.
  const std::string session = "pubnub:" + uuid;
  std::optional<std::string> found;
  for (auto& m : presence_.of(ch).clients) {
    if (m.user != uuid) continue;
    if (m.session == session) return std::move(m.info);
    if (!found) found = std::move(m.info);
  }
  return found;
}

void PubnubPresence::leave(const std::string& uuid, const std::vector<core::ChannelRef>& channels) {
  std::lock_guard lock(mu_);
  for (const core::ChannelRef& ch : channels) {
    auto it = entries_.find(Key{ch.get(), uuid});
    if (it == entries_.end()) continue;
    const auto no = it->second.session_no;
    entries_.erase(it);
    presence_.leave(*ch, no, "leave");
  }
}

std::size_t PubnubPresence::sweep(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.holds == 0 && it->second.expires <= now) {
      presence_.leave(*it->second.channel, it->second.session_no, "timeout");
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

std::size_t PubnubPresence::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace rtsync::service
