// Unit tests of the hub's durable channels and memory (core/hub.cpp): loading through an injected
// Loader, deliver_committed on one node (a hole opens; gap filling is hub_cluster_test.cpp), the byte
// limit of history, and unloading idle channels.
#include "core/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hub_fixture.hpp"

namespace rtsync::core {
namespace {

using namespace testing;

// ---------------------------------------------------------------------------------------------------
// Durable channels and the loader

TEST(HubDurable, NotReadyLoaderCalledOnceWaitersRunAfterSnapshot) {
  HubFixture f;
  Channel& ch = *f.hub.channel("d", durable_opts(50));
  std::vector<std::string> ran;
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { ran.push_back(std::string("w1:") + (ok ? "ok" : "fail")); }));
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { ran.push_back(std::string("w2:") + (ok ? "ok" : "fail")); }));
  ASSERT_EQ(f.loader.count(), 1u);
  EXPECT_EQ(f.loader.calls[0].name, "d");
  EXPECT_EQ(f.loader.calls[0].history_size, 50u);
  EXPECT_TRUE(ran.empty());

  ChannelSnapshot snap;
  snap.epoch = "durable-epoch";
  snap.offset = 7;
  snap.pubs = {make_pub(6), make_pub(7)};
  f.loader.calls[0].done(snap);

  EXPECT_EQ(ran, (std::vector<std::string>{"w1:ok", "w2:ok"}));
  EXPECT_EQ(f.loader.count(), 1u);
  bool again = false;
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [&](bool) { again = true; }));
  EXPECT_FALSE(again);
  EXPECT_EQ(f.loader.count(), 1u);

  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.epoch, "durable-epoch");
  EXPECT_EQ(h.offset, 7u);
  ASSERT_EQ(h.pubs.size(), 2u);
  EXPECT_EQ(h.pubs[0], snap.pubs[0]);  // the snapshot's publications themselves
  EXPECT_EQ(h.pubs[1], snap.pubs[1]);

  auto r = sub(f.hub, ch, 0, StreamPosition{6, "durable-epoch"}, nullptr, false);
  EXPECT_EQ(r.offset, 7u);
  EXPECT_EQ(r.epoch, "durable-epoch");
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{7}));
}

TEST(HubDurable, WaitersMayBeCompletedFromAnotherThread) {
  HubFixture f;
  Channel& ch = *f.hub.channel("d", durable_opts());
  std::atomic<int> ok_count{0};
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { ok_count += ok ? 1 : 100; }));
  ASSERT_EQ(f.loader.count(), 1u);
  std::thread t([&] { f.loader.calls[0].done(ChannelSnapshot{"e", 0, {}}); });
  t.join();
  EXPECT_EQ(ok_count.load(), 1);
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [](bool) {}));
  EXPECT_EQ(f.hub.publish(ch, "1", "u", 0)->offset, 1u);
}

TEST(HubDurable, SynchronousLoaderWorks) {
  // A loader that completes inside the call (e.g. a cached store) must not deadlock.
  std::vector<RecordingSink> sinks(1);
  int loads = 0;
  Hub hub(1, test_encoder(), [&](const std::string&, std::size_t, std::size_t, std::function<void(ChannelSnapshot)> done) {
    ++loads;
    done(ChannelSnapshot{"sync", 3, {make_pub(3)}});
  });
  hub.attach(0, &sinks[0]);
  Channel& ch = *hub.channel("d", durable_opts());
  std::optional<bool> result;
  EXPECT_FALSE(hub.ready_or_wait(ch, [&](bool ok) { result = ok; }));
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(*result);
  EXPECT_EQ(loads, 1);
  EXPECT_TRUE(hub.ready_or_wait(ch, [](bool) {}));
  EXPECT_EQ(hist(hub, ch, HistoryQuery{}).offset, 3u);
}

