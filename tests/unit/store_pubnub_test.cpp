// PubNub's durable state in the store (store.hpp), on every backend: channel groups (their channels, the
// listing, the limit, dropping, queue order with other writes, a failed batch, a restart) and message
// actions (timetokens unique and growing per channel, duplicates refused, removal, reads by action range
// with a limit and by a page of messages, a restart); deleting publications by timetoken (gone from loads
// across a restart, with their actions, offsets never given again).
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

using namespace calls;
using Names = std::vector<std::string>;

class StorePubnubTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam()); }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<Store> open() { return backend_->open(); }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StorePubnubTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

GroupWrite change(std::string group, Names add, Names remove = {}, std::size_t max = 0) {
  GroupWrite w;
  w.group = std::move(group);
  w.add = std::move(add);
  w.remove = std::move(remove);
  w.max_channels = max;
  return w;
}

Names channels_of(Store& s, const std::string& group) {
  auto r = groups_wait(s, {group});
  EXPECT_TRUE(r.ok);
  return r.groups[group];
}

TEST_P(StorePubnubTest, GroupsAddRemoveListAndDrop) {
  auto s = open();
  EXPECT_TRUE(group_write_wait(*s, change("g1", {"b", "a", "b"})).ok);
  EXPECT_TRUE(group_write_wait(*s, change("g1", {"c"}, {"a", "nothere"})).ok);
  EXPECT_TRUE(group_write_wait(*s, change("g2", {"x"})).ok);
  EXPECT_EQ(channels_of(*s, "g1"), (Names{"b", "c"}));
  auto both = groups_wait(*s, {"g2", "none"});
  EXPECT_EQ(both.groups, (std::map<std::string, Names>{{"g2", {"x"}}, {"none", {}}}));
  auto all = groups_wait(*s, {});
  EXPECT_EQ(all.groups, (std::map<std::string, Names>{{"g1", {}}, {"g2", {}}}));

  GroupWrite drop;
  drop.group = "g1";
  drop.drop = true;
  EXPECT_TRUE(group_write_wait(*s, drop).ok);
  EXPECT_EQ(channels_of(*s, "g1"), Names{});
  EXPECT_EQ(groups_wait(*s, {}).groups.size(), 1u);
  // Removing its last channel is the same: no group.
  EXPECT_TRUE(group_write_wait(*s, change("g2", {}, {"x"})).ok);
  EXPECT_TRUE(groups_wait(*s, {}).groups.empty());
}

TEST_P(StorePubnubTest, AGroupWritePastItsLimitChangesNothing) {
  auto s = open();
  EXPECT_TRUE(group_write_wait(*s, change("g", {"a", "b"}, {}, 3)).ok);
  auto r = group_write_wait(*s, change("g", {"c", "d"}, {}, 3));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.too_many);
  EXPECT_EQ(channels_of(*s, "g"), (Names{"a", "b"}));
  EXPECT_TRUE(group_write_wait(*s, change("g", {"c", "d"}, {"a"}, 3)).ok);  // removes count first
  EXPECT_EQ(channels_of(*s, "g"), (Names{"b", "c", "d"}));
}

TEST_P(StorePubnubTest, GroupReadsSeeTheWritesQueuedBeforeThemAndGroupsSurviveARestart) {
  {
    auto s = open();
    std::promise<GroupsResult> read;
    {
      WriterGate gate(*s);  // one batch: the write and the read queued after it
      s->write_group(change("g", {"a"}), [](GroupWriteResult) {});
      s->read_groups({"g"}, [&](GroupsResult r) { read.set_value(std::move(r)); });
    }
    EXPECT_EQ(read.get_future().get().groups["g"], Names{"a"});
  }
  auto again = open();
  EXPECT_EQ(channels_of(*again, "g"), Names{"a"});
}

TEST_P(StorePubnubTest, AFailedBatchLeavesTheGroupAsItWas) {
  auto s = open();
  EXPECT_TRUE(group_write_wait(*s, change("g", {"a"})).ok);
  backend_->fail_inserts("pubnub_groups", "channel", "'boom'");
  auto r = group_write_wait(*s, change("g", {"boom", "b"}, {"a"}));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.too_many);
  EXPECT_NE(r.error.find("boom trigger"), std::string::npos) << r.error;
  EXPECT_EQ(channels_of(*s, "g"), Names{"a"});
}

