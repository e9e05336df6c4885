// Unit tests of the channel hub's registry and fan-out (core/hub.cpp): offsets, epochs, history trimming
// and queries, recovery decisions, per-sink fan-out, publications addressed to one user, and the
// gap-free subscribe under concurrent publishing. Loading and unloading: hub_load_test.cpp.
#include "core/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hub_fixture.hpp"

namespace rtsync::core {
namespace {

using namespace testing;

// ---------------------------------------------------------------------------------------------------
// Offsets, history, epochs

TEST(HubBasics, OffsetsStartAtOneAndGrowByOne) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts());
  for (std::uint64_t i = 1; i <= 5; ++i) {
    auto p = f.hub.publish(ch, "{\"n\":" + std::to_string(i) + "}", "alice", 42);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->offset, i);
    EXPECT_EQ(p->from, "alice");
    EXPECT_EQ(p->ts, 42);
    EXPECT_EQ(p->data, "{\"n\":" + std::to_string(i) + "}");
  }
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 5u);
  EXPECT_EQ(offsets_of(h.pubs), range(1, 5));
}

TEST(HubBasics, OffsetsArePerChannel) {
  HubFixture f;
  Channel& a = *f.hub.channel("a", memory_opts());
  Channel& b = *f.hub.channel("b", memory_opts());
  publish_n(f.hub, a, 3);
  EXPECT_EQ(f.hub.publish(b, "1", "u", 0)->offset, 1u);
  EXPECT_EQ(f.hub.publish(a, "1", "u", 0)->offset, 4u);
}

TEST(HubBasics, HistoryTrimmedToHistorySize) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts(3));
  publish_n(f.hub, ch, 10);
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 10u);
  EXPECT_EQ(offsets_of(h.pubs), range(8, 10));
}

TEST(HubBasics, HistorySizeZeroKeepsNone) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts(0));
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  publish_n(f.hub, ch, 4);
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 4u);
  EXPECT_TRUE(h.pubs.empty());
  // Still delivered live.
  EXPECT_EQ(offsets_of(f.sinks[0].publications()), range(1, 4));
}

TEST(HubBasics, NonDurableReadyAtCreationWithHexEpoch) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts());
  bool ran = false;
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [&](bool) { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_EQ(f.loader.count(), 0u);
  auto r = sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_TRUE(is_hex16(r.epoch)) << r.epoch;
  EXPECT_EQ(hist(f.hub, ch, HistoryQuery{}).epoch, r.epoch);
}

TEST(HubBasics, TwoHubsGiveDifferentEpochs) {
  HubFixture f1, f2;
  auto e1 = hist(f1.hub, *f1.hub.channel("same", memory_opts()), HistoryQuery{}).epoch;
  auto e2 = hist(f2.hub, *f2.hub.channel("same", memory_opts()), HistoryQuery{}).epoch;
  EXPECT_TRUE(is_hex16(e1)) << e1;
  EXPECT_TRUE(is_hex16(e2)) << e2;
  EXPECT_NE(e1, e2);
}

TEST(HubBasics, EpochStableWithinChannel) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts());
  auto e = hist(f.hub, ch, HistoryQuery{}).epoch;
  publish_n(f.hub, ch, 3);
  EXPECT_EQ(hist(f.hub, ch, HistoryQuery{}).epoch, e);
  EXPECT_EQ(f.hub.channel("a", memory_opts())->options().durable, false);
  EXPECT_EQ(hist(f.hub, *f.hub.channel("a", memory_opts()), HistoryQuery{}).epoch, e);
}

TEST(HubBasics, FindAndChannelCount) {
  HubFixture f;
  EXPECT_EQ(f.hub.channel_count(), 0u);
  EXPECT_EQ(f.hub.find("a"), nullptr);
  Channel& a = *f.hub.channel("a", memory_opts());
  EXPECT_EQ(f.hub.channel_count(), 1u);
  EXPECT_EQ(f.hub.find("a").get(), &a);
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(&*f.hub.channel("a", memory_opts(5)), &a);  // found, not recreated
  EXPECT_EQ(a.options().history_size, 1000u);           // the first options stay
  EXPECT_EQ(f.hub.channel_count(), 1u);
  Channel& b = *f.hub.channel("ns:b", durable_opts());
  EXPECT_NE(&a, &b);
  EXPECT_EQ(f.hub.channel_count(), 2u);
  EXPECT_EQ(f.hub.find("ns:b").get(), &b);
  EXPECT_EQ(f.hub.find("b"), nullptr);
  EXPECT_EQ(f.hub.sink_count(), 2u);
}

