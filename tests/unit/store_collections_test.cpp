// Unit tests of the stores' collections and tallies, on every backend (store_backends.hpp): create/get/list, versions
// and conflicts, patch merging, owner checks, the coll:NAME change feed and its consistency with list(),
// tally arithmetic, one tally publication per commit, a randomized recount check, restart, idempotency
// and failed batches. Each test works in a fresh database file or schema.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/random.hpp"
#include "store/store.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace calls;
using Op = DocWrite::Op;
using Status = DocResult::Status;
using Fields = std::map<std::string, std::vector<std::int64_t>>;

// Parameterized by backend name; open() twice reaches the same database (a restart).
class StoreCollectionsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam(), "normal"); }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<Store> open() { return backend_->open(); }
  void sql(const std::string& text) { backend_->sql(text); }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreCollectionsTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

json::object obj(const std::string& text) { return json::parse(text).as_object(); }

DocWrite doc_write(Op op, std::string coll, std::string id, std::string data, std::string user = "alice") {
  DocWrite w;
  w.op = op;
  w.collection = std::move(coll);
  w.id = std::move(id);
  w.user = std::move(user);
  w.data = data.empty() ? json::object{} : obj(data);
  w.history_size = 100;
  return w;
}

DocWrite create(std::string coll, std::string id, std::string data, std::string user = "alice") {
  return doc_write(Op::create, std::move(coll), std::move(id), std::move(data), std::move(user));
}


// The counts a tally must show, recounted from documents.
std::string recount(const std::vector<std::string>& docs, const Fields& fields) {
  json::object counts;
  for (const auto& [field, values] : fields) {
    json::object per;
    for (const auto v : values) {
      std::int64_t n = 0;
      for (const auto& d : docs) {
        const json::object o = obj(d);
        if (const auto* x = o.if_contains(field); x && x->is_int64() && x->get_int64() == v) ++n;
      }
      per[std::to_string(v)] = n;
    }
    counts[field] = std::move(per);
  }
  json::object out;
  out["total"] = static_cast<std::int64_t>(docs.size());
  out["counts"] = std::move(counts);
  return json::serialize(out);
}

// ---------------------------------------------------------------------------------------------------

TEST_P(StoreCollectionsTest, CreateGetList) {
  auto s = open();
  const auto b = write_wait(*s, create("notes", "b", R"({"title":"bee","n":2})"));
  ASSERT_EQ(b.status, Status::ok) << b.error;
  EXPECT_EQ(b.doc, R"({"title":"bee","n":2,"id":"b","_v":1,"_owner":"alice"})");
  EXPECT_EQ(b.v, 1u);
  EXPECT_FALSE(b.replayed);
  const auto a = write_wait(*s, create("notes", "a", R"({"title":"ay"})", "bob"));
  ASSERT_EQ(a.status, Status::ok) << a.error;
  EXPECT_EQ(a.doc, R"({"title":"ay","id":"a","_v":1,"_owner":"bob"})");
  // Server fields in the data are not attributes: the store's values win and come last.
  const auto c = write_wait(*s, create("notes", "c", R"({"id":"zzz","_v":7,"_owner":"mallory","k":true})"));
  ASSERT_EQ(c.status, Status::ok) << c.error;
  EXPECT_EQ(c.doc, R"({"k":true,"id":"c","_v":1,"_owner":"alice"})");

  const auto g = get_wait(*s, "notes", "b");
  ASSERT_TRUE(g.ok);
  ASSERT_TRUE(g.found);
  EXPECT_EQ(g.doc, b.doc);
  EXPECT_EQ(g.owner, "alice");
  const auto missing = get_wait(*s, "notes", "nope");
  EXPECT_TRUE(missing.ok);
  EXPECT_FALSE(missing.found);
  EXPECT_FALSE(get_wait(*s, "other", "b").found);  // collections are separate

  const auto l = list_wait(*s, "notes");
  ASSERT_TRUE(l.ok);
  EXPECT_EQ(l.docs, (std::vector<std::string>{a.doc, b.doc, c.doc}));  // by id
  EXPECT_EQ(l.offset, 3u);
  EXPECT_EQ(l.epoch.size(), 16u);
  EXPECT_EQ(l.epoch, load_wait(*s, "coll:notes", 0).epoch);

  const auto mine = list_wait(*s, "notes", "alice");
  ASSERT_TRUE(mine.ok);
  EXPECT_EQ(mine.docs, (std::vector<std::string>{b.doc, c.doc}));
  EXPECT_EQ(mine.offset, 3u);
  EXPECT_TRUE(list_wait(*s, "notes", "carol").docs.empty());

  const auto empty = list_wait(*s, "never");
  ASSERT_TRUE(empty.ok);
  EXPECT_TRUE(empty.docs.empty());
  EXPECT_EQ(empty.offset, 0u);
  EXPECT_EQ(empty.epoch.size(), 16u);
  EXPECT_EQ(list_wait(*s, "never").epoch, empty.epoch);  // stable from the first list
}

TEST_P(StoreCollectionsTest, AssignsDistinctHexIds) {
  auto s = open();
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const auto r = write_wait(*s, create("notes", "", R"({"i":1})"));
    ASSERT_EQ(r.status, Status::ok) << r.error;
    const auto id = std::string(obj(r.doc).at("id").as_string());
    EXPECT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_TRUE(get_wait(*s, "notes", id).found);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(list_wait(*s, "notes").docs.size(), 20u);
}

TEST_P(StoreCollectionsTest, CreateOfExistingIdIsConflictWithCurrentDoc) {
  auto s = open();
  const auto first = write_wait(*s, create("notes", "x", R"({"a":1})"));
  ASSERT_EQ(first.status, Status::ok);
  const auto again = write_wait(*s, create("notes", "x", R"({"a":2})", "bob"));
  EXPECT_EQ(again.status, Status::conflict);
  EXPECT_EQ(again.doc, first.doc);
  EXPECT_FALSE(again.change);
  EXPECT_EQ(get_wait(*s, "notes", "x").doc, first.doc);
  EXPECT_EQ(list_wait(*s, "notes").offset, 1u);  // nothing published
}

