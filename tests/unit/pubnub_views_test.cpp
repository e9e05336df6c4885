// Unit tests of PubNub's views of a channel (service/pubnub_views.cpp): timetokens assigned with offsets,
// reads and counts by timetoken, long polls that register atomically with what they read, and signals,
// local and from other nodes.
#include "service/pubnub_views.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "hub_fixture.hpp"

namespace rtsync::core {
namespace {

using namespace testing;
using service::Resume;
using service::TimetokenQuery;

// A hub with PubNub's views on it, as the engine builds them.
struct ViewsFixture : HubFixture {
  service::PubnubViews views{hub};
};

// ---------------------------------------------------------------------------------------------------
// Timetokens, reads by timetoken and long polls

TEST(HubTimetokens, StrictlyIncreasingWithOffsetsAndNearTheClock) {
  ViewsFixture f;
  Channel& ch = *f.hub.channel("a", memory_opts());
  const std::uint64_t before = now_timetoken();
  std::uint64_t last = 0;
  for (int i = 0; i < 2000; ++i) {  // many in one 100-ns tick: bumped by one
    auto p = f.hub.publish(ch, "1", "u", 0);
    EXPECT_GT(p->tt, last);
    last = p->tt;
  }
  EXPECT_GE(f.views.history(ch, TimetokenQuery{}, "u").front()->tt, before);
  EXPECT_EQ(f.views.last_timetoken(ch), last);
  EXPECT_EQ(std::to_string(last).size(), 17u);
}

TEST(HubTimetokens, NextTimetokenNeverGoesBack) {
  const std::uint64_t future = now_timetoken() + 10'000'000'000ULL;  // the clock was set back after a restart
  EXPECT_EQ(next_timetoken(future), future + 1);
  EXPECT_GE(next_timetoken(0), now_timetoken() - 10'000'000);
}

TEST(HubTimetokens, LoadedDurableChannelContinuesFromItsSnapshot) {
  ViewsFixture f;
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
  EXPECT_EQ(f.views.last_timetoken(ch), 42u);
  auto pub3 = std::make_shared<Publication>(Publication{3, "3", "u", 0});
  pub3->tt = 50;
  f.hub.deliver_committed("d", pub3);
  EXPECT_EQ(f.views.last_timetoken(ch), 50u);
  TimetokenQuery q;
  q.after = 41;
  EXPECT_EQ(tts_of(f.views.history(ch, q, "u")), (std::vector<std::uint64_t>{42, 50}));
}

class HubByTimetoken : public ::testing::Test {
 protected:
  void SetUp() override {
    ch = &*f.hub.channel("h", memory_opts());
    for (int i = 1; i <= 10; ++i) tts.push_back(f.hub.publish(*ch, std::to_string(i), "u", 0)->tt);
  }
  ViewsFixture f;
  Channel* ch = nullptr;
  std::vector<std::uint64_t> tts;  // of offsets 1..10
};

TEST_F(HubByTimetoken, NewestOrOldestInRangeAscending) {
  TimetokenQuery q;
  q.limit = 3;
  EXPECT_EQ(tts_of(f.views.history(*ch, q, "u")), (std::vector<std::uint64_t>{tts[7], tts[8], tts[9]}));
  q.oldest = true;
  EXPECT_EQ(tts_of(f.views.history(*ch, q, "u")), (std::vector<std::uint64_t>{tts[0], tts[1], tts[2]}));
  q.after = tts[2];   // exclusive
  q.until = tts[5];   // inclusive
  q.limit = 100;
  EXPECT_EQ(tts_of(f.views.history(*ch, q, "u")), (std::vector<std::uint64_t>{tts[3], tts[4], tts[5]}));
  q.oldest = false;
  q.limit = 2;
  EXPECT_EQ(tts_of(f.views.history(*ch, q, "u")), (std::vector<std::uint64_t>{tts[4], tts[5]}));
}

TEST_F(HubByTimetoken, CountAfter) {
  EXPECT_EQ(f.views.count_after(*ch, 0, "u"), 10u);
  EXPECT_EQ(f.views.count_after(*ch, tts[6], "u"), 3u);
  EXPECT_EQ(f.views.count_after(*ch, tts[9], "u"), 0u);
}

TEST_F(HubByTimetoken, PollReturnsWhatIsPastTheCursorAndRegistersAtomically) {
  auto r = f.views.poll(*ch, 1, Resume::after(tts[7]), 100, "u");
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
  auto r2 = f.views.poll(*ch, 1, Resume::after(0), 3, "u");
  EXPECT_EQ(offsets_of(r2.pubs), (std::vector<std::uint64_t>{1, 2, 3}));
  f.hub.unsubscribe(*ch, 1, 0, false, false);
}

// A PubNub ttl: once past, a publication is no history for any reader (PubNub's and native ones), but it
// stays in the ring until trimmed, so offsets and recovery's continuity are unchanged.
TEST(HubExpiry, ExpiredPublicationsAreSkippedByEveryRead) {
  ViewsFixture f;
  Channel& ch = *f.hub.channel("x", memory_opts());
  auto p1 = f.hub.publish(ch, "1", "u", 0);
  Publication gone;
  gone.data = "2";
  gone.from = "u";
  gone.expires = common::now_ms() - 1;  // ran out already
  f.hub.publish(ch, gone);
  Publication later;
  later.data = "3";
  later.from = "u";
  later.expires = common::now_ms() + 3'600'000;
  auto p3 = f.hub.publish(ch, later);
  EXPECT_EQ(tts_of(f.views.history(ch, TimetokenQuery{}, "u")), (std::vector<std::uint64_t>{p1->tt, p3->tt}));
  EXPECT_EQ(f.views.count_after(ch, 0, "u"), 2u);
  EXPECT_EQ(tts_of(f.views.poll(ch, 0, Resume::after(0), 100, "u").pubs), (std::vector<std::uint64_t>{p1->tt, p3->tt}));
  f.hub.unsubscribe(ch, 0, 0, false, false);
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{1, 3}));
  const std::string epoch = hist(f.hub, ch, HistoryQuery{}).epoch;
  auto r = sub(f.hub, ch, 0, StreamPosition{0, epoch}, nullptr, false, "u");
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets_of(r.pubs), (std::vector<std::uint64_t>{1, 3}));
}

