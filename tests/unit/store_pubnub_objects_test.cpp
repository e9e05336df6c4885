// PubNub App Context and token revocations in the store (store.hpp), on every backend: setting an object
// merges its fields (null removes one, custom replaced whole), the same fields again change nothing (not
// updated, not its etag), If-Match, removal; listings filtered, sorted and paged forwards and backwards
// with cursors that hold across writes, `visible`, bad cursors; memberships from both sides with the other
// side's object, set and removed in one write; a failed batch; a restart; revocations kept until expiry.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

namespace json = boost::json;
using namespace calls;
using Names = std::vector<std::string>;
using Of = ObjectQuery::Of;

class StoreObjectsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam()); }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<Store> open() { return backend_->open(); }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreObjectsTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

ObjectWrite set(ObjectKind kind, std::string id, const char* fields, std::string if_match = {}) {
  ObjectWrite w;
  w.kind = kind;
  w.id = std::move(id);
  w.fields = json::parse(fields).as_object();
  w.if_match = std::move(if_match);
  return w;
}

ObjectWrite removal(ObjectKind kind, std::string id) {
  ObjectWrite w;
  w.kind = kind;
  w.id = std::move(id);
  w.remove = true;
  return w;
}

ObjectQuery one(Of of, std::string id) {
  ObjectQuery q;
  q.of = of;
  q.id = std::move(id);
  return q;
}

std::shared_ptr<const query::PubnubFilter> filter(const char* text) {
  std::string error;
  auto f = query::PubnubFilter::parse(text, error, query::Dialect::objects);
  EXPECT_TRUE(f) << error;
  return std::make_shared<const query::PubnubFilter>(std::move(*f));
}

Names ids(const ObjectsResult& r, const char* side = nullptr) {
  Names out;
  for (const auto& rec : r.records) {
    const json::object& o = side ? rec.at(side).as_object() : rec;
    out.emplace_back(o.at("id").as_string());
  }
  return out;
}

TEST_P(StoreObjectsTest, SettingMergesFieldsAndTheSameFieldsChangeNothing) {
  auto s = open();
  auto first = object_write_wait(*s, set(ObjectKind::uuid, "ann", R"({"name":"Ann","custom":{"a":1,"b":"x"}})"));
  ASSERT_TRUE(first.ok);
  EXPECT_TRUE(first.changed);
  EXPECT_EQ(first.object.id, "ann");
  EXPECT_FALSE(first.object.etag.empty());
  EXPECT_EQ(first.object.updated.size(), 27u) << first.object.updated;  // 2024-08-12T06:37:16.441347Z

  auto again = object_write_wait(*s, set(ObjectKind::uuid, "ann", R"({"custom":{"b":"x","a":1},"name":"Ann"})"));
  ASSERT_TRUE(again.ok);
  EXPECT_FALSE(again.changed) << "the same fields, in another order";
  EXPECT_EQ(again.object.etag, first.object.etag);
  EXPECT_EQ(again.object.updated, first.object.updated);

  auto more = object_write_wait(*s, set(ObjectKind::uuid, "ann", R"({"email":"a@x","custom":{"c":true}})"));
  ASSERT_TRUE(more.changed);
  EXPECT_NE(more.object.etag, first.object.etag);
  auto got = objects_wait(*s, one(Of::uuid, "ann"));
  ASSERT_TRUE(got.ok);
  ASSERT_EQ(got.records.size(), 1u);
  const json::object& ann = got.records[0];
  EXPECT_EQ(ann.at("name"), "Ann") << "kept";
  EXPECT_EQ(ann.at("email"), "a@x");
  EXPECT_EQ(ann.at("custom"), json::parse(R"({"c":true})")) << "custom is replaced whole";
  EXPECT_TRUE(ann.at("externalId").is_null());
  EXPECT_TRUE(ann.at("status").is_null());
  EXPECT_EQ(ann.at("eTag"), more.object.etag.c_str());

  EXPECT_TRUE(object_write_wait(*s, set(ObjectKind::uuid, "ann", R"({"email":null})")).changed);
  EXPECT_TRUE(objects_wait(*s, one(Of::uuid, "ann")).records[0].at("email").is_null()) << "null removes a field";
  EXPECT_TRUE(objects_wait(*s, one(Of::channel, "ann")).records.empty()) << "channels are apart from uuids";

  auto gone = object_write_wait(*s, removal(ObjectKind::uuid, "ann"));
  EXPECT_TRUE(gone.ok);
  EXPECT_TRUE(gone.changed);
  EXPECT_EQ(gone.object.id, "ann");
  EXPECT_FALSE(object_write_wait(*s, removal(ObjectKind::uuid, "ann")).changed);
  EXPECT_TRUE(objects_wait(*s, one(Of::uuid, "ann")).records.empty());
}

