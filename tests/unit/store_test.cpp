// The store contract (store.hpp), run against every backend (store_backends.hpp: SQLite and PostgreSQL):
// offsets and their order, trimming, epochs across reopen, idempotency keys, group commit, the load
// ordering contract, failure handling and close(). SqliteStoreTest holds what only SQLite has (its file
// and its synchronous setting). Each test works in a fresh database file or schema.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/random.hpp"
#include "log_capture.hpp"
#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace calls;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rtsync-store-test-" + common::random_hex(8));
    fs::create_directories(dir_);
    file_ = dir_ / "rtsync.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Store> open(const std::string& synchronous = "full") {
    SqliteOptions o;
    o.file = file_;
    o.synchronous = synchronous;
    return open_sqlite(o);
  }


  fs::path dir_;
  fs::path file_;
};

// Parameterized by backend name; open() twice reaches the same database (a restart).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam()); }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<Store> open() { return backend_->open(); }
  void sql(const std::string& text) { backend_->sql(text); }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

AppendRequest request(std::string channel, std::string data, std::string from = "alice",
                      std::size_t history_size = 100, std::string key = "", std::int64_t ts = 1700000000000) {
  AppendRequest r;
  r.channel = std::move(channel);
  r.data = std::move(data);
  r.from = std::move(from);
  r.ts = ts;
  r.history_size = history_size;
  r.key = std::move(key);
  return r;
}

std::vector<std::uint64_t> offsets(const core::ChannelSnapshot& snap) {
  std::vector<std::uint64_t> out;
  for (const auto& p : snap.pubs) out.push_back(p->offset);
  return out;
}

TEST_P(StoreTest, AssignsOffsetsOneToNInCallOrder) {
  auto s = open();
  std::mutex mu;
  std::vector<std::uint64_t> seen;
  std::set<std::string> epochs;
  std::promise<void> all;
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) {
    s->append(request("ch", std::to_string(i)), [&, i](AppendResult r) {
      const std::lock_guard lk(mu);
      EXPECT_TRUE(r.ok) << r.error;
      EXPECT_FALSE(r.replayed);
      ASSERT_TRUE(r.pub);
      EXPECT_EQ(r.pub->data, std::to_string(i));  // offset i+1 belongs to the i-th call
      seen.push_back(r.pub->offset);
      epochs.insert(r.epoch);
      if (i == n - 1) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(30s), std::future_status::ready);
  std::vector<std::uint64_t> want;
  for (std::uint64_t o = 1; o <= n; ++o) want.push_back(o);
  EXPECT_EQ(seen, want);
  ASSERT_EQ(epochs.size(), 1u);
  EXPECT_EQ(epochs.begin()->size(), 16u);
  EXPECT_EQ(s->stats().appends, static_cast<std::uint64_t>(n));
}

// The Server API's channel list: by name, bytewise, after a cursor, under a prefix, with the last offset.
TEST_P(StoreTest, ChannelsArePagedByNameWithTheirOffsets) {
  auto s = open();
  std::string epoch_b;
  for (const char* name : {"b:2", "a:1", "b:1", "b:10", "B:upper", "b:1"}) {
    auto r = append_wait(*s, request(name, "1"));
    ASSERT_TRUE(r.ok) << r.error;
    if (std::string(name) == "b:1") epoch_b = r.epoch;
  }
  auto names = [](const ChannelsResult& r) {
    std::vector<std::string> out;
    for (const auto& c : r.channels) out.push_back(c.name);
    return out;
  };
  auto all = channels_wait(*s, ChannelsQuery{"", "", 100});
  ASSERT_TRUE(all.ok);
  EXPECT_EQ(names(all), (std::vector<std::string>{"B:upper", "a:1", "b:1", "b:10", "b:2"}));
  auto b = channels_wait(*s, ChannelsQuery{"b:", "", 2});
  EXPECT_EQ(names(b), (std::vector<std::string>{"b:1", "b:10"}));
  EXPECT_EQ(b.channels[0].offset, 2u);
  EXPECT_EQ(b.channels[0].epoch, epoch_b);
  EXPECT_EQ(b.channels[1].offset, 1u);
  EXPECT_EQ(names(channels_wait(*s, ChannelsQuery{"b:", "b:10", 2})), (std::vector<std::string>{"b:2"}));
  EXPECT_TRUE(channels_wait(*s, ChannelsQuery{"c", "", 2}).channels.empty());
  EXPECT_TRUE(channels_wait(*s, ChannelsQuery{"b:%", "", 2}).channels.empty()) << "the prefix is no pattern";
}

TEST_P(StoreTest, PublicationsKeepDataFromAndTs) {
  auto s = open();
  const auto r = append_wait(*s, request("ch", R"({"a":[1,"x"]})", "bob", 10, "", 1234567));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.pub->offset, 1u);
  EXPECT_EQ(r.pub->data, R"({"a":[1,"x"]})");
  EXPECT_EQ(r.pub->from, "bob");
  EXPECT_EQ(r.pub->ts, 1234567);

  const auto snap = load_wait(*s, "ch", 10);
  EXPECT_EQ(snap.epoch, r.epoch);
  EXPECT_EQ(snap.offset, 1u);
  ASSERT_EQ(snap.pubs.size(), 1u);
  EXPECT_EQ(snap.pubs[0]->offset, 1u);
  EXPECT_EQ(snap.pubs[0]->data, R"({"a":[1,"x"]})");
  EXPECT_EQ(snap.pubs[0]->from, "bob");
  EXPECT_EQ(snap.pubs[0]->ts, 1234567);
}