TEST_P(StoreCollectionsTest, UpdateChecksExpectedVersion) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1,"b":2})")).status, Status::ok);

  auto up = doc_write(Op::update, "notes", "x", R"({"c":3})");
  up.expected_v = 1;
  const auto ok = write_wait(*s, up);
  ASSERT_EQ(ok.status, Status::ok) << ok.error;
  EXPECT_EQ(ok.doc, R"({"c":3,"id":"x","_v":2,"_owner":"alice"})");  // replaced, not merged
  EXPECT_EQ(ok.v, 2u);

  auto stale = doc_write(Op::update, "notes", "x", R"({"c":4})", "bob");
  stale.expected_v = 1;
  const auto conflict = write_wait(*s, stale);
  EXPECT_EQ(conflict.status, Status::conflict);
  EXPECT_EQ(conflict.doc, ok.doc);
  EXPECT_FALSE(conflict.change);
  EXPECT_EQ(get_wait(*s, "notes", "x").doc, ok.doc);

  // Without a version the write is unconditional; the owner stays the creator.
  const auto blind = write_wait(*s, doc_write(Op::update, "notes", "x", R"({"d":5})", "bob"));
  ASSERT_EQ(blind.status, Status::ok);
  EXPECT_EQ(blind.doc, R"({"d":5,"id":"x","_v":3,"_owner":"alice"})");
  EXPECT_EQ(get_wait(*s, "notes", "x").owner, "alice");
  EXPECT_EQ(list_wait(*s, "notes").offset, 3u);
}

TEST_P(StoreCollectionsTest, PatchMergesAndNullRemoves) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1,"b":2,"c":3})")).status, Status::ok);
  auto p = doc_write(Op::patch, "notes", "x", R"({"b":20,"a":null,"d":4,"zz":null})");
  p.expected_v = 1;
  const auto r = write_wait(*s, p);
  ASSERT_EQ(r.status, Status::ok) << r.error;
  EXPECT_EQ(r.doc, R"({"b":20,"c":3,"d":4,"id":"x","_v":2,"_owner":"alice"})");
  EXPECT_EQ(get_wait(*s, "notes", "x").doc, r.doc);

  auto stale = doc_write(Op::patch, "notes", "x", R"({"b":0})");
  stale.expected_v = 1;
  const auto c = write_wait(*s, stale);
  EXPECT_EQ(c.status, Status::conflict);
  EXPECT_EQ(c.doc, r.doc);
}

TEST_P(StoreCollectionsTest, RemoveReturnsLastVersion) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1})")).status, Status::ok);
  ASSERT_EQ(write_wait(*s, doc_write(Op::patch, "notes", "x", R"({"a":2})")).status, Status::ok);
  ASSERT_EQ(write_wait(*s, doc_write(Op::patch, "notes", "x", R"({"a":3})")).status, Status::ok);

  auto stale = doc_write(Op::remove, "notes", "x", "");
  stale.expected_v = 2;
  const auto c = write_wait(*s, stale);
  EXPECT_EQ(c.status, Status::conflict);
  EXPECT_EQ(obj(c.doc).at("_v").as_int64(), 3);
  EXPECT_TRUE(get_wait(*s, "notes", "x").found);

  auto rm = doc_write(Op::remove, "notes", "x", "");
  rm.expected_v = 3;
  const auto r = write_wait(*s, rm);
  ASSERT_EQ(r.status, Status::ok) << r.error;
  EXPECT_EQ(r.v, 3u);
  EXPECT_FALSE(get_wait(*s, "notes", "x").found);
  EXPECT_TRUE(list_wait(*s, "notes").docs.empty());

  // Gone: without a version that is not_found; with one, a conflict whose current document is null.
  EXPECT_EQ(write_wait(*s, doc_write(Op::remove, "notes", "x", "")).status, Status::not_found);
  auto late = doc_write(Op::update, "notes", "x", R"({"a":4})");
  late.expected_v = 3;
  const auto lc = write_wait(*s, late);
  EXPECT_EQ(lc.status, Status::conflict);
  EXPECT_EQ(lc.doc, "null");

  // The id is free again: a new document starts at version 1.
  const auto again = write_wait(*s, create("notes", "x", R"({"a":5})"));
  ASSERT_EQ(again.status, Status::ok);
  EXPECT_EQ(again.v, 1u);
}

TEST_P(StoreCollectionsTest, NotFoundForUpdatePatchRemove) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1})")).status, Status::ok);
  for (const Op op : {Op::update, Op::patch, Op::remove}) {
    const auto r = write_wait(*s, doc_write(op, "notes", "y", R"({"a":2})"));
    EXPECT_EQ(r.status, Status::not_found) << static_cast<int>(op);
    EXPECT_FALSE(r.change);
    // Same id in another collection: still not found.
    EXPECT_EQ(write_wait(*s, doc_write(op, "other", "x", R"({"a":2})")).status, Status::not_found);
  }
  EXPECT_EQ(list_wait(*s, "notes").offset, 1u);
  EXPECT_FALSE(get_wait(*s, "notes", "y").found);
}

TEST_P(StoreCollectionsTest, UpsertCreatesAMissingDocumentUnlessAVersionSaysOtherwise) {
  auto s = open();
  auto upsert = [](std::string id, std::string data, std::optional<std::uint64_t> v = std::nullopt) {
    auto w = doc_write(Op::update, "todos", std::move(id), std::move(data), "bob");
    w.upsert = true;
    w.expected_v = v;
    return w;
  };
  const auto made = write_wait(*s, upsert("u1", R"({"a":1})"));
  ASSERT_EQ(made.status, Status::ok);
  EXPECT_EQ(made.v, 1u);
  EXPECT_EQ(obj(made.doc), obj(R"({"a":1,"id":"u1","_v":1,"_owner":"bob"})"));
  ASSERT_TRUE(made.change);
  EXPECT_EQ(write_wait(*s, upsert("u1", R"({"a":2})")).v, 2u);  // exists: an ordinary update

  const auto stale = write_wait(*s, upsert("u2", R"({"a":1})", 3));
  EXPECT_EQ(stale.status, Status::conflict);
  EXPECT_EQ(stale.doc, "null");
  EXPECT_EQ(write_wait(*s, upsert("u2", R"({"a":1})", 0)).status, Status::ok);  // v = 0: create only
  const auto taken = write_wait(*s, upsert("u2", R"({"a":9})", 0));
  EXPECT_EQ(taken.status, Status::conflict);
  EXPECT_EQ(obj(taken.doc).at("a"), 1);
  EXPECT_EQ(list_wait(*s, "todos").docs.size(), 2u);
}

TEST_P(StoreCollectionsTest, OwnerSentBackMustBeTheStoredOwner) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("todos", "x", R"({"a":1})", "alice")).status, Status::ok);
  auto bob = doc_write(Op::update, "todos", "x", R"({"a":2})", "bob");
  bob.echo_owner = "alice";  // bob saves alice's document with what he fetched
  const auto ok = write_wait(*s, bob);
  ASSERT_EQ(ok.status, Status::ok);
  EXPECT_EQ(obj(ok.doc).at("_owner"), "alice");
  bob.echo_owner = "bob";
  const auto forged = write_wait(*s, bob);
  EXPECT_EQ(forged.status, Status::invalid);
  EXPECT_NE(forged.error.find("_owner"), std::string::npos);
  EXPECT_FALSE(forged.change);
  auto made = create("todos", "y", R"({"a":1})", "bob");
  made.echo_owner = "alice";
  EXPECT_EQ(write_wait(*s, made).status, Status::invalid);
  made.echo_owner = "bob";
  EXPECT_EQ(write_wait(*s, made).status, Status::ok);
}