// ---------------------------------------------------------------------------------------------------
// Signals

TEST(HubSignals, DeliveredWithTimetokenNotKeptInHistory) {
  ViewsFixture f;
  Channel& ch = *f.hub.channel("s", memory_opts());
  auto p1 = f.hub.publish(ch, "1", "u", 0);
  f.views.poll(ch, 0, Resume::after(0), 100, "u");
  Publication draft;
  draft.data = "\"typing\"";
  draft.from = "u";
  auto sig = f.views.signal(ch, draft);
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
  auto r = f.views.poll(ch, 1, Resume::after(p1->tt), 100, "u");
  EXPECT_EQ(tts_of(r.signals), (std::vector<std::uint64_t>{sig->tt}));
  EXPECT_EQ(tts_of(r.pubs), (std::vector<std::uint64_t>{p2->tt}));
}

// A channel's publications and transients are two streams, each resumed from its own mark: a durable
// publication can take an earlier timetoken than a transient appended before it.
TEST(HubSignals, PollResumesPublicationsAndTransientsEachFromItsMark) {
  ViewsFixture f;
  Channel& ch = *f.hub.channel("m", memory_opts());
  auto p1 = f.hub.publish(ch, "1", "u", 0);
  Publication draft;
  draft.data = "\"sig\"";
  auto sig = f.views.signal(ch, draft);
  auto p2 = f.hub.publish(ch, "2", "u", 0);
  auto r = f.views.poll(ch, 0, Resume{p1->tt, sig->tt, 0, false}, 100, "u");
  EXPECT_EQ(tts_of(r.pubs), (std::vector<std::uint64_t>{p2->tt}));
  EXPECT_TRUE(r.signals.empty());
  f.hub.unsubscribe(ch, 0, 0, false, false);
  r = f.views.poll(ch, 0, Resume{p2->tt, 0, 0, false}, 100, "u");
  EXPECT_TRUE(r.pubs.empty());
  EXPECT_EQ(tts_of(r.signals), (std::vector<std::uint64_t>{sig->tt}));
  f.hub.unsubscribe(ch, 0, 0, false, false);
}

