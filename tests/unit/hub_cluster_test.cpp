// Unit tests of the hub's cluster mode (core/hub.hpp, with core/sequencer.hpp deciding): gap filling from
// the store when publications of other nodes arrive out of order, are lost, or arrive while the channel
// loads; resync after a broker outage. The member observer is in presence_test.cpp, signals from other
// nodes in pubnub_views_test.cpp, the sequencer's decisions alone in sequencer_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/hub.hpp"

namespace rtsync::core {
namespace {

class Sink : public DeliverySink {
 public:
  void deliver(Delivery d) override {
    std::lock_guard lock(mu_);
    if (d.kind == Delivery::Kind::publication) offsets_.push_back(d.offset);
  }
  std::vector<std::uint64_t> offsets() {
    std::lock_guard lock(mu_);
    return offsets_;
  }

 private:
  std::mutex mu_;
  std::vector<std::uint64_t> offsets_;
};

FrameEncoder encoder() {
  FrameEncoder e;
  e.publication = [](const std::string&, const Publication& p) {
    auto f = std::make_shared<Frame>();
    f->bytes = std::to_string(p.offset);
    return FramePtr(f);
  };
  e.presence = [](const std::string&, std::string_view op, const Member&) {
    auto f = std::make_shared<Frame>();
    f->bytes = std::string(op);
    return FramePtr(f);
  };
  return e;
}

PublicationPtr pub(std::uint64_t offset) {
  Publication p;
  p.offset = offset;
  p.data = std::to_string(offset);
  p.tt = 1000 + offset;
  return std::make_shared<const Publication>(std::move(p));
}

// The "store": a channel's committed publications; each load is kept for the test to answer.
struct Fixture {
  std::vector<std::function<void(ChannelSnapshot)>> loads;
  Sink sink;
  Hub hub{1, encoder(), [this](const std::string&, std::size_t, std::size_t, std::function<void(ChannelSnapshot)> done) {
            loads.push_back(std::move(done));
          }};
  Fixture() {
    hub.attach(0, &sink);
    hub.enable_gap_fill();
  }
  static ChannelSnapshot snapshot(std::uint64_t first, std::uint64_t last) {
    ChannelSnapshot s{"e", last, {}, 1000 + last};
    for (auto o = first; o <= last && o > 0; ++o) s.pubs.push_back(pub(o));
    return s;
  }
  Channel& ready(std::uint64_t last) {
    NamespaceOptions o;
    o.history_size = 100;
    Channel& ch = *hub.channel("d", o);
    EXPECT_FALSE(hub.ready_or_wait(ch, [](bool) {}));
    auto done = loads.back();
    done(snapshot(1, last));
    hub.subscribe(ch, 0, std::nullopt, "u", nullptr, false);
    return ch;
  }
  std::vector<std::uint64_t> history(Channel& ch) {
    std::vector<std::uint64_t> out;
    for (const auto& p : hub.history(ch, HistoryQuery{1000, std::nullopt, false}, "u").pubs) out.push_back(p->offset);
    return out;
  }
};

using Offsets = std::vector<std::uint64_t>;

TEST(HubGapFill, OutOfOrderArrivalIsHeldThenFilledFromTheStore) {
  Fixture f;
  Channel& ch = f.ready(2);
  f.hub.deliver_committed("d", pub(5));  // 3 and 4 are late (or lost)
  EXPECT_TRUE(f.sink.offsets().empty());
  ASSERT_EQ(f.loads.size(), 2u);         // the fill
  f.hub.deliver_committed("d", pub(6));  // held too; no second fill while one is under way
  EXPECT_EQ(f.loads.size(), 2u);
  f.hub.deliver_committed("d", pub(3));  // arrives meanwhile: in order, delivered at once
  EXPECT_EQ(f.sink.offsets(), (Offsets{3}));
  f.loads[1](Fixture::snapshot(1, 5));   // the store has 1..5 by now
  EXPECT_EQ(f.sink.offsets(), (Offsets{3, 4, 5, 6}));
  EXPECT_EQ(f.history(ch), (Offsets{1, 2, 3, 4, 5, 6}));
  f.hub.deliver_committed("d", pub(4));  // the late one: a duplicate now
  f.hub.deliver_committed("d", pub(7));
  EXPECT_EQ(f.sink.offsets(), (Offsets{3, 4, 5, 6, 7}));
}

TEST(HubGapFill, AHoleTheStoreNoLongerKeepsDropsTheHistoryBeforeIt) {
  Fixture f;
  Channel& ch = f.ready(2);
  f.hub.deliver_committed("d", pub(9));
  ASSERT_EQ(f.loads.size(), 2u);
  f.loads[1](Fixture::snapshot(6, 9));  // 3..5 were trimmed
  EXPECT_EQ(f.sink.offsets(), (Offsets{6, 7, 8, 9}));
  EXPECT_EQ(f.history(ch), (Offsets{6, 7, 8, 9}));
  // Recovery from before the hole fails; after it, it works.
  EXPECT_FALSE(f.hub.subscribe(ch, 0, StreamPosition{2, "e"}, "u", nullptr, false).recovered);
  EXPECT_TRUE(f.hub.subscribe(ch, 0, StreamPosition{6, "e"}, "u", nullptr, false).recovered);
}

TEST(HubGapFill, AChannelIsNotUnloadedWhileFillingOrHoldingPublications) {
  Fixture f;
  NamespaceOptions o;
  {
    auto ch = f.hub.channel("d", o);
    EXPECT_FALSE(f.hub.ready_or_wait(*ch, [](bool) {}));
    f.loads[0](Fixture::snapshot(1, 2));
  }
  f.hub.deliver_committed("d", pub(5));  // held, and a fill under way
  ASSERT_EQ(f.loads.size(), 2u);
  const auto later = std::chrono::steady_clock::now() + std::chrono::hours(1);
  EXPECT_EQ(f.hub.unload_idle(later), 0u);
  f.loads[1](Fixture::snapshot(1, 5));
  EXPECT_EQ(f.hub.unload_idle(later), 1u);
}

TEST(HubGapFill, PublicationsArrivingDuringTheLoadAreKept) {
  Fixture f;
  NamespaceOptions o;
  Channel& ch = *f.hub.channel("d", o);
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [](bool) {}));
  // Another node committed 4 and 5 after the load read the store (which saw 1..3).
  f.hub.deliver_committed("d", pub(4));
  f.hub.deliver_committed("d", pub(5));
  f.hub.deliver_committed("d", pub(2));
  f.loads[0](Fixture::snapshot(1, 3));
  EXPECT_EQ(f.history(ch), (Offsets{1, 2, 3, 4, 5}));
}

