// PubNub's durable state in the store (store.hpp, section "PubNub"), on every backend: channel groups
// (their channels, the listing, the limit, dropping, queue order with other writes, a failed batch, a
// restart).
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

}  // namespace
}  // namespace rtsync::store