TEST_P(StoreTest, TrimsToHistorySize) {
  auto s = open();
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(append_wait(*s, request("ch", std::to_string(i), "a", 3)).ok);

  auto snap = load_wait(*s, "ch", 3);
  EXPECT_EQ(snap.offset, 10u);
  EXPECT_EQ(offsets(snap), (std::vector<std::uint64_t>{8, 9, 10}));
  EXPECT_EQ(snap.pubs.back()->data, "10");
  // A larger window shows that the older rows are really gone, not just filtered.
  EXPECT_EQ(offsets(load_wait(*s, "ch", 1000)), (std::vector<std::uint64_t>{8, 9, 10}));
  // A smaller window gets the newest ones.
  EXPECT_EQ(offsets(load_wait(*s, "ch", 2)), (std::vector<std::uint64_t>{9, 10}));
  EXPECT_TRUE(load_wait(*s, "ch", 0).pubs.empty());
}

TEST_P(StoreTest, HistorySizeZeroKeepsNothingButCounts) {
  auto s = open();
  for (int i = 1; i <= 5; ++i) {
    const auto r = append_wait(*s, request("ch", std::to_string(i), "a", 0));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.pub->offset, static_cast<std::uint64_t>(i));
  }
  const auto snap = load_wait(*s, "ch", 100);
  EXPECT_EQ(snap.offset, 5u);
  EXPECT_TRUE(snap.pubs.empty());
}

TEST_P(StoreTest, TrimsWithinOneBatch) {
  auto s = open();
  {
    WriterGate gate(*s);
    for (int i = 1; i <= 20; ++i) s->append(request("ch", std::to_string(i), "a", 4), [](AppendResult) {});
  }
  EXPECT_EQ(offsets(load_wait(*s, "ch", 100)), (std::vector<std::uint64_t>{17, 18, 19, 20}));
}

