// The Broker contract (broker/broker.hpp), on every backend (broker_backends.hpp): publish, members,
// signals, resync and erase, each checked on every node of the backend's cluster (the local backend's one node,
// the Redis backend's two). Then what only a cluster of separate nodes can show, on Redis: a node cut off
// Redis has its members time out elsewhere after its presence_ttl and announces them again once back, a
// node that stops withdraws its members at once, and publications lost while a node was cut off reach it
// once it is back, in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "broker_backends.hpp"

namespace rtsync::broker::testing {
namespace {

using Offsets = std::vector<std::uint64_t>;
using Kind = core::Delivery::Kind;

Offsets one_to(std::uint64_t n) {
  Offsets o(n);
  std::iota(o.begin(), o.end(), 1);
  return o;
}

bool has_member(core::Hub& hub, core::Channel& ch, const std::string& session) {
  const auto p = hub.presence().of(ch);
  return std::any_of(p.clients.begin(), p.clients.end(), [&](const core::Member& m) { return m.session == session; });
}

class BrokerContract : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Backend> backend_ = make_backend(GetParam());
  Cluster cluster_{*backend_};
};

INSTANTIATE_TEST_SUITE_P(BrokerBackends, BrokerContract, ::testing::ValuesIn(backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(BrokerContract, PublishReachesThisHubBeforeReturningThenEveryNodeInOrder) {
  Cluster& c = cluster_;
  for (std::size_t i = 0; i < c.size(); ++i) c.subscribe(i, "news");
  // Each node in turn publishes a run: each of its publications follows on in its own hub, which has it
  // when publish() returns; the others get the run in order.
  std::uint64_t n = 0;
  for (std::size_t run = 0; run < 2 * c.size(); ++run) {
    const std::size_t publisher = run % c.size();
    ASSERT_TRUE(eventually([&] { return c[publisher].sink.offsets("news").size() == n; })) << "node " << publisher;
    for (int k = 0; k < 10; ++k) {
      const auto p = c.publish(publisher, "news", std::to_string(++n));
      EXPECT_EQ(p.offset, n);
      EXPECT_TRUE(p.delivered_before_return) << "offset " << n << " on node " << publisher;
    }
  }
  // Interleaved, a node's own may reach its hub before another node's earlier ones, which it then holds
  // back until the store fills the gap: every node still sees every offset once, in order.
  for (int k = 0; k < 20; ++k) c.publish(k % c.size(), "news", std::to_string(++n));
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(eventually([&] { return c[i].sink.offsets("news").size() >= n; })) << "node " << i;
    EXPECT_EQ(c[i].sink.offsets("news"), one_to(n)) << "node " << i;
  }
}

TEST_P(BrokerContract, MembersJoinedOnOneNodeAppearOnEveryNodeAndLeave) {
  Cluster& c = cluster_;
  c.link();
  const std::size_t last = c.size() - 1;
  auto room = [&](std::size_t i) { return c.hub(i).channel("room", options_for("room")); };
  c.hub(0).presence().join(*room(0), core::Member{1, "s-alice", "alice"});
  c.hub(last).presence().join(*room(last), core::Member{2, "s-bob", "bob", R"({"role":"admin"})"});
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(eventually([&] { return c.hub(i).presence().of(*room(i)).sessions == 2; })) << "node " << i;
    EXPECT_TRUE(has_member(c.hub(i), *room(i), "s-alice"));
    const auto p = c.hub(i).presence().of(*room(i));
    const auto bob = std::find_if(p.clients.begin(), p.clients.end(), [](const auto& m) { return m.user == "bob"; });
    ASSERT_NE(bob, p.clients.end());
    EXPECT_EQ(bob->info, R"({"role":"admin"})");
    EXPECT_EQ(p.users, 2u);
  }
  c.hub(0).presence().leave(*room(0), 1, "leave");
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(eventually([&] { return c.hub(i).presence().of(*room(i)).sessions == 1; })) << "node " << i;
    EXPECT_TRUE(has_member(c.hub(i), *room(i), "s-bob"));
  }
}

