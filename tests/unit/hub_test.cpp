// Unit tests of the channel hub (hub.cpp): offsets, epochs, history trimming, durable loading through an
// injected Loader, deliver_committed, recovery decisions, per-sink fan-out, presence, history queries and
// the gap-free subscribe under concurrent publishing. Also the idempotency cache and channel names.
#include "core/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/channel_name.hpp"
#include "core/idempotency.hpp"

namespace rtsync::core {
namespace {

// ---------------------------------------------------------------------------------------------------
// Fakes

// Records every delivery in call order. The hub calls it with the channel lock held; the own mutex is
// only for test threads that read while others publish.
class RecordingSink : public DeliverySink {
 public:
  void deliver(Delivery d) override {
    std::lock_guard lock(mu_);
    deliveries_.push_back(std::move(d));
  }
  std::vector<Delivery> all() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return deliveries_.size();
  }
  std::vector<Delivery> publications() const {
    std::vector<Delivery> out;
    for (auto& d : all())
      if (d.kind == Delivery::Kind::publication) out.push_back(d);
    return out;
  }
  std::vector<Delivery> presences() const {
    std::vector<Delivery> out;
    for (auto& d : all())
      if (d.kind == Delivery::Kind::presence) out.push_back(d);
    return out;
  }
  void clear() {
    std::lock_guard lock(mu_);
    deliveries_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Delivery> deliveries_;
};

// Frames whose bytes tell what was encoded: "msg|ch|offset|data" and "op|ch|session|user".
FrameEncoder test_encoder() {
  FrameEncoder e;
  e.publication = [](const std::string& ch, const Publication& p) {
    auto f = std::make_shared<Frame>();
    f->bytes = "msg|" + ch + "|" + std::to_string(p.offset) + "|" + p.data;
    return FramePtr(f);
  };
  e.presence = [](const std::string& ch, std::string_view op, const Member& m) {
    auto f = std::make_shared<Frame>();
    f->bytes = std::string(op) + "|" + ch + "|" + m.session + "|" + m.user;
    return FramePtr(f);
  };
  return e;
}

// A loader whose calls are kept; the test decides when and with what each completes.
struct FakeLoader {
  struct Call {
    std::string name;
    std::size_t history_size = 0;
    std::size_t history_bytes = 0;
    std::function<void(ChannelSnapshot)> done;
  };
  std::mutex mu;
  std::vector<Call> calls;

  Loader loader() {
    return [this](const std::string& name, std::size_t history_size, std::size_t history_bytes,
                  std::function<void(ChannelSnapshot)> done) {
      std::lock_guard lock(mu);
      calls.push_back(Call{name, history_size, history_bytes, std::move(done)});
    };
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return calls.size();
  }
};

// The hub calls as these tests use them, for a subscriber/reader whose user is `user`.
SubscribeResult sub(Hub& hub, Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                    const Member* member, bool listen_presence, std::string_view user = "reader") {
  return hub.subscribe(ch, sink, since, user, member, listen_presence);
}
HistoryResult hist(Hub& hub, Channel& ch, const HistoryQuery& q, std::string_view user = "reader") {
  return hub.history(ch, q, user);
}

PublicationPtr make_pub(std::uint64_t offset, std::string data = "", std::string from = "u") {
  if (data.empty()) data = "\"p" + std::to_string(offset) + "\"";
  return std::make_shared<const Publication>(Publication{offset, std::move(data), std::move(from), 1000 + static_cast<std::int64_t>(offset)});
}

NamespaceOptions memory_opts(std::size_t history_size = 1000) {
  NamespaceOptions o;
  o.durable = false;
  o.history_size = history_size;
  return o;
}

NamespaceOptions durable_opts(std::size_t history_size = 1000) {
  NamespaceOptions o;
  o.durable = true;
  o.history_size = history_size;
  return o;
}

std::vector<std::uint64_t> offsets_of(const std::vector<PublicationPtr>& pubs) {
  std::vector<std::uint64_t> out;
  for (auto& p : pubs) out.push_back(p->offset);
  return out;
}

std::vector<std::uint64_t> offsets_of(const std::vector<Delivery>& ds) {
  std::vector<std::uint64_t> out;
  for (auto& d : ds) out.push_back(d.offset);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {  // inclusive
  std::vector<std::uint64_t> out;
  for (auto i = from; i <= to; ++i) out.push_back(i);
  return out;
}

bool is_hex16(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A hub with `n` recording sinks attached and a fake loader.
struct HubFixture {
  explicit HubFixture(std::size_t n = 2) : sinks(n), hub(n, test_encoder(), loader.loader()) {
    for (std::size_t i = 0; i < n; ++i) hub.attach(i, &sinks[i]);
  }
  FakeLoader loader;
  std::vector<RecordingSink> sinks;
  Hub hub;
};

void publish_n(Hub& hub, Channel& ch, int n) {
  for (int i = 0; i < n; ++i) hub.publish(ch, "\"x\"", "u", 1);
}

// Makes a durable channel ready with the given snapshot; returns the channel.
Channel& load_durable(HubFixture& f, const std::string& name, ChannelSnapshot snap, std::size_t history = 1000) {
  Channel& ch = *f.hub.channel(name, durable_opts(history));
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [](bool) {}));
  std::function<void(ChannelSnapshot)> done;
  {
    std::lock_guard lock(f.loader.mu);
    done = f.loader.calls.back().done;
  }
  done(std::move(snap));
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [](bool) { ADD_FAILURE() << "waiter of a ready channel ran"; }));
  return ch;
}

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
// Presence