TEST_P(StoreCollectionsTest, OwnerOnlyWritesNeedTheOwner) {
  auto s = open();
  const auto created = write_wait(*s, create("notes", "x", R"({"a":1})", "alice"));
  ASSERT_EQ(created.status, Status::ok);
  for (const Op op : {Op::update, Op::patch, Op::remove}) {
    auto w = doc_write(op, "notes", "x", R"({"a":2})", "bob");
    w.owner_only = true;
    w.expected_v = 99;  // the owner check comes first: no conflict revealing the document
    const auto r = write_wait(*s, w);
    EXPECT_EQ(r.status, Status::permission_denied) << static_cast<int>(op);
    EXPECT_TRUE(r.doc.empty());
    EXPECT_FALSE(r.change);
  }
  EXPECT_EQ(get_wait(*s, "notes", "x").doc, created.doc);

  auto mine = doc_write(Op::patch, "notes", "x", R"({"a":3})", "alice");
  mine.owner_only = true;
  EXPECT_EQ(write_wait(*s, mine).status, Status::ok);
  // Without owner_only anyone may write.
  EXPECT_EQ(write_wait(*s, doc_write(Op::patch, "notes", "x", R"({"a":4})", "bob")).status, Status::ok);
  auto rm = doc_write(Op::remove, "notes", "x", "", "alice");
  rm.owner_only = true;
  EXPECT_EQ(write_wait(*s, rm).status, Status::ok);
}

TEST_P(StoreCollectionsTest, ChangeFeedPublications) {
  auto s = open();
  std::vector<DocResult> rs;
  auto c1 = create("notes", "x", R"({"a":1})", "alice");
  c1.owner_audience = true;
  rs.push_back(write_wait(*s, c1));
  rs.push_back(write_wait(*s, create("notes", "y", R"({"b":2})", "bob")));
  auto p = doc_write(Op::patch, "notes", "x", R"({"a":2})", "bob");
  p.owner_audience = true;
  rs.push_back(write_wait(*s, p));
  rs.push_back(write_wait(*s, doc_write(Op::patch, "notes", "nope", R"({"a":2})")));  // not_found: no change
  auto rm = doc_write(Op::remove, "notes", "x", "", "bob");
  rm.owner_audience = true;
  rs.push_back(write_wait(*s, rm));

  ASSERT_EQ(rs[3].status, Status::not_found);
  EXPECT_FALSE(rs[3].change);
  rs.erase(rs.begin() + 3);
  for (std::size_t i = 0; i < rs.size(); ++i) {
    ASSERT_EQ(rs[i].status, Status::ok) << i;
    ASSERT_TRUE(rs[i].change) << i;
    EXPECT_EQ(rs[i].change->offset, i + 1);
    EXPECT_FALSE(rs[i].tally);  // not a tally collection
  }
  EXPECT_EQ(rs[0].change->data, R"({"type":"upsert","doc":{"a":1,"id":"x","_v":1,"_owner":"alice"}})");
  EXPECT_EQ(rs[0].change->from, "alice");
  EXPECT_EQ(rs[0].change->audience, "alice");
  EXPECT_EQ(rs[1].change->data, R"({"type":"upsert","doc":{"b":2,"id":"y","_v":1,"_owner":"bob"}})");
  EXPECT_EQ(rs[1].change->audience, "");
  EXPECT_EQ(rs[2].change->data, R"({"type":"upsert","doc":{"a":2,"id":"x","_v":2,"_owner":"alice"}})");
  EXPECT_EQ(rs[2].change->from, "bob");
  EXPECT_EQ(rs[2].change->audience, "alice");  // the document's owner, not the writer
  EXPECT_EQ(rs[3].change->data, R"({"type":"delete","id":"x","_v":2})");
  EXPECT_EQ(rs[3].change->audience, "alice");
  EXPECT_GT(rs[3].change->ts, 1600000000000);
  // Each change names the document as it was before (live filtered views need it); a create has none.
  EXPECT_EQ(rs[0].change->prev, "");
  EXPECT_EQ(rs[1].change->prev, "");
  EXPECT_EQ(rs[2].change->prev, R"({"a":1,"id":"x","_v":1,"_owner":"alice"})");
  EXPECT_EQ(rs[3].change->prev, R"({"a":2,"id":"x","_v":2,"_owner":"alice"})");

  // The history keeps the same publications, audience included; a plain append has none.
  const auto snap = load_wait(*s, "coll:notes", 100);
  EXPECT_EQ(snap.offset, 4u);
  EXPECT_EQ(snap.epoch, list_wait(*s, "notes").epoch);
  ASSERT_EQ(snap.pubs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(snap.pubs[i]->offset, i + 1);
    EXPECT_EQ(snap.pubs[i]->data, rs[i].change->data);
    EXPECT_EQ(snap.pubs[i]->from, rs[i].change->from);
    EXPECT_EQ(snap.pubs[i]->audience, rs[i].change->audience);
    EXPECT_EQ(snap.pubs[i]->prev, rs[i].change->prev);
    EXPECT_EQ(snap.pubs[i]->ts, rs[i].change->ts);
  }
  std::promise<AppendResult> ap;
  s->append(append_request("coll:notes", R"({"type":"x"})"), [&](AppendResult r) { ap.set_value(std::move(r)); });
  const auto appended = ap.get_future().get();
  ASSERT_TRUE(appended.ok) << appended.error;
  EXPECT_EQ(appended.pub->offset, 5u);  // one channel, one sequence
  EXPECT_EQ(load_wait(*s, "coll:notes", 1).pubs.at(0)->audience, "");
}

TEST_P(StoreCollectionsTest, ChangeFeedTrimsToHistorySize) {
  auto s = open();
  for (int i = 0; i < 10; ++i) {
    auto w = create("notes", "d" + std::to_string(i), R"({"a":1})");
    w.history_size = 3;
    ASSERT_EQ(write_wait(*s, w).status, Status::ok);
  }
  const auto snap = load_wait(*s, "coll:notes", 100);
  EXPECT_EQ(snap.offset, 10u);
  ASSERT_EQ(snap.pubs.size(), 3u);
  EXPECT_EQ(snap.pubs.front()->offset, 8u);
}