TEST_P(BrokerContract, SignalsReachEveryNodeWithTheirTimetoken) {
  Cluster& c = cluster_;
  std::vector<core::Channel*> chats;
  for (std::size_t i = 0; i < c.size(); ++i) chats.push_back(&c.subscribe(i, "chat"));
  c.link();
  core::Publication draft;
  draft.data = R"("typing")";
  draft.from = "alice";
  const auto sig = c[0].views->signal(*chats[0], draft);
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(eventually([&] { return c[i].sink.seen(Kind::signal, "chat").size() == 1; })) << "node " << i;
    EXPECT_EQ(c[i].sink.seen(Kind::signal, "chat")[0].text, R"("typing")");
    EXPECT_EQ(c[i].views->last_timetoken(*chats[i]), sig->tt) << "node " << i;
  }
}

TEST_P(BrokerContract, ErasedPublicationsLeaveThisHubBeforeReturningThenEveryNode) {
  Cluster& c = cluster_;
  std::vector<core::Channel*> news;
  for (std::size_t i = 0; i < c.size(); ++i) news.push_back(&c.subscribe(i, "news"));
  c.link();
  for (int k = 1; k <= 4; ++k) c.publish(0, "news", std::to_string(k));
  auto kept = [&](std::size_t i) {
    Offsets out;
    for (const auto& p : c.hub(i).history(*news[i], core::HistoryQuery{}, "u").pubs) out.push_back(p->offset);
    return out;
  };
  for (std::size_t i = 0; i < c.size(); ++i)
    ASSERT_TRUE(eventually([&] { return kept(i) == one_to(4); })) << "node " << i;
  const auto pubs = c.hub(0).history(*news[0], core::HistoryQuery{}, "u").pubs;
  const std::size_t last = c.size() - 1;
  c[last].broker->erase("news", pubs[0]->tt, pubs[2]->tt);  // offsets 2 and 3
  EXPECT_EQ(kept(last), (Offsets{1, 4}));
  for (std::size_t i = 0; i < c.size(); ++i)
    EXPECT_TRUE(eventually([&] { return kept(i) == Offsets{1, 4}; })) << "node " << i;
}

TEST_P(BrokerContract, ResyncDeliversWhatTheHubMissed) {
  Cluster& c = cluster_;
  // Linked first: the resync a Redis broker makes once subscribed is over before "news" is loaded.
  c.link();
  for (std::size_t i = 0; i < c.size(); ++i) c.subscribe(i, "news");
  c.publish(0, "news", "1");
  for (std::size_t i = 0; i < c.size(); ++i)
    ASSERT_TRUE(eventually([&] { return c[i].sink.offsets("news") == one_to(1); })) << "node " << i;
  // Committed, but no broker message about them reached any hub.
  c.commit_only("news", "2");
  c.commit_only("news", "3");
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_GE(c[i].broker->resync(), 1u);  // "news", and the other channels loaded here
    EXPECT_TRUE(eventually([&] { return c[i].sink.offsets("news").size() >= 3; })) << "node " << i;
    EXPECT_EQ(c[i].sink.offsets("news"), one_to(3)) << "node " << i;
  }
}

// What a cluster of separate nodes shows on Redis: node 1 is the one cut off, or stopped.
class BrokerRedis : public ::testing::Test {
 protected:
  static constexpr auto kTtl = std::chrono::milliseconds(900);
  Cluster& start(std::chrono::milliseconds presence_ttl) {
    backend_ = std::make_unique<RedisBackend>(presence_ttl);
    cluster_ = std::make_unique<Cluster>(*backend_);
    return *cluster_;
  }
  RedisBackend& backend() { return *backend_; }

