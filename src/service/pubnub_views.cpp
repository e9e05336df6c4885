// PubNub's reads by timetoken, long polls and signals. See pubnub_views.hpp.
#include "service/pubnub_views.hpp"

#include "common/clock.hpp"
#include "core/hub.hpp"
#include "service/pubnub_wildcard.hpp"

#include <algorithm>
#include <deque>
#include <memory>

namespace rtsync::service {

namespace {
// Transients (signals, store=0 messages) are no history; a long poll only needs those sent since its
// client's previous poll, which is milliseconds ago. Enough for a burst between two polls of a slow client.
constexpr std::size_t kSignalsKept = 100;
// A wildcard's relays: every channel under it feeds them, and a poll answers at most max_batch (100) of
// what came since the previous one, the rest coming from these on the next poll.
constexpr std::size_t kRelaysKept = 1000;

// A channel's recent transients (its core::ChannelAttachment), oldest first; for a wildcard pattern's
// channel, the recent relays too (as many, for the same reason).
struct RecentSignals final : core::ChannelAttachment {
  std::deque<core::PublicationPtr> kept;
  std::deque<Relayed> relayed;
  std::uint64_t relay_seq = 0;  // the newest relay's
};

RecentSignals& recent(std::unique_ptr<core::ChannelAttachment>& attachment) {
  if (!attachment) attachment = std::make_unique<RecentSignals>();
  return static_cast<RecentSignals&>(*attachment);
}

// The first kept publication with a timetoken after `tt` (timetokens grow with offsets, so what is
// past a cursor is a suffix of the history).
auto first_after(const std::deque<core::PublicationPtr>& history, std::uint64_t tt) {
  return std::partition_point(history.begin(), history.end(), [&](const core::PublicationPtr& p) { return p->tt <= tt; });
}

// What a PubNub read returns of the kept history: visible to the reader, and not expired (ttl).
bool readable(const core::Publication& p, std::string_view user, std::int64_t now) {
  return core::visible_to(p, user) && !core::expired(p, now);
}
}  // namespace

PubnubViews::PubnubViews(core::Hub& hub) : hub_(hub) {
  hub_.set_transient_keeper([](std::unique_ptr<core::ChannelAttachment>& attachment, const core::PublicationPtr& sig) {
    auto& kept = recent(attachment).kept;
    kept.push_back(sig);
    while (kept.size() > kSignalsKept) kept.pop_front();
  });
  hub_.set_relay([this](std::string_view from, const core::PublicationPtr& pub) { relay(from, pub); });
}

// To each pattern of the channel's name that someone subscribed to (its channel in memory).
void PubnubViews::relay(std::string_view from, const core::PublicationPtr& pub) {
  if (!wildcards_.load(std::memory_order_relaxed)) return;
  std::shared_ptr<const std::string> source;
  for (const auto& pattern : wildcards_of(from)) {
    auto to = hub_.find(pattern);
    if (!to) continue;
    if (!source) source = std::make_shared<const std::string>(from);
    hub_.relay_to(*to, source, pub, [&](std::unique_ptr<core::ChannelAttachment>& attachment) {
      auto& r = recent(attachment);
      r.relayed.push_back(Relayed{pub, source, ++r.relay_seq});
      while (r.relayed.size() > kRelaysKept) r.relayed.pop_front();
      return r.relay_seq;
    });
  }
}

PollResult PubnubViews::poll(core::Channel& ch, std::size_t sink, const Resume& from, std::size_t limit,
                             std::string_view user) {
  PollResult r;
  const std::int64_t now = common::now_ms();
  hub_.listen(ch, sink, [&](const core::Kept& k) {
    r.offset = k.offset;
    r.last_tt = k.last_tt;
    for (auto it = first_after(k.history, from.pub_tt); it != k.history.end() && r.pubs.size() < limit; ++it)
      if (readable(**it, user, now)) r.pubs.push_back(*it);
    if (!k.attachment) return;
    const auto& kept = static_cast<const RecentSignals&>(*k.attachment);
    r.relay_seq = kept.relay_seq;
    for (const auto& s : kept.kept)
      if (s->tt > from.transient_tt && r.signals.size() < limit) r.signals.push_back(s);
    for (const auto& x : kept.relayed) {
      const bool past = from.relays_by_seq ? x.seq > from.relay : x.pub->tt > from.relay;
      if (past && readable(*x.pub, user, now) && r.relayed.size() < limit) r.relayed.push_back(x);
    }
  });
  return r;
}

core::PublicationPtr PubnubViews::signal(core::Channel& ch, core::Publication draft) {
  return hub_.transient(ch, std::move(draft));
}

std::vector<core::PublicationPtr> PubnubViews::history(core::Channel& ch, const TimetokenQuery& q,
                                                       std::string_view user) {
  std::vector<core::PublicationPtr> out;
  const std::int64_t now = common::now_ms();
  hub_.read(ch, [&](const core::Kept& k) {
    auto lo = first_after(k.history, q.after);
    auto hi = std::partition_point(lo, k.history.end(), [&](const core::PublicationPtr& p) { return p->tt <= q.until; });
    if (q.oldest) {
      for (auto it = lo; it != hi && out.size() < q.limit; ++it)
        if (readable(**it, user, now)) out.push_back(*it);
    } else {
      for (auto it = hi; it != lo && out.size() < q.limit;) {
        --it;
        if (readable(**it, user, now)) out.push_back(*it);
      }
      std::reverse(out.begin(), out.end());
    }
  });
  return out;
}

std::size_t PubnubViews::count_after(core::Channel& ch, std::uint64_t after, std::string_view user) {
  std::size_t n = 0;
  const std::int64_t now = common::now_ms();
  hub_.read(ch, [&](const core::Kept& k) {
    n = static_cast<std::size_t>(std::count_if(first_after(k.history, after), k.history.end(),
                                               [&](const core::PublicationPtr& p) { return readable(*p, user, now); }));
  });
  return n;
}

std::uint64_t PubnubViews::last_timetoken(core::Channel& ch) {
  std::uint64_t tt = 0;
  hub_.read(ch, [&](const core::Kept& k) { tt = k.last_tt; });
  return tt;
}

}  // namespace rtsync::service