Member member(std::uint64_t no, std::string user, std::string info = "null") {
  return Member{no, "s" + std::to_string(no), std::move(user), std::move(info)};
}

TEST(HubPresence, JoinAndLeaveGoToListeners) {
  HubFixture f(3);
  Channel& ch = *f.hub.channel("p", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, true);   // listens, not a member
  sub(f.hub, ch, 2, std::nullopt, nullptr, false);  // neither
  Member m = member(17, "bob", "{\"n\":1}");
  sub(f.hub, ch, 1, std::nullopt, &m, false);       // member, not listening

  auto p0 = f.sinks[0].presences();
  ASSERT_EQ(p0.size(), 1u);
  EXPECT_EQ(p0[0].origin, 17u);
  EXPECT_EQ(p0[0].offset, 0u);
  EXPECT_EQ(p0[0].channel, &ch);
  ASSERT_TRUE(p0[0].frame);
  EXPECT_EQ(p0[0].frame->view(), "join|p|s17|bob");
  EXPECT_EQ(f.sinks[1].size(), 0u);
  EXPECT_EQ(f.sinks[2].size(), 0u);

  auto pr = f.hub.presence(ch);
  ASSERT_EQ(pr.clients.size(), 1u);
  EXPECT_EQ(pr.clients[0].session_no, 17u);
  EXPECT_EQ(pr.clients[0].session, "s17");
  EXPECT_EQ(pr.clients[0].user, "bob");
  EXPECT_EQ(pr.clients[0].info, "{\"n\":1}");

  f.hub.unsubscribe(ch, 1, 17, true, false);
  p0 = f.sinks[0].presences();
  ASSERT_EQ(p0.size(), 2u);
  EXPECT_EQ(p0[1].origin, 17u);
  EXPECT_EQ(p0[1].frame->view(), "leave|p|s17|bob");
  EXPECT_TRUE(f.hub.presence(ch).clients.empty());
  EXPECT_EQ(f.sinks[1].size(), 0u);
  EXPECT_EQ(f.sinks[2].size(), 0u);
}

TEST(HubPresence, JoinerListeningSinkGetsItsOwnJoinWithOrigin) {
  HubFixture f(1);
  Channel& ch = *f.hub.channel("p", memory_opts());
  Member m = member(5, "ann");
  sub(f.hub, ch, 0, std::nullopt, &m, true);
  auto ps = f.sinks[0].presences();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].origin, 5u);  // lets the sink skip telling the session of itself
}