TEST_P(StoreTest, ReopenKeepsEpochAndContinuesOffsets) {
  std::string epoch, subscribed_epoch;
  {
    auto s = open();
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(append_wait(*s, request("ch", std::to_string(i))).ok);
    epoch = load_wait(*s, "ch", 10).epoch;
    // Subscribed to but never written: the epoch must survive a restart too.
    subscribed_epoch = load_wait(*s, "quiet", 10).epoch;
    s->close();
  }
  auto s = open();
  const auto snap = load_wait(*s, "ch", 10);
  EXPECT_EQ(snap.epoch, epoch);
  EXPECT_EQ(snap.offset, 5u);
  EXPECT_EQ(offsets(snap), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  const auto r = append_wait(*s, request("ch", "6"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.pub->offset, 6u);
  EXPECT_EQ(r.epoch, epoch);

  const auto quiet = load_wait(*s, "quiet", 10);
  EXPECT_EQ(quiet.epoch, subscribed_epoch);
  EXPECT_EQ(quiet.offset, 0u);
  EXPECT_NE(quiet.epoch, epoch);  // epochs are per channel
}

TEST_P(StoreTest, LoadOfUnknownChannelCreatesStableEpoch) {
  auto s = open();
  const auto first = load_wait(*s, "fresh", 10);
  EXPECT_EQ(first.epoch.size(), 16u);
  EXPECT_EQ(first.offset, 0u);
  EXPECT_TRUE(first.pubs.empty());
  EXPECT_EQ(load_wait(*s, "fresh", 10).epoch, first.epoch);
  const auto r = append_wait(*s, request("fresh", "1"));
  EXPECT_EQ(r.epoch, first.epoch);
  EXPECT_EQ(r.pub->offset, 1u);
}

// Reads of channels nobody publishes on (100,000 anonymous history reads of new names) must not leave a
// row each; the epoch they were given must still be the one the first publication commits with.
TEST_P(StoreTest, ReadsOfUnwrittenChannelsWriteNoRow) {
  std::string epoch;
  {
    auto s = open();
    for (int i = 0; i < 50; ++i) EXPECT_EQ(load_wait(*s, "read-" + std::to_string(i), 10).offset, 0u);
    epoch = load_wait(*s, "later", 10).epoch;
    EXPECT_TRUE(list_wait(*s, "notes").ok);
    EXPECT_TRUE(tally_wait(*s, "votes", {{"stars", {1, 2}}}).ok);
    EXPECT_EQ(backend_->scalar("SELECT count(*) FROM channels"), 0);
    s->close();
  }
  auto s = open();  // a restart: still the same epoch, still no row
  EXPECT_EQ(load_wait(*s, "later", 10).epoch, epoch);
  EXPECT_EQ(backend_->scalar("SELECT count(*) FROM channels"), 0);
  const auto r = append_wait(*s, request("later", "1"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.epoch, epoch);
  EXPECT_EQ(load_wait(*s, "later", 10).epoch, epoch);
  EXPECT_EQ(backend_->scalar("SELECT count(*) FROM channels"), 1);
  // Epochs stay per channel, and another database never repeats them.
  EXPECT_NE(load_wait(*s, "read-0", 10).epoch, epoch);
  auto other = backends::make_backend(GetParam());
  auto t = other->open();
  EXPECT_NE(load_wait(*t, "later", 10).epoch, epoch);
}

TEST_P(StoreTest, LoadKeepsTheNewestHistoryWithinItsBytes) {
  auto s = open();
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(append_wait(*s, request("ch", "\"" + std::string(8, 'a' + i) + "\"")).ok);
  // Each data is 10 bytes: 25 bytes keep the newest two, whatever the count allows.
  EXPECT_EQ(offsets(load_wait(*s, "ch", 100, 25)), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(offsets(load_wait(*s, "ch", 100, 30)), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(offsets(load_wait(*s, "ch", 1, 30)), (std::vector<std::uint64_t>{6}));
  EXPECT_TRUE(load_wait(*s, "ch", 100, 9).pubs.empty());
  EXPECT_EQ(load_wait(*s, "ch", 100, 9).offset, 6u);
}

TEST_P(StoreTest, IdempotentReplay) {
  auto s = open();
  const auto first = append_wait(*s, request("ch", "\"first\"", "alice", 100, "k1", 111));
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_FALSE(first.replayed);

  const auto again = append_wait(*s, request("ch", "\"second\"", "alice", 100, "k1", 222));
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.epoch, first.epoch);
  EXPECT_EQ(again.pub->offset, first.pub->offset);
  EXPECT_EQ(again.pub->data, "\"first\"");
  EXPECT_EQ(again.pub->ts, 111);
  EXPECT_EQ(s->stats().appends, 1u);

  auto snap = load_wait(*s, "ch", 100);
  EXPECT_EQ(snap.offset, 1u);
  ASSERT_EQ(snap.pubs.size(), 1u);
  EXPECT_EQ(snap.pubs[0]->data, "\"first\"");

  // Keys are per user.
  const auto other = append_wait(*s, request("ch", "\"other\"", "bob", 100, "k1"));
  ASSERT_TRUE(other.ok) << other.error;
  EXPECT_FALSE(other.replayed);
  EXPECT_EQ(other.pub->offset, 2u);

  // No key: never a replay.
  EXPECT_EQ(append_wait(*s, request("ch", "\"x\"", "alice")).pub->offset, 3u);
  EXPECT_EQ(append_wait(*s, request("ch", "\"x\"", "alice")).pub->offset, 4u);
  EXPECT_EQ(load_wait(*s, "ch", 100).offset, 4u);
}

TEST_P(StoreTest, IdempotentDuplicateInsideOneBatch) {
  auto s = open();
  std::vector<AppendResult> results(3);
  {
    WriterGate gate(*s);
    s->append(request("ch", "\"a\"", "alice", 100, "dup"), [&](AppendResult r) { results[0] = std::move(r); });
    s->append(request("ch", "\"b\"", "alice", 100, "dup"), [&](AppendResult r) { results[1] = std::move(r); });
    s->append(request("ch", "\"c\"", "alice", 100, "other"), [&](AppendResult r) { results[2] = std::move(r); });
  }
  const auto snap = load_wait(*s, "ch", 100);  // queued after them: runs after their callbacks
  for (const auto& r : results) ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(results[0].replayed);
  EXPECT_TRUE(results[1].replayed);
  EXPECT_EQ(results[1].pub->offset, results[0].pub->offset);
  EXPECT_EQ(results[1].pub->data, "\"a\"");
  EXPECT_FALSE(results[2].replayed);
  EXPECT_EQ(results[2].pub->offset, results[0].pub->offset + 1);
  EXPECT_EQ(snap.offset, 2u);
}

TEST_P(StoreTest, ReplayAfterTrimAndReopen) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("ch", "\"keyed\"", "alice", 1, "k", 42)).ok);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(append_wait(*s, request("ch", "\"more\"", "alice", 1)).ok);
    EXPECT_EQ(offsets(load_wait(*s, "ch", 100)), (std::vector<std::uint64_t>{4}));
  }
  auto s = open();
  const auto r = append_wait(*s, request("ch", "\"retry\"", "alice", 1, "k"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.replayed);
  EXPECT_EQ(r.pub->offset, 1u);
  EXPECT_EQ(r.pub->data, "\"keyed\"");
  EXPECT_EQ(r.pub->from, "alice");
  EXPECT_EQ(r.pub->ts, 42);
  EXPECT_EQ(load_wait(*s, "ch", 100).offset, 4u);
}

TEST_P(StoreTest, ExpiredKeyAppendsAgain) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("ch", "1", "alice", 100, "k")).ok);
  }
  // Age the key past the 24 h window (the store's clock cannot be injected).
  sql("UPDATE idempotency SET ts = ts - 25 * 3600 * 1000");
  auto s = open();
  const auto r = append_wait(*s, request("ch", "2", "alice", 100, "k"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(r.pub->offset, 2u);
  // The fresh key counts from now.
  const auto again = append_wait(*s, request("ch", "3", "alice", 100, "k"));
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.pub->offset, 2u);
}