 private:
  std::unique_ptr<RedisBackend> backend_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(BrokerRedis, ANodeCutOffHasItsMembersTimeOutAfterItsTtlAndAnnouncedAgainOnceBack) {
  Cluster& c = start(kTtl);
  c.subscribe(0, "room-pnpres");  // node 0's presence feed of "room": join/leave/timeout events
  auto room = [&](std::size_t i) { return c.hub(i).channel("room", options_for("room")); };
  c.hub(1).presence().join(*room(1), core::Member{7, "s-bob", "bob"});
  ASSERT_TRUE(eventually([&] { return has_member(c.hub(0), *room(0), "s-bob"); }));
  const auto cut = std::chrono::steady_clock::now();
  backend().cut(1);
  ASSERT_TRUE(eventually([&] { return c.hub(0).presence().of(*room(0)).sessions == 0; }));
  // Node 1 renewed its liveness at most a third of the TTL before the cut: the timeout comes no sooner
  // than two thirds of the TTL after it (checked with a margin for timer slack).
  EXPECT_GE(std::chrono::steady_clock::now() - cut, kTtl / 2);
  const auto events = c[0].sink.seen(Kind::publication, "room-pnpres");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].text.find(R"("action":"join")"), std::string::npos) << events[0].text;
  EXPECT_NE(events[1].text.find(R"("action":"timeout")"), std::string::npos) << events[1].text;
  // Meanwhile node 1 still has its member; back on Redis, it announces it again.
  EXPECT_EQ(c.hub(1).presence().of(*room(1)).sessions, 1u);
  backend().restore(1);
  EXPECT_TRUE(eventually([&] { return has_member(c.hub(0), *room(0), "s-bob"); }));
}

TEST_F(BrokerRedis, ANodeThatStopsWithdrawsItsMembersAtOnce) {
  Cluster& c = start(kTtl);
  c.subscribe(0, "room-pnpres");
  auto room = [&](std::size_t i) { return c.hub(i).channel("room", options_for("room")); };
  c.hub(1).presence().join(*room(1), core::Member{7, "s-bob", "bob"});
  ASSERT_TRUE(eventually([&] { return has_member(c.hub(0), *room(0), "s-bob"); }));
  c[1].broker->stop();
  // Well before the TTL would time it out: a leave, not a timeout.
  ASSERT_TRUE(eventually([&] { return c.hub(0).presence().of(*room(0)).sessions == 0; }, kTtl / 2));
  const auto events = c[0].sink.seen(Kind::publication, "room-pnpres");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[1].text.find(R"("action":"leave")"), std::string::npos) << events[1].text;
}

TEST_F(BrokerRedis, PublicationsMissedWhileCutOffArriveInOrderOnceBack) {
  // A TTL long enough that node 0 never takes node 1 for gone (and reloads) while it is cut off.
  Cluster& c = start(std::chrono::seconds(15));
  // Linked before "news" is loaded: no resync (once subscribed) is under way when node 1 is cut off.
  c.link();
  c.subscribe(0, "news");
  c.subscribe(1, "news");
  // Node 1 hears nothing of these: they reach it when its subscription is back (resync from the store).
  backend().cut(1);
  for (int k = 1; k <= 5; ++k) c.publish(0, "news", std::to_string(k));
  EXPECT_TRUE(c[1].sink.offsets("news").empty());
  backend().restore(1);
  ASSERT_TRUE(eventually([&] { return c[1].sink.offsets("news").size() >= 5; }));
  EXPECT_EQ(c[1].sink.offsets("news"), one_to(5));
  // And node 1's own, published while it is cut off, reach node 0 once node 1 is back: queued meanwhile,
  // or, when the cut lost a PUBLISH already sent, read from the store by everyone once node 1 says so.
  c.link();
  backend().cut(1);
  for (int k = 6; k <= 8; ++k) EXPECT_TRUE(c.publish(1, "news", std::to_string(k)).delivered_before_return);
  EXPECT_EQ(c[0].sink.offsets("news"), one_to(5));
  backend().restore(1);
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(eventually([&] { return c[i].sink.offsets("news").size() >= 8; })) << "node " << i;
    EXPECT_EQ(c[i].sink.offsets("news"), one_to(8)) << "node " << i;
  }
}

}  // namespace
}  // namespace rtsync::broker::testing