TEST(HubGapFill, ResyncReadsWhatTheBrokerLost) {
  Fixture f;
  Channel& ch = f.ready(2);
  // Publications 3 and 4 were lost with the broker's connection: nothing arrives to show the gap.
  EXPECT_EQ(f.hub.resync_all(), 1u);
  ASSERT_EQ(f.loads.size(), 2u);
  f.loads[1](Fixture::snapshot(1, 4));
  EXPECT_EQ(f.sink.offsets(), (Offsets{3, 4}));
  EXPECT_EQ(f.history(ch), (Offsets{1, 2, 3, 4}));
  // A failed read changes nothing, and the next resync tries again.
  EXPECT_EQ(f.hub.resync_all(), 1u);
  f.loads[2](ChannelSnapshot{});
  EXPECT_EQ(f.history(ch), (Offsets{1, 2, 3, 4}));
  EXPECT_EQ(f.hub.resync_all(), 1u);
}

TEST(HubGapFill, WithoutKeptHistoryTheOffsetJumps) {
  Fixture f;
  Channel& ch = f.ready(2);
  f.hub.deliver_committed("d", pub(6));
  ChannelSnapshot s{"e", 6, {}, 1006};  // history_size 0: nothing to fill with
  f.loads[1](s);
  EXPECT_EQ(f.sink.offsets(), (Offsets{}));
  f.hub.deliver_committed("d", pub(7));
  EXPECT_EQ(f.sink.offsets(), (Offsets{7}));
  EXPECT_EQ(f.history(ch), (Offsets{7}));
}

TEST(HubGapFill, ASubscriberAheadOfThisNodeWaitsForAFill) {
  Fixture f;
  Channel& ch = f.ready(2);
  bool ran = false;
  // A client saw offset 4 on another node; this one has 2.
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { ran = ok; }, 4));
  ASSERT_EQ(f.loads.size(), 2u);
  EXPECT_FALSE(ran);
  f.loads[1](Fixture::snapshot(1, 4));
  EXPECT_TRUE(ran);
  EXPECT_EQ(f.history(ch), (Offsets{1, 2, 3, 4}));
  EXPECT_TRUE(f.hub.subscribe(ch, 0, StreamPosition{4, "e"}, "u", nullptr, false).recovered);
  // Not behind: at once.
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [](bool) { ADD_FAILURE(); }, 4));
}

}  // namespace
}  // namespace rtsync::core