TEST_P(StoreTest, GroupCommitUnderConcurrency) {
  auto s = open();
  constexpr int threads = 8;
  constexpr int per_thread = 500;
  constexpr int total = threads * per_thread;
  std::mutex mu;
  std::vector<std::uint64_t> seen;  // in callback order
  std::map<int, std::vector<std::uint64_t>> by_thread;
  std::atomic<int> done{0};
  std::promise<void> all;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        s->append(request("ch", std::to_string(t), "u" + std::to_string(t)), [&, t](AppendResult r) {
          {
            const std::lock_guard lk(mu);
            EXPECT_TRUE(r.ok) << r.error;
            if (r.pub) {
              seen.push_back(r.pub->offset);
              by_thread[t].push_back(r.pub->offset);
            }
          }
          if (done.fetch_add(1) + 1 == total) all.set_value();
        });
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);

  // Every offset exactly once, and callbacks in offset order (= queue order within the channel).
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) ASSERT_EQ(seen[i], static_cast<std::uint64_t>(i + 1)) << "at " << i;
  // Each thread's appends got increasing offsets: offsets follow call order.
  for (const auto& [t, offs] : by_thread) {
    EXPECT_EQ(offs.size(), static_cast<std::size_t>(per_thread));
    EXPECT_TRUE(std::is_sorted(offs.begin(), offs.end())) << "thread " << t;
  }
  const auto st = s->stats();
  EXPECT_EQ(st.appends, static_cast<std::uint64_t>(total));
  EXPECT_LT(st.commits, st.appends);
  EXPECT_EQ(load_wait(*s, "ch", 10).offset, static_cast<std::uint64_t>(total));
}

