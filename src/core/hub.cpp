// Channel registry, offsets, history, presence and fan-out to I/O threads. See hub.hpp for the
// guarantees; the comments here say how they are kept.
#include "core/hub.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "common/random.hpp"

namespace rtsync::core {

namespace {
// Epochs are 16 hex chars: enough entropy that a restarted non-durable channel never repeats one.
std::string new_epoch() { return common::random_hex(8); }

// Signals are no history; a long poll only needs those sent since its client's previous poll, which is
// milliseconds ago. Enough for a burst between two polls of a slow client.
constexpr std::size_t kSignalsKept = 100;

// Gap filling: publications held past a hole while the store fills it. A flood past this (a reload that
// takes long under heavy traffic) drops the newest; the next fill reads them from the store.
constexpr std::size_t kMaxAhead = 10000;

std::int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

void Hub::touch(Channel& ch) {
  ch.last_used_.store(steady_ns(std::chrono::steady_clock::now()), std::memory_order_relaxed);
}

Hub::Hub(std::size_t sink_count, FrameEncoder encoder, Loader loader)
    : sinks_(sink_count, nullptr), encoder_(std::move(encoder)), loader_(std::move(loader)) {}

void Hub::attach(std::size_t index, DeliverySink* sink) { sinks_.at(index) = sink; }

ChannelRef Hub::channel(std::string_view name, const NamespaceOptions& opts) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(std::string(name));
  if (it != channels_.end()) {
    touch(*it->second);
    return it->second;
  }
  auto ch = std::make_shared<Channel>(std::string(name), opts);
  touch(*ch);
  ch->subscribers_.assign(sinks_.size(), 0);
  ch->presence_listeners_.assign(sinks_.size(), 0);
  if (!opts.durable) {
    // In-memory channels start empty with an epoch of their own: a restart loses their history,
    // and the new epoch is what tells recovering clients so.
    ch->state_ = Channel::State::ready;
    ch->epoch_ = new_epoch();
  }
  channels_.emplace(ch->name(), ch);
  return ch;
}

ChannelRef Hub::find(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(std::string(name));
  return it == channels_.end() ? nullptr : it->second;
}

std::size_t Hub::unload_idle(std::chrono::steady_clock::time_point cutoff) {
  const std::int64_t before = steady_ns(cutoff);
  std::vector<ChannelRef> unloaded;
  {
    std::lock_guard lock(mu_);
    for (auto it = channels_.begin(); it != channels_.end();) {
      Channel& ch = *it->second;
      // Under the registry's lock nobody can take a new reference: a count of 1 (ours) stays 1. The
      // channel's lock is only tried, since a channel's holder may be waiting for the registry's
      // (feed_event); a busy channel is not idle anyway.
      if (it->second.use_count() == 1 && ch.last_used_.load(std::memory_order_relaxed) < before &&
          ch.mu_.try_lock()) {
        std::lock_guard l(ch.mu_, std::adopt_lock);
        const auto none = [](const std::vector<std::uint32_t>& v) {
          return std::all_of(v.begin(), v.end(), [](std::uint32_t n) { return n == 0; });
        };
        // Waiters exist only while loading or filling.
        if (ch.state_ != Channel::State::loading && !ch.filling_ && ch.ahead_.empty() && ch.members_.empty() &&
            none(ch.subscribers_) && none(ch.presence_listeners_)) {
          unloaded.push_back(std::move(it->second));
          it = channels_.erase(it);
          continue;
        }
      }
      ++it;
    }
  }
  // Freed here, outside the registry's lock (their feeds' references with them).
  return unloaded.size();
}

std::size_t Hub::channel_count() {
  std::lock_guard lock(mu_);
  return channels_.size();
}

bool Hub::ready_or_wait(Channel& ch, std::function<void(bool)> on_loaded, std::uint64_t at_least) {
  {
    std::unique_lock lock(ch.mu_);
    if (ch.state_ == Channel::State::ready && gap_fill_ && at_least > ch.offset_) {
      ch.fill_waiting_.push_back(std::move(on_loaded));
      if (!ch.filling_) start_fill(ch, lock);
      return false;
    }
    if (ch.state_ != Channel::State::ready) {
      ch.waiting_.push_back(std::move(on_loaded));
      if (ch.state_ == Channel::State::loading) return false;
      ch.state_ = Channel::State::loading;
      lock.unlock();
      // `&ch`: a loading channel is not unloaded (unload_idle), so it outlives the load.
      loader_(ch.name(), ch.options().history_size, ch.options().history_bytes, [this, &ch](ChannelSnapshot snap) {
        std::vector<std::function<void(bool)>> waiting;
        bool ok;
        {
          std::lock_guard l(ch.mu_);
          ch.epoch_ = std::move(snap.epoch);
          ch.offset_ = snap.offset;
          ch.last_tt_ = std::max(ch.last_tt_, snap.last_tt);
          clear_history(ch);
          for (auto& p : snap.pubs) keep(ch, std::move(p));
          // A load that failed (store closing) leaves no epoch; the channel is retried next time.
          ok = !ch.epoch_.empty();
          ch.state_ = ok ? Channel::State::ready : Channel::State::unloaded;
          if (ok) {
            drain_ahead(ch);
          } else {
            ch.ahead_.clear();
          }
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
  if (member) add_member(ch, *member);
  return r;
}

void Hub::unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                      bool listened_presence) {
  std::lock_guard lock(ch.mu_);
  touch(ch);
  if (ch.subscribers_[sink] > 0) --ch.subscribers_[sink];
  if (listened_presence && ch.presence_listeners_[sink] > 0) --ch.presence_listeners_[sink];
  if (!was_member) return;
  auto it = ch.members_.find(session_no);
  if (it != ch.members_.end()) remove_member(ch, it, "leave");
}

PollResult Hub::poll(Channel& ch, std::size_t sink, std::uint64_t after, std::size_t limit, std::string_view user) {
  PollResult r;
  std::lock_guard lock(ch.mu_);
  r.offset = ch.offset_;
  r.last_tt = ch.last_tt_;
  // Timetokens grow with offsets, so what is past the cursor is a suffix of the history.
  auto first = std::partition_point(ch.history_.begin(), ch.history_.end(),
                                    [&](const PublicationPtr& p) { return p->tt <= after; });
  for (; first != ch.history_.end() && r.pubs.size() < limit; ++first)
    if (visible(**first, user)) r.pubs.push_back(*first);
  for (const auto& s : ch.signals_)
    if (s->tt > after && r.signals.size() < limit) r.signals.push_back(s);
  ++ch.subscribers_[sink];
  return r;
}

// Membership by session, occupancy by user: only a user's first session joins and its last one leaves
// in the feed; every session is a join/leave push for native presence listeners.
void Hub::add_member(Channel& ch, const Member& m) {
  // A member that is there already under another user id leaves first, so users_ stays a true count.
  if (auto old = ch.members_.find(m.session_no); old != ch.members_.end() && old->second.user != m.user)
    remove_member(ch, old, "leave");
  auto [it, added] = ch.members_.insert_or_assign(m.session_no, m);
  if (member_observer_ && !m.remote) member_observer_(ch.name(), m, true, "join");
  Delivery d{&ch, encoder_.presence(ch.name(), "join", m), nullptr, 0, Delivery::Kind::presence, m.session_no};
  fan_out(ch, d, ch.presence_listeners_);
  if (added && ++ch.users_[m.user] == 1) feed_event(ch, "join", m.user);
}

void Hub::remove_member(Channel& ch, std::map<std::uint64_t, Member>::iterator it, std::string_view action) {
  Delivery d{&ch, encoder_.presence(ch.name(), "leave", it->second), nullptr, 0, Delivery::Kind::presence,
             it->first};
  if (member_observer_ && !it->second.remote) member_observer_(ch.name(), it->second, false, action);
  const std::string user = std::move(it->second.user);
  ch.members_.erase(it);
  fan_out(ch, d, ch.presence_listeners_);
  auto u = ch.users_.find(user);
  if (u != ch.users_.end() && --u->second == 0) {
    ch.users_.erase(u);
    feed_event(ch, action, user);
  }
}

void Hub::feed_event(Channel& ch, std::string_view action, const std::string& user) {
  if (!ch.feed_) {
    // Only a feed somebody asked for exists; events nobody can be waiting for are not made.
    std::string name = ch.name();
    name += presence_feed_suffix;
    ch.feed_ = find(name);  // held: the feed stays in memory as long as its channel does
    if (!ch.feed_) return;
  }
  Channel& feed = *ch.feed_;
  Publication p;
  p.ts = common::now_ms();
  p.data = "{\"action\":";
  common::append_json_string(p.data, action);
  p.data += ",\"timestamp\":";
  common::append_int(p.data, p.ts / 1000);
  p.data += ",\"uuid\":";
  common::append_json_string(p.data, user);
  p.data += ",\"occupancy\":";
  common::append_int(p.data, ch.users_.size());
  p.data += '}';
  std::lock_guard lock(feed.mu_);
  if (feed.state_ != Channel::State::ready) return;  // a feed is in memory; anything else is not one
  p.offset = feed.offset_ + 1;
  p.tt = next_timetoken(feed.last_tt_);
  append(feed, std::make_shared<const Publication>(std::move(p)));
}

void Hub::join(Channel& ch, const Member& member) {
  std::lock_guard lock(ch.mu_);
  add_member(ch, member);
}

void Hub::leave(Channel& ch, std::uint64_t session_no, std::string_view action) {
  std::lock_guard lock(ch.mu_);
  touch(ch);
  auto it = ch.members_.find(session_no);
  if (it != ch.members_.end()) remove_member(ch, it, action);
}

void Hub::fan_out(Channel&, const Delivery& d, const std::vector<std::uint32_t>& targets) {
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (targets[i] > 0) sinks_[i]->deliver(d);
}

// Keeps a publication as the newest of the history and trims the oldest past the channel's limits.
void Hub::keep(Channel& ch, PublicationPtr pub) {
  ch.history_bytes_ += payload_bytes(*pub);
  ch.history_.push_back(std::move(pub));
  trim(ch);
}

void Hub::trim(Channel& ch) {
  const auto& o = ch.options();
  while (!ch.history_.empty() && (ch.history_.size() > o.history_size || ch.history_bytes_ > o.history_bytes)) {
    ch.history_bytes_ -= payload_bytes(*ch.history_.front());
    ch.history_.pop_front();
  }
}

void Hub::clear_history(Channel& ch) {
  ch.history_.clear();
  ch.history_bytes_ = 0;
}

void Hub::append(Channel& ch, PublicationPtr pub) {
  publications_.fetch_add(1, std::memory_order_relaxed);
  ch.offset_ = pub->offset;
  ch.last_tt_ = std::max(ch.last_tt_, pub->tt);
  keep(ch, pub);
  Delivery d{&ch, encoder_.publication(ch.name(), *pub), pub, pub->offset, Delivery::Kind::publication, 0};
  fan_out(ch, d, ch.subscribers_);
}

PublicationPtr Hub::publish(Channel& ch, Publication draft) {
  std::lock_guard lock(ch.mu_);
  draft.offset = ch.offset_ + 1;
  draft.tt = next_timetoken(ch.last_tt_);
  auto pub = std::make_shared<const Publication>(std::move(draft));
  append(ch, pub);
  return pub;
}

PublicationPtr Hub::publish(Channel& ch, std::string data, std::string from, std::int64_t ts) {
  Publication p;
  p.data = std::move(data);
  p.from = std::move(from);
  p.ts = ts;
  return publish(ch, std::move(p));
}

PublicationPtr Hub::signal(Channel& ch, Publication draft) {
  std::lock_guard lock(ch.mu_);
  draft.offset = 0;
  draft.tt = next_timetoken(ch.last_tt_);
  ch.last_tt_ = draft.tt;
  auto sig = std::make_shared<const Publication>(std::move(draft));
  keep_signal(ch, sig);
  if (signal_observer_) signal_observer_(ch.name(), sig);
  return sig;
}

void Hub::keep_signal(Channel& ch, const PublicationPtr& sig) {
  ch.signals_.push_back(sig);
  while (ch.signals_.size() > kSignalsKept) ch.signals_.pop_front();
  Delivery d{&ch, nullptr, sig, 0, Delivery::Kind::signal, 0};
  fan_out(ch, d, ch.subscribers_);
}

void Hub::deliver_signal(std::string_view name, PublicationPtr sig) {
  ChannelRef ch = find(name);
  if (!ch) return;
  std::lock_guard lock(ch->mu_);
  if (ch->state_ != Channel::State::ready) return;
  ch->last_tt_ = std::max(ch->last_tt_, sig->tt);
  keep_signal(*ch, sig);
}

void Hub::deliver_committed(std::string_view name, PublicationPtr pub) {
  ChannelRef ch = find(name);
  if (!ch) return;
  std::unique_lock lock(ch->mu_);
  if (ch->state_ == Channel::State::unloaded) return;  // the next load reads it from the store
  if (ch->state_ == Channel::State::loading) {
    // The snapshot may be older than this publication (another node's, read before it committed): hold it.
    if (gap_fill_ && ch->ahead_.size() < kMaxAhead) ch->ahead_.emplace(pub->offset, std::move(pub));
    return;
  }
  if (pub->offset <= ch->offset_) return;  // had it already (from a snapshot or a fill)
  if (pub->offset == ch->offset_ + 1) {
    append(*ch, std::move(pub));
    if (!ch->ahead_.empty()) drain_ahead(*ch);
    return;
  }
  if (!gap_fill_) {
    clear_history(*ch);  // a gap: keep only what follows it, so recovery never spans the hole
    append(*ch, std::move(pub));
    return;
  }
  if (ch->ahead_.size() < kMaxAhead) ch->ahead_.emplace(pub->offset, std::move(pub));
  if (!ch->filling_) start_fill(*ch, lock);
}

// Called with the channel's lock held; releases it to call the loader, which may complete at once.
void Hub::start_fill(Channel& ch, std::unique_lock<std::mutex>& lock) {
  ch.filling_ = true;
  lock.unlock();
  // `&ch`: a channel filling is not unloaded (unload_idle), so it outlives the fill.
  (filler_ ? filler_ : loader_)(ch.name(), ch.options().history_size, ch.options().history_bytes,
                                [this, &ch](ChannelSnapshot snap) {
    std::vector<std::function<void(bool)>> waiting;
    {
      std::lock_guard l(ch.mu_);
      ch.filling_ = false;
      // A failed read leaves the hole; the next publication past it, or the next resync, tries again.
      if (!snap.epoch.empty()) apply_fill(ch, std::move(snap));
      waiting.swap(ch.fill_waiting_);
    }
    // The channel is ready either way: what waited for the fill goes on with what there is.
    for (auto& w : waiting) w(true);
  });
}

void Hub::apply_fill(Channel& ch, ChannelSnapshot snap) {
  for (auto& p : snap.pubs) {
    if (p->offset <= ch.offset_) continue;
    if (p->offset != ch.offset_ + 1) clear_history(ch);  // trimmed from the store too: a real hole
    append(ch, std::move(p));
  }
  if (snap.offset > ch.offset_) {
    // The newest ones are not kept (history_size 0, or trimmed meanwhile): nothing can fill them.
    clear_history(ch);
    ch.offset_ = snap.offset;
    ch.last_tt_ = std::max(ch.last_tt_, snap.last_tt);
  }
  drain_ahead(ch);
}

// Appends the held publications that now follow on, and forgets those the channel has already.
void Hub::drain_ahead(Channel& ch) {
  while (!ch.ahead_.empty()) {
    auto it = ch.ahead_.begin();
    if (it->first > ch.offset_ + 1) break;
    if (it->first == ch.offset_ + 1) append(ch, std::move(it->second));
    ch.ahead_.erase(it);
  }
}

std::size_t Hub::resync_all() {
  std::vector<ChannelRef> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, ch] : channels_)
      if (ch->options().durable) all.push_back(ch);
  }
  std::size_t n = 0;
  for (const ChannelRef& ch : all) {
    std::unique_lock lock(ch->mu_);
    if (ch->state_ != Channel::State::ready || ch->filling_) continue;
    ++n;
    start_fill(*ch, lock);
  }
  return n;
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

std::vector<PublicationPtr> Hub::history_tt(Channel& ch, const TimetokenQuery& q, std::string_view user) {
  std::vector<PublicationPtr> out;
  std::lock_guard lock(ch.mu_);
  auto lo = std::partition_point(ch.history_.begin(), ch.history_.end(),
                                 [&](const PublicationPtr& p) { return p->tt <= q.after; });
  auto hi = std::partition_point(lo, ch.history_.end(), [&](const PublicationPtr& p) { return p->tt <= q.until; });
  if (q.oldest) {
    for (auto it = lo; it != hi && out.size() < q.limit; ++it)
      if (visible(**it, user)) out.push_back(*it);
  } else {
    for (auto it = hi; it != lo && out.size() < q.limit;) {
      --it;
      if (visible(**it, user)) out.push_back(*it);
    }
    std::reverse(out.begin(), out.end());
  }
  return out;
}

std::size_t Hub::count_after(Channel& ch, std::uint64_t after, std::string_view user) {
  std::lock_guard lock(ch.mu_);
  auto it = std::partition_point(ch.history_.begin(), ch.history_.end(),
                                 [&](const PublicationPtr& p) { return p->tt <= after; });
  return static_cast<std::size_t>(
      std::count_if(it, ch.history_.end(), [&](const PublicationPtr& p) { return visible(*p, user); }));
}

std::uint64_t Hub::last_timetoken(Channel& ch) {
  std::lock_guard lock(ch.mu_);
  return ch.last_tt_;
}

std::vector<std::pair<std::string, PresenceResult>> Hub::presence_all() {
  // Channel locks are never waited for under the registry's (see the top of hub.hpp): copy, then visit.
  std::vector<ChannelRef> all;
  {
    std::lock_guard lock(mu_);
    all.reserve(channels_.size());
    for (auto& [name, ch] : channels_) all.push_back(ch);
  }
  std::vector<std::pair<std::string, PresenceResult>> out;
  for (const ChannelRef& ch : all) {
    auto p = presence(*ch);
    if (p.sessions > 0) out.emplace_back(ch->name(), std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::string> Hub::channels_of_user(std::string_view user) {
  std::vector<ChannelRef> all;
  {
    std::lock_guard lock(mu_);
    all.reserve(channels_.size());
    for (auto& [name, ch] : channels_) all.push_back(ch);
  }
  std::vector<std::string> out;
  for (const ChannelRef& ch : all) {
    std::lock_guard lock(ch->mu_);
    if (ch->users_.contains(std::string(user))) out.push_back(ch->name());
  }
  std::sort(out.begin(), out.end());
  return out;
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