TEST(HubPresence, NoLeaveForNonMembersOrAfterListenerLeft) {
  HubFixture f(2);
  Channel& ch = *f.hub.channel("p", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, true);
  Member m = member(1, "u1");
  sub(f.hub, ch, 1, std::nullopt, &m, false);
  sub(f.hub, ch, 1, std::nullopt, nullptr, false);
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);

  f.hub.unsubscribe(ch, 1, 99, false, false);  // not a member: no leave
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  f.hub.unsubscribe(ch, 1, 42, true, false);   // unknown member: no leave
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  EXPECT_EQ(f.hub.presence(ch).sessions, 1u);
  f.hub.unsubscribe(ch, 1, 1, false, false);   // was_member false: the member is left alone
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  EXPECT_EQ(f.hub.presence(ch).sessions, 1u);
  sub(f.hub, ch, 1, std::nullopt, nullptr, false);

  f.hub.unsubscribe(ch, 0, 0, false, true);  // the listener goes
  f.hub.unsubscribe(ch, 1, 1, true, false);
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  EXPECT_EQ(f.hub.presence(ch).sessions, 0u);
}

TEST(HubPresence, CountsDistinctUsersAndSessions) {
  HubFixture f(2);
  Channel& ch = *f.hub.channel("p", memory_opts());
  Member a1 = member(1, "alice"), a2 = member(2, "alice"), b = member(3, "bob");
  sub(f.hub, ch, 0, std::nullopt, &a1, false);
  sub(f.hub, ch, 1, std::nullopt, &a2, false);
  sub(f.hub, ch, 1, std::nullopt, &b, false);
  auto pr = f.hub.presence(ch);
  EXPECT_EQ(pr.sessions, 3u);
  EXPECT_EQ(pr.users, 2u);
  ASSERT_EQ(pr.clients.size(), 3u);
  std::set<std::uint64_t> nos;
  for (auto& c : pr.clients) nos.insert(c.session_no);
  EXPECT_EQ(nos, (std::set<std::uint64_t>{1, 2, 3}));

  f.hub.unsubscribe(ch, 0, 1, true, false);
  pr = f.hub.presence(ch);
  EXPECT_EQ(pr.sessions, 2u);
  EXPECT_EQ(pr.users, 2u);
  f.hub.unsubscribe(ch, 1, 3, true, false);
  pr = f.hub.presence(ch);
  EXPECT_EQ(pr.sessions, 1u);
  EXPECT_EQ(pr.users, 1u);
  EXPECT_EQ(pr.clients[0].user, "alice");
  EXPECT_EQ(pr.clients[0].session_no, 2u);
}

TEST(HubPresence, PresenceNotSentToPublicationOnlySinks) {
  HubFixture f(2);
  Channel& ch = *f.hub.channel("p", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, false);
  Member m = member(1, "u");
  sub(f.hub, ch, 1, std::nullopt, &m, false);
  EXPECT_EQ(f.sinks[0].size(), 0u);
  EXPECT_EQ(f.sinks[1].size(), 0u);
  // Both still get publications.
  f.hub.publish(ch, "1", "u", 0);
  EXPECT_EQ(f.sinks[0].publications().size(), 1u);
  EXPECT_EQ(f.sinks[1].publications().size(), 1u);
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

PublicationPtr make_pub_for(std::uint64_t offset, std::string audience) {
  Publication p;
  p.offset = offset;
  p.data = "\"p" + std::to_string(offset) + "\"";
  p.from = "server";
  p.ts = 1;
  p.audience = std::move(audience);
  return std::make_shared<const Publication>(std::move(p));
}

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

// ---------------------------------------------------------------------------------------------------
// Timetokens, long polls, signals and the presence feed (PubNub, PROTOCOL §7)

std::vector<std::uint64_t> tts_of(const std::vector<PublicationPtr>& pubs) {
  std::vector<std::uint64_t> out;
  for (auto& p : pubs) out.push_back(p->tt);
  return out;
}

TEST(HubTimetokens, StrictlyIncreasingWithOffsetsAndNearTheClock) {
  HubFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts());
  const std::uint64_t before = now_timetoken();
  std::uint64_t last = 0;
  for (int i = 0; i < 2000; ++i) {  // many in one 100-ns tick: bumped by one
    auto p = f.hub.publish(ch, "1", "u", 0);
    EXPECT_GT(p->tt, last);
    last = p->tt;
  }
  EXPECT_GE(f.hub.history_tt(ch, TimetokenQuery{}, "u").front()->tt, before);
  EXPECT_EQ(f.hub.last_timetoken(ch), last);
  EXPECT_EQ(std::to_string(last).size(), 17u);
}