ActionWrite add(std::string channel, std::uint64_t message_tt, std::string type, std::string value,
                std::string uuid = "ann") {
  ActionWrite w;
  w.channel = std::move(channel);
  w.action = MessageAction{message_tt, 0, std::move(type), std::move(value), std::move(uuid)};
  return w;
}

ActionWrite removal(std::string channel, std::uint64_t message_tt, std::uint64_t action_tt) {
  ActionWrite w;
  w.channel = std::move(channel);
  w.remove = true;
  w.action.message_tt = message_tt;
  w.action.action_tt = action_tt;
  return w;
}

std::vector<std::uint64_t> action_tts(const ActionsResult& r) {
  std::vector<std::uint64_t> out;
  for (const auto& a : r.actions) out.push_back(a.action_tt);
  return out;
}

TEST_P(StorePubnubTest, MessageActionsAddedOnceWithGrowingTimetokensAndRemoved) {
  auto s = open();
  auto first = action_write_wait(*s, add("ch", 100, "reaction", "smile"));
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.action.message_tt, 100u);
  EXPECT_EQ(first.action.type, "reaction");
  EXPECT_EQ(first.action.uuid, "ann");
  std::vector<std::uint64_t> tts{first.action.action_tt};
  for (const char* v : {"frown", "wink"}) tts.push_back(action_write_wait(*s, add("ch", 100, "reaction", v)).action.action_tt);
  tts.push_back(action_write_wait(*s, add("ch", 100, "reaction", "smile", "bob")).action.action_tt);
  for (std::size_t i = 1; i < tts.size(); ++i) EXPECT_GT(tts[i], tts[i - 1]);
  EXPECT_GT(tts.front(), 15'000'000'000'000'000u) << "a timetoken";

  auto again = action_write_wait(*s, add("ch", 100, "reaction", "smile"));
  EXPECT_FALSE(again.ok);
  EXPECT_TRUE(again.exists);
  EXPECT_TRUE(action_write_wait(*s, add("ch", 101, "reaction", "smile")).ok) << "another message";
  EXPECT_TRUE(action_write_wait(*s, add("other", 100, "reaction", "smile")).ok) << "another channel";

  auto gone = action_write_wait(*s, removal("ch", 100, tts[1]));
  EXPECT_TRUE(gone.ok);
  EXPECT_FALSE(gone.not_found);
  EXPECT_EQ(gone.action.value, "frown");
  auto twice = action_write_wait(*s, removal("ch", 100, tts[1]));
  EXPECT_TRUE(twice.ok);
  EXPECT_TRUE(twice.not_found);
  EXPECT_TRUE(action_write_wait(*s, removal("ch", 999, tts[2])).not_found) << "the message must match";

  ActionQuery q;
  q.channel = "ch";
  auto all = actions_wait(*s, q);
  EXPECT_EQ(all.actions.size(), 4u);  // smile, wink, bob's smile, and message 101's
  EXPECT_FALSE(all.more);
}

TEST_P(StorePubnubTest, MessageActionsReadByRangeWithALimitAndByMessages) {
  auto s = open();
  std::vector<std::uint64_t> tts;
  for (int i = 0; i < 6; ++i)
    tts.push_back(action_write_wait(*s, add("ch", 100 + static_cast<std::uint64_t>(i % 3), "t", std::to_string(i))).action.action_tt);
  ActionQuery q;
  q.channel = "ch";
  q.limit = 2;
  auto newest = actions_wait(*s, q);
  EXPECT_EQ(action_tts(newest), (std::vector<std::uint64_t>{tts[4], tts[5]})) << "the newest, ascending";
  EXPECT_TRUE(newest.more);
  q.before = tts[4];  // PubNub's start: exclusive
  EXPECT_EQ(action_tts(actions_wait(*s, q)), (std::vector<std::uint64_t>{tts[2], tts[3]}));
  q.since = tts[3];  // end: inclusive
  q.limit = 100;
  auto between = actions_wait(*s, q);
  EXPECT_EQ(action_tts(between), (std::vector<std::uint64_t>{tts[3]}));
  EXPECT_FALSE(between.more);

  ActionQuery page;
  page.channel = "ch";
  page.messages_from = 101;
  page.messages_until = 102;
  auto of_page = actions_wait(*s, page);
  EXPECT_EQ(action_tts(of_page), (std::vector<std::uint64_t>{tts[1], tts[2], tts[4], tts[5]}));
  page.limit = 3;
  auto cut = actions_wait(*s, page);
  EXPECT_EQ(action_tts(cut), (std::vector<std::uint64_t>{tts[1], tts[2], tts[4]}));
  EXPECT_TRUE(cut.more);
}