// Every list() must show exactly the documents that the change publications up to its offset describe,
// even while writers keep the store busy.
TEST_P(StoreCollectionsTest, ListOffsetMatchesChangesUnderConcurrency) {
  auto s = open();
  std::mutex mu;
  std::map<std::uint64_t, std::string> changes;  // offset -> data
  std::vector<ListResult> lists;
  std::uint64_t delivered = 0;  // the highest change offset whose write callback ran
  std::atomic<int> pending{0};
  std::promise<void> all;
  constexpr int threads = 4;
  constexpr int per_thread = 150;
  std::vector<std::thread> pool;
  auto finish = [&] {
    if (pending.fetch_sub(1) == 1) all.set_value();
  };
  pending = threads * per_thread * 2;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < per_thread; ++i) {
        const std::string id = "d" + std::to_string(rng() % 10);
        const Op op = std::vector<Op>{Op::create, Op::update, Op::patch, Op::remove}[rng() % 4];
        s->write(doc_write(op, "notes", id, R"({"t":)" + std::to_string(t) + "}"), [&](DocResult r) {
          {
            const std::lock_guard lk(mu);
            if (r.change) {
              changes[r.change->offset] = r.change->data;
              delivered = std::max(delivered, r.change->offset);
            }
          }
          finish();
        });
        s->list(ListQuery{"notes", "", {}}, [&](ListResult l) {
          {
            const std::lock_guard lk(mu);
            EXPECT_TRUE(l.ok);
            // Reflects exactly the writes whose callbacks already ran (callbacks run one at a time).
            EXPECT_EQ(l.offset, delivered);
            lists.push_back(std::move(l));
          }
          finish();
        });
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);

  const std::lock_guard lk(mu);
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.begin()->first, 1u);
  EXPECT_EQ(changes.rbegin()->first, changes.size());  // contiguous
  std::map<std::uint64_t, std::map<std::string, std::string>> states;  // offset -> id -> doc
  std::map<std::string, std::string> docs;
  states[0] = docs;
  for (const auto& [offset, data] : changes) {
    const auto c = obj(data);
    if (c.at("type").as_string() == "upsert") {
      const auto& d = c.at("doc").as_object();
      docs[std::string(d.at("id").as_string())] = json::serialize(d);
    } else {
      docs.erase(std::string(c.at("id").as_string()));
    }
    states[offset] = docs;
  }
  ASSERT_EQ(lists.size(), static_cast<std::size_t>(threads * per_thread));
  std::set<std::uint64_t> seen_offsets;
  for (const auto& l : lists) {
    ASSERT_TRUE(states.contains(l.offset)) << l.offset;
    std::vector<std::string> want;
    for (const auto& [id, d] : states[l.offset]) want.push_back(d);
    EXPECT_EQ(l.docs, want) << "at offset " << l.offset;
    seen_offsets.insert(l.offset);
  }
  EXPECT_GT(seen_offsets.size(), 1u);  // the lists really ran between writes
  const auto final_list = list_wait(*s, "notes");
  EXPECT_EQ(final_list.offset, changes.size());
}

// Grouped tallies (tally_group): each group's tally counts exactly its documents, moves with them in
// the same commit, and is published on tally:NAME:GROUP only when it changes.
TEST_P(StoreCollectionsTest, GroupTalliesFollowTheirDocuments) {
  auto s = open();
  const Fields fields{{"mood", {0, 1, 2}}};
  auto tw = [&](Op op, const std::string& id, const std::string& data, const std::string& group_by = "room") {
    auto w = doc_write(op, "rooms", id, data);
    w.tally = fields;
    w.tally_group = group_by;
    return write_wait(*s, w);
  };
  const auto group = [&](const std::string& g) { return tally_wait(*s, "rooms", fields, "room", g); };
  const auto channels = [](const DocResult& r) {
    std::string out;
    for (const auto& g : r.group_tallies) out += (out.empty() ? "" : " ") + g.channel + "=" + g.pub->data;
    return out;
  };

  ASSERT_EQ(tw(Op::create, "a", R"({"room":"r1","mood":1})").status, Status::ok);
  ASSERT_EQ(tw(Op::create, "b", R"({"room":"r1","mood":2})").status, Status::ok);
  auto r = tw(Op::create, "c", R"({"room":"r2","mood":1})");
  ASSERT_EQ(r.status, Status::ok);
  EXPECT_EQ(channels(r), R"(tally:rooms:r2={"total":1,"counts":{"mood":{"0":0,"1":1,"2":0}}})");
  r = tw(Op::create, "d", R"({"mood":0})");  // in no group
  EXPECT_TRUE(r.tally);
  EXPECT_TRUE(r.group_tallies.empty());
  EXPECT_EQ(tally_wait(*s, "rooms", fields).tally, R"({"total":4,"counts":{"mood":{"0":1,"1":2,"2":1}}})");
  auto t = group("r1");
  EXPECT_EQ(t.tally, R"({"total":2,"counts":{"mood":{"0":0,"1":1,"2":1}}})");
  EXPECT_EQ(t.offset, 2u);  // one publication per write in r1
  EXPECT_EQ(group("r3").tally, R"({"total":0,"counts":{"mood":{"0":0,"1":0,"2":0}}})");
  EXPECT_EQ(group("r3").offset, 0u);

  // b moves to r2: both groups change in the write's commit; the whole tally does not.
  r = tw(Op::patch, "b", R"({"room":"r2"})");
  EXPECT_FALSE(r.tally);
  EXPECT_EQ(channels(r), R"(tally:rooms:r1={"total":1,"counts":{"mood":{"0":0,"1":1,"2":0}}} )"
                         R"(tally:rooms:r2={"total":2,"counts":{"mood":{"0":0,"1":1,"2":1}}})");
  // A change within a group publishes that group's tally; leaving every group (null) counts out of it.
  r = tw(Op::patch, "c", R"({"mood":0})");
  EXPECT_EQ(channels(r), R"(tally:rooms:r2={"total":2,"counts":{"mood":{"0":1,"1":0,"2":1}}})");
  r = tw(Op::patch, "b", R"({"room":null})");
  EXPECT_EQ(channels(r), R"(tally:rooms:r2={"total":1,"counts":{"mood":{"0":1,"1":0,"2":0}}})");
  r = tw(Op::remove, "c", "{}");
  EXPECT_EQ(channels(r), R"(tally:rooms:r2={"total":0,"counts":{"mood":{"0":0,"1":0,"2":0}}})");
  EXPECT_EQ(group("r2").tally, R"({"total":0,"counts":{"mood":{"0":0,"1":0,"2":0}}})");
  EXPECT_EQ(group("r2").offset, 5u);

  // Written while not grouped, a document moves without the group counts following: when the
  // collection is grouped again, the stale counts are dropped and recounted from the documents.
  EXPECT_EQ(tw(Op::patch, "a", R"({"room":"r2"})", "").status, Status::ok);
  EXPECT_EQ(tw(Op::create, "e", R"({"room":"r1","mood":2})").status, Status::ok);
  EXPECT_EQ(group("r1").tally, R"({"total":1,"counts":{"mood":{"0":0,"1":0,"2":1}}})");
  EXPECT_EQ(group("r2").tally, R"({"total":1,"counts":{"mood":{"0":0,"1":1,"2":0}}})");
}