TEST(HubTimetokens, NextTimetokenNeverGoesBack) {
  const std::uint64_t future = now_timetoken() + 10'000'000'000ULL;  // the clock was set back after a restart
  EXPECT_EQ(next_timetoken(future), future + 1);
  EXPECT_GE(next_timetoken(0), now_timetoken() - 10'000'000);
}

TEST(HubTimetokens, LoadedDurableChannelContinuesFromItsSnapshot) {
  HubFixture f;
  ChannelSnapshot snap;
  snap.epoch = "e1";
  snap.offset = 2;
  snap.last_tt = 42;
  auto p1 = std::make_shared<Publication>(Publication{1, "1", "u", 0});
  p1->tt = 41;
  auto p2 = std::make_shared<Publication>(Publication{2, "2", "u", 0});
  p2->tt = 42;
  snap.pubs = {p1, p2};
  Channel& ch = load_durable(f, "d", snap);
  EXPECT_EQ(f.hub.last_timetoken(ch), 42u);
  auto pub3 = std::make_shared<Publication>(Publication{3, "3", "u", 0});
  pub3->tt = 50;
  f.hub.deliver_committed("d", pub3);
  EXPECT_EQ(f.hub.last_timetoken(ch), 50u);
  TimetokenQuery q;
  q.after = 41;
  EXPECT_EQ(tts_of(f.hub.history_tt(ch, q, "u")), (std::vector<std::uint64_t>{42, 50}));
}

class HubByTimetoken : public ::testing::Test {
 protected:
  void SetUp() override {
    ch = &*f.hub.channel("h", memory_opts());
    for (int i = 1; i <= 10; ++i) tts.push_back(f.hub.publish(*ch, std::to_string(i), "u", 0)->tt);
  }
  HubFixture f;
  Channel* ch = nullptr;
  std::vector<std::uint64_t> tts;  // of offsets 1..10
};

TEST_F(HubByTimetoken, NewestOrOldestInRangeAscending) {
  TimetokenQuery q;
  q.limit = 3;
  EXPECT_EQ(tts_of(f.hub.history_tt(*ch, q, "u")), (std::vector<std::uint64_t>{tts[7], tts[8], tts[9]}));
  q.oldest = true;
  EXPECT_EQ(tts_of(f.hub.history_tt(*ch, q, "u")), (std::vector<std::uint64_t>{tts[0], tts[1], tts[2]}));
  q.after = tts[2];   // exclusive
  q.until = tts[5];   // inclusive
  q.limit = 100;
  EXPECT_EQ(tts_of(f.hub.history_tt(*ch, q, "u")), (std::vector<std::uint64_t>{tts[3], tts[4], tts[5]}));
  q.oldest = false;
  q.limit = 2;
  EXPECT_EQ(tts_of(f.hub.history_tt(*ch, q, "u")), (std::vector<std::uint64_t>{tts[4], tts[5]}));
}

TEST_F(HubByTimetoken, CountAfter) {
  EXPECT_EQ(f.hub.count_after(*ch, 0, "u"), 10u);
  EXPECT_EQ(f.hub.count_after(*ch, tts[6], "u"), 3u);
  EXPECT_EQ(f.hub.count_after(*ch, tts[9], "u"), 0u);
}

TEST_F(HubByTimetoken, PollReturnsWhatIsPastTheCursorAndRegistersAtomically) {
  auto r = f.hub.poll(*ch, 1, tts[7], 100, "u");
  EXPECT_EQ(r.offset, 10u);
  EXPECT_EQ(tts_of(r.pubs), (std::vector<std::uint64_t>{tts[8], tts[9]}));
  EXPECT_TRUE(r.signals.empty());
  EXPECT_EQ(r.last_tt, tts[9]);
  // Registered: the next publication reaches sink 1, and stops after unsubscribe.
  f.hub.publish(*ch, "11", "u", 0);
  EXPECT_EQ(offsets_of(f.sinks[1].publications()), (std::vector<std::uint64_t>{11}));
  f.hub.unsubscribe(*ch, 1, 0, false, false);
  f.hub.publish(*ch, "12", "u", 0);
  EXPECT_EQ(f.sinks[1].publications().size(), 1u);
  // The limit keeps the oldest past the cursor.
  f.hub.unsubscribe(*ch, 1, 0, false, false);  // a second unsubscribe leaves the count at zero
  auto r2 = f.hub.poll(*ch, 1, 0, 3, "u");
  EXPECT_EQ(offsets_of(r2.pubs), (std::vector<std::uint64_t>{1, 2, 3}));
  f.hub.unsubscribe(*ch, 1, 0, false, false);
}