TEST_P(StoreTest, PerChannelOffsetsContiguousAcrossChannels) {
  auto s = open();
  constexpr int threads = 4;
  constexpr int per_thread = 300;
  const std::vector<std::string> names{"a", "b", "c"};
  std::mutex mu;
  std::map<std::string, std::vector<std::uint64_t>> by_channel;  // in callback order
  std::atomic<int> done{0};
  std::promise<void> all;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string& ch = names[static_cast<std::size_t>(i + t) % names.size()];
        s->append(request(ch, "0"), [&, ch](AppendResult r) {
          {
            const std::lock_guard lk(mu);
            EXPECT_TRUE(r.ok) << r.error;
            if (r.pub) by_channel[ch].push_back(r.pub->offset);
          }
          if (done.fetch_add(1) + 1 == threads * per_thread) all.set_value();
        });
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);
  for (const auto& name : names) {
    const auto& offs = by_channel[name];
    ASSERT_FALSE(offs.empty());
    for (std::size_t i = 0; i < offs.size(); ++i) ASSERT_EQ(offs[i], i + 1) << name << " at " << i;
    EXPECT_EQ(load_wait(*s, name, 0).offset, offs.size());
  }
}

TEST_P(StoreTest, ConcurrentAppendsShareOneTransaction) {
  auto s = open();
  std::atomic<int> done{0};
  std::promise<void> all;
  std::uint64_t commits_before = 0;
  {
    WriterGate gate(*s);
    commits_before = s->stats().commits;  // the gate's own commit is already counted
    for (int i = 0; i < 100; ++i) {
      s->append(request("ch" + std::to_string(i % 5), "0"), [&](AppendResult r) {
        EXPECT_TRUE(r.ok) << r.error;
        if (done.fetch_add(1) + 1 == 100) all.set_value();
      });
    }
  }
  ASSERT_EQ(all.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(s->stats().commits, commits_before + 1);
  EXPECT_EQ(s->stats().appends, 101u);
}

TEST_P(StoreTest, LoadSeesAppendsQueuedBeforeIt) {
  auto s = open();
  std::mutex mu;
  std::vector<std::string> order;
  std::promise<core::ChannelSnapshot> loaded;
  constexpr int n = 50;
  for (int i = 1; i <= n; ++i) {
    s->append(request("ch", std::to_string(i)), [&](AppendResult r) {
      EXPECT_TRUE(r.ok) << r.error;
      const std::lock_guard lk(mu);
      order.push_back("append");
    });
  }
  s->load("ch", 100, SIZE_MAX, [&](core::ChannelSnapshot snap) {
    {
      const std::lock_guard lk(mu);
      order.push_back("load");
    }
    loaded.set_value(std::move(snap));
  });
  auto f = loaded.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  const auto snap = f.get();
  EXPECT_EQ(snap.offset, static_cast<std::uint64_t>(n));
  ASSERT_EQ(snap.pubs.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(snap.pubs.front()->offset, 1u);
  EXPECT_EQ(snap.pubs.back()->data, std::to_string(n));
  const std::lock_guard lk(mu);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n + 1));
  EXPECT_EQ(order.back(), "load");  // it reflects all of them, so it must come after all their callbacks
}

TEST_P(StoreTest, CloseRunsQueuedWorkThenFailsLaterCalls) {
  auto s = open();
  std::atomic<int> ok{0};
  for (int i = 0; i < 200; ++i) {
    s->append(request("ch", "0"), [&](AppendResult r) {
      if (r.ok) ++ok;
    });
  }
  bool loaded = false;
  s->load("ch", 10, SIZE_MAX, [&](core::ChannelSnapshot snap) { loaded = !snap.epoch.empty(); });
  s->close();
  EXPECT_EQ(ok.load(), 200);  // close() finished and committed everything queued
  EXPECT_TRUE(loaded);
  s->close();  // idempotent

  bool called = false;
  s->append(request("ch", "0"), [&](AppendResult r) {
    called = true;
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.error.empty());
  });
  EXPECT_TRUE(called);  // at once, not left hanging
  called = false;
  s->load("ch", 10, SIZE_MAX, [&](core::ChannelSnapshot snap) {
    called = true;
    EXPECT_TRUE(snap.epoch.empty());
  });
  EXPECT_TRUE(called);
  s.reset();

  auto again = open();
  EXPECT_EQ(load_wait(*again, "ch", 0).offset, 200u);
}

TEST_P(StoreTest, CloseFromACallbackDoesNotDeadlock) {
  auto s = open();
  std::promise<bool> second;
  s->append(request("ch", "0"), [&](AppendResult) {
    s->close();
    // Already closing: fails at once, on this (the writer's) thread.
    s->append(request("ch", "0"), [&](AppendResult r) { second.set_value(r.ok); });
  });
  auto f = second.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  EXPECT_FALSE(f.get());
  s.reset();  // joins the writer
}

