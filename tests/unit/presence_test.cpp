// Unit tests of presence (core/presence.cpp): members joining with their subscriptions or on their own,
// join/leave pushes to presence listeners, occupancy by user, the presence feed's events (in PubNub's
// format, as the engine injects it), feeds held by their channels, and the member observer.
#include "core/presence.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "hub_fixture.hpp"
#include "service/pubnub_presence.hpp"

namespace rtsync::core {
namespace {

using namespace testing;

// ---------------------------------------------------------------------------------------------------
// Members and presence listeners

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

  auto pr = f.hub.presence().of(ch);
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
  EXPECT_TRUE(f.hub.presence().of(ch).clients.empty());
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
  EXPECT_EQ(f.hub.presence().of(ch).sessions, 1u);
  f.hub.unsubscribe(ch, 1, 1, false, false);   // was_member false: the member is left alone
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  EXPECT_EQ(f.hub.presence().of(ch).sessions, 1u);
  sub(f.hub, ch, 1, std::nullopt, nullptr, false);

  f.hub.unsubscribe(ch, 0, 0, false, true);  // the listener goes
  f.hub.unsubscribe(ch, 1, 1, true, false);
  EXPECT_EQ(f.sinks[0].presences().size(), 1u);
  EXPECT_EQ(f.hub.presence().of(ch).sessions, 0u);
}

TEST(HubPresence, CountsDistinctUsersAndSessions) {
  HubFixture f(2);
  Channel& ch = *f.hub.channel("p", memory_opts());
  Member a1 = member(1, "alice"), a2 = member(2, "alice"), b = member(3, "bob");
  sub(f.hub, ch, 0, std::nullopt, &a1, false);
  sub(f.hub, ch, 1, std::nullopt, &a2, false);
  sub(f.hub, ch, 1, std::nullopt, &b, false);
  auto pr = f.hub.presence().of(ch);
  EXPECT_EQ(pr.sessions, 3u);
  EXPECT_EQ(pr.users, 2u);
  ASSERT_EQ(pr.clients.size(), 3u);
  std::set<std::uint64_t> nos;
  for (auto& c : pr.clients) nos.insert(c.session_no);
  EXPECT_EQ(nos, (std::set<std::uint64_t>{1, 2, 3}));

  f.hub.unsubscribe(ch, 0, 1, true, false);
  pr = f.hub.presence().of(ch);
  EXPECT_EQ(pr.sessions, 2u);
  EXPECT_EQ(pr.users, 2u);
  f.hub.unsubscribe(ch, 1, 3, true, false);
  pr = f.hub.presence().of(ch);
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
// The presence feed (NAME-pnpres), with PubNub's events

// The data of the events a feed keeps, oldest first.
std::vector<std::string> feed_events(Hub& hub, Channel& feed) {
  std::vector<std::string> out;
  for (auto& p : hub.history(feed, HistoryQuery{}, "x").pubs) out.push_back(p->data);
  return out;
}

// A hub whose feed events are PubNub's, as the engine builds it.
struct FeedFixture : HubFixture {
  FeedFixture() : HubFixture(2, service::pubnub_feed_event) {}
};

TEST(HubPresenceFeed, UserJoinsAndLeavesOnceWhateverItsSessions) {
  FeedFixture f;
  Channel& ch = *f.hub.channel("room", memory_opts());
  Channel& feed = *f.hub.channel("room-pnpres", memory_opts(100));
  auto m1 = member(1, "ann");
  auto m2 = member(2, "ann");
  auto m3 = member(3, "bob");
  sub(f.hub, ch, 0, std::nullopt, &m1, false);
  f.hub.presence().join(ch, m2);  // a PubNub uuid of the same user: no second join
  f.hub.presence().join(ch, m3);
  EXPECT_EQ(f.hub.presence().of(ch).users, 2u);
  f.hub.unsubscribe(ch, 0, 1, true, false);
  f.hub.presence().leave(ch, 3, "timeout");
  f.hub.presence().leave(ch, 2, "leave");
  f.hub.presence().leave(ch, 2, "leave");  // unknown now: nothing
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

TEST(HubPresenceFeed, AMemberJoiningAgainWithOtherInfoIsAStateChangeMirroredOnesToo) {
  FeedFixture f;
  Channel& ch = *f.hub.channel("room", memory_opts());
  Channel& feed = *f.hub.channel("room-pnpres", memory_opts(100));
  f.hub.presence().join(ch, member(1, "ann", R"({"s":1})"));
  f.hub.presence().join(ch, member(1, "ann", R"({"s":1})"));  // re-announced, unchanged: nothing
  f.hub.presence().join(ch, member(1, "ann", R"({"s":2})"));
  Member remote = member(2, "bob");
  remote.remote = true;
  f.hub.presence().join(ch, remote);
  remote.info = R"({"away":true})";
  f.hub.presence().join(ch, remote);  // another node's member changed its state
  auto ev = feed_events(f.hub, feed);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_NE(ev[0].find(R"("uuid":"ann","occupancy":1,"data":{"s":1}})"), std::string::npos) << ev[0];
  EXPECT_NE(ev[1].find(R"({"action":"state-change",)"), std::string::npos) << ev[1];
  EXPECT_NE(ev[1].find(R"("uuid":"ann","occupancy":1,"data":{"s":2}})"), std::string::npos) << ev[1];
  EXPECT_NE(ev[2].find(R"("uuid":"bob","occupancy":2})"), std::string::npos) << ev[2];
  EXPECT_NE(ev[3].find(R"("uuid":"bob","occupancy":2,"data":{"away":true}})"), std::string::npos) << ev[3];
  EXPECT_EQ(f.hub.presence().of(ch).clients.back().info, R"({"away":true})");
}

TEST(HubPresenceFeed, NoEventsWithoutTheFeedChannel) {
  FeedFixture f;
  Channel& ch = *f.hub.channel("quiet", memory_opts());
  f.hub.presence().join(ch, member(1, "ann"));
  EXPECT_EQ(f.hub.find("quiet-pnpres"), nullptr);
  Channel& feed = *f.hub.channel("quiet-pnpres", memory_opts(100));
  f.hub.presence().leave(ch, 1, "leave");
  EXPECT_EQ(feed_events(f.hub, feed).size(), 1u);
}

TEST(HubPresenceFeed, JoinAndLeaveOfMembersReachNativeListeners) {
  HubFixture f;
  Channel& ch = *f.hub.channel("mixed", memory_opts());
  sub(f.hub, ch, 0, std::nullopt, nullptr, true);
  f.hub.presence().join(ch, member(7, "pn-user"));
  f.hub.presence().leave(ch, 7, "timeout");
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
  f.hub.presence().join(a, member(1, "ann"));
  f.hub.presence().join(b, member(2, "ann"));
  f.hub.presence().join(b, member(3, "bob"));
  auto all = f.hub.presence().all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "a");
  EXPECT_EQ(all[1].first, "b");
  EXPECT_EQ(all[1].second.users, 2u);
  EXPECT_EQ(f.hub.presence().channels_of_user("ann"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.hub.presence().channels_of_user("bob"), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(f.hub.presence().channels_of_user("nobody").empty());
}

// ---------------------------------------------------------------------------------------------------
// Memory and the member observer

TEST(HubUnload, PresenceFeedStaysWhileItsChannelIsLoaded) {
  FeedFixture f;
  Channel& room = *f.hub.channel("room", memory_opts());
  f.hub.channel("room-pnpres", memory_opts(100));
  f.hub.presence().join(room, Member{1, "s1", "ann"});  // the room now holds its feed
  f.hub.presence().leave(room, 1, "leave");
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);  // the room; its feed was still held
  EXPECT_NE(f.hub.find("room-pnpres"), nullptr);
  EXPECT_EQ(f.hub.unload_idle(later()), 1u);  // then the feed
  EXPECT_EQ(f.hub.channel_count(), 0u);
}

TEST(HubMembers, ObserverHearsOnlyLocalMembers) {
  HubFixture f(1);
  std::vector<std::tuple<std::string, std::string, bool, std::string>> seen;
  f.hub.presence().set_member_observer([&](const std::string& ch, const Member& m, bool joined, std::string_view action) {
    seen.emplace_back(ch, m.session, joined, std::string(action));
  });
  NamespaceOptions o;
  o.durable = false;
  Channel& ch = *f.hub.channel("room", o);
  Member local{1, "s1", "alice", "null", false};
  Member remote{2, "s2", "bob", "null", true};
  f.hub.subscribe(ch, 0, std::nullopt, "alice", &local, false);
  f.hub.presence().join(ch, remote);
  EXPECT_EQ(f.hub.presence().of(ch).users, 2u);
  f.hub.presence().leave(ch, 2, "timeout");
  f.hub.unsubscribe(ch, 0, 1, true, false);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_tuple(std::string("room"), std::string("s1"), true, std::string("join")));
  EXPECT_EQ(seen[1], std::make_tuple(std::string("room"), std::string("s1"), false, std::string("leave")));
  EXPECT_EQ(f.hub.presence().of(ch).sessions, 0u);
}

}  // namespace
}  // namespace rtsync::core