// ---------------------------------------------------------------------------------------------------
// Recovery decisions

class HubRecovery : public ::testing::Test {
 protected:
  void SetUp() override {
    ch_ = &*f_.hub.channel("r", memory_opts(5));
    epoch_ = hist(f_.hub, *ch_, HistoryQuery{}).epoch;
    publish_n(f_.hub, *ch_, 10);  // kept: 6..10
  }
  SubscribeResult recover(std::optional<StreamPosition> since) { return sub(f_.hub, *ch_, 0, since, nullptr, false); }

  HubFixture f_;
  Channel* ch_ = nullptr;
  std::string epoch_;
};

TEST_F(HubRecovery, NoSince) {
  auto r = recover(std::nullopt);
  EXPECT_EQ(r.offset, 10u);
  EXPECT_EQ(r.epoch, epoch_);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
}

TEST_F(HubRecovery, AllKeptRecovered) {
  auto r = recover(StreamPosition{7, epoch_});
  EXPECT_EQ(r.offset, 10u);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{8, 9, 10}));
}

TEST_F(HubRecovery, OldestKeptBoundary) {
  // since 5: the next one (6) is the oldest kept, so nothing is missing.
  auto r = recover(StreamPosition{5, epoch_});
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), range(6, 10));
}

TEST_F(HubRecovery, SinceEqualsCurrent) {
  auto r = recover(StreamPosition{10, epoch_});
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  EXPECT_EQ(r.offset, 10u);
}

TEST_F(HubRecovery, Trimmed) {
  auto r = recover(StreamPosition{4, epoch_});
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  r = recover(StreamPosition{0, epoch_});
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
}

TEST_F(HubRecovery, OtherEpoch) {
  auto r = recover(StreamPosition{8, "0000000000000000"});
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  r = recover(StreamPosition{8, ""});
  EXPECT_FALSE(r.recovered);
  EXPECT_EQ(r.epoch, epoch_);
}

TEST_F(HubRecovery, SinceAheadOfCurrent) {
  auto r = recover(StreamPosition{11, epoch_});
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  EXPECT_EQ(r.offset, 10u);
}

TEST(HubRecoveryEdge, EmptyChannelSinceZero) {
  HubFixture f;
  Channel& ch = *f.hub.channel("e", memory_opts());
  auto epoch = hist(f.hub, ch, HistoryQuery{}).epoch;
  auto r = sub(f.hub, ch, 0, StreamPosition{0, epoch}, nullptr, false);
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  r = sub(f.hub, ch, 0, StreamPosition{1, epoch}, nullptr, false);
  EXPECT_FALSE(r.recovered);
}

TEST(HubRecoveryEdge, HistorySizeZero) {
  HubFixture f;
  Channel& ch = *f.hub.channel("z", memory_opts(0));
  auto epoch = hist(f.hub, ch, HistoryQuery{}).epoch;
  publish_n(f.hub, ch, 3);
  EXPECT_FALSE(sub(f.hub, ch, 0, StreamPosition{2, epoch}, nullptr, false).recovered);
  EXPECT_TRUE(sub(f.hub, ch, 0, StreamPosition{3, epoch}, nullptr, false).recovered);
}

// ---------------------------------------------------------------------------------------------------
// Fan-out