TEST_P(StoreTest, FailedTransactionFailsTheBatchAndKeepsServing) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("ch", "\"one\"")).ok);
  }
  // Make any insert of this payload fail inside the transaction.
  backend_->fail_inserts("pubs", "data", "'\"boom\"'");
  auto s = open();
  std::vector<AppendResult> results(3);
  std::promise<void> batch_done;
  {
    WriterGate gate(*s);
    s->append(request("ch", "\"two\""), [&](AppendResult r) { results[0] = std::move(r); });
    s->append(request("ch", "\"boom\""), [&](AppendResult r) { results[1] = std::move(r); });
    s->append(request("other", "\"x\"", "alice", 100, "k"), [&](AppendResult r) {
      results[2] = std::move(r);
      batch_done.set_value();
    });
  }
  // Only now: queued earlier, the next append could have joined (and failed with) the poisoned batch.
  ASSERT_EQ(batch_done.get_future().wait_for(30s), std::future_status::ready);
  const auto after = append_wait(*s, request("ch", "\"three\""));
  for (const auto& r : results) {
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("boom trigger"), std::string::npos) << r.error;
  }
  // Nothing of the failed batch exists: the offset continues without a gap and the key is unused.
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_EQ(after.pub->offset, 2u);
  const auto snap = load_wait(*s, "ch", 100);
  EXPECT_EQ(snap.offset, 2u);
  ASSERT_EQ(snap.pubs.size(), 2u);
  EXPECT_EQ(snap.pubs[1]->data, "\"three\"");
  const auto keyed = append_wait(*s, request("other", "\"x\"", "alice", 100, "k"));
  ASSERT_TRUE(keyed.ok) << keyed.error;
  EXPECT_FALSE(keyed.replayed);
  EXPECT_EQ(keyed.pub->offset, 1u);
}

// A write batch that fails makes the store failing (/readyz) and is logged, once however many follow; reads
// that work say nothing about writes; one commit clears it and logs the recovery.
TEST_P(StoreTest, FailingFromAFailedWriteUntilACommitLoggedOnce) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("ch", "\"one\"")).ok);
  }
  backend_->fail_inserts("pubs", "data", "'\"boom\"'");
  const testing::LogCapture log;
  auto s = open();
  EXPECT_FALSE(s->failing());
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(append_wait(*s, request("ch", "\"boom\"")).ok);
  EXPECT_TRUE(s->failing());
  EXPECT_EQ(load_wait(*s, "ch", 10).offset, 1u);
  EXPECT_TRUE(s->failing()) << "a read that works does not clear a write failure";
  const auto errors = log.lines("error", "store error");
  ASSERT_EQ(errors.size(), 1u) << "20 failures, one line in the first 10 s";
  EXPECT_NE(errors[0].find("boom trigger"), std::string::npos) << errors[0];

  ASSERT_TRUE(append_wait(*s, request("ch", "\"two\"")).ok);
  EXPECT_FALSE(s->failing());
  EXPECT_EQ(log.lines("warning", "store recovered after 20 failed operations").size(), 1u);
}

// A read that fails (here: a stored document that is not JSON, met by a tally's recount) makes the store
// failing too, until reads (and writes, if the recount also failed the transaction that makes the tally's
// rows) work again.
TEST_P(StoreTest, FailingFromAFailedReadUntilTheStoreWorks) {
  { auto s = open(); }
  sql("INSERT INTO docs(collection, id, owner, v, data) VALUES('bad', 'x', 'alice', 1, 'not json')");
  const testing::LogCapture log;
  auto s = open();
  const std::map<std::string, std::vector<std::int64_t>> fields{{"q", {1, 2}}};
  EXPECT_FALSE(tally_wait(*s, "bad", fields).ok);
  EXPECT_TRUE(s->failing());
  EXPECT_EQ(log.lines("error", "store error").size(), 1u);
  ASSERT_TRUE(append_wait(*s, request("ch", "1")).ok);
  EXPECT_TRUE(list_wait(*s, "bad").ok);
  EXPECT_FALSE(s->failing());
  EXPECT_EQ(log.lines("warning", "store recovered after").size(), 1u);
}