// After random writes (creates, moves between groups, changes, deletes), every group's tally equals a
// recount of its documents, after a restart too.
TEST_P(StoreCollectionsTest, GroupTalliesEqualARecount) {
  const Fields fields{{"mood", {0, 1, 2}}};
  std::map<std::string, std::string> docs;  // id -> served text
  {
    auto s = open();
    std::mt19937 rng(11);
    for (int i = 0; i < 400; ++i) {
      const std::string id = "d" + std::to_string(rng() % 60);
      const std::string room = rng() % 5 == 0 ? "" : "\"room\":\"g" + std::to_string(rng() % 4) + "\",";
      const bool exists = docs.contains(id);
      DocWrite w = rng() % 6 == 0 && exists
                       ? doc_write(Op::remove, "rooms", id, "{}")
                       : doc_write(exists ? Op::update : Op::create, "rooms", id,
                                   "{" + room + "\"mood\":" + std::to_string(rng() % 3) + "}");
      w.tally = fields;
      w.tally_group = "room";
      const DocResult r = write_wait(*s, w);
      ASSERT_EQ(r.status, Status::ok) << r.error;
      if (w.op == Op::remove) docs.erase(id); else docs[id] = r.doc;
    }
  }
  auto s = open();
  for (int g = 0; g < 5; ++g) {
    const std::string name = "g" + std::to_string(g);
    std::vector<std::string> in;
    for (const auto& [id, d] : docs) {
      const json::object o = obj(d);
      if (const auto* v = o.if_contains("room"); v && v->is_string() && v->get_string() == name) in.push_back(d);
    }
    EXPECT_EQ(tally_wait(*s, "rooms", fields, "room", name).tally, recount(in, fields)) << name;
  }
}

TEST_P(StoreCollectionsTest, TallyArithmetic) {
  auto s = open();
  const Fields fields{{"mood", {0, 1, 2}}, {"size", {1, 2, 3}}};
  auto tw = [&](Op op, const std::string& id, const std::string& data, const std::string& user = "alice") {
    auto w = doc_write(op, "votes", id, data, user);
    w.tally = fields;
    return write_wait(*s, w);
  };

  auto t = tally_wait(*s, "votes", fields);
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.tally, R"({"total":0,"counts":{"mood":{"0":0,"1":0,"2":0},"size":{"1":0,"2":0,"3":0}}})");
  EXPECT_EQ(t.offset, 0u);
  EXPECT_EQ(t.epoch.size(), 16u);

  auto r = tw(Op::create, "alice", R"({"mood":1,"size":2})");
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":1,"counts":{"mood":{"0":0,"1":1,"2":0},"size":{"1":0,"2":1,"3":0}}})");
  EXPECT_EQ(r.tally->offset, 1u);
  EXPECT_EQ(r.tally->audience, "");

  ASSERT_EQ(tw(Op::create, "bob", R"({"mood":1})", "bob").status, Status::ok);  // partial: no size
  ASSERT_EQ(tw(Op::create, "carol", R"({"size":3})", "carol").status, Status::ok);
  r = tw(Op::create, "dave", R"({})", "dave");  // counts nowhere, but is a document
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":4,"counts":{"mood":{"0":0,"1":2,"2":0},"size":{"1":0,"2":1,"3":1}}})");

  // Resubmit with other values: the counts move.
  r = tw(Op::update, "alice", R"({"mood":2,"size":1})");
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":4,"counts":{"mood":{"0":0,"1":1,"2":1},"size":{"1":1,"2":0,"3":1}}})");
  // A patch that removes a field and sets another.
  r = tw(Op::patch, "bob", R"({"mood":null,"size":3})", "bob");
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":4,"counts":{"mood":{"0":0,"1":0,"2":1},"size":{"1":1,"2":0,"3":2}}})");
  // An update to the same values changes no count: no tally publication.
  r = tw(Op::update, "carol", R"({"size":3})", "carol");
  ASSERT_EQ(r.status, Status::ok);
  EXPECT_FALSE(r.tally);
  // Remove.
  r = tw(Op::remove, "alice", "");
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":3,"counts":{"mood":{"0":0,"1":0,"2":0},"size":{"1":0,"2":0,"3":2}}})");
  // Failures change nothing and publish nothing.
  r = tw(Op::remove, "alice", "");
  EXPECT_EQ(r.status, Status::not_found);
  EXPECT_FALSE(r.tally);
  // Defensive: values that are not integers count nowhere.
  r = tw(Op::create, "erin", R"({"mood":"1","size":1.0})", "erin");
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":4,"counts":{"mood":{"0":0,"1":0,"2":0},"size":{"1":0,"2":0,"3":2}}})");

  t = tally_wait(*s, "votes", fields);
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.tally, r.tally->data);
  EXPECT_EQ(t.offset, r.tally->offset);
  EXPECT_EQ(t.offset, 8u);  // 9 successful writes, one of which changed nothing
  EXPECT_EQ(t.tally, recount(list_wait(*s, "votes").docs, fields));
  // Other declarations see the same counts: a value outside a list is not shown, an unknown field is zeros.
  EXPECT_EQ(tally_wait(*s, "votes", Fields{{"size", {3}}, {"zzz", {1}}}).tally,
            R"({"total":4,"counts":{"size":{"3":2},"zzz":{"1":0}}})");
  EXPECT_EQ(load_wait(*s, "tally:votes", 100).pubs.size(), 8u);
}

TEST_P(StoreCollectionsTest, OneTallyPublicationPerCommitOnTheLastWrite) {
  auto s = open();
  const Fields fields{{"x", {0, 1}}};
  std::vector<DocResult> results(8);
  std::promise<void> last;
  std::uint64_t commits_before = 0;
  {
    WriterGate gate(*s);
    commits_before = s->stats().commits;
    for (int i = 0; i < 8; ++i) {
      DocWrite w;
      if (i == 6) {
        w = doc_write(Op::update, "votes", "missing", R"({"x":1})");  // fails: not the last successful write
      } else if (i == 7) {
        w = create("plain", "p", R"({"x":1})");  // another collection without a tally
      } else {
        w = create("votes", "v" + std::to_string(i), i % 2 ? R"({"x":1})" : R"({"x":0})");
      }
      if (i != 7) w.tally = fields;
      s->write(std::move(w), [&, i](DocResult r) {
        results[static_cast<std::size_t>(i)] = std::move(r);
        if (i == 7) last.set_value();
      });
    }
  }
  ASSERT_EQ(last.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(s->stats().commits, commits_before + 1);  // one transaction for all of them
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(results[static_cast<std::size_t>(i)].status, Status::ok) << i;
    EXPECT_EQ(results[static_cast<std::size_t>(i)].change->offset, static_cast<std::uint64_t>(i + 1));
    if (i < 5) {
      EXPECT_FALSE(results[static_cast<std::size_t>(i)].tally) << i;
    }
  }
  EXPECT_EQ(results[6].status, Status::not_found);
  EXPECT_FALSE(results[6].tally);
  EXPECT_FALSE(results[7].tally);
  ASSERT_TRUE(results[5].tally);
  EXPECT_EQ(results[5].tally->offset, 1u);
  EXPECT_EQ(results[5].tally->data, R"({"total":6,"counts":{"x":{"0":3,"1":3}}})");

  const auto t = tally_wait(*s, "votes", fields);
  EXPECT_EQ(t.offset, 1u);
  EXPECT_EQ(t.tally, results[5].tally->data);
  const auto snap = load_wait(*s, "tally:votes", 100);
  ASSERT_EQ(snap.pubs.size(), 1u);
  EXPECT_EQ(snap.pubs[0]->data, results[5].tally->data);
  EXPECT_EQ(load_wait(*s, "tally:plain", 100).offset, 0u);
}