TEST(HubFanOut, OncePerSinkWithSubscribers) {
  HubFixture f(3);
  Channel& ch = *f.hub.channel("f", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  sub(f.hub, ch, 2, std::nullopt, nullptr, false);
  f.hub.publish(ch, "1", "u", 0);
  f.hub.publish(ch, "2", "u", 0);
  EXPECT_EQ(offsets_of(f.sinks[0].all()), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(offsets_of(f.sinks[2].all()), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(f.sinks[1].size(), 0u);
  // The same frame object goes to every sink.
  EXPECT_EQ(f.sinks[0].all()[0].frame, f.sinks[2].all()[0].frame);
  EXPECT_EQ(f.sinks[0].all()[0].frame->view(), "msg|f|1|1");
  EXPECT_EQ(f.sinks[0].all()[0].channel, &ch);
  EXPECT_EQ(f.sinks[0].all()[0].kind, Delivery::Kind::publication);
}

TEST(HubFanOut, NoneAfterUnsubscribe) {
  HubFixture f(2);
  Channel& ch = *f.hub.channel("f", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  f.hub.unsubscribe(ch, 0, 0, false, false);
  f.hub.publish(ch, "1", "u", 0);  // one subscriber left on sink 0
  EXPECT_EQ(f.sinks[0].size(), 1u);
  f.hub.unsubscribe(ch, 0, 0, false, false);
  f.hub.publish(ch, "2", "u", 0);
  EXPECT_EQ(f.sinks[0].size(), 1u);
  // An extra unsubscribe does not underflow into "subscribed".
  f.hub.unsubscribe(ch, 0, 0, false, false);
  f.hub.publish(ch, "3", "u", 0);
  EXPECT_EQ(f.sinks[0].size(), 1u);
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  f.hub.publish(ch, "4", "u", 0);
  EXPECT_EQ(offsets_of(f.sinks[0].all()), (std::vector<std::uint64_t>{1, 4}));
  EXPECT_EQ(f.sinks[1].size(), 0u);
}

TEST(HubFanOut, OtherChannelsNotDelivered) {
  HubFixture f(1);
  Channel& a = *f.hub.channel("a", memory_opts());
  Channel& b = *f.hub.channel("b", memory_opts());
  sub(f.hub, a, 0, std::nullopt, nullptr, false);
  f.hub.publish(b, "1", "u", 0);
  EXPECT_EQ(f.sinks[0].size(), 0u);
  f.hub.publish(a, "1", "u", 0);
  ASSERT_EQ(f.sinks[0].size(), 1u);
  EXPECT_EQ(f.sinks[0].all()[0].channel, &a);
}

// ---------------------------------------------------------------------------------------------------
// History queries

class HubHistory : public ::testing::Test {
 protected:
  void SetUp() override {
    ch_ = &*f_.hub.channel("h", memory_opts(1000));
    publish_n(f_.hub, *ch_, 10);
  }
  HistoryResult q(std::size_t limit, std::optional<std::uint64_t> since, bool reverse) {
    HistoryQuery hq;
    hq.limit = limit;
    hq.since = since;
    hq.reverse = reverse;
    return hist(f_.hub, *ch_, hq);
  }
  HubFixture f_;
  Channel* ch_ = nullptr;
};

TEST_F(HubHistory, SinceIsExclusive) {
  auto r = q(100, 3, false);
  EXPECT_EQ(r.offset, 10u);
  EXPECT_EQ(offsets_of(r.pubs), range(4, 10));
  EXPECT_TRUE(q(100, 10, false).pubs.empty());
  EXPECT_TRUE(q(100, 50, false).pubs.empty());
  EXPECT_EQ(offsets_of(q(100, 0, false).pubs), range(1, 10));
}

TEST_F(HubHistory, Limit) {
  EXPECT_EQ(offsets_of(q(3, std::nullopt, false).pubs), range(1, 3));
  EXPECT_EQ(offsets_of(q(2, 4, false).pubs), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(offsets_of(q(1000, 4, false).pubs), range(5, 10));
}

TEST_F(HubHistory, ReverseNewestFirstAmongAfterSince) {
  EXPECT_EQ(offsets_of(q(3, std::nullopt, true).pubs), (std::vector<std::uint64_t>{10, 9, 8}));
  EXPECT_EQ(offsets_of(q(100, 7, true).pubs), (std::vector<std::uint64_t>{10, 9, 8}));
  EXPECT_EQ(offsets_of(q(2, 7, true).pubs), (std::vector<std::uint64_t>{10, 9}));
  EXPECT_EQ(offsets_of(q(100, std::nullopt, true).pubs),
            (std::vector<std::uint64_t>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_TRUE(q(100, 10, true).pubs.empty());
}

TEST_F(HubHistory, LimitZero) {
  auto r = q(0, std::nullopt, false);
  EXPECT_TRUE(r.pubs.empty());
  EXPECT_EQ(r.offset, 10u);
  EXPECT_TRUE(is_hex16(r.epoch));
  EXPECT_TRUE(q(0, 3, true).pubs.empty());
}

TEST_F(HubHistory, DefaultLimitIsHundred) {
  publish_n(f_.hub, *ch_, 140);  // 150 kept
  auto r = hist(f_.hub, *ch_, HistoryQuery{});
  EXPECT_EQ(offsets_of(r.pubs), range(1, 100));
  HistoryQuery rev;
  rev.reverse = true;
  r = hist(f_.hub, *ch_, rev);
  ASSERT_EQ(r.pubs.size(), 100u);
  EXPECT_EQ(r.pubs.front()->offset, 150u);
  EXPECT_EQ(r.pubs.back()->offset, 51u);
}

TEST(HubHistoryTrimmed, SinceBeforeTrimmedStartsAtOldestKept) {
  HubFixture f;
  Channel& ch = *f.hub.channel("t", memory_opts(4));
  publish_n(f.hub, ch, 10);  // kept 7..10
  HistoryQuery hq;
  hq.since = 2;
  EXPECT_EQ(offsets_of(hist(f.hub, ch, hq).pubs), range(7, 10));
}

// ---------------------------------------------------------------------------------------------------
// Publications addressed to one user (Publication::audience)

TEST(HubAudience, HistoryAndRecoveryShowOnlyOwnOrPublic) {
  HubFixture f;
  Channel& ch = load_durable(f, "coll:notes", ChannelSnapshot{"e", 0, {}});
  f.hub.deliver_committed("coll:notes", make_pub_for(1, ""));
  f.hub.deliver_committed("coll:notes", make_pub_for(2, "bob"));
  f.hub.deliver_committed("coll:notes", make_pub_for(3, "alice"));
  f.hub.deliver_committed("coll:notes", make_pub_for(4, "bob"));
  f.hub.deliver_committed("coll:notes", make_pub_for(5, ""));

  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}, "alice").pubs), (std::vector<std::uint64_t>{1, 3, 5}));
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}, "bob").pubs), (std::vector<std::uint64_t>{1, 2, 4, 5}));
  EXPECT_EQ(hist(f.hub, ch, HistoryQuery{}, "carol").offset, 5u);

  // The limit counts visible publications; since and reverse apply as usual.
  HistoryQuery q;
  q.limit = 2;
  EXPECT_EQ(offsets_of(hist(f.hub, ch, q, "alice").pubs), (std::vector<std::uint64_t>{1, 3}));
  q.reverse = true;
  EXPECT_EQ(offsets_of(hist(f.hub, ch, q, "alice").pubs), (std::vector<std::uint64_t>{5, 3}));
  q.since = 3;
  EXPECT_EQ(offsets_of(hist(f.hub, ch, q, "bob").pubs), (std::vector<std::uint64_t>{5, 4}));
  q.reverse = false;
  q.since = 1;
  EXPECT_EQ(offsets_of(hist(f.hub, ch, q, "bob").pubs), (std::vector<std::uint64_t>{2, 4}));

  auto r = sub(f.hub, ch, 0, StreamPosition{1, "e"}, nullptr, false, "alice");
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.offset, 5u);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{3, 5}));
  r = sub(f.hub, ch, 0, StreamPosition{1, "e"}, nullptr, false, "bob");
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{2, 4, 5}));
}