TEST_F(SqliteStoreTest, BadSynchronousValueThrows) {
  try {
    open("fast");
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fast"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(file_));
}

TEST_F(SqliteStoreTest, NormalSynchronousAndMissingParentDirectory) {
  file_ = dir_ / "nested" / "deeper" / "rtsync.db";
  auto s = open("normal");
  EXPECT_EQ(append_wait(*s, request("ch", "1")).pub->offset, 1u);
  EXPECT_TRUE(fs::exists(file_));
}

// A database whose pages are garbage refuses to open (PRAGMA quick_check), naming the file.
TEST_F(SqliteStoreTest, CorruptPagesFailTheIntegrityCheckNamingTheFile) {
  {
    auto s = open();
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(append_wait(*s, request("ch" + std::to_string(i % 4), "\"" + std::string(500, 'x') + "\"")).ok);
    }
  }
  constexpr std::size_t kPage = 4096;
  const auto size = fs::file_size(file_);
  ASSERT_GE(size, 4 * kPage);
  {
    std::fstream f(file_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kPage));
    for (std::size_t i = kPage; i < size; ++i) f.put(static_cast<char>(i * 131 + 17));
  }
  try {
    open();
    FAIL() << "a corrupt database opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(file_.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("integrity check failed"), std::string::npos) << e.what();
  }
}

// A new database is 0600, and so are its WAL and shared-memory files (SQLite gives them the database's mode).
TEST_F(SqliteStoreTest, NewDatabaseFilesArePrivate) {
  auto s = open();
  ASSERT_TRUE(append_wait(*s, request("ch", "1")).ok);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st {};
    const auto f = file_.string() + suffix;
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

TEST_P(StoreTest, RejectsNewerSchema) {
  { auto s = open(); }
  backend_->set_schema_version(6);
  EXPECT_THROW(open(), std::runtime_error);
}

// Schema 1 had no pubs.prev: a database made by it opens, keeps its history, and stores prev from then on.
TEST_P(StoreTest, MigratesSchemaOneToTwo) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("old", "1")).ok);
  }
  if (GetParam() == "sqlite") {
    // Rebuild pubs as schema 1 made it, with its row.
    backend_->sql("CREATE TABLE pubs1 AS SELECT channel_id, offset, data, sender, ts, audience, tt, uuid, meta, ctype "
                  "FROM pubs; DROP TABLE pubs; ALTER TABLE pubs1 RENAME TO pubs; PRAGMA user_version = 1");
  } else {
    backend_->sql("ALTER TABLE pubs DROP COLUMN prev; DELETE FROM rtsync_schema");
    backend_->set_schema_version(1);
  }
  auto s = open();
  auto snap = load_wait(*s, "old", 10);
  ASSERT_EQ(snap.pubs.size(), 1u);
  EXPECT_EQ(snap.pubs[0]->data, "1");
  EXPECT_EQ(snap.pubs[0]->prev, "");
  EXPECT_EQ(snap.pubs[0]->expires, 0);
  ASSERT_TRUE(append_wait(*s, request("old", "2")).ok);
  EXPECT_EQ(load_wait(*s, "old", 10).pubs.size(), 2u);
}

// Schema 2 had no pubs.expires: its publications never expire, and new ones keep their ttl.
TEST_P(StoreTest, MigratesSchemaTwoToThree) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("old", "1")).ok);
  }
  if (GetParam() == "sqlite") {
    backend_->sql("CREATE TABLE pubs2 AS SELECT channel_id, offset, data, sender, ts, audience, tt, uuid, meta, "
                  "ctype, prev FROM pubs; DROP TABLE pubs; ALTER TABLE pubs2 RENAME TO pubs; PRAGMA user_version = 2");
  } else {
    backend_->sql("ALTER TABLE pubs DROP COLUMN expires; DELETE FROM rtsync_schema");
    backend_->set_schema_version(2);
  }
  auto s = open();
  auto req = request("old", "2");
  req.expires = 1700000000123;
  ASSERT_TRUE(append_wait(*s, std::move(req)).ok);
  auto snap = load_wait(*s, "old", 10);
  ASSERT_EQ(snap.pubs.size(), 2u);
  EXPECT_EQ(snap.pubs[0]->expires, 0);
  EXPECT_EQ(snap.pubs[1]->expires, 1700000000123);
}

