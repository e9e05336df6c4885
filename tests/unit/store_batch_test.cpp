// Unit tests of the batch algorithm (src/store/store_batch.cpp) where two writes of one batch meet, on
// every backend (store_backends.hpp): a refused write's idempotency key is free for the next write of the
// same batch, and a collection declared without a tally in the middle of a batch loses its counts and the
// batch's tally publication.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

using namespace std::chrono_literals;
using namespace calls;
using Op = DocWrite::Op;
using Status = DocResult::Status;

const std::map<std::string, std::vector<std::int64_t>> kFields{{"n", {1, 2}}};

class StoreBatchTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam(), "normal"); }

  // Queues the writes while the writer is held, so that they form one batch, and waits for their results.
  static std::vector<DocResult> one_batch(Store& s, std::vector<DocWrite> writes) {
    std::vector<DocResult> results(writes.size());
    std::promise<void> done;
    {
      WriterGate gate(s);
      for (std::size_t i = 0; i < writes.size(); ++i) {
        s.write(std::move(writes[i]), [&, i, last = writes.size() - 1](DocResult r) {
          results[i] = std::move(r);
          if (i == last) done.set_value();
        });
      }
    }
    EXPECT_EQ(done.get_future().wait_for(30s), std::future_status::ready);
    return results;
  }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreBatchTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

DocWrite votes(Op op, std::string id, const std::string& data, bool tally) {
  DocWrite w;
  w.op = op;
  w.collection = "votes";
  w.id = std::move(id);
  w.user = "alice";
  w.data = boost::json::parse(data).as_object();
  w.history_size = 100;
  if (tally) w.tally = kFields;
  return w;
}

TEST_P(StoreBatchTest, RefusedWriteLeavesItsKeyToTheNextWriteOfTheBatch) {
  auto s = backend_->open();
  ASSERT_EQ(write_wait(*s, votes(Op::create, "x", R"({"n":1})", false)).status, Status::ok);
  auto stale = votes(Op::update, "x", R"({"n":2})", false);
  stale.expected_v = 7;
  stale.key = "k";
  auto good = votes(Op::update, "x", R"({"n":2})", false);
  good.expected_v = 1;
  good.key = "k";
  const auto r = one_batch(*s, {stale, good, good});
  EXPECT_EQ(r[0].status, Status::conflict);
  ASSERT_EQ(r[1].status, Status::ok) << r[1].error;
  EXPECT_FALSE(r[1].replayed);
  EXPECT_EQ(r[1].v, 2u);
  ASSERT_EQ(r[2].status, Status::ok) << r[2].error;
  EXPECT_TRUE(r[2].replayed);
  EXPECT_EQ(r[2].doc, r[1].doc);
  EXPECT_EQ(list_wait(*s, "votes").offset, 2u);  // the create and one update
}

TEST_P(StoreBatchTest, TallyUndeclaredWithinABatchDropsItsCountsAndPublication) {
  auto s = backend_->open();
  const auto r = one_batch(*s, {votes(Op::create, "a", R"({"n":1})", true),
                                votes(Op::create, "b", R"({"n":2})", false)});
  ASSERT_EQ(r[0].status, Status::ok) << r[0].error;
  ASSERT_EQ(r[1].status, Status::ok) << r[1].error;
  EXPECT_FALSE(r[0].tally);
  EXPECT_FALSE(r[1].tally);
  EXPECT_EQ(backend_->scalar("SELECT count(*) FROM tally_totals WHERE collection = 'votes'"), 0);
  EXPECT_EQ(backend_->scalar("SELECT count(*) FROM tallies WHERE collection = 'votes'"), 0);

  // Declared again: recounted from both documents before the patch moves b's value.
  const auto p = write_wait(*s, votes(Op::patch, "b", R"({"n":1})", true));
  ASSERT_TRUE(p.tally);
  EXPECT_EQ(p.tally->offset, 1u);
  EXPECT_EQ(p.tally->data, R"({"total":2,"counts":{"n":{"1":2,"2":0}}})");
  EXPECT_EQ(tally_wait(*s, "votes", kFields).tally, p.tally->data);
}

}  // namespace
}  // namespace rtsync::store