TEST(HubSignals, DeliveredWithTimetokenNotKeptInHistory) {
  HubFixture f;
  Channel& ch = *f.hub.channel("s", memory_opts());
  auto p1 = f.hub.publish(ch, "1", "u", 0);
  f.hub.poll(ch, 0, 0, 100, "u");
  Publication draft;
  draft.data = "\"typing\"";
  draft.from = "u";
  auto sig = f.hub.signal(ch, draft);
  EXPECT_GT(sig->tt, p1->tt);
  EXPECT_EQ(sig->offset, 0u);
  auto p2 = f.hub.publish(ch, "2", "u", 0);
  EXPECT_GT(p2->tt, sig->tt);
  EXPECT_EQ(p2->offset, 2u);  // signals take no offset
  auto all = f.sinks[0].all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].kind, Delivery::Kind::signal);
  EXPECT_EQ(all[0].pub, sig);
  EXPECT_FALSE(all[0].frame);
  EXPECT_EQ(hist(f.hub, ch, HistoryQuery{}).pubs.size(), 2u);
  auto r = f.hub.poll(ch, 1, p1->tt, 100, "u");
  EXPECT_EQ(tts_of(r.signals), (std::vector<std::uint64_t>{sig->tt}));
  EXPECT_EQ(tts_of(r.pubs), (std::vector<std::uint64_t>{p2->tt}));
}

std::vector<std::string> feed_events(Hub& hub, Channel& feed) {
  std::vector<std::string> out;
  for (auto& p : hub.history_tt(feed, TimetokenQuery{}, "x")) out.push_back(p->data);
  return out;
}

TEST(HubPresenceFeed, UserJoinsAndLeavesOnceWhateverItsSessions) {
  HubFixture f;
  Channel& ch = *f.hub.channel("room", memory_opts());
  Channel& feed = *f.hub.channel("room-pnpres", memory_opts(100));
  auto m1 = member(1, "ann");
  auto m2 = member(2, "ann");
  auto m3 = member(3, "bob");
  sub(f.hub, ch, 0, std::nullopt, &m1, false);
  f.hub.join(ch, m2);  // a PubNub uuid of the same user: no second join
  f.hub.join(ch, m3);
  EXPECT_EQ(f.hub.presence(ch).users, 2u);
  f.hub.unsubscribe(ch, 0, 1, true, false);
  f.hub.leave(ch, 3, "timeout");
  f.hub.leave(ch, 2, "leave");
  f.hub.leave(ch, 2, "leave");  // unknown now: nothing
  auto ev = feed_events(f.hub, feed);
  ASSERT_EQ(ev.size(), 4u);
  auto ts = R"("timestamp":)";
  EXPECT_EQ(ev[0].substr(0, ev[0].find(ts)), R"({"action":"join",)");
  EXPECT_NE(ev[0].find(R"("uuid":"ann","occupancy":1})"), std::string::npos) << ev[0];
  EXPECT_NE(ev[1].find(R"("uuid":"bob","occupancy":2})"), std::string::npos) << ev[1];
  EXPECT_NE(ev[2].find(R"({"action":"timeout",)"), std::string::npos) << ev[2];
  EXPECT_NE(ev[2].find(R"("uuid":"bob","occupancy":1})"), std::string::npos) << ev[2];
  EXPECT_NE(ev[3].find(R"({"action":"leave",)"), std::string::npos) << ev[3];
  EXPECT_NE(ev[3].find(R"("uuid":"ann","occupancy":0})"), std::string::npos) << ev[3];
}