TEST(HubDurable, EmptyEpochFailsAndLaterCallLoadsAgain) {
  HubFixture f;
  Channel& ch = *f.hub.channel("d", durable_opts());
  std::vector<bool> results;
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { results.push_back(ok); }));
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { results.push_back(ok); }));
  ASSERT_EQ(f.loader.count(), 1u);
  f.loader.calls[0].done(ChannelSnapshot{});  // the store failed: no epoch
  EXPECT_EQ(results, (std::vector<bool>{false, false}));

  // Still unloaded: committed publications are not taken, and the next call loads again.
  f.hub.deliver_committed("d", make_pub(1));
  results.clear();
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [&](bool ok) { results.push_back(ok); }));
  ASSERT_EQ(f.loader.count(), 2u);
  EXPECT_TRUE(results.empty());
  f.loader.calls[1].done(ChannelSnapshot{"e2", 4, {make_pub(3), make_pub(4)}});
  EXPECT_EQ(results, (std::vector<bool>{true}));
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [](bool) {}));
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.epoch, "e2");
  EXPECT_EQ(h.offset, 4u);
  EXPECT_EQ(offsets_of(h.pubs), (std::vector<std::uint64_t>{3, 4}));
}

TEST(HubDurable, DeliverCommittedIgnoredWhileUnloadedOrLoading) {
  HubFixture f;
  Channel& ch = *f.hub.channel("d", durable_opts());
  // Unloaded.
  f.hub.deliver_committed("d", make_pub(1));
  // Loading.
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [](bool) {}));
  f.hub.deliver_committed("d", make_pub(2));
  EXPECT_EQ(f.sinks[0].size() + f.sinks[1].size(), 0u);

  // The snapshot (which has them, per the store contract) is what counts.
  f.loader.calls[0].done(ChannelSnapshot{"e", 2, {make_pub(1), make_pub(2)}});
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 2u);
  EXPECT_EQ(offsets_of(h.pubs), (std::vector<std::uint64_t>{1, 2}));

  // Ready: appended and fanned out once per subscribed sink.
  auto r = sub(f.hub, ch, 1, std::nullopt, nullptr, false);
  EXPECT_EQ(r.offset, 2u);
  sub(f.hub, ch, 1, std::nullopt, nullptr, false);
  auto p3 = make_pub(3, "{\"v\":3}");
  f.hub.deliver_committed("d", p3);
  h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 3u);
  EXPECT_EQ(offsets_of(h.pubs), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(h.pubs.back(), p3);
  auto ds = f.sinks[1].all();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].offset, 3u);
  EXPECT_EQ(ds[0].kind, Delivery::Kind::publication);
  EXPECT_EQ(ds[0].channel, &ch);
  ASSERT_TRUE(ds[0].frame);
  EXPECT_EQ(ds[0].frame->view(), "msg|d|3|{\"v\":3}");
  EXPECT_EQ(f.sinks[0].size(), 0u);
}

TEST(HubDurable, DeliverCommittedForUnknownChannelIsNoop) {
  HubFixture f;
  f.hub.deliver_committed("nobody", make_pub(1));
  EXPECT_EQ(f.hub.channel_count(), 0u);
  EXPECT_EQ(f.hub.find("nobody"), nullptr);
}

TEST(HubDurable, DeliverCommittedOldOffsetIgnored) {
  HubFixture f;
  Channel& ch = load_durable(f, "d", ChannelSnapshot{"e", 5, {make_pub(4), make_pub(5)}});
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  f.hub.deliver_committed("d", make_pub(5, "\"dup\""));
  f.hub.deliver_committed("d", make_pub(3, "\"old\""));
  f.hub.deliver_committed("d", make_pub(1, "\"older\""));
  EXPECT_EQ(f.sinks[0].size(), 0u);
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 5u);
  ASSERT_EQ(offsets_of(h.pubs), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(h.pubs[1]->data, "\"p5\"");
}