TEST_P(StoreCollectionsTest, RandomizedTallyEqualsRecount) {
  auto s = open();
  const Fields fields{{"a", {0, 1, 2}}, {"b", {0, 1, 2, 3}}, {"c", {5, 7}}};
  constexpr int threads = 8;
  constexpr int per_thread = 300;
  std::mutex mu;
  std::map<std::uint64_t, std::string> tally_pubs;  // offset -> data
  std::set<std::uint64_t> change_offsets;
  int ok_writes = 0;
  int tally_attached = 0;
  std::atomic<int> done{0};
  std::promise<void> all;
  const std::uint64_t commits_before = s->stats().commits;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1000 + t));
      for (int i = 0; i < per_thread; ++i) {
        const Op op = std::vector<Op>{Op::create, Op::create, Op::update, Op::patch, Op::remove}[rng() % 5];
        json::object data;
        for (const auto& [field, values] : fields) {
          const auto pick = rng() % (values.size() + 2);
          if (pick < values.size()) {
            data[field] = values[pick];
          } else if (pick == values.size() && op == Op::patch) {
            data[field] = nullptr;  // removes the field
          }  // else: the field is missing
        }
        DocWrite w;
        w.op = op;
        w.collection = "votes";
        w.id = "d" + std::to_string(rng() % 50);
        w.user = "u" + std::to_string(t);
        w.data = std::move(data);
        w.tally = fields;
        w.history_size = 5;
        if (rng() % 3 == 0) w.expected_v = rng() % 4 + 1;
        // Bursts of ten, then wait like a client awaiting its reply: batches of many sizes.
        auto replied = std::make_shared<std::promise<void>>();
        auto reply = replied->get_future();
        s->write(std::move(w), [&, replied](DocResult r) {
          {
            const std::lock_guard lk(mu);
            EXPECT_NE(r.status, Status::failed) << r.error;
            if (r.status == Status::ok) {
              ++ok_writes;
              EXPECT_TRUE(r.change);
              if (r.change) change_offsets.insert(r.change->offset);
            }
            if (r.tally) {
              ++tally_attached;
              EXPECT_EQ(r.status, Status::ok);
              EXPECT_TRUE(tally_pubs.emplace(r.tally->offset, r.tally->data).second);
            }
          }
          replied->set_value();
          if (done.fetch_add(1) + 1 == threads * per_thread) all.set_value();
        });
        if (i % 10 == 9) reply.wait();
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_EQ(all.get_future().wait_for(120s), std::future_status::ready);

  const auto l = list_wait(*s, "votes");
  const auto t = tally_wait(*s, "votes", fields);
  ASSERT_TRUE(l.ok);
  ASSERT_TRUE(t.ok);
  const std::string want = recount(l.docs, fields);
  EXPECT_EQ(t.tally, want);
  const std::lock_guard lk(mu);
  ASSERT_FALSE(tally_pubs.empty());
  EXPECT_EQ(tally_pubs.rbegin()->second, want);  // the last tally publication is the final state
  EXPECT_EQ(t.offset, tally_pubs.rbegin()->first);
  EXPECT_EQ(tally_pubs.begin()->first, 1u);
  EXPECT_EQ(tally_pubs.rbegin()->first, tally_pubs.size());  // contiguous, none lost
  EXPECT_EQ(static_cast<std::size_t>(ok_writes), change_offsets.size());
  EXPECT_EQ(l.offset, change_offsets.size());
  EXPECT_EQ(*change_offsets.rbegin(), change_offsets.size());
  EXPECT_GT(ok_writes, threads * per_thread / 4);  // the mix really writes
  EXPECT_LT(ok_writes, threads * per_thread);      // and really fails sometimes
  EXPECT_GT(l.docs.size(), 0u);
  // Every tally publication is a consistent state: its total equals the sum over any complete field...
  for (const auto& [offset, data] : tally_pubs) {
    const auto o = obj(data);
    EXPECT_GE(o.at("total").as_int64(), 0) << offset;
    for (const auto& [field, values] : fields) {
      std::int64_t sum = 0;
      for (const auto& kv : o.at("counts").as_object().at(field).as_object()) sum += kv.value().as_int64();
      EXPECT_LE(sum, o.at("total").as_int64()) << offset << " " << field;
    }
  }
  const std::uint64_t commits = s->stats().commits - commits_before;
  std::cout << "[          ] " << threads * per_thread << " writes (" << ok_writes << " ok) in " << commits
            << " commits, " << tally_pubs.size() << " tally publications\n";
  EXPECT_EQ(static_cast<std::size_t>(tally_attached), tally_pubs.size());
  EXPECT_LE(tally_pubs.size(), commits);  // at most one per commit

  // The persisted counts equal the cached ones: reopen and compare.
  s->close();
  s.reset();
  auto again = open();
  EXPECT_EQ(tally_wait(*again, "votes", fields).tally, want);
}