// Schema 3 had no pubs.pn_event: its publications are plain messages, and new ones keep their type.
TEST_P(StoreTest, MigratesSchemaThreeToFour) {
  {
    auto s = open();
    ASSERT_TRUE(append_wait(*s, request("old", "1")).ok);
  }
  if (GetParam() == "sqlite") {
    backend_->sql("CREATE TABLE pubs3 AS SELECT channel_id, offset, data, sender, ts, audience, tt, uuid, meta, "
                  "ctype, prev, expires FROM pubs; DROP TABLE pubs; ALTER TABLE pubs3 RENAME TO pubs; "
                  "PRAGMA user_version = 3");
  } else {
    backend_->sql("ALTER TABLE pubs DROP COLUMN pn_event; DELETE FROM rtsync_schema");
    backend_->set_schema_version(3);
  }
  auto s = open();
  auto req = request("old", "2");
  req.pn_event = core::pn_file_event;
  ASSERT_TRUE(append_wait(*s, std::move(req)).ok);
  auto snap = load_wait(*s, "old", 10);
  ASSERT_EQ(snap.pubs.size(), 2u);
  EXPECT_EQ(snap.pubs[0]->pn_event, 0);
  EXPECT_EQ(snap.pubs[1]->pn_event, core::pn_file_event);
}

// PubNub timetokens are assigned with offsets, strictly increasing per channel, and survive a reopen even
// when the clock is behind the last one (a clock set back between two runs).
TEST_P(StoreTest, TimetokensIncreaseWithOffsetsAndSurviveReopen) {
  std::uint64_t last = 0;
  {
    auto s = open();
    for (int i = 0; i < 50; ++i) {
      auto r = append_wait(*s, request("tt", std::to_string(i)));
      ASSERT_TRUE(r.ok);
      EXPECT_GT(r.pub->tt, last);
      EXPECT_EQ(std::to_string(r.pub->tt).size(), 17u);
      last = r.pub->tt;
    }
    auto snap = load_wait(*s, "tt", 100);
    EXPECT_EQ(snap.last_tt, last);
    ASSERT_EQ(snap.pubs.size(), 50u);
    EXPECT_EQ(snap.pubs.back()->tt, last);
  }
  const std::uint64_t future = last + 10'000'000'000ULL;  // 1000 s ahead of the clock
  sql("UPDATE channels SET last_tt = " + std::to_string(future) + " WHERE name = 'tt'");
  auto s = open();
  auto r = append_wait(*s, request("tt", "\"after\""));
  EXPECT_EQ(r.pub->offset, 51u);
  EXPECT_EQ(r.pub->tt, future + 1);
  auto snap = load_wait(*s, "tt", 1);
  EXPECT_EQ(snap.last_tt, future + 1);
  EXPECT_EQ(snap.pubs.front()->tt, future + 1);
}

TEST_P(StoreTest, PubnubFieldsRoundTrip) {
  {
    auto s = open();
    auto req = request("pn", "{\"text\":\"hi\"}");
    req.uuid = "user-42";
    req.meta = "{\"cool\":\"meta\"}";
    req.ctype = "chat-msg";
    req.expires = 1700000000123;  // a PubNub ttl's end: kept as it is, the readers skip it once past
    req.pn_event = core::pn_file_event;
    auto r = append_wait(*s, std::move(req));
    EXPECT_EQ(r.pub->uuid, "user-42");
    EXPECT_EQ(r.pub->meta, "{\"cool\":\"meta\"}");
    EXPECT_EQ(r.pub->ctype, "chat-msg");
    EXPECT_EQ(r.pub->expires, 1700000000123);
    EXPECT_EQ(r.pub->pn_event, core::pn_file_event);
    append_wait(*s, request("pn", "2"));
  }
  auto s = open();
  auto snap = load_wait(*s, "pn", 10);
  ASSERT_EQ(snap.pubs.size(), 2u);
  EXPECT_EQ(snap.pubs[0]->uuid, "user-42");
  EXPECT_EQ(snap.pubs[0]->meta, "{\"cool\":\"meta\"}");
  EXPECT_EQ(snap.pubs[0]->ctype, "chat-msg");
  EXPECT_EQ(snap.pubs[0]->expires, 1700000000123);
  EXPECT_EQ(snap.pubs[0]->pn_event, core::pn_file_event);
  EXPECT_EQ(snap.pubs[1]->expires, 0);
  EXPECT_EQ(snap.pubs[1]->pn_event, 0);
  EXPECT_EQ(snap.pubs[1]->uuid, "");
  EXPECT_EQ(snap.pubs[1]->meta, "");
  EXPECT_LT(snap.pubs[0]->tt, snap.pubs[1]->tt);
}

TEST_P(StoreTest, IdempotentReplayKeepsTheTimetoken) {
  auto s = open();
  auto first = append_wait(*s, request("k", "1", "alice", 100, "key-1"));
  auto again = append_wait(*s, request("k", "1", "alice", 100, "key-1"));
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.pub->tt, first.pub->tt);
}

}  // namespace
}  // namespace rtsync::store