TEST_P(StorePubnubTest, MessageActionsSurviveARestartAndTheirTimetokensKeepGrowing) {
  std::uint64_t before = 0;
  {
    auto s = open();
    before = action_write_wait(*s, add("ch", 7, "t", "v")).action.action_tt;
  }
  auto s = open();
  ActionQuery q;
  q.channel = "ch";
  auto r = actions_wait(*s, q);
  ASSERT_EQ(r.actions.size(), 1u);
  EXPECT_EQ(r.actions[0].action_tt, before);
  EXPECT_EQ(r.actions[0].value, "v");
  EXPECT_GT(action_write_wait(*s, add("ch", 7, "t", "w")).action.action_tt, before);
}

TEST_P(StorePubnubTest, DeletedPublicationsAreGoneForGoodAndTheirOffsetsStay) {
  std::vector<std::uint64_t> tts;
  {
    auto s = open();
    for (int i = 1; i <= 5; ++i) {
      AppendRequest r;
      r.channel = "ch";
      r.data = std::to_string(i);
      r.from = "alice";
      r.ts = 1700000000000;
      r.history_size = 100;
      tts.push_back(append_wait(*s, r).pub->tt);
    }
    EXPECT_TRUE(action_write_wait(*s, add("ch", tts[1], "t", "on 2")).ok);
    EXPECT_TRUE(action_write_wait(*s, add("ch", tts[3], "t", "on 4")).ok);
    auto d = delete_wait(*s, MessageDeletion{"ch", tts[0], tts[2]});  // 2 and 3: after 1, up to 3
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.deleted, 2u);
    EXPECT_EQ(delete_wait(*s, MessageDeletion{"ch", tts[0], tts[2]}).deleted, 0u) << "nothing left there";
    EXPECT_EQ(delete_wait(*s, MessageDeletion{"never", 0, UINT64_MAX}).deleted, 0u);
  }
  auto s = open();
  const auto snap = load_wait(*s, "ch", 100);
  std::vector<std::uint64_t> offsets;
  for (const auto& p : snap.pubs) offsets.push_back(p->offset);
  EXPECT_EQ(offsets, (std::vector<std::uint64_t>{1, 4, 5}));
  EXPECT_EQ(snap.offset, 5u);
  EXPECT_EQ(snap.last_tt, tts[4]);
  ActionQuery q;
  q.channel = "ch";
  auto left = actions_wait(*s, q);
  ASSERT_EQ(left.actions.size(), 1u);
  EXPECT_EQ(left.actions[0].value, "on 4") << "the actions of deleted messages go with them";
  AppendRequest r;
  r.channel = "ch";
  r.data = "6";
  r.from = "alice";
  r.ts = 1700000000000;
  r.history_size = 100;
  EXPECT_EQ(append_wait(*s, r).pub->offset, 6u) << "offsets go on";
  EXPECT_EQ(delete_wait(*s, MessageDeletion{"ch", 0, UINT64_MAX}).deleted, 4u);  // 1, 4, 5 and 6
  EXPECT_TRUE(load_wait(*s, "ch", 100).pubs.empty());
  EXPECT_EQ(load_wait(*s, "ch", 100).offset, 6u);
}

}  // namespace
}  // namespace rtsync::store