TEST_P(StoreCollectionsTest, RestartKeepsDocsVersionsCountsAndOffsets) {
  const Fields fields{{"n", {1, 2}}};
  auto tw = [&](Store& s, DocWrite w) {
    w.tally = fields;
    return write_wait(s, std::move(w));
  };
  std::string list_epoch, tally_epoch, doc_x;
  {
    auto s = open();
    ASSERT_EQ(tw(*s, create("votes", "x", R"({"n":1})")).status, Status::ok);
    ASSERT_EQ(tw(*s, create("votes", "y", R"({"n":2})")).status, Status::ok);
    ASSERT_EQ(tw(*s, create("votes", "z", R"({"n":2})")).status, Status::ok);
    const auto p = tw(*s, doc_write(Op::patch, "votes", "x", R"({"n":2})"));
    ASSERT_EQ(p.status, Status::ok);
    doc_x = p.doc;
    ASSERT_EQ(tw(*s, doc_write(Op::remove, "votes", "z", "")).status, Status::ok);
    const auto l = list_wait(*s, "votes");
    list_epoch = l.epoch;
    EXPECT_EQ(l.offset, 5u);
    const auto t = tally_wait(*s, "votes", fields);
    tally_epoch = t.epoch;
    EXPECT_EQ(t.offset, 5u);
    s->close();
  }
  auto s = open();
  const auto t = tally_wait(*s, "votes", fields);
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.tally, R"({"total":2,"counts":{"n":{"1":0,"2":2}}})");
  EXPECT_EQ(t.offset, 5u);
  EXPECT_EQ(t.epoch, tally_epoch);
  const auto l = list_wait(*s, "votes");
  EXPECT_EQ(l.offset, 5u);
  EXPECT_EQ(l.epoch, list_epoch);
  ASSERT_EQ(l.docs.size(), 2u);
  EXPECT_EQ(l.docs[0], doc_x);
  const auto g = get_wait(*s, "votes", "x");
  ASSERT_TRUE(g.found);
  EXPECT_EQ(g.doc, doc_x);
  EXPECT_EQ(g.owner, "alice");

  // Versions and offsets continue.
  auto up = doc_write(Op::update, "votes", "x", R"({"n":1})");
  up.expected_v = 2;
  const auto r = tw(*s, up);
  ASSERT_EQ(r.status, Status::ok) << r.error;
  EXPECT_EQ(r.v, 3u);
  EXPECT_EQ(r.change->offset, 6u);
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->offset, 6u);
  EXPECT_EQ(r.tally->data, R"({"total":2,"counts":{"n":{"1":1,"2":1}}})");
}

TEST_P(StoreCollectionsTest, IdempotentReplayOfWrites) {
  auto s = open();
  const Fields fields{{"n", {1, 2}}};
  auto keyed = [&](DocWrite w, const std::string& key) {
    w.key = key;
    w.tally = fields;
    return write_wait(*s, std::move(w));
  };

  const auto c1 = keyed(create("votes", "", R"({"n":1})"), "k-create");
  ASSERT_EQ(c1.status, Status::ok);
  EXPECT_FALSE(c1.replayed);
  const auto c2 = keyed(create("votes", "", R"({"n":2})"), "k-create");
  ASSERT_EQ(c2.status, Status::ok);
  EXPECT_TRUE(c2.replayed);
  EXPECT_EQ(c2.doc, c1.doc);
  EXPECT_EQ(c2.v, 1u);
  EXPECT_FALSE(c2.change);
  EXPECT_FALSE(c2.tally);
  EXPECT_EQ(list_wait(*s, "votes").docs.size(), 1u);  // applied once
  const std::string id(obj(c1.doc).at("id").as_string());

  // Keys are per user.
  const auto other = keyed(create("votes", "", R"({"n":2})", "bob"), "k-create");
  EXPECT_FALSE(other.replayed);
  EXPECT_EQ(list_wait(*s, "votes").docs.size(), 2u);

  // A failure is not remembered: the same key applies once it succeeds.
  auto stale = doc_write(Op::update, "votes", id, R"({"n":2})");
  stale.expected_v = 5;
  const auto f = keyed(stale, "k-update");
  EXPECT_EQ(f.status, Status::conflict);
  auto good = doc_write(Op::update, "votes", id, R"({"n":2})");
  good.expected_v = 1;
  const auto u1 = keyed(good, "k-update");
  ASSERT_EQ(u1.status, Status::ok);
  EXPECT_FALSE(u1.replayed);
  EXPECT_EQ(u1.v, 2u);
  // The retry would now be a conflict (v is 2), but it replays the first result instead.
  const auto u2 = keyed(good, "k-update");
  ASSERT_EQ(u2.status, Status::ok);
  EXPECT_TRUE(u2.replayed);
  EXPECT_EQ(u2.doc, u1.doc);
  EXPECT_EQ(u2.v, 2u);

  const auto r1 = keyed(doc_write(Op::remove, "votes", id, ""), "k-remove");
  ASSERT_EQ(r1.status, Status::ok);
  EXPECT_EQ(r1.v, 2u);
  const auto r2 = keyed(doc_write(Op::remove, "votes", id, ""), "k-remove");
  ASSERT_EQ(r2.status, Status::ok);  // not not_found
  EXPECT_TRUE(r2.replayed);
  EXPECT_EQ(r2.v, 2u);
  EXPECT_TRUE(r2.doc.empty());

  const auto t = tally_wait(*s, "votes", fields);
  EXPECT_EQ(t.tally, R"({"total":1,"counts":{"n":{"1":0,"2":1}}})");
  EXPECT_EQ(t.offset, 4u);                           // create, bob's create, update, remove
  EXPECT_EQ(list_wait(*s, "votes").offset, 4u);

  // A publication's key and a write's key are separate.
  std::promise<AppendResult> ap;
  s->append(append_request("ch", "1", "k-create"), [&](AppendResult r) { ap.set_value(std::move(r)); });
  const auto a = ap.get_future().get();
  ASSERT_TRUE(a.ok);
  EXPECT_FALSE(a.replayed);

  // Replays survive a restart.
  s->close();
  s.reset();
  s = open();
  const auto c3 = keyed(create("votes", "", R"({"n":2})"), "k-create");
  EXPECT_TRUE(c3.replayed);
  EXPECT_EQ(c3.doc, c1.doc);
  EXPECT_EQ(list_wait(*s, "votes").offset, 4u);
}

TEST_P(StoreCollectionsTest, IdempotentDuplicateInsideOneBatch) {
  auto s = open();
  std::vector<DocResult> results(3);
  std::promise<void> done;
  {
    WriterGate gate(*s);
    for (int i = 0; i < 3; ++i) {
      auto w = create("notes", "", R"({"i":)" + std::to_string(i) + "}");
      w.key = i < 2 ? "dup" : "other";
      s->write(std::move(w), [&, i](DocResult r) {
        results[static_cast<std::size_t>(i)] = std::move(r);
        if (i == 2) done.set_value();
      });
    }
  }
  ASSERT_EQ(done.get_future().wait_for(30s), std::future_status::ready);
  for (const auto& r : results) ASSERT_EQ(r.status, Status::ok) << r.error;
  EXPECT_FALSE(results[0].replayed);
  EXPECT_TRUE(results[1].replayed);
  EXPECT_EQ(results[1].doc, results[0].doc);
  EXPECT_FALSE(results[1].change);
  EXPECT_FALSE(results[2].replayed);
  EXPECT_EQ(results[2].change->offset, 2u);
  EXPECT_EQ(list_wait(*s, "notes").docs.size(), 2u);
}

