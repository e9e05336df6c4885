// Webhook queues in the store (store.hpp, WebhookRoute), on every backend: a committed publication on a
// followed channel (a collection's change feed too) is queued, in order, with its body; one that is not
// followed, or whose batch failed, is not; settling deletes, delays and buries; dead letters are listed,
// replayed and discarded; the lease (SQLite: always this process's; PostgreSQL: one node until it
// lapses); the queue survives a restart; a schema 4 database gets the tables.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/clock.hpp"
#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

using namespace calls;
namespace json = boost::json;

class StoreWebhooksTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = backends::make_backend(GetParam());
    backend_->webhooks = {WebhookRoute{"feed", {"news", "room:*", "coll:forms"}}, WebhookRoute{"audit", {"news"}}};
  }
  std::unique_ptr<Store> open() { return backend_->open(); }
  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreWebhooksTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

AppendRequest pub(std::string channel, std::string data) { return append_request(std::move(channel), std::move(data)); }

std::vector<WebhookEntry> pending(Store& s, const std::string& hook, std::size_t limit = 100) {
  auto r = webhook_read_wait(s, WebhookQuery{WebhookQuery::Kind::pending, hook, 0, limit});
  EXPECT_TRUE(r.ok);
  return r.entries;
}

std::vector<std::uint64_t> offsets(const std::vector<WebhookEntry>& entries) {
  std::vector<std::uint64_t> out;
  for (const auto& e : entries) out.push_back(e.offset);
  return out;
}

WebhookWrite settle(std::vector<std::uint64_t> delivered, std::vector<WebhookEntry> retries = {},
                    std::vector<std::uint64_t> buried = {}) {
  WebhookWrite w;
  w.kind = WebhookWrite::Kind::settle;
  w.hook = "feed";
  w.delivered = std::move(delivered);
  w.retries = std::move(retries);
  w.buried = std::move(buried);
  return w;
}

TEST_P(StoreWebhooksTest, QueuesFollowedPublicationsInTheirCommitInOrder) {
  auto s = open();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(append_wait(*s, pub("news", std::to_string(i))).ok);
  ASSERT_TRUE(append_wait(*s, pub("room:1", R"({"a":1})")).ok);
  ASSERT_TRUE(append_wait(*s, pub("other", "0")).ok);
  DocWrite w;
  w.op = DocWrite::Op::create;
  w.collection = "forms";
  w.id = "f1";
  w.user = "alice";
  w.data = json::object{{"x", 1}};
  w.history_size = 100;
  ASSERT_EQ(write_wait(*s, std::move(w)).status, DocResult::Status::ok);

  const auto feed = pending(*s, "feed");
  ASSERT_EQ(feed.size(), 5u);
  EXPECT_EQ(offsets(feed), (std::vector<std::uint64_t>{1, 2, 3, 1, 1}));
  EXPECT_EQ(feed[3].channel, "room:1");
  EXPECT_EQ(feed[4].channel, "coll:forms");
  for (std::size_t i = 1; i < feed.size(); ++i) EXPECT_GT(feed[i].seq, feed[i - 1].seq);
  auto body = json::parse(feed[1].body).as_object();
  EXPECT_EQ(body.at("webhook"), "feed");
  EXPECT_EQ(body.at("channel"), "news");
  EXPECT_EQ(body.at("offset"), 2);
  EXPECT_EQ(body.at("data"), 2);
  EXPECT_EQ(body.at("from"), "alice");
  EXPECT_EQ(body.at("ts"), 1700000000000);
  EXPECT_FALSE(body.at("epoch").as_string().empty());
  EXPECT_EQ(json::parse(feed[4].body).at("data").at("doc").at("id"), "f1");
  EXPECT_EQ(offsets(pending(*s, "audit")), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(pending(*s, "feed", 2).size(), 2u);
}

TEST_P(StoreWebhooksTest, AFailedBatchQueuesNothing) {
  auto s = open();
  backend_->fail_inserts("webhook_queue", "channel", "'news'");
  EXPECT_FALSE(append_wait(*s, pub("news", "1")).ok);
  EXPECT_TRUE(pending(*s, "feed").empty());
  EXPECT_TRUE(load_wait(*s, "news", 10).pubs.empty()) << "the publication rolled back with its queue entry";
}

TEST_P(StoreWebhooksTest, SettlingDeletesDelaysAndBuriesAndDeadLettersComeBack) {
  auto s = open();
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(append_wait(*s, pub("news", std::to_string(i))).ok);
  auto e = pending(*s, "feed");
  ASSERT_EQ(e.size(), 4u);
  WebhookEntry retry = e[2];
  retry.attempts = 3;
  retry.next = 1234;
  ASSERT_TRUE(webhook_write_wait(*s, settle({e[0].seq}, {retry}, {e[1].seq, e[3].seq})).ok);
  auto live = pending(*s, "feed");
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].offset, 3u);
  EXPECT_EQ(live[0].attempts, 3u);
  EXPECT_EQ(live[0].next, 1234);

  auto dead = webhook_read_wait(*s, WebhookQuery{WebhookQuery::Kind::dead, "feed", 0, 1});
  ASSERT_EQ(dead.entries.size(), 2u) << "one more than the limit: there are more";
  auto after = webhook_read_wait(*s, WebhookQuery{WebhookQuery::Kind::dead, "feed", dead.entries[0].seq, 10});
  EXPECT_EQ(offsets(after.entries), (std::vector<std::uint64_t>{4}));
  auto counts = webhook_read_wait(*s, WebhookQuery{WebhookQuery::Kind::counts, {}, 0, 0}).counts;
  EXPECT_EQ(counts["feed"].pending, 1u);
  EXPECT_EQ(counts["feed"].dead, 2u);
  EXPECT_EQ(counts["audit"].pending, 4u);

  WebhookWrite replay;
  replay.kind = WebhookWrite::Kind::replay;
  replay.hook = "feed";
  EXPECT_EQ(webhook_write_wait(*s, replay).count, 2u);
  auto back = pending(*s, "feed");
  EXPECT_EQ(offsets(back), (std::vector<std::uint64_t>{2, 3, 4})) << "back in their places, by seq";
  EXPECT_EQ(back[0].attempts, 0u);

  ASSERT_TRUE(webhook_write_wait(*s, settle({}, {}, {back[0].seq})).ok);
  WebhookWrite discard;
  discard.kind = WebhookWrite::Kind::discard;
  discard.hook = "feed";
  EXPECT_EQ(webhook_write_wait(*s, discard).count, 1u);
  EXPECT_TRUE(webhook_read_wait(*s, WebhookQuery{WebhookQuery::Kind::dead, "feed", 0, 10}).entries.empty());
}