TEST(HubAudience, DeliveryCarriesThePublication) {
  HubFixture f(1);
  Channel& ch = load_durable(f, "coll:notes", ChannelSnapshot{"e", 0, {}});
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  auto p = make_pub_for(1, "bob");
  f.hub.deliver_committed("coll:notes", p);
  auto ds = f.sinks[0].all();
  ASSERT_EQ(ds.size(), 1u);  // the sink filters by audience; the hub hands it over once
  EXPECT_EQ(ds[0].pub, p);
  EXPECT_EQ(ds[0].pub->audience, "bob");
  // Presence deliveries carry none.
  Member m{1, "s1", "u", "null"};
  Channel& other = *f.hub.channel("room", memory_opts());
  sub(f.hub, other, 0, std::nullopt, nullptr, true);
  sub(f.hub, other, 0, std::nullopt, &m, false);
  auto ps = f.sinks[0].presences();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].pub, nullptr);
}

// ---------------------------------------------------------------------------------------------------
// Concurrency: gap-free subscribe while four threads publish

TEST(HubConcurrency, SubscribeWhilePublishingIsGapFree) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  constexpr std::uint64_t kTotal = kThreads * kPerThread;

  HubFixture f(2);
  Channel& ch = *f.hub.channel("busy", memory_opts(100));
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);  // sink 0 sees everything from the start

  std::atomic<bool> go{false};
  std::atomic<int> finished{0};
  std::atomic<int> subscribed{0};  // publishers wait for it halfway, so some subscribe lands mid-stream
  std::vector<std::vector<std::uint64_t>> assigned(kThreads);
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        if (i == kPerThread / 2)
          while (subscribed.load() == 0) std::this_thread::yield();
        assigned[t].push_back(f.hub.publish(ch, std::to_string(t * kPerThread + i), "u" + std::to_string(t), i)->offset);
      }
      ++finished;
    });
  }

  struct Sub {
    std::uint64_t offset;
    std::size_t count_before;  // sink 1's deliveries before the call
    std::size_t count_after;   // ... and right after it returned
  };
  std::vector<Sub> subs;
  std::thread subscriber([&] {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> pause(0, 300);
    while (!go.load()) std::this_thread::yield();
    do {
      std::this_thread::sleep_for(std::chrono::microseconds(pause(rng)));
      std::size_t before = f.sinks[1].size();
      auto r = sub(f.hub, ch, 1, std::nullopt, nullptr, false);
      std::size_t after = f.sinks[1].size();
      subs.push_back(Sub{r.offset, before, after});
      ++subscribed;
    } while (finished.load() < kThreads && subs.size() < 10000);
  });

  go = true;
  for (auto& t : publishers) t.join();
  subscriber.join();

  // Every publish got a distinct offset, each thread's increasing; together exactly 1..kTotal.
  std::vector<bool> seen(kTotal + 1, false);
  for (auto& a : assigned) {
    ASSERT_EQ(a.size(), static_cast<std::size_t>(kPerThread));
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_GE(a[i], 1u);
      ASSERT_LE(a[i], kTotal);
      ASSERT_FALSE(seen[a[i]]) << "offset " << a[i] << " assigned twice";
      seen[a[i]] = true;
      if (i) {
        ASSERT_GT(a[i], a[i - 1]);
      }
    }
  }
  EXPECT_EQ(hist(f.hub, ch, HistoryQuery{}).offset, kTotal);

  // Sink 0: everything, once, in order.
  EXPECT_EQ(offsets_of(f.sinks[0].all()), range(1, kTotal));

  // Sink 1: from the first subscribe's offset on, every publication exactly once, in order, although the
  // sink was subscribed many times (one delivery per sink, not per subscriber).
  ASSERT_FALSE(subs.empty());
  const std::uint64_t first = subs.front().offset;
  // Every publisher was at most halfway when the first subscribe happened.
  EXPECT_LE(first, kTotal / 2);
  auto got = offsets_of(f.sinks[1].all());
  EXPECT_EQ(got, range(first + 1, kTotal)) << "first subscribe at " << first << ", " << subs.size()
                                           << " subscribes";
  // Each subscribe's snapshot is consistent with what the sink had: every publication up to the returned
  // offset had been handed over (or was before the first subscribe) by the time subscribe returned, and
  // none after it was delivered before the subscribe call.
  std::uint64_t prev = 0;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const auto& s = subs[i];
    ASSERT_GE(s.offset, prev) << "subscribe " << i;
    prev = s.offset;
    ASSERT_LE(s.offset, kTotal);
    // Deliveries with offset > s.offset are first..kTotal minus those <= s.offset.
    EXPECT_LE(s.count_before, s.offset - first) << "subscribe " << i;
    EXPECT_GE(s.count_after, s.offset - first) << "subscribe " << i;
    // The deliveries after this subscribe (offset > returned offset) are exactly offset+1..kTotal.
    std::vector<std::uint64_t> after;
    for (auto o : got)
      if (o > s.offset) after.push_back(o);
    ASSERT_EQ(after, range(s.offset + 1, kTotal)) << "subscribe " << i;
  }
}

}  // namespace
}  // namespace rtsync::core