TEST_P(StoreCollectionsTest, ExpiredKeyAppliesAgain) {
  {
    auto s = open();
    auto w = create("notes", "", R"({"a":1})");
    w.key = "k";
    ASSERT_EQ(write_wait(*s, w).status, Status::ok);
  }
  sql("UPDATE idempotency SET ts = ts - 25 * 3600 * 1000");
  auto s = open();
  auto w = create("notes", "", R"({"a":1})");
  w.key = "k";
  const auto r = write_wait(*s, w);
  ASSERT_EQ(r.status, Status::ok);
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(list_wait(*s, "notes").docs.size(), 2u);
}

TEST_P(StoreCollectionsTest, FailedBatchRollsBackDocsCountsAndFeeds) {
  const Fields fields{{"n", {1, 2}}};
  {
    auto s = open();
    auto w = create("votes", "a", R"({"n":1})");
    w.tally = fields;
    ASSERT_EQ(write_wait(*s, w).status, Status::ok);
  }
  backend_->fail_inserts("docs", "id", "'boom'");
  auto s = open();
  std::vector<DocResult> results(3);
  std::promise<void> batch_done;
  {
    WriterGate gate(*s);
    std::vector<DocWrite> ws{doc_write(Op::patch, "votes", "a", R"({"n":2})"), create("votes", "b", R"({"n":2})"),
                             create("votes", "boom", R"({"n":2})")};
    for (int i = 0; i < 3; ++i) {
      ws[static_cast<std::size_t>(i)].tally = fields;
      ws[static_cast<std::size_t>(i)].key = "key" + std::to_string(i);
      s->write(std::move(ws[static_cast<std::size_t>(i)]), [&, i](DocResult r) {
        results[static_cast<std::size_t>(i)] = std::move(r);
        if (i == 2) batch_done.set_value();
      });
    }
  }
  ASSERT_EQ(batch_done.get_future().wait_for(30s), std::future_status::ready);
  for (const auto& r : results) {
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_NE(r.error.find("boom trigger"), std::string::npos) << r.error;
    EXPECT_FALSE(r.change);
    EXPECT_FALSE(r.tally);
  }
  // Nothing of the batch exists, in the database or in the caches.
  auto t = tally_wait(*s, "votes", fields);
  EXPECT_EQ(t.tally, R"({"total":1,"counts":{"n":{"1":1,"2":0}}})");
  EXPECT_EQ(t.offset, 1u);
  auto l = list_wait(*s, "votes");
  EXPECT_EQ(l.offset, 1u);
  ASSERT_EQ(l.docs.size(), 1u);
  EXPECT_EQ(obj(l.docs[0]).at("_v").as_int64(), 1);

  // The store keeps serving; keys of the failed batch are unused; counts continue from the truth.
  auto w = create("votes", "b", R"({"n":2})");
  w.tally = fields;
  w.key = "key1";
  const auto r = write_wait(*s, w);
  ASSERT_EQ(r.status, Status::ok) << r.error;
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(r.change->offset, 2u);
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->offset, 2u);
  EXPECT_EQ(r.tally->data, R"({"total":2,"counts":{"n":{"1":1,"2":1}}})");
}

TEST_P(StoreCollectionsTest, LogicalFailuresDoNotRollBackTheBatch) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1})")).status, Status::ok);
  std::vector<DocResult> results(4);
  std::promise<void> done;
  {
    WriterGate gate(*s);
    std::vector<DocWrite> ws{create("notes", "y", R"({"a":2})"), create("notes", "x", R"({"a":3})"),
                             doc_write(Op::remove, "notes", "nope", ""), create("notes", "z", R"({"a":4})")};
    for (int i = 0; i < 4; ++i) {
      s->write(std::move(ws[static_cast<std::size_t>(i)]), [&, i](DocResult r) {
        results[static_cast<std::size_t>(i)] = std::move(r);
        if (i == 3) done.set_value();
      });
    }
  }
  ASSERT_EQ(done.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(results[0].status, Status::ok);
  EXPECT_EQ(results[1].status, Status::conflict);
  EXPECT_EQ(results[2].status, Status::not_found);
  EXPECT_EQ(results[3].status, Status::ok);
  EXPECT_EQ(results[3].change->offset, 3u);
  EXPECT_EQ(list_wait(*s, "notes").docs.size(), 3u);
}

TEST_P(StoreCollectionsTest, CountsFollowTheTallyDeclaration) {
  auto s = open();
  const Fields fields{{"n", {1, 2}}};
  // Written before the collection had a tally: the first tally write recounts.
  ASSERT_EQ(write_wait(*s, create("votes", "a", R"({"n":1})")).status, Status::ok);
  ASSERT_EQ(write_wait(*s, create("votes", "b", R"({"n":2})")).status, Status::ok);
  auto w = create("votes", "c", R"({"n":2})");
  w.tally = fields;
  auto r = write_wait(*s, w);
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":3,"counts":{"n":{"1":1,"2":2}}})");
  // Declared no more: writes stop counting and the stale counts go; declared again: recounted.
  ASSERT_EQ(write_wait(*s, doc_write(Op::remove, "votes", "a", "")).status, Status::ok);
  w = doc_write(Op::patch, "votes", "b", R"({"n":1})");
  w.tally = fields;
  r = write_wait(*s, w);
  ASSERT_TRUE(r.tally);
  EXPECT_EQ(r.tally->data, R"({"total":2,"counts":{"n":{"1":1,"2":1}}})");
  EXPECT_EQ(tally_wait(*s, "votes", fields).tally, r.tally->data);
}

TEST_P(StoreCollectionsTest, ClosedStoreFailsAtOnce) {
  auto s = open();
  ASSERT_EQ(write_wait(*s, create("notes", "x", R"({"a":1})")).status, Status::ok);
  // Queued before close: close() runs them.
  bool listed = false;
  DocResult queued;
  s->write(create("notes", "y", R"({"a":2})"), [&](DocResult r) { queued = std::move(r); });
  s->list(ListQuery{"notes", "", {}}, [&](ListResult l) { listed = l.ok && l.docs.size() == 2; });
  s->close();
  EXPECT_EQ(queued.status, Status::ok);
  EXPECT_TRUE(listed);

  int called = 0;
  s->write(create("notes", "z", "{}"), [&](DocResult r) {
    ++called;
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_FALSE(r.error.empty());
  });
  s->list(ListQuery{"notes", "", {}}, [&](ListResult l) {
    ++called;
    EXPECT_FALSE(l.ok);
  });
  s->get("notes", "x", [&](GetResult g) {
    ++called;
    EXPECT_FALSE(g.ok);
  });
  s->tally(TallyQuery{"notes", {}, "", ""}, [&](TallyResult t) {
    ++called;
    EXPECT_FALSE(t.ok);
  });
  EXPECT_EQ(called, 4);  // at once, on this thread
}

}  // namespace
}  // namespace rtsync::store