TEST_P(StoreWebhooksTest, TheLeaseIsOneNodesUntilItLapses) {
  auto s = open();
  WebhookWrite lease;
  lease.kind = WebhookWrite::Kind::lease;
  lease.hook = "feed";
  lease.node = "a";
  lease.until = common::now_ms() + 60'000;
  EXPECT_EQ(webhook_write_wait(*s, lease).holder, "a");
  lease.node = "b";
  const std::string other = webhook_write_wait(*s, lease).holder;
  if (GetParam() == "sqlite") {
    EXPECT_EQ(other, "b") << "SQLite: this process is the only node";
  } else {
    EXPECT_EQ(other, "a") << "held by a until it lapses";
    lease.node = "a";
    lease.until = common::now_ms() - 1;  // a lets it lapse
    EXPECT_EQ(webhook_write_wait(*s, lease).holder, "a");
    lease.node = "b";
    lease.until = common::now_ms() + 60'000;
    EXPECT_EQ(webhook_write_wait(*s, lease).holder, "b");
  }
  auto counts = webhook_read_wait(*s, WebhookQuery{WebhookQuery::Kind::counts, {}, 0, 0}).counts;
  EXPECT_EQ(counts["feed"].holder, "b");
}

TEST_P(StoreWebhooksTest, TheQueueSurvivesARestart) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, pub("news", "1")).ok);
  }
  auto s = open();
  EXPECT_EQ(offsets(pending(*s, "feed")), (std::vector<std::uint64_t>{1}));
}

TEST_P(StoreWebhooksTest, ASchemaFourDatabaseGetsTheTables) {
  { auto s = open(); }
  if (GetParam() == "sqlite") {
    backend_->sql("DROP TABLE webhook_queue; DROP TABLE webhook_leases; PRAGMA user_version = 4");
  } else {
    backend_->sql("DROP TABLE webhook_queue; DROP TABLE webhook_leases; DELETE FROM rtsync_schema");
    backend_->set_schema_version(4);
  }
  auto s = open();
  ASSERT_TRUE(append_wait(*s, pub("news", "1")).ok);
  EXPECT_EQ(pending(*s, "feed").size(), 1u);
}

}  // namespace
}  // namespace rtsync::store