TEST_P(StoreObjectsTest, IfMatchAppliesOnlyOverThatEtag) {
  auto s = open();
  auto missing = object_write_wait(*s, set(ObjectKind::channel, "room", R"({"name":"Room"})", "nope"));
  EXPECT_FALSE(missing.ok);
  EXPECT_TRUE(missing.mismatch) << "nothing stored has that etag";
  auto first = object_write_wait(*s, set(ObjectKind::channel, "room", R"({"name":"Room"})"));
  auto stale = object_write_wait(*s, set(ObjectKind::channel, "room", R"({"name":"Other"})", "stale"));
  EXPECT_TRUE(stale.mismatch);
  EXPECT_EQ(objects_wait(*s, one(Of::channel, "room")).records[0].at("name"), "Room");
  auto right = object_write_wait(*s, set(ObjectKind::channel, "room", R"({"description":"d"})", first.object.etag));
  EXPECT_TRUE(right.ok);
  EXPECT_TRUE(right.changed);
}

TEST_P(StoreObjectsTest, ListingsAreFilteredSortedAndPagedBothWays) {
  auto s = open();
  const std::vector<std::pair<const char*, const char*>> people{
      {"u1", R"({"name":"Carol","custom":{"team":"red","age":31}})"}, {"u2", R"({"name":"alice","custom":{"team":"blue"}})"},
      {"u3", R"({"name":"Bob","status":"away","custom":{"team":"red","age":25}})"}, {"u4", R"({"name":"Dave"})"},
      {"u5", R"({"custom":{"team":"red","age":40}})"}};
  for (const auto& [id, fields] : people) ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::uuid, id, fields)).ok);
  ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::channel, "c1", R"({"name":"Zed"})")).ok);

  ObjectQuery all;
  all.of = Of::uuids;
  auto r = objects_wait(*s, all);
  EXPECT_EQ(ids(r), (Names{"u1", "u2", "u3", "u4", "u5"})) << "by id when unsorted";
  EXPECT_EQ(r.total, 5u);
  EXPECT_TRUE(r.next.empty());
  EXPECT_TRUE(r.prev.empty());

  ObjectQuery red = all;
  red.filter = filter(R"(custom.team == "red" && (custom.age > 30 || status == 'away'))");
  EXPECT_EQ(ids(objects_wait(*s, red)), (Names{"u1", "u3", "u5"}));
  red.filter = filter(R"(name LIKE "*o*")");
  EXPECT_EQ(ids(objects_wait(*s, red)), (Names{"u1", "u3"})) << "Carol, Bob";
  red.filter = filter(R"(name != "Dave")");
  EXPECT_EQ(ids(objects_wait(*s, red)), (Names{"u1", "u2", "u3"})) << "a record without the field fails";

  ObjectQuery by_name = all;
  by_name.sort = {{"name", true}};
  by_name.limit = 2;
  auto p1 = objects_wait(*s, by_name);
  EXPECT_EQ(ids(p1), (Names{"u2", "u4"})) << "descending, bytes: alice after the capitals, no name last";
  EXPECT_EQ(p1.total, 5u);
  ASSERT_FALSE(p1.next.empty());
  EXPECT_TRUE(p1.prev.empty());
  // A record added before the cursor's place does not shift the next page.
  ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::uuid, "u0", R"({"name":"zoe"})")).ok);
  by_name.start = p1.next;
  auto p2 = objects_wait(*s, by_name);
  EXPECT_EQ(ids(p2), (Names{"u1", "u3"}));
  ASSERT_FALSE(p2.prev.empty());
  by_name.start = p2.next;
  auto p3 = objects_wait(*s, by_name);
  EXPECT_EQ(ids(p3), Names{"u5"});
  EXPECT_TRUE(p3.next.empty()) << "the last page";
  by_name.start.clear();
  by_name.end = p2.prev;
  EXPECT_EQ(ids(objects_wait(*s, by_name)), (Names{"u2", "u4"})) << "back from page 2: page 1";
  by_name.end = p3.prev;
  EXPECT_EQ(ids(objects_wait(*s, by_name)), (Names{"u1", "u3"}));

  ObjectQuery bad = all;
  bad.start = "not a cursor";
  auto refused = objects_wait(*s, bad);
  EXPECT_FALSE(refused.ok);
  EXPECT_TRUE(refused.bad_cursor);

  ObjectQuery some = all;
  some.visible = [](const std::string& id) { return id == "u2" || id == "u4"; };
  auto visible = objects_wait(*s, some);
  EXPECT_EQ(ids(visible), (Names{"u2", "u4"}));
  EXPECT_EQ(visible.total, 2u);

  ObjectQuery channels;
  channels.of = Of::channels;
  channels.filter = filter(R"(updated >= "2020-01-01T00:00:00Z" && updated < "2999-01-01")");
  EXPECT_EQ(ids(objects_wait(*s, channels)), Names{"c1"}) << "times compare as times";
}

MembershipChange change(std::string uuid, std::string channel, const char* fields = "{}") {
  return MembershipChange{std::move(uuid), std::move(channel), json::parse(fields).as_object()};
}