TEST(HubDurable, DeliverCommittedGapClearsHistory) {
  HubFixture f;
  Channel& ch = load_durable(f, "d", ChannelSnapshot{"e", 5, {make_pub(3), make_pub(4), make_pub(5)}});
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  f.hub.deliver_committed("d", make_pub(9));
  auto h = hist(f.hub, ch, HistoryQuery{});
  EXPECT_EQ(h.offset, 9u);
  EXPECT_EQ(offsets_of(h.pubs), (std::vector<std::uint64_t>{9}));
  EXPECT_EQ(offsets_of(f.sinks[0].publications()), (std::vector<std::uint64_t>{9}));
  // Recovery from before the hole must fail; from the gap publication on it works.
  auto r = sub(f.hub, ch, 1, StreamPosition{5, "e"}, nullptr, false);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.pubs.empty());
  r = sub(f.hub, ch, 1, StreamPosition{8, "e"}, nullptr, false);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{9}));
  // The next in-order one is appended after it.
  f.hub.deliver_committed("d", make_pub(10));
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{9, 10}));
}

TEST(HubDurable, SnapshotHistoryTrimmedByLaterAppends) {
  HubFixture f;
  Channel& ch = load_durable(f, "d", ChannelSnapshot{"e", 2, {make_pub(1), make_pub(2)}}, 2);
  f.hub.deliver_committed("d", make_pub(3));
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{2, 3}));
}

// ---------------------------------------------------------------------------------------------------
// History bytes and unloading

TEST(HubHistoryBytes, TrimsTheOldestPastTheByteLimit) {
  HubFixture f;
  NamespaceOptions o = memory_opts(100);
  o.history_bytes = 25;
  Channel& ch = *f.hub.channel("b", o);
  for (int i = 1; i <= 5; ++i) f.hub.publish(ch, "\"" + std::string(8, 'x') + "\"", "u", 1);  // 10 bytes each
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{4, 5}));
  const auto epoch = hist(f.hub, ch, HistoryQuery{}).epoch;
  // Trimmed by bytes is trimmed: what is no longer kept cannot be recovered.
  EXPECT_FALSE(sub(f.hub, ch, 0, StreamPosition{2, epoch}, nullptr, false).recovered);
  auto r = sub(f.hub, ch, 0, StreamPosition{3, epoch}, nullptr, false);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{4, 5}));
  // One publication over the limit is delivered but not kept.
  f.hub.publish(ch, "\"" + std::string(30, 'y') + "\"", "u", 1);
  EXPECT_TRUE(hist(f.hub, ch, HistoryQuery{}).pubs.empty());
  EXPECT_EQ(f.sinks[0].publications().back().offset, 6u);
}

TEST(HubHistoryBytes, LoadAsksForTheByteLimitAndKeepsIt) {
  HubFixture f;
  NamespaceOptions o = durable_opts(100);
  o.history_bytes = 12;
  Channel& ch = *f.hub.channel("d", o);
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [](bool) {}));
  ASSERT_EQ(f.loader.count(), 1u);
  EXPECT_EQ(f.loader.calls[0].history_bytes, 12u);
  f.loader.calls[0].done(ChannelSnapshot{"e", 3, {make_pub(1), make_pub(2), make_pub(3)}});  // 4 bytes each
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{1, 2, 3}));
  f.hub.deliver_committed("d", make_pub(4));
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{2, 3, 4}));
}

TEST(HubUnload, IdleDurableChannelIsUnloadedAndReloadedWithItsEpochAndOffsets) {
  HubFixture f;
  load_durable(f, "d", ChannelSnapshot{"e", 5, {make_pub(4), make_pub(5)}});
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);
  EXPECT_EQ(f.hub.channel_count(), 0u);
  EXPECT_EQ(f.hub.find("d"), nullptr);
  // Committed while unloaded: the store has it; the hub has nobody to give it to.
  f.hub.deliver_committed("d", make_pub(6));
  EXPECT_TRUE(f.sinks[0].publications().empty());

  auto ch = f.hub.channel("d", durable_opts());
  std::optional<bool> loaded;
  EXPECT_FALSE(f.hub.ready_or_wait(*ch, [&](bool ok) { loaded = ok; }));
  ASSERT_EQ(f.loader.count(), 2u);  // loaded again, from the store
  f.loader.calls[1].done(ChannelSnapshot{"e", 6, {make_pub(4), make_pub(5), make_pub(6)}});
  EXPECT_EQ(loaded, true);
  auto r = sub(f.hub, *ch, 0, StreamPosition{4, "e"}, nullptr, false);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.epoch, "e");
  EXPECT_EQ(r.offset, 6u);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{5, 6}));
}

