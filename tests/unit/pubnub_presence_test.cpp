// Unit tests of PubNub presence (service/pubnub_presence.cpp): uuids become hub members on their first
// heartbeat, stay while heartbeats or long polls keep them, leave on request, time out after the window;
// their presence state, carried by their members; and the presence feed's events in PubNub's format.
// The clock is passed in, so no test sleeps.
#include "core/hub.hpp"
#include "service/pubnub_presence.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rtsync::service {
namespace {

using namespace std::chrono_literals;
using Clock = PubnubPresence::Clock;

class NullSink : public core::DeliverySink {
 public:
  void deliver(core::Delivery) override {}
};

core::FrameEncoder encoder() {
  core::FrameEncoder e;
  e.publication = [](const std::string&, const core::Publication&) { return core::FramePtr{}; };
  e.presence = [](const std::string&, std::string_view, const core::Member&) { return core::FramePtr{}; };
  return e;
}

core::NamespaceOptions memory(bool presence = true) {
  core::NamespaceOptions o;
  o.durable = false;
  o.presence = presence;
  return o;
}

struct Fixture {
  Fixture()
      : hub(1, encoder(), [](const std::string&, std::size_t, std::size_t, std::function<void(core::ChannelSnapshot)>) {},
            pubnub_feed_event) {
    hub.attach(0, &sink);
    a = hub.channel("a", memory());
    b = hub.channel("b", memory());
    feed = hub.channel("a-pnpres", memory(false));
  }
  std::vector<std::string> actions() {
    std::vector<std::string> out;
    for (auto& p : hub.history(*feed, core::HistoryQuery{}, "x").pubs) {
      auto from = p->data.find(":\"") + 2;
      out.push_back(p->data.substr(from, p->data.find('"', from) - from) + ":" +
                    p->data.substr(p->data.find("uuid\":\"") + 7, p->data.find("\",\"occ") - p->data.find("uuid\":\"") - 7));
    }
    return out;
  }
  NullSink sink;
  core::Hub hub;
  std::atomic<std::uint64_t> next{1000};
  PubnubPresence presence{hub.presence(), 300s, [this] { return next++; }};
  core::ChannelRef a;
  core::ChannelRef b;
  core::ChannelRef feed;
  Clock::time_point t0 = Clock::now();
};

TEST(PubnubPresence, FeedEventsArePubnubs) {
  EXPECT_EQ(pubnub_feed_event(core::FeedEvent{"timeout", "a\"b", 3, 1'700'000'000'999}),
            R"({"action":"timeout","timestamp":1700000000,"uuid":"a\"b","occupancy":3})");
}

TEST(PubnubPresence, FeedEventsCarryTheStateOfAJoinOrAStateChange) {
  EXPECT_EQ(pubnub_feed_event(core::FeedEvent{"state-change", "ann", 1, 1'700'000'000'000, R"({"a":1})"}),
            R"({"action":"state-change","timestamp":1700000000,"uuid":"ann","occupancy":1,"data":{"a":1}})");
  EXPECT_EQ(pubnub_feed_event(core::FeedEvent{"join", "ann", 1, 1'700'000'000'000, R"({"a":1})"}),
            R"({"action":"join","timestamp":1700000000,"uuid":"ann","occupancy":1,"data":{"a":1}})");
  EXPECT_EQ(pubnub_feed_event(core::FeedEvent{"join", "ann", 1, 1'700'000'000'000, "null"}),
            R"({"action":"join","timestamp":1700000000,"uuid":"ann","occupancy":1})");
  EXPECT_EQ(pubnub_feed_event(core::FeedEvent{"leave", "ann", 0, 1'700'000'000'000, R"({"a":1})"}),
            R"({"action":"leave","timestamp":1700000000,"uuid":"ann","occupancy":0})");
}

TEST(PubnubPresence, WindowIsTheSmallerOfAskedAndConfigured) {
  Fixture f;
  EXPECT_EQ(f.presence.window_for(std::nullopt), std::nullopt);
  EXPECT_EQ(f.presence.window_for(0), std::nullopt);
  EXPECT_EQ(f.presence.window_for(20), 20s);
  EXPECT_EQ(f.presence.window_for(1000), 300s);
}