TEST(HubPresenceFeed, NoEventsWithoutTheFeedChannel) {
  HubFixture f;
  Channel& ch = *f.hub.channel("quiet", memory_opts());
  f.hub.join(ch, member(1, "ann"));
  EXPECT_EQ(f.hub.find("quiet-pnpres"), nullptr);
  Channel& feed = *f.hub.channel("quiet-pnpres", memory_opts(100));
  f.hub.leave(ch, 1, "leave");
  EXPECT_EQ(feed_events(f.hub, feed).size(), 1u);
}

TEST(HubPresenceFeed, JoinAndLeaveOfMembersReachNativeListeners) {
  HubFixture f;
  Channel& ch = *f.hub.channel("mixed", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, true);
  f.hub.join(ch, member(7, "pn-user"));
  f.hub.leave(ch, 7, "timeout");
  auto p = f.sinks[0].presences();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].frame->bytes, "join|mixed|s7|pn-user");
  EXPECT_EQ(p[1].frame->bytes, "leave|mixed|s7|pn-user");
}

TEST(HubPresenceFeed, PresenceAllAndChannelsOfUser) {
  HubFixture f;
  Channel& a = *f.hub.channel("a", memory_opts());
  Channel& b = *f.hub.channel("b", memory_opts());
  f.hub.channel("c", memory_opts());
  f.hub.join(a, member(1, "ann"));
  f.hub.join(b, member(2, "ann"));
  f.hub.join(b, member(3, "bob"));
  auto all = f.hub.presence_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "a");
  EXPECT_EQ(all[1].first, "b");
  EXPECT_EQ(all[1].second.users, 2u);
  EXPECT_EQ(f.hub.channels_of_user("ann"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.hub.channels_of_user("bob"), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(f.hub.channels_of_user("nobody").empty());
}

// ---------------------------------------------------------------------------------------------------
// IdempotencyCache

using IdemClock = IdempotencyCache::Clock;
const IdemClock::time_point kT0 = IdemClock::time_point(std::chrono::hours(1000));

TEST(IdempotencyCacheTest, FindAfterRemember) {
  IdempotencyCache c;
  EXPECT_FALSE(c.find("alice", "k1", kT0).has_value());
  c.remember("alice", "k1", 42, kT0);
  auto r = c.find("alice", "k1", kT0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 42u);
  EXPECT_FALSE(c.find("alice", "k2", kT0).has_value());
  c.remember("alice", "k2", 43, kT0);
  EXPECT_EQ(c.find("alice", "k1", kT0), std::optional<std::uint64_t>(42));
  EXPECT_EQ(c.find("alice", "k2", kT0), std::optional<std::uint64_t>(43));
}

TEST(IdempotencyCacheTest, KeysArePerUser) {
  IdempotencyCache c;
  c.remember("alice", "k", 1, kT0);
  EXPECT_FALSE(c.find("bob", "k", kT0).has_value());
  c.remember("bob", "k", 2, kT0);
  EXPECT_EQ(c.find("alice", "k", kT0), std::optional<std::uint64_t>(1));
  EXPECT_EQ(c.find("bob", "k", kT0), std::optional<std::uint64_t>(2));
  // user + key concatenations that coincide stay distinct.
  c.remember("ab", "c", 3, kT0);
  EXPECT_FALSE(c.find("a", "bc", kT0).has_value());
  EXPECT_EQ(c.find("ab", "c", kT0), std::optional<std::uint64_t>(3));
}

TEST(IdempotencyCacheTest, ExpiresAfter24Hours) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("alice", "k", 7, kT0);
  EXPECT_EQ(c.find("alice", "k", kT0 + 23h), std::optional<std::uint64_t>(7));
  EXPECT_EQ(c.find("alice", "k", kT0 + 24h - 1s), std::optional<std::uint64_t>(7));
  EXPECT_FALSE(c.find("alice", "k", kT0 + 24h + 1s).has_value());
  // Gone for good, even when asked with an earlier time again.
  EXPECT_FALSE(c.find("alice", "k", kT0 + 1h).has_value());
}