TEST(HubUnload, InMemoryChannelStartsOverWithANewEpoch) {
  HubFixture f;
  std::string epoch;
  {
    auto ch = f.hub.channel("m", memory_opts());
    publish_n(f.hub, *ch, 3);
    epoch = hist(f.hub, *ch, HistoryQuery{}).epoch;
  }
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);
  auto ch = f.hub.channel("m", memory_opts());
  auto r = sub(f.hub, *ch, 0, StreamPosition{3, epoch}, nullptr, false);
  EXPECT_NE(r.epoch, epoch);  // what tells a recovering client to reload
  EXPECT_FALSE(r.recovered);
  EXPECT_EQ(r.offset, 0u);
}

TEST(HubUnload, ChannelsInUseStay) {
  HubFixture f;
  // A reference (a subscription, a pending read) keeps a channel.
  auto held = f.hub.channel("held", memory_opts());
  // So do subscribers, members (a PubNub uuid present by heartbeats alone) and presence listeners.
  Channel& subscribed = *f.hub.channel("subscribed", memory_opts());
  sub(f.hub, subscribed, 1, std::nullopt, nullptr, false);
  Channel& member = *f.hub.channel("member", memory_opts());
  f.hub.presence().join(member, Member{7, "pubnub:ann", "ann"});
  // And a load under way, with its waiter.
  Channel& loading = *f.hub.channel("loading", durable_opts());
  std::optional<bool> loaded;
  EXPECT_FALSE(f.hub.ready_or_wait(loading, [&](bool ok) { loaded = ok; }));
  f.hub.channel("idle", memory_opts());

  EXPECT_EQ(f.hub.unload_idle(later()), 1u);  // "idle" only
  EXPECT_EQ(f.hub.find("idle"), nullptr);
  EXPECT_EQ(f.hub.channel_count(), 4u);

  // Once let go, each goes, but not before the cutoff: leaving counts as a use.
  held.reset();
  f.hub.unsubscribe(subscribed, 1, 0, false, false);
  f.hub.presence().leave(member, 7, "leave");
  ASSERT_EQ(f.loader.count(), 1u);
  f.loader.calls[0].done(ChannelSnapshot{"e", 0, {}});
  EXPECT_EQ(loaded, true);
  const auto before = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(f.hub.unload_idle(before), 0u);
  EXPECT_EQ(f.hub.unload_idle(later()), 4u);
  EXPECT_EQ(f.hub.channel_count(), 0u);
}

TEST(HubUnload, RecentlyUsedChannelStays) {
  HubFixture f;
  f.hub.channel("a", memory_opts());
  const auto cutoff = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  f.hub.channel("a", memory_opts());  // looked up again after the cutoff
  EXPECT_EQ(f.hub.unload_idle(cutoff), 0u);
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);
}

TEST(HubUnload, ConcurrentLookupsAndUnloadsNeverLoseAReference) {
  HubFixture f;
  std::atomic<bool> stop{false};
  std::thread sweeper([&] {
    while (!stop) f.hub.unload_idle(later());
  });
  for (int i = 0; i < 2000; ++i) {
    auto ch = f.hub.channel("c" + std::to_string(i % 7), memory_opts());
    f.hub.publish(*ch, "1", "u", 1);
    EXPECT_EQ(f.hub.find(ch->name()), ch);  // held, so still the registry's
  }
  stop = true;
  sweeper.join();
}

}  // namespace
}  // namespace rtsync::core