TEST_P(StoreObjectsTest, MembershipsFromBothSidesWithTheOtherSidesObject) {
  {
    auto s = open();
    ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::channel, "ch1", R"({"name":"One","custom":{"k":"v"}})")).ok);
    ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::uuid, "bob", R"({"name":"Bob"})")).ok);
    MembershipWrite w;
    w.set = {change("ann", "ch1", R"({"custom":{"role":"admin"}})"), change("ann", "ch2", R"({"status":"invited"})"),
             change("bob", "ch1")};
    auto r = memberships_write_wait(*s, w);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.changed.size(), 3u);
    EXPECT_TRUE(memberships_write_wait(*s, w).changed.empty()) << "the same again changes nothing";
  }
  auto s = open();  // and they survive a restart
  auto of_ann = objects_wait(*s, one(Of::memberships, "ann"));
  ASSERT_TRUE(of_ann.ok);
  EXPECT_EQ(ids(of_ann, "channel"), (Names{"ch1", "ch2"}));
  const json::object& first = of_ann.records[0];
  EXPECT_EQ(first.at("channel").at("name"), "One") << "the channel's metadata, joined";
  EXPECT_EQ(first.at("custom"), json::parse(R"({"role":"admin"})"));
  EXPECT_EQ(of_ann.records[1].at("channel").as_object().size(), 1u) << "ch2 has no metadata: {id} only";
  EXPECT_EQ(of_ann.records[1].at("status"), "invited");

  auto members = objects_wait(*s, one(Of::members, "ch1"));
  EXPECT_EQ(ids(members, "uuid"), (Names{"ann", "bob"}));
  EXPECT_EQ(members.records[1].at("uuid").at("name"), "Bob");

  ObjectQuery named = one(Of::memberships, "ann");
  named.filter = filter(R"(channel.name == "One" && custom.role == "admin")");
  EXPECT_EQ(ids(objects_wait(*s, named), "channel"), Names{"ch1"});
  named.filter.reset();
  named.sort = {{"status", true}};
  EXPECT_EQ(ids(objects_wait(*s, named), "channel"), (Names{"ch2", "ch1"}));

  MembershipWrite both;
  both.remove = {{"ann", "ch1"}, {"ann", "never"}};
  both.set = {change("ann", "ch2", R"({"status":null})")};
  auto r = memberships_write_wait(*s, both);
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.removed.size(), 1u);
  EXPECT_EQ(r.removed[0].channel, "ch1");
  ASSERT_EQ(r.changed.size(), 1u);
  EXPECT_EQ(r.changed[0].data, "{}");
  EXPECT_EQ(ids(objects_wait(*s, one(Of::memberships, "ann")), "channel"), Names{"ch2"});
  EXPECT_EQ(ids(objects_wait(*s, one(Of::members, "ch1")), "uuid"), Names{"bob"});
}

TEST_P(StoreObjectsTest, AFailedBatchLeavesObjectsAsTheyWere) {
  auto s = open();
  ASSERT_TRUE(object_write_wait(*s, set(ObjectKind::uuid, "ann", R"({"name":"Ann"})")).ok);
  backend_->fail_inserts("pubnub_objects", "id", "'boom'");
  ObjectWriteResult changed, failed;
  {
    WriterGate gate(*s);  // one batch: both fail together
    s->write_object(set(ObjectKind::uuid, "ann", R"({"name":"Changed"})"), [&](ObjectWriteResult r) { changed = r; });
    s->write_object(set(ObjectKind::uuid, "boom", R"({"name":"x"})"), [&](ObjectWriteResult r) { failed = r; });
  }
  EXPECT_EQ(objects_wait(*s, one(Of::uuid, "boom")).records.size(), 0u);
  EXPECT_FALSE(failed.ok);
  EXPECT_FALSE(failed.mismatch);
  EXPECT_NE(failed.error.find("boom trigger"), std::string::npos) << failed.error;
  EXPECT_FALSE(changed.ok);
  EXPECT_EQ(objects_wait(*s, one(Of::uuid, "ann")).records[0].at("name"), "Ann");
}

TEST_P(StoreObjectsTest, RevocationsHoldAcrossARestartUntilTheTokenExpires) {
  const std::int64_t now = common::now_ms();
  {
    auto s = open();
    EXPECT_TRUE(revoke_wait(*s, TokenRevocation{"t1", now + 60'000}).ok);
    EXPECT_TRUE(revoke_wait(*s, TokenRevocation{"t1", now + 60'000}).ok) << "twice is once";
    EXPECT_TRUE(revoke_wait(*s, TokenRevocation{"old", now - 1}).ok) << "already expired: nothing to keep";
    EXPECT_EQ(revocations_wait(*s).tokens, Names{"t1"});
  }
  backend_->sql("INSERT INTO pubnub_revoked(token, expires) VALUES('stale', 1)");
  auto s = open();
  auto r = revocations_wait(*s);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.tokens, Names{"t1"}) << "an expired one is not in force";
  EXPECT_TRUE(revoke_wait(*s, TokenRevocation{"t2", now + 60'000}).ok);
  EXPECT_EQ(backend_->scalar("SELECT count(*) FROM pubnub_revoked WHERE token = 'stale'"), 0) << "swept";
}

}  // namespace
}  // namespace rtsync::store