// A wildcard's relays come from many channels, their timetokens in no order: they resume by seq.
TEST(HubSignals, AWildcardsRelaysResumeByTheirOrderOfArrival) {
  ViewsFixture f;
  f.views.wildcards_on();
  Channel& pattern = *f.hub.channel("w.*", memory_opts(0));
  Channel& a = *f.hub.channel("w.a", memory_opts());
  f.views.poll(pattern, 0, Resume::after(0), 100, "u");
  auto pa = f.hub.publish(a, "1", "u", 0);
  Publication late;  // another node's, of an earlier timetoken, arriving after
  late.data = "2";
  late.tt = pa->tt - 5;
  auto pb = std::make_shared<const Publication>(late);
  f.hub.deliver_transient("w.b", pb);
  auto delivered = f.sinks[0].all();
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_EQ(delivered[0].offset, 1u);
  EXPECT_EQ(delivered[1].offset, 2u);
  f.hub.unsubscribe(pattern, 0, 0, false, false);
  auto r = f.views.poll(pattern, 1, Resume{0, 0, 1, true}, 100, "u");
  EXPECT_EQ(r.relay_seq, 2u);
  ASSERT_EQ(r.relayed.size(), 1u);
  EXPECT_EQ(r.relayed[0].pub, pb);
  EXPECT_EQ(r.relayed[0].seq, 2u);
  f.hub.unsubscribe(pattern, 1, 0, false, false);
  // By the cursor's timetoken alone, the late one is behind it.
  r = f.views.poll(pattern, 1, Resume::after(pa->tt), 100, "u");
  EXPECT_TRUE(r.relayed.empty());
  f.hub.unsubscribe(pattern, 1, 0, false, false);
}

// A message published with store=0 is a transient like a signal, marked as a message.
TEST(HubSignals, UnstoredMessagesAreTransientsToo) {
  ViewsFixture f;
  Channel& ch = *f.hub.channel("u", memory_opts());
  f.views.poll(ch, 0, Resume::after(0), 100, "u");
  Publication draft;
  draft.data = "\"not kept\"";
  draft.unstored = true;
  auto t = f.views.signal(ch, draft);
  EXPECT_TRUE(t->unstored);
  EXPECT_EQ(t->offset, 0u);
  EXPECT_TRUE(f.views.history(ch, TimetokenQuery{}, "u").empty());
  ASSERT_EQ(f.sinks[0].all().size(), 1u);
  EXPECT_EQ(f.sinks[0].all()[0].kind, Delivery::Kind::signal);
  const auto p = f.views.poll(ch, 1, Resume::after(0), 100, "u");
  ASSERT_EQ(p.signals.size(), 1u);
  EXPECT_TRUE(p.signals[0]->unstored);
}

TEST(HubSignals, LocalSignalsAreObservedAndRemoteOnesKept) {
  ViewsFixture f;
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  f.hub.set_transient_observer([&](const std::string& ch, const PublicationPtr& s) { seen.emplace_back(ch, s->tt); });
  Channel& ch = load_durable(f, "d", ChannelSnapshot{"e", 2, {make_pub(1), make_pub(2)}});
  Publication draft;
  draft.data = "\"local\"";
  auto local = f.views.signal(ch, draft);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::make_pair(std::string("d"), local->tt));
  // Another node's signal: kept with its own timetoken, for long polls that catch up; not observed again.
  Publication remote;
  remote.data = "\"remote\"";
  remote.tt = local->tt + 1000;
  f.hub.deliver_transient("d", std::make_shared<const Publication>(remote));
  f.hub.deliver_transient("nowhere", std::make_shared<const Publication>(remote));  // not here: dropped
  EXPECT_EQ(seen.size(), 1u);
  const auto p = f.views.poll(ch, 0, Resume::after(local->tt), 100, "u");
  ASSERT_EQ(p.signals.size(), 1u);
  EXPECT_EQ(p.signals[0]->data, "\"remote\"");
  EXPECT_EQ(f.views.last_timetoken(ch), remote.tt);
}

}  // namespace
}  // namespace rtsync::core