TEST(IdempotencyCacheTest, EntriesExpireIndependently) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("u", "old", 1, kT0);
  c.remember("u", "new", 2, kT0 + 12h);
  EXPECT_FALSE(c.find("u", "old", kT0 + 25h).has_value());
  EXPECT_EQ(c.find("u", "new", kT0 + 25h), std::optional<std::uint64_t>(2));
  EXPECT_EQ(c.find("u", "new", kT0 + 36h - 1s), std::optional<std::uint64_t>(2));
  EXPECT_FALSE(c.find("u", "new", kT0 + 36h + 1s).has_value());
}

TEST(IdempotencyCacheTest, RememberAfterExpiryWorks) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("u", "k", 1, kT0);
  EXPECT_FALSE(c.find("u", "k", kT0 + 48h).has_value());
  c.remember("u", "k", 9, kT0 + 48h);
  EXPECT_EQ(c.find("u", "k", kT0 + 50h), std::optional<std::uint64_t>(9));
}

// ---------------------------------------------------------------------------------------------------
// History bytes and unloading

// Every unused channel is idle for a cutoff this far ahead.
std::chrono::steady_clock::time_point later() { return std::chrono::steady_clock::now() + std::chrono::hours(1); }

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
  f.hub.join(member, Member{7, "pubnub:ann", "ann"});
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
  f.hub.leave(member, 7, "leave");
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

TEST(HubUnload, PresenceFeedStaysWhileItsChannelIsLoaded) {
  HubFixture f;
  Channel& room = *f.hub.channel("room", memory_opts());
  f.hub.channel("room-pnpres", memory_opts(100));
  f.hub.join(room, Member{1, "s1", "ann"});  // the room now holds its feed
  f.hub.leave(room, 1, "leave");
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);  // the room; its feed was still held
  EXPECT_NE(f.hub.find("room-pnpres"), nullptr);
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);  // then the feed
  EXPECT_EQ(f.hub.channel_count(), 0u);
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

// ---------------------------------------------------------------------------------------------------
// Channel names

TEST(ChannelName, Valid) {
  EXPECT_TRUE(valid_channel_name("a"));
  EXPECT_TRUE(valid_channel_name("chat"));
  EXPECT_TRUE(valid_channel_name("ns:room-1"));
  EXPECT_TRUE(valid_channel_name("AZaz09_.:@-"));
  EXPECT_TRUE(valid_channel_name("user@example.com"));
  EXPECT_TRUE(valid_channel_name("coll:todos"));
  EXPECT_TRUE(valid_channel_name(":"));
}

TEST(ChannelName, Invalid) {
  EXPECT_FALSE(valid_channel_name(""));
  EXPECT_FALSE(valid_channel_name("has space"));
  EXPECT_FALSE(valid_channel_name("a/b"));
  EXPECT_FALSE(valid_channel_name("a#b"));
  EXPECT_FALSE(valid_channel_name("a*"));
  EXPECT_FALSE(valid_channel_name("caf\xc3\xa9"));
  EXPECT_FALSE(valid_channel_name("tab\t"));
  EXPECT_FALSE(valid_channel_name("new\nline"));
  EXPECT_FALSE(valid_channel_name(std::string_view("nul\0x", 5)));
  EXPECT_FALSE(valid_channel_name("quote\""));
  for (char c : std::string("!$%&'()+,;<=>?[\\]^`{|}~")) {
    EXPECT_FALSE(valid_channel_name(std::string("a") + c)) << c;
  }
}

TEST(ChannelName, LengthLimit) {
  EXPECT_EQ(max_channel_name, 128u);
  EXPECT_TRUE(valid_channel_name(std::string(128, 'x')));
  EXPECT_FALSE(valid_channel_name(std::string(129, 'x')));
  EXPECT_TRUE(valid_channel_name("ns:" + std::string(125, 'y')));
  EXPECT_FALSE(valid_channel_name("ns:" + std::string(126, 'y')));
}

TEST(ChannelName, NamespaceOf) {
  EXPECT_EQ(namespace_of("plain"), "");
  EXPECT_EQ(namespace_of("coll:todos"), "coll");
  EXPECT_EQ(namespace_of("tally:votes:x"), "tally");
  EXPECT_EQ(namespace_of(":x"), "");
  EXPECT_EQ(namespace_of("ns:"), "ns");
  EXPECT_EQ(namespace_of(""), "");
}

}  // namespace
}  // namespace rtsync::core