TEST(PubnubPresence, HeartbeatJoinsOnceAndTimesOut) {
  Fixture f;
  f.presence.touch("ann", {f.a, f.b}, 10s, f.t0);
  f.presence.touch("ann", {f.a}, std::nullopt, f.t0 + 5s);  // keeps its 10 s window
  EXPECT_EQ(f.hub.presence().of(*f.a).users, 1u);
  EXPECT_EQ(f.hub.presence().of(*f.a).clients.front().session, "pubnub:ann");
  EXPECT_EQ(f.hub.presence().channels_of_user("ann"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.presence.sweep(f.t0 + 9s), 0u);
  EXPECT_EQ(f.presence.sweep(f.t0 + 10s), 1u);  // b: 10 s after its only heartbeat
  EXPECT_EQ(f.hub.presence().channels_of_user("ann"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(f.presence.sweep(f.t0 + 15s), 1u);
  EXPECT_EQ(f.hub.presence().of(*f.a).users, 0u);
  EXPECT_EQ(f.actions(), (std::vector<std::string>{"join:ann", "timeout:ann"}));
  EXPECT_EQ(f.presence.size(), 0u);
}

TEST(PubnubPresence, PendingLongPollKeepsPresentThenWindowRestarts) {
  Fixture f;
  f.presence.hold("bob", {f.a}, 5s, f.t0);
  f.presence.hold("bob", {f.a}, std::nullopt, f.t0);  // a second poll (the SDK re-polled before the abort)
  EXPECT_EQ(f.presence.sweep(f.t0 + 1h), 0u);
  f.presence.release("bob", {f.a}, f.t0 + 1h);
  EXPECT_EQ(f.presence.sweep(f.t0 + 2h), 0u);  // one hold left
  f.presence.release("bob", {f.a}, f.t0 + 2h);
  EXPECT_EQ(f.presence.sweep(f.t0 + 2h + 4s), 0u);
  EXPECT_EQ(f.presence.sweep(f.t0 + 2h + 5s), 1u);
  EXPECT_EQ(f.actions(), (std::vector<std::string>{"join:bob", "timeout:bob"}));
}

TEST(PubnubPresence, LeaveIsImmediateAndIdempotent) {
  Fixture f;
  f.presence.touch("cy", {f.a}, 10s, f.t0);
  f.presence.touch("dee", {f.a}, 10s, f.t0);
  f.presence.leave("cy", {f.a});
  f.presence.leave("cy", {f.a});
  f.presence.release("cy", {f.a}, f.t0);  // a poll that ends after its leave: nothing
  EXPECT_EQ(f.hub.presence().of(*f.a).users, 1u);
  EXPECT_EQ(f.actions(), (std::vector<std::string>{"join:cy", "join:dee", "leave:cy"}));
}

TEST(PubnubPresence, ChannelsWithoutPresenceAreSkipped) {
  Fixture f;
  auto quiet = f.hub.channel("quiet", memory(false));
  f.presence.touch("ann", {quiet, f.feed}, 10s, f.t0);
  EXPECT_EQ(f.presence.size(), 0u);
  EXPECT_EQ(f.hub.presence().of(*quiet).sessions, 0u);
}

TEST(PubnubPresence, StateIsTheMembersInfoChangedOnceAndGoneWithTheMember) {
  Fixture f;
  using States = std::map<std::string, std::string>;
  f.presence.touch("ann", {f.a}, 10s, States{{"a", R"({"mood":"ok"})"}}, f.t0);  // joins with it
  EXPECT_EQ(f.presence.state("ann", *f.a), R"({"mood":"ok"})");
  EXPECT_EQ(f.hub.presence().of(*f.a).clients.front().info, R"({"mood":"ok"})");
  f.presence.touch("ann", {f.a}, std::nullopt, States{{"a", R"({"mood":"ok"})"}}, f.t0);  // the same: no event
  f.presence.touch("ann", {f.a}, std::nullopt, f.t0 + 1s);  // a heartbeat without state keeps it
  EXPECT_EQ(f.presence.state("ann", *f.a), R"({"mood":"ok"})");
  f.presence.touch("ann", {f.a, f.b}, std::nullopt, States{{"a", R"({"mood":"busy"})"}, {"b", "null"}}, f.t0 + 2s);
  EXPECT_EQ(f.presence.state("ann", *f.a), R"({"mood":"busy"})");
  EXPECT_EQ(f.presence.state("ann", *f.b), "null");
  EXPECT_EQ(f.presence.state("bob", *f.a), std::nullopt);
  f.presence.touch("ann", {f.a}, std::nullopt, States{{"a", "null"}}, f.t0 + 3s);  // cleared
  EXPECT_EQ(f.presence.state("ann", *f.a), "null");
  f.presence.touch("ann", {f.a}, std::nullopt, States{{"a", R"({"back":1})"}}, f.t0 + 4s);
  EXPECT_EQ(f.presence.sweep(f.t0 + 1h), 2u);
  EXPECT_EQ(f.presence.state("ann", *f.a), std::nullopt);
  f.presence.touch("ann", {f.a}, 10s, f.t0 + 2h);  // back without state: none
  EXPECT_EQ(f.presence.state("ann", *f.a), "null");
  EXPECT_EQ(f.actions(), (std::vector<std::string>{"join:ann", "state-change:ann", "state-change:ann",
                                                   "state-change:ann", "timeout:ann", "join:ann"}));
}

}  // namespace
}  // namespace rtsync::service
