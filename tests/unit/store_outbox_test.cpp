// Outbox writes (store.hpp, Outbox), on every backend: applied at most once per (user, client, seq)
// however late they are sent again (past the 24 h of client keys, across restarts), their records
// settled by the client, and a client silent past the retention expired: its records gone, its writes
// refused rather than applied twice.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <memory>
#include <string>

#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

namespace json = boost::json;
using namespace calls;
using Status = DocResult::Status;

class StoreOutboxTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam()); }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<Store> open() { return backend_->open(); }
  void sql(const std::string& text) { backend_->sql(text); }
  std::int64_t records() { return backend_->scalar("SELECT count(*) FROM idempotency WHERE kind IN (2, 3)"); }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreOutboxTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

const std::string kClient = "c0ffee0123456789";

AppendRequest pub(const std::string& data, std::uint64_t seq, std::uint64_t settled = 0,
                  const std::string& client = kClient) {
  AppendRequest r;
  r.channel = "ch";
  r.data = data;
  r.from = "alice";
  r.ts = 1700000000000;
  r.history_size = 100;
  r.outbox = Outbox{client, seq, settled};
  return r;
}

DocWrite write(DocWrite::Op op, const std::string& id, const std::string& data, std::uint64_t seq,
               std::uint64_t settled = 0, const std::string& client = kClient) {
  DocWrite w;
  w.op = op;
  w.collection = "notes";
  w.id = id;
  w.user = "alice";
  w.data = json::parse(data).as_object();
  w.history_size = 100;
  w.outbox = Outbox{client, seq, settled};
  return w;
}

TEST_P(StoreOutboxTest, AppliedOnceHoweverLateAcrossRestarts) {
  {
    auto s = open();
    const auto first = append_wait(*s, pub("\"one\"", 1));
    ASSERT_TRUE(first.ok) << first.error;
    EXPECT_FALSE(first.replayed);
    const auto doc = write_wait(*s, write(DocWrite::Op::create, "n1", R"({"a":1})", 2));
    ASSERT_EQ(doc.status, Status::ok);
    // The same seq of another client, and another seq of this one, are writes of their own.
    EXPECT_FALSE(append_wait(*s, pub("\"other\"", 1, 0, "ffffffffffffffff")).replayed);
    EXPECT_EQ(append_wait(*s, pub("\"three\"", 3)).pub->offset, 3u);
  }
  // Far past the 24 h of a client key, after a restart.
  sql("UPDATE idempotency SET ts = ts - 2592000000");  // 30 days
  auto s = open();
  const auto again = append_wait(*s, pub("\"one, resent\"", 1));
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.pub->offset, 1u);
  EXPECT_EQ(again.pub->data, "\"one\"");
  const auto doc = write_wait(*s, write(DocWrite::Op::create, "n1", R"({"a":1})", 2));
  EXPECT_EQ(doc.status, Status::ok);  // not a conflict with itself
  EXPECT_TRUE(doc.replayed);
  EXPECT_EQ(json::parse(doc.doc).at("_v").as_int64(), 1);
  EXPECT_EQ(load_wait(*s, "ch", 100).offset, 3u);
  EXPECT_EQ(list_wait(*s, "notes").offset, 1u);  // one change on the feed
}

TEST_P(StoreOutboxTest, SettledRecordsGoOnlyThoseOfTheClient) {
  auto s = open();
  for (std::uint64_t seq = 1; seq <= 4; ++seq) ASSERT_TRUE(append_wait(*s, pub("1", seq)).ok);
  // Client ids that sort next to kClient ('-' < '/' < '0') keep their records.
  ASSERT_TRUE(append_wait(*s, pub("1", 1, 0, kClient + "-b")).ok);
  ASSERT_TRUE(append_wait(*s, pub("1", 1, 0, kClient + "0")).ok);
  EXPECT_EQ(records(), 6);
  ASSERT_TRUE(append_wait(*s, pub("1", 5, 3)).ok);  // settles 1-3
  EXPECT_EQ(records(), 4);                          // 4, 5 and the other two clients'
  EXPECT_TRUE(append_wait(*s, pub("1", 4, 3)).replayed);
  EXPECT_TRUE(append_wait(*s, pub("1", 1, 0, kClient + "-b")).replayed);
  EXPECT_TRUE(append_wait(*s, pub("1", 1, 0, kClient + "0")).replayed);
  // A failed write keeps no record: sent again, it is judged again.
  EXPECT_EQ(write_wait(*s, write(DocWrite::Op::update, "gone", R"({"a":1})", 6)).status, Status::not_found);
  EXPECT_EQ(records(), 4);
}

TEST_P(StoreOutboxTest, ASilentClientExpiresAndIsRefusedNotAppliedTwice) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, pub("1", 1)).ok);
    ASSERT_EQ(write_wait(*s, write(DocWrite::Op::create, "n1", "{}", 2)).status, Status::ok);
    ASSERT_TRUE(append_wait(*s, pub("1", 1, 0, "ffffffffffffffff")).ok);
  }
  sql("UPDATE outbox_clients SET seen = seen - 7862400000 WHERE client = '" + kClient + "'");  // 91 days
  auto s = open();  // the first batch after opening sweeps
  AppendRequest plain = pub("1", 0);
  plain.outbox.reset();
  ASSERT_TRUE(append_wait(*s, plain).ok);
  EXPECT_EQ(records(), 1);  // the other client's
  const auto r = append_wait(*s, pub("1", 1));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.expired);
  EXPECT_EQ(write_wait(*s, write(DocWrite::Op::create, "n1", "{}", 2)).status, Status::expired);
  EXPECT_EQ(write_wait(*s, write(DocWrite::Op::create, "n2", "{}", 3)).status, Status::expired);
  EXPECT_EQ(load_wait(*s, "ch", 100).offset, 3u);  // two outbox appends and the plain one
  EXPECT_TRUE(append_wait(*s, pub("1", 1, 0, "ffffffffffffffff")).replayed);
}

}  // namespace
}  // namespace rtsync::store
