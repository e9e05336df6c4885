// Channel registry, offsets, history and fan-out to I/O threads. See hub.hpp for the guarantees; the
// comments here say how they are kept.
#include "core/hub.hpp"

#include <algorithm>
#include <utility>

#include "common/clock.hpp"
#include "common/random.hpp"

namespace rtsync::core {

namespace {
// Epochs are 16 hex chars: enough entropy that a restarted non-durable channel never repeats one.
std::string new_epoch() { return common::random_hex(8); }

std::int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

void Channel::touch() { last_used_.store(steady_ns(std::chrono::steady_clock::now()), std::memory_order_relaxed); }

Hub::Hub(std::size_t sink_count, FrameEncoder encoder, Loader loader, FeedEventEncoder feed_event)
    : sinks_(sink_count, nullptr),
      encoder_(std::move(encoder)),
      loader_(std::move(loader)),
      presence_(*this, std::move(feed_event)) {}

void Hub::attach(std::size_t index, DeliverySink* sink) { sinks_.at(index) = sink; }

ChannelRef Hub::channel(std::string_view name, const NamespaceOptions& opts) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(std::string(name));
  if (it != channels_.end()) {
    it->second->touch();
    return it->second;
  }
  auto ch = std::make_shared<Channel>(std::string(name), opts, sinks_.size());
  ch->touch();
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

std::vector<ChannelRef> Hub::all_channels() {
  std::lock_guard lock(mu_);
  std::vector<ChannelRef> all;
  all.reserve(channels_.size());
  for (auto& [name, ch] : channels_) all.push_back(ch);
  return all;
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
      // (a presence feed event); a busy channel is not idle anyway.
      if (it->second.use_count() == 1 && ch.last_used_.load(std::memory_order_relaxed) < before &&
          ch.mu_.try_lock()) {
        std::lock_guard l(ch.mu_, std::adopt_lock);
        const bool unsubscribed = std::all_of(ch.subscribers_.begin(), ch.subscribers_.end(),
                                              [](std::uint32_t n) { return n == 0; });
        // Waiters exist only while loading or filling.
        if (ch.state_ != Channel::State::loading && ch.sequencer_.idle() && ch.presence_.idle() && unsubscribed) {
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

std::vector<ChannelRef> Hub::channels() {
  std::vector<ChannelRef> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(channels_.size());
    for (const auto& [name, ch] : channels_) out.push_back(ch);
  }
  std::sort(out.begin(), out.end(), [](const ChannelRef& a, const ChannelRef& b) { return a->name() < b->name(); });
  return out;
}

std::optional<StreamPosition> Hub::position(Channel& ch) {
  std::lock_guard lock(ch.mu_);
  if (ch.state_ != Channel::State::ready) return std::nullopt;
  return StreamPosition{ch.offset_, ch.epoch_};
}

bool Hub::ready_or_wait(Channel& ch, std::function<void(bool)> on_loaded, std::uint64_t at_least) {
  {
    std::unique_lock lock(ch.mu_);
    if (ch.state_ == Channel::State::ready && gap_fill_ && at_least > ch.offset_) {
      if (ch.sequencer_.wait_fill(std::move(on_loaded))) start_fill(ch, lock);
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
            drain(ch);
          } else {
            ch.sequencer_.clear();
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

SubscribeResult Hub::subscribe(Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                               std::string_view user, const Member* member, bool listen_presence) {
  SubscribeResult r;
  const std::int64_t now = common::now_ms();
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
        if (p->offset > since->offset && visible_to(*p, user) && !expired(*p, now)) r.pubs.push_back(p);
    }
  }
  ++ch.subscribers_[sink];
  presence_.subscribe(ch, sink, member, listen_presence);
  return r;
}

void Hub::unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                      bool listened_presence) {
  std::lock_guard lock(ch.mu_);
  ch.touch();
  if (ch.subscribers_[sink] > 0) --ch.subscribers_[sink];
  presence_.unsubscribe(ch, sink, session_no, was_member, listened_presence);
}

void Hub::fan_out(const Delivery& d, const std::vector<std::uint32_t>& targets) {
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
  fan_out(d, ch.subscribers_);
  if (relay_) relay_(ch.name(), pub);
}

PublicationPtr Hub::append_next(Channel& ch, Publication draft) {
  draft.offset = ch.offset_ + 1;
  draft.tt = next_timetoken(ch.last_tt_);
  auto pub = std::make_shared<const Publication>(std::move(draft));
  append(ch, pub);
  return pub;
}

PublicationPtr Hub::publish(Channel& ch, Publication draft) {
  std::lock_guard lock(ch.mu_);
  return append_next(ch, std::move(draft));
}

PublicationPtr Hub::publish(Channel& ch, std::string data, std::string from, std::int64_t ts) {
  Publication p;
  p.data = std::move(data);
  p.from = std::move(from);
  p.ts = ts;
  return publish(ch, std::move(p));
}

void Hub::deliver_committed(std::string_view name, PublicationPtr pub) {
  ChannelRef ch = find(name);
  if (!ch) {
    if (relay_) relay_(name, pub);
    return;
  }
  std::unique_lock lock(ch->mu_);
  if (ch->state_ == Channel::State::unloaded) {
    if (relay_) relay_(name, pub);
    return;  // the next load reads it from the store
  }
  if (ch->state_ == Channel::State::loading) {
    // The snapshot may be older than this publication (another node's, read before it committed): hold it
    // (relayed once appended). Else the snapshot has it.
    if (gap_fill_) ch->sequencer_.hold(std::move(pub));
    else if (relay_) relay_(name, pub);
    return;
  }
  const auto step = gap_fill_ ? ch->sequencer_.arrive(pub, ch->offset_) : Sequencer::place(pub->offset, ch->offset_);
  switch (step) {
    case Sequencer::Step::drop:
    case Sequencer::Step::hold:
      return;
    case Sequencer::Step::open_hole:
      clear_history(*ch);  // keep only what follows the hole, so recovery never spans it
      append(*ch, std::move(pub));
      return;
    case Sequencer::Step::append:
      append(*ch, std::move(pub));
      drain(*ch);
      return;
    case Sequencer::Step::fill:
      start_fill(*ch, lock);
      return;
  }
}

// Called with the channel's lock held and a fill marked started (Sequencer::begin_fill); releases the
// lock to call the loader, which may complete at once.
void Hub::start_fill(Channel& ch, std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  // `&ch`: a channel filling is not unloaded (unload_idle), so it outlives the fill.
  (filler_ ? filler_ : loader_)(ch.name(), ch.options().history_size, ch.options().history_bytes,
                                [this, &ch](ChannelSnapshot snap) {
    std::vector<std::function<void(bool)>> waiting;
    {
      std::lock_guard l(ch.mu_);
      waiting = ch.sequencer_.end_fill();
      // A failed read leaves the hole; the next publication past it, or the next resync, tries again.
      if (!snap.epoch.empty()) apply_fill(ch, std::move(snap));
    }
    // The channel is ready either way: what waited for the fill goes on with what there is.
    for (auto& w : waiting) w(true);
  });
}

void Hub::apply_fill(Channel& ch, ChannelSnapshot snap) {
  for (auto& p : snap.pubs) {
    const auto step = Sequencer::place(p->offset, ch.offset_);
    if (step == Sequencer::Step::drop) continue;
    if (step == Sequencer::Step::open_hole) clear_history(ch);  // trimmed from the store too: a real hole
    append(ch, std::move(p));
  }
  if (snap.offset > ch.offset_) {
    // The newest ones are not kept (history_size 0, or trimmed meanwhile): nothing can fill them.
    clear_history(ch);
    ch.offset_ = snap.offset;
    ch.last_tt_ = std::max(ch.last_tt_, snap.last_tt);
  }
  drain(ch);
}

// Appends the held publications that now follow on.
void Hub::drain(Channel& ch) {
  for (auto& p : ch.sequencer_.drain(ch.offset_)) append(ch, std::move(p));
}

std::size_t Hub::resync_all() {
  std::size_t n = 0;
  for (const ChannelRef& ch : all_channels()) {
    if (!ch->options().durable) continue;
    std::unique_lock lock(ch->mu_);
    if (ch->state_ != Channel::State::ready || !ch->sequencer_.begin_fill()) continue;
    ++n;
    start_fill(*ch, lock);
  }
  return n;
}

HistoryResult Hub::history(Channel& ch, const HistoryQuery& q, std::string_view user) {
  HistoryResult r;
  const std::int64_t now = common::now_ms();
  std::lock_guard lock(ch.mu_);
  r.offset = ch.offset_;
  r.epoch = ch.epoch_;
  const std::uint64_t since = q.since.value_or(0);
  auto wanted = [&](const PublicationPtr& p) {
    return p->offset > since && visible_to(*p, user) && !expired(*p, now);
  };
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

Kept Hub::kept(const Channel& ch) { return Kept{ch.history_, ch.offset_, ch.last_tt_, ch.attachment_.get()}; }

void Hub::read(Channel& ch, const std::function<void(const Kept&)>& fn) {
  std::lock_guard lock(ch.mu_);
  fn(kept(ch));
}

void Hub::listen(Channel& ch, std::size_t sink, const std::function<void(const Kept&)>& fn) {
  std::lock_guard lock(ch.mu_);
  fn(kept(ch));
  ++ch.subscribers_[sink];
}

PublicationPtr Hub::transient(Channel& ch, Publication draft) {
  std::lock_guard lock(ch.mu_);
  draft.offset = 0;
  draft.tt = next_timetoken(ch.last_tt_);
  ch.last_tt_ = draft.tt;
  auto t = std::make_shared<const Publication>(std::move(draft));
  keep_transient(ch, t);
  if (transient_observer_) transient_observer_(ch.name(), t);
  return t;
}

void Hub::deliver_transient(std::string_view name, PublicationPtr t) {
  ChannelRef ch = find(name);
  if (!ch) {
    if (relay_) relay_(name, t);
    return;
  }
  std::lock_guard lock(ch->mu_);
  if (ch->state_ != Channel::State::ready) {
    if (relay_) relay_(name, t);
    return;
  }
  ch->last_tt_ = std::max(ch->last_tt_, t->tt);
  keep_transient(*ch, t);
}

void Hub::keep_transient(Channel& ch, const PublicationPtr& t) {
  if (keeper_) keeper_(ch.attachment_, t);
  Delivery d{&ch, nullptr, t, 0, Delivery::Kind::signal, 0};
  fan_out(d, ch.subscribers_);
  if (relay_) relay_(ch.name(), t);
}

std::size_t Hub::erase(std::string_view name, std::uint64_t after, std::uint64_t until) {
  ChannelRef ch = find(name);
  if (!ch) return 0;
  std::lock_guard lock(ch->mu_);
  std::size_t n = 0;
  // Timetokens grow with offsets: the range is one run of the history.
  auto it = std::partition_point(ch->history_.begin(), ch->history_.end(), [&](const PublicationPtr& p) { return p->tt <= after; });
  for (; it != ch->history_.end() && (*it)->tt <= until; ++it) {
    if ((*it)->deleted) continue;
    auto gone = std::make_shared<Publication>();
    gone->offset = (*it)->offset;
    gone->tt = (*it)->tt;
    gone->ts = (*it)->ts;
    gone->deleted = true;
    ch->history_bytes_ -= payload_bytes(**it);
    *it = std::move(gone);
    ++n;
  }
  return n;
}

void Hub::relay_to(Channel& to, const std::shared_ptr<const std::string>& source, const PublicationPtr& pub,
                   const std::function<std::uint64_t(std::unique_ptr<ChannelAttachment>&)>& keep) {
  std::lock_guard lock(to.mu_);
  if (to.state_ != Channel::State::ready) return;
  const std::uint64_t seq = keep(to.attachment_);
  Delivery d{&to, nullptr, pub, seq, Delivery::Kind::relayed, 0, source};
  fan_out(d, to.subscribers_);
}

}  // namespace rtsync::core
