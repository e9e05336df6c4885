// What only the PostgreSQL store has to get right: several nodes (here, several stores on one schema, each
// with its own connection and writer thread) appending to the same channels, writing the same tally and
// sending the same idempotency keys at once. Offsets must stay unique and gap-free per channel, in each
// node's call order; tallies exact; a key applied once.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

using namespace std::chrono_literals;
using namespace calls;

AppendRequest request(std::string channel, std::string data, std::string from = "alice", std::string key = "") {
  AppendRequest r;
  r.channel = std::move(channel);
  r.data = std::move(data);
  r.from = std::move(from);
  r.ts = 1700000000000;
  r.history_size = 100000;
  r.key = std::move(key);
  return r;
}

TEST(PostgresNodes, TwoNodesAppendingToOneChannelNeverCollide) {
  backends::PostgresBackend db;
  auto a = db.open();
  auto b = db.open();
  constexpr int per_node = 1500;
  std::mutex mu;
  std::map<int, std::vector<std::uint64_t>> by_node;  // offsets in each node's callback order
  std::map<std::uint64_t, std::uint64_t> tt_of;       // offset -> timetoken
  std::set<std::string> epochs;
  std::atomic<int> done{0};
  std::promise<void> all;
  std::vector<std::thread> threads;
  for (int n = 0; n < 2; ++n) {
    threads.emplace_back([&, n] {
      Store& s = n == 0 ? *a : *b;
      for (int i = 0; i < per_node; ++i) {
        // Two channels, so that batches of both nodes lock more than one row.
        s.append(request(i % 3 ? "shared" : "other", std::to_string(i)), [&, n, i](AppendResult r) {
          {
            const std::lock_guard lk(mu);
            EXPECT_TRUE(r.ok) << r.error;
            if (r.ok && i % 3) {
              by_node[n].push_back(r.pub->offset);
              tt_of[r.pub->offset] = r.pub->tt;
              epochs.insert(r.epoch);
            }
          }
          if (done.fetch_add(1) + 1 == 2 * per_node) all.set_value();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(all.get_future().wait_for(120s), std::future_status::ready);

  // Each node sees its own appends in call order; together they are exactly 1..N, once each.
  std::set<std::uint64_t> every;
  for (const auto& [n, offs] : by_node) {
    EXPECT_TRUE(std::is_sorted(offs.begin(), offs.end())) << "node " << n;
    every.insert(offs.begin(), offs.end());
  }
  const std::size_t total = by_node[0].size() + by_node[1].size();
  ASSERT_EQ(every.size(), total);
  EXPECT_EQ(*every.begin(), 1u);
  EXPECT_EQ(*every.rbegin(), total);
  EXPECT_EQ(epochs.size(), 1u);
  // Timetokens strictly increase with offsets, whichever node assigned them.
  std::uint64_t last_tt = 0;
  for (const auto& [off, tt] : tt_of) {
    EXPECT_GT(tt, last_tt) << "at offset " << off;
    last_tt = tt;
  }
  // And both nodes read the same history.
  const auto sa = load_wait(*a, "shared", 100000);
  const auto sb = load_wait(*b, "shared", 100000);
  EXPECT_EQ(sa.offset, total);
  EXPECT_EQ(sb.offset, total);
  ASSERT_EQ(sa.pubs.size(), total);
  for (std::size_t i = 0; i < total; ++i) ASSERT_EQ(sa.pubs[i]->offset, i + 1);
}

TEST(PostgresNodes, TallyStaysExactUnderWritesFromTwoNodes) {
  backends::PostgresBackend db;
  auto a = db.open();
  auto b = db.open();
  const std::map<std::string, std::vector<std::int64_t>> fields{{"n", {1, 2, 3}}};
  constexpr int per_node = 300;
  std::atomic<int> done{0}, ok{0};
  std::promise<void> all;
  std::vector<std::thread> threads;
  for (int n = 0; n < 2; ++n) {
    threads.emplace_back([&, n] {
      Store& s = n == 0 ? *a : *b;
      for (int i = 0; i < per_node; ++i) {
        DocWrite w;
        w.op = DocWrite::Op::create;
        w.collection = "votes";
        w.user = "u" + std::to_string(n) + "-" + std::to_string(i);
        w.data = boost::json::parse("{\"n\":" + std::to_string(1 + i % 3) + "}").as_object();
        w.tally = fields;
        w.history_size = 10;
        s.write(std::move(w), [&](DocResult r) {
          EXPECT_EQ(r.status, DocResult::Status::ok) << r.error;
          if (r.status == DocResult::Status::ok) ++ok;
          if (done.fetch_add(1) + 1 == 2 * per_node) all.set_value();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(all.get_future().wait_for(120s), std::future_status::ready);
  ASSERT_EQ(ok.load(), 2 * per_node);
  std::promise<TallyResult> p;
  b->tally(TallyQuery{"votes", fields, "", ""}, [&](TallyResult r) { p.set_value(std::move(r)); });
  const auto t = p.get_future().get();
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.tally, R"({"total":600,"counts":{"n":{"1":200,"2":200,"3":200}}})");
  // The change feed got exactly one publication per write.
  std::promise<ListResult> l;
  a->list(ListQuery{"votes", "", {}}, [&](ListResult r) { l.set_value(std::move(r)); });
  const auto list = l.get_future().get();
  EXPECT_EQ(list.docs.size(), 600u);
  EXPECT_EQ(list.offset, 600u);
}

TEST(PostgresNodes, OneKeySentToTwoNodesAtOnceIsAppliedOnce) {
  backends::PostgresBackend db;
  auto a = db.open();
  auto b = db.open();
  constexpr int keys = 200;
  std::mutex mu;
  std::map<std::string, std::vector<AppendResult>> by_key;
  std::atomic<int> done{0};
  std::promise<void> all;
  for (int i = 0; i < keys; ++i) {
    for (Store* s : {a.get(), b.get()}) {
      const std::string key = "k" + std::to_string(i);
      s->append(request("keyed", "\"" + key + "\"", "alice", key), [&, key](AppendResult r) {
        {
          const std::lock_guard lk(mu);
          by_key[key].push_back(std::move(r));
        }
        if (done.fetch_add(1) + 1 == 2 * keys) all.set_value();
      });
    }
  }
  ASSERT_EQ(all.get_future().wait_for(120s), std::future_status::ready);
  for (const auto& [key, rs] : by_key) {
    ASSERT_EQ(rs.size(), 2u);
    ASSERT_TRUE(rs[0].ok && rs[1].ok) << rs[0].error << rs[1].error;
    EXPECT_EQ(rs[0].replayed + rs[1].replayed, 1) << key;
    EXPECT_EQ(rs[0].pub->offset, rs[1].pub->offset) << key;
  }
  EXPECT_EQ(load_wait(*a, "keyed", 0).offset, static_cast<std::uint64_t>(keys));
}

// Two nodes hand out the same epoch for a channel nobody wrote yet (neither writes a row for it), and it is
// the epoch the first publication commits with, whichever node makes it.
TEST(PostgresNodes, TwoNodesAgreeOnTheEpochOfAnUnwrittenChannel) {
  backends::PostgresBackend db;
  auto a = db.open();
  auto b = db.open();
  const auto on_a = load_wait(*a, "new", 10);
  const auto on_b = load_wait(*b, "new", 10);
  EXPECT_EQ(on_a.epoch, on_b.epoch);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM channels"), 0);
  const auto r = append_wait(*b, request("new", "1"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.epoch, on_a.epoch);
  EXPECT_EQ(load_wait(*a, "new", 10).epoch, on_a.epoch);
  EXPECT_EQ(load_wait(*a, "new", 10).offset, 1u);
}

TEST(PostgresNodes, UnreachableServerThrows) {
  EXPECT_THROW(open_postgres(PostgresOptions{"host=127.0.0.1 port=1 connect_timeout=2 dbname=none"}),
               std::runtime_error);
}

}  // namespace
}  // namespace rtsync::store
