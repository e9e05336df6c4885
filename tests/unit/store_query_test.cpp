// Unit tests of collection queries in the stores (Store::list with a ListQuery), on every backend
// (store_backends.hpp): the operators and type rules, orders with missing attributes, a randomized
// comparison of the SQL with the C++ matcher and sort (query.hpp), keyset paging over thousands of
// documents and under concurrent writes, the 512 KiB page cut, the owner filter, cursors, and the query
// indexes (created, dropped, and used: EXPLAIN). Each test works in a fresh database file or schema.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "query/query.hpp"
#include "store/store.hpp"
#include "store/store_query.hpp"
#include "store_backends.hpp"
#include "store_calls.hpp"

namespace rtsync::store {
namespace {

namespace json = boost::json;
using namespace calls;
using Op = DocWrite::Op;
using Status = DocResult::Status;

class StoreQueryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = backends::make_backend(GetParam(), "normal"); }
  void TearDown() override { backend_.reset(); }
  bool postgres() const { return GetParam() == "postgres"; }

  std::unique_ptr<backends::Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreQueryTest, ::testing::ValuesIn(backends::backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

DocWrite doc_write(Op op, const std::string& id, const std::string& data, const std::string& user = "alice",
                   const std::string& coll = "notes", std::size_t history_size = 10) {
  DocWrite w;
  w.op = op;
  w.collection = coll;
  w.id = id;
  w.user = user;
  w.data = json::parse(data).as_object();
  w.history_size = history_size;
  return w;
}

// A write that keeps the change feed long enough for a paging that many changes overlap.
DocWrite kept_write(Op op, const std::string& id, const std::string& data) {
  return doc_write(op, id, data, "alice", "notes", 100'000);
}

// Queues every write at once (they share commits) and waits for all; returns the served documents.
std::vector<std::string> write_all(Store& s, std::vector<DocWrite> writes) {
  std::vector<std::promise<DocResult>> done(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    s.write(std::move(writes[i]), [&done, i](DocResult r) { done[i].set_value(std::move(r)); });
  }
  std::vector<std::string> docs;
  for (auto& d : done) {
    DocResult r = d.get_future().get();
    EXPECT_EQ(r.status, Status::ok) << r.error;
    docs.push_back(std::move(r.doc));
  }
  return docs;
}

query::Query parse(const std::string& request) {
  auto p = query::parse_query(json::parse(request).as_object());
  if (auto* e = std::get_if<query::Error>(&p)) {
    ADD_FAILURE() << request << ": " << e->message;
    return {};
  }
  return std::get<query::Query>(p);
}

std::string id_of(const std::string& doc) { return json::parse(doc).at("id").as_string().c_str(); }

std::vector<std::string> ids(const std::vector<std::string>& docs) {
  std::vector<std::string> out;
  for (const auto& d : docs) out.push_back(id_of(d));
  return out;
}

std::string joined(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& i : ids) out += (out.empty() ? "" : " ") + i;
  return out;
}

// Every page of a query, from the first to the one without next; the documents in order.
std::vector<std::string> all_pages(Store& s, const std::string& coll, const std::string& owner, query::Query q,
                                   std::size_t* pages = nullptr) {
  std::vector<std::string> docs;
  for (std::size_t n = 1;; ++n) {
    const ListResult r = list_wait(s, ListQuery{coll, owner, q});
    EXPECT_TRUE(r.ok);
    if (!r.ok) return docs;
    EXPECT_LE(r.docs.size(), q.limit);
    docs.insert(docs.end(), r.docs.begin(), r.docs.end());
    if (!r.next) {
      if (pages) *pages = n;
      return docs;
    }
    EXPECT_FALSE(r.docs.empty());
    auto after = query::parse_cursor(*r.next, q.where, q.order);
    EXPECT_TRUE(std::holds_alternative<query::Cursor>(after));
    if (!std::holds_alternative<query::Cursor>(after)) return docs;
    q.after = std::get<query::Cursor>(after);
  }
}

// What the C++ matcher and sort say a query returns from `docs` (served texts).
std::vector<std::string> expected(const std::vector<std::string>& docs, const std::string& owner,
                                  const query::Query& q) {
  std::vector<json::object> objs;
  for (const auto& d : docs) {
    json::object o = json::parse(d).as_object();
    if (!owner.empty() && o.at("_owner").as_string() != owner) continue;
    if (query::matches(q.where, o)) objs.push_back(std::move(o));
  }
  std::sort(objs.begin(), objs.end(), [&](const auto& a, const auto& b) { return query::before(q.order, a, b); });
  std::vector<std::string> out;
  for (const auto& o : objs) out.push_back(o.at("id").as_string().c_str());
  return out;
}

// The ids a query's first page (limit 1000) returns.
std::string list_ids(Store& s, const std::string& request, const std::string& owner = "") {
  const ListResult r = list_wait(s, ListQuery{"notes", owner, parse(request)});
  EXPECT_TRUE(r.ok);
  return joined(ids(r.docs));
}

TEST_P(StoreQueryTest, OperatorsAndTypeRules) {
  auto s = backend_->open();
  write_all(*s, {doc_write(Op::create, "m", R"({})"),
                 doc_write(Op::create, "n", R"({"a":null})"),
                 doc_write(Op::create, "f", R"({"a":false})"),
                 doc_write(Op::create, "t", R"({"a":true})"),
                 doc_write(Op::create, "i", R"({"a":1})"),
                 doc_write(Op::create, "d", R"({"a":1.0})"),
                 doc_write(Op::create, "h", R"({"a":1.5})"),
                 doc_write(Op::create, "g", R"({"a":-7})"),
                 doc_write(Op::create, "s", R"({"a":"1"})"),
                 doc_write(Op::create, "u", R"({"a":"B"})"),
                 doc_write(Op::create, "l", R"({"a":"b"})"),
                 doc_write(Op::create, "e", R"({"a":"é"})"),
                 doc_write(Op::create, "z", R"({"a":"b\u0000z"})"),
                 doc_write(Op::create, "r", R"({"a":[1]})"),
                 doc_write(Op::create, "o", R"({"a":{"b":1}})", "bob")});
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":1}})"), "d i");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"eq":1.0}}})"), "d i");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":"1"}})"), "s");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":null}})"), "n");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":false}})"), "f");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":true}})"), "t");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":"b"}})"), "l z");  // a string compares up to its first U+0000
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"ne":1}}})"), "e f g h l n o r s t u z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"ne":null}}})"), "d e f g h i l o r s t u z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"gt":1}}})"), "h");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"gte":1}}})"), "d h i");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"lt":1}}})"), "g");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"lte":1,"gt":-7}}})"), "d i");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"gt":"B"}}})"), "e l z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"lt":"b"}}})"), "s u");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"in":["b",1.5,null,true]}}})"), "h l n t z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"in":[]}}})"), "");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"exists":false}}})"), "m");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"exists":true},"id":{"lt":"f"}}})"), "d e");
  // The server's fields.
  EXPECT_EQ(list_ids(*s, R"({"where":{"_owner":"bob"}})"), "o");
  EXPECT_EQ(list_ids(*s, R"({"where":{"_owner":{"ne":"alice"}}})"), "o");
  EXPECT_EQ(list_ids(*s, R"({"where":{"id":{"in":["m","z",1]}}})"), "m z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"id":{"gt":1}}})"), "");
  EXPECT_EQ(list_ids(*s, R"({"where":{"id":{"ne":1},"_v":1}})"), "d e f g h i l m n o r s t u z");
  EXPECT_EQ(list_ids(*s, R"({"where":{"_v":{"gt":1}}})"), "");
  EXPECT_EQ(list_ids(*s, R"({"where":{"_v":"1"}})"), "");
  EXPECT_EQ(list_ids(*s, R"({"where":{"id":{"exists":false}}})"), "");
  // Orders: missing first ascending, then null, false, true, numbers, strings, arrays and objects (tied).
  EXPECT_EQ(list_ids(*s, R"({"order":["a"]})"), "m n f t g d i h s u l z e o r");
  EXPECT_EQ(list_ids(*s, R"({"order":["-a"]})"), "o r e l z u s h d i g t f n m");
  EXPECT_EQ(list_ids(*s, R"({"order":["-a","-id"]})"), "r o e z l u s h i d g t f n m");
  EXPECT_EQ(list_ids(*s, R"({"order":["-_owner","-id"],"limit":3})"), "o z u");
  EXPECT_EQ(list_ids(*s, R"({"where":{"a":{"exists":true}},"order":["-a"],"limit":2})"), "o r");
}

TEST_P(StoreQueryTest, OwnerFilterWithWhereAndOrder) {
  auto s = backend_->open();
  write_all(*s, {doc_write(Op::create, "a1", R"({"n":3})", "alice"), doc_write(Op::create, "b1", R"({"n":3})", "bob"),
                 doc_write(Op::create, "a2", R"({"n":1})", "alice"), doc_write(Op::create, "b2", R"({"n":2})", "bob"),
                 doc_write(Op::create, "a3", R"({"n":2})", "alice")});
  EXPECT_EQ(list_ids(*s, R"({"where":{"n":{"gte":2}},"order":["-n"]})", "alice"), "a1 a3");
  EXPECT_EQ(list_ids(*s, R"({"order":["n"]})", "bob"), "b2 b1");
  EXPECT_EQ(list_ids(*s, R"({"where":{"_owner":"bob"}})", "alice"), "");
  // Paging stays within the owner's documents.
  query::Query q = parse(R"({"order":["n"],"limit":1})");
  EXPECT_EQ(joined(ids(all_pages(*s, "notes", "alice", q))), "a2 a3 a1");
}

// Random documents of every type, random wheres and orders: the store returns exactly what the C++
// matcher and sort give, in one page and page by page.
TEST_P(StoreQueryTest, RandomizedQueriesAgreeWithTheMatcher) {
  auto s = backend_->open();
  std::mt19937 rng(20240601);
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> numbers = {"-3", "-1", "0", "1", "2", "3", "-1.5", "0.5", "2.0", "2.5", "1e3"};
  const std::vector<std::string> strings = {R"("")", R"("a")", R"("B")", R"("ab")", R"("é")", R"("z")", R"("a b")"};
  const auto scalar = [&] {
    switch (pick(5)) {
      case 0: return std::string("null");
      case 1: return std::string(pick(2) ? "true" : "false");
      case 2:
      case 3: return numbers[pick(static_cast<int>(numbers.size()))];
      default: return strings[pick(static_cast<int>(strings.size()))];
    }
  };
  const auto value = [&] {
    switch (pick(8)) {
      case 0: return std::string("[1,\"x\"]");
      case 1: return std::string(R"({"k":[]})");
      default: return scalar();
    }
  };
  const std::vector<std::string> attrs = {"a", "b", "c.d"};
  std::vector<DocWrite> writes;
  for (int i = 0; i < 240; ++i) {
    std::string data = "{";
    for (const auto& a : attrs) {
      if (pick(4) == 0) continue;  // missing
      data += (data.size() > 1 ? "," : "") + json::serialize(json::string(a)) + ":" + value();
    }
    const std::string user = "u" + std::to_string(pick(3));
    writes.push_back(doc_write(Op::create, "d" + std::to_string(1000 + pick(9000)) + "x" + std::to_string(i),
                               data + "}", user));
  }
  std::vector<std::string> docs = write_all(*s, writes);
  // Some documents get later versions (_v 2, 3).
  std::vector<DocWrite> patches;
  for (std::size_t i = 0; i < docs.size(); i += 5) patches.push_back(doc_write(Op::patch, id_of(docs[i]), "{}"));
  for (std::size_t i = 0; i < docs.size(); i += 15) patches.push_back(doc_write(Op::patch, id_of(docs[i]), "{}"));
  write_all(*s, patches);
  docs = list_wait(*s, "notes").docs;
  ASSERT_EQ(docs.size(), 240u);

  const std::vector<std::string> fields = {"a", "b", "c.d", "id", "_v", "_owner"};
  const std::vector<std::string> ops = {"eq", "ne", "lt", "lte", "gt", "gte", "in", "exists"};
  for (int round = 0; round < 150; ++round) {
    json::object where;
    for (int n = pick(4); n > 0; --n) {
      const std::string f = fields[pick(static_cast<int>(fields.size()))];
      const std::string op = ops[pick(static_cast<int>(ops.size()))];
      std::string operand;
      if (op == "in") {
        operand = "[";
        for (int k = pick(4); k > 0; --k) operand += (operand.size() > 1 ? "," : "") + scalar();
        operand += "]";
      } else if (op == "exists") {
        operand = pick(2) ? "true" : "false";
      } else if (op == "eq" || op == "ne") {
        operand = f == "_owner" ? "\"u" + std::to_string(pick(3)) + "\"" : scalar();
      } else {
        operand = pick(2) ? numbers[pick(static_cast<int>(numbers.size()))] : strings[pick(static_cast<int>(strings.size()))];
      }
      where[f] = pick(4) == 0 && op == "eq" ? json::parse(operand) : json::value(json::object{{op, json::parse(operand)}});
    }
    json::array order;
    for (int n = 1 + pick(2); n > 0; --n) {
      const std::string f = fields[pick(static_cast<int>(fields.size()))];
      if (std::any_of(order.begin(), order.end(), [&](const json::value& v) {
            std::string_view t = v.as_string();
            return t == f || t.substr(t.starts_with('-') ? 1 : 0) == f;
          })) {
        continue;
      }
      order.push_back(json::string((pick(2) ? "-" : "") + f));
    }
    const std::string owner = pick(4) == 0 ? "u1" : "";
    const std::string request = json::serialize(json::object{{"where", where}, {"order", order}});
    const query::Query q = parse(request);
    const std::vector<std::string> want = expected(docs, owner, q);
    const ListResult r = list_wait(*s, ListQuery{"notes", owner, q});
    ASSERT_TRUE(r.ok) << request;
    EXPECT_EQ(joined(ids(r.docs)), joined(want)) << request << " owner " << owner;
    EXPECT_FALSE(r.next);
    if (round % 3 == 0) {
      query::Query paged = q;
      paged.limit = 1 + static_cast<std::size_t>(pick(20));
      EXPECT_EQ(joined(ids(all_pages(*s, "notes", owner, paged))), joined(want)) << request << " limit " << paged.limit;
    }
  }
}

// ~5,000 documents, paged at several limits: each exactly once, in order.
TEST_P(StoreQueryTest, PagingReturnsEachDocumentOnceInOrder) {
  auto s = backend_->open(QueryIndexes{{"notes", {query::Order{{"g", true}, {"id", false}}}}});
  std::vector<DocWrite> writes;
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    const std::string g = i % 13 == 0 ? "" : "\"g\":" + std::to_string(rng() % 50) + (i % 3 ? "" : ".5");
    writes.push_back(doc_write(Op::create, "k" + std::to_string(rng() % 100000) + "-" + std::to_string(i),
                               "{" + g + (g.empty() ? "" : ",") + "\"h\":\"" + std::to_string(rng() % 7) + "\"}"));
  }
  const std::vector<std::string> docs = write_all(*s, std::move(writes));
  for (const std::string& request : {std::string(R"({"limit":7})"), std::string(R"({"order":["-g"],"limit":25})"),
                                     std::string(R"({"order":["-g"],"limit":1000})"),
                                     std::string(R"({"order":["h","-g"],"limit":250})"),
                                     std::string(R"({"where":{"h":{"ne":"3"}},"order":["-h","g"],"limit":333})")}) {
    const query::Query q = parse(request);
    std::size_t pages = 0;
    const std::vector<std::string> got = ids(all_pages(*s, "notes", "", q, &pages));
    const std::vector<std::string> want = expected(docs, "", q);
    EXPECT_EQ(got.size(), want.size()) << request;
    EXPECT_TRUE(got == want) << request;
    EXPECT_EQ(pages, std::max<std::size_t>(1, (want.size() + q.limit - 1) / q.limit)) << request;
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size()) << request;
  }
}

// Writes (creates, updates, deletes, moves in the order) while a client pages: every document that
// exists and matches throughout is returned exactly once, and no document twice.
TEST_P(StoreQueryTest, PagingUnderConcurrentWritesReturnsStableDocumentsOnce) {
  auto s = backend_->open();
  std::vector<DocWrite> writes;
  for (int i = 0; i < 1500; ++i) {
    writes.push_back(kept_write(Op::create, "s" + std::to_string(i), "{\"g\":" + std::to_string(i % 11) + ",\"x\":0}"));
    if (i % 3 == 0) writes.push_back(kept_write(Op::create, "v" + std::to_string(i), "{\"g\":" + std::to_string(i % 5) + "}"));
  }
  write_all(*s, std::move(writes));

  int round = 0;
  for (const std::string& request : {std::string(R"({"order":["g"],"limit":37})"), std::string(R"({"limit":41})"),
                                     std::string(R"({"where":{"g":{"lt":9}},"order":["-g","-id"],"limit":50})")}) {
    ++round;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      std::mt19937 rng(3);
      for (int n = 0; !stop; ++n) {
        std::vector<DocWrite> batch;
        batch.push_back(kept_write(Op::create, "n" + std::to_string(round) + "-" + std::to_string(n), R"({"g":4})"));
        // An s document moves in the order (within g < 9 when it matched that), or changes elsewhere.
        const int i = static_cast<int>(rng() % 1500);
        batch.push_back(kept_write(Op::patch, "s" + std::to_string(i),
                                   i % 11 < 9 ? "{\"g\":" + std::to_string(rng() % 9) + "}"
                                              : "{\"x\":" + std::to_string(n) + "}"));
        const std::string v = "v" + std::to_string((rng() % 500) * 3);
        DocWrite w = rng() % 2 ? kept_write(Op::remove, v, "{}")
                               : kept_write(Op::patch, v, "{\"g\":" + std::to_string(rng() % 11) + "}");
        s->write(std::move(w), [](DocResult) {});  // not_found once removed: fine
        write_all(*s, std::move(batch));
      }
    });
    const query::Query q = parse(request);
    const std::vector<std::string> got = ids(all_pages(*s, "notes", "", q));
    stop = true;
    writer.join();
    std::map<std::string, int> seen;
    for (const auto& id : got) ++seen[id];
    for (int i = 0; i < 1500; ++i) {
      const std::string id = "s" + std::to_string(i);
      const bool matches = request.find("\"lt\":9") == std::string::npos || i % 11 < 9;
      const auto it = seen.find(id);
      EXPECT_EQ(it == seen.end() ? 0 : it->second, matches ? 1 : 0) << request << " " << id;
    }
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << request << " " << id << " returned " << n << " times";
  }
}

// Every page is placed as of the first: documents that move past or behind the cursor, are deleted,
// created, changed or stop matching after the first page.
TEST_P(StoreQueryTest, LaterPagesPlaceDocumentsWhereTheyWereAtTheFirstPage) {
  auto s = backend_->open();
  std::vector<DocWrite> writes;
  for (int i = 0; i < 10; ++i) {
    writes.push_back(kept_write(Op::create, std::string(1, static_cast<char>('a' + i)),
                                "{\"t\":\"x\",\"n\":" + std::to_string(i) + "}"));
  }
  write_all(*s, std::move(writes));
  query::Query q = parse(R"({"where":{"t":"x"},"order":["n"],"limit":3})");
  ListResult r = list_wait(*s, ListQuery{"notes", "", q});
  ASSERT_EQ(joined(ids(r.docs)), "a b c");
  EXPECT_EQ(r.paging, r.offset);
  const std::uint64_t start = r.offset;
  write_all(*s, {kept_write(Op::patch, "j", R"({"n":-1})"),     // moves behind the cursor: still comes
                 kept_write(Op::patch, "a", R"({"n":100})"),    // moves past it: not again
                 kept_write(Op::remove, "e", "{}"),              // gone
                 kept_write(Op::create, "k", R"({"t":"x","n":5.5})"),  // new: the feed's
                 kept_write(Op::patch, "f", R"({"t":"y"})"),    // no longer matches
                 kept_write(Op::patch, "g", R"({"m":1})"),      // changed in place: its text now
                 kept_write(Op::patch, "h", R"({"n":8.5})"),    // moves ahead of i
                 kept_write(Op::patch, "h", R"({"n":1.5})")});  // then behind the cursor: placed by the first
  std::vector<std::string> later;
  std::vector<std::string> pages;
  while (r.next) {
    q.after = std::get<query::Cursor>(query::parse_cursor(*r.next, q.where, q.order));
    EXPECT_EQ(q.after->offset, start);
    r = list_wait(*s, ListQuery{"notes", "", q});
    ASSERT_TRUE(r.ok);
    ASSERT_FALSE(r.expired);
    EXPECT_EQ(r.paging, start);
    EXPECT_EQ(r.offset, start + 8);
    EXPECT_EQ(r.keys.size(), r.docs.size());
    pages.push_back(joined(ids(r.docs)));
    later.insert(later.end(), r.docs.begin(), r.docs.end());
  }
  EXPECT_EQ(joined(ids(later)), "d g h i j");
  EXPECT_EQ(pages, (std::vector<std::string>{"d g h", "i j"}));
  EXPECT_EQ(json::parse(later[1]).at("m").as_int64(), 1);   // the text of its page's time
  EXPECT_EQ(json::parse(later[4]).at("n").as_int64(), -1);
  EXPECT_EQ(json::parse(later[2]).at("n").as_double(), 1.5);

  // The same query from the first page again: the collection as it is now.
  q.after.reset();
  EXPECT_EQ(joined(ids(all_pages(*s, "notes", "", q))), "j b h c d k g i a");
}

// A cursor whose changes the feed no longer holds (trimmed to history_size), or of another epoch, or
// past the collection's offset, has expired; one with nothing changed since needs no feed at all.
TEST_P(StoreQueryTest, CursorsExpireWhenTheFeedNoLongerPlacesThem) {
  auto s = backend_->open();
  write_all(*s, {doc_write(Op::create, "a", "{}", "alice", "notes", 3), doc_write(Op::create, "b", "{}", "alice", "notes", 3),
                 doc_write(Op::create, "c", "{}", "alice", "notes", 3)});
  query::Query q = parse(R"({"limit":1})");
  const ListResult first = list_wait(*s, ListQuery{"notes", "", q});
  ASSERT_TRUE(first.next);
  q.after = std::get<query::Cursor>(query::parse_cursor(*first.next, q.where, q.order));
  EXPECT_EQ(joined(ids(list_wait(*s, ListQuery{"notes", "", q}).docs)), "b");  // nothing changed

  for (const char* id : {"d", "e", "f"}) write_all(*s, {doc_write(Op::create, id, "{}", "alice", "notes", 3)});
  ListResult r = list_wait(*s, ListQuery{"notes", "", q});  // 3 changes since, 3 kept: placed
  EXPECT_FALSE(r.expired);
  EXPECT_EQ(joined(ids(r.docs)), "b");
  write_all(*s, {doc_write(Op::create, "g", "{}", "alice", "notes", 3)});
  r = list_wait(*s, ListQuery{"notes", "", q});  // 4 since, 3 kept
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.expired);
  EXPECT_TRUE(r.docs.empty());

  query::Query other = q;
  other.after->offset = first.offset + 100;  // from the future
  EXPECT_TRUE(list_wait(*s, ListQuery{"notes", "", other}).expired);
  other = q;
  other.after->offset = list_wait(*s, "notes").offset;
  other.after->epoch = "another";
  EXPECT_TRUE(list_wait(*s, ListQuery{"notes", "", other}).expired);
  other.after->epoch = first.epoch;
  EXPECT_EQ(joined(ids(list_wait(*s, ListQuery{"notes", "", other}).docs)), "b");
}

TEST_P(StoreQueryTest, PagesAreCutAt512KiB) {
  auto s = backend_->open();
  std::vector<DocWrite> writes;
  for (int i = 0; i < 20; ++i) {
    writes.push_back(doc_write(Op::create, "p" + std::to_string(10 + i), "{\"x\":\"" + std::string(60000, 'x') + "\"}"));
  }
  write_all(*s, std::move(writes));
  query::Query q;  // limit 1000, by id
  ListResult r = list_wait(*s, ListQuery{"notes", "", q});
  ASSERT_TRUE(r.ok);
  std::size_t bytes = 0;
  for (const auto& d : r.docs) bytes += d.size();
  EXPECT_EQ(r.docs.size(), 8u);  // a ninth would take the page past 512 KiB
  EXPECT_LE(bytes, query::kMaxPageBytes);
  ASSERT_TRUE(r.next);
  std::size_t pages = 0;
  const auto all = ids(all_pages(*s, "notes", "", q, &pages));
  EXPECT_EQ(all.size(), 20u);
  EXPECT_EQ(pages, 3u);
  EXPECT_EQ(all.front(), "p10");
  EXPECT_EQ(all.back(), "p29");
}

TEST_P(StoreQueryTest, LastPageHasNoNextAndAFullOneHasOne) {
  auto s = backend_->open();
  write_all(*s, {doc_write(Op::create, "a", "{}"), doc_write(Op::create, "b", "{}"), doc_write(Op::create, "c", "{}")});
  ListResult r = list_wait(*s, ListQuery{"notes", "", parse(R"({"limit":3})")});
  EXPECT_EQ(r.docs.size(), 3u);
  EXPECT_FALSE(r.next);
  r = list_wait(*s, ListQuery{"notes", "", parse(R"({"limit":2})")});
  EXPECT_EQ(joined(ids(r.docs)), "a b");
  ASSERT_TRUE(r.next);
  // The cursor's page after the last document: empty, no next.
  const ListResult first = list_wait(*s, "notes");
  query::Query q = parse(R"({"limit":2})");
  q.after = query::Cursor{query::sort_keys(q.order, json::parse(R"({"id":"c"})").as_object()), 3, first.epoch};
  r = list_wait(*s, ListQuery{"notes", "", q});
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.docs.empty());
  EXPECT_FALSE(r.next);
  // A cursor's offset and epoch are those of coll:NAME, as for the first page.
  EXPECT_EQ(r.offset, 3u);
  EXPECT_EQ(r.epoch, first.epoch);
  // Any decodable cursor is only a position: odd key values page from there.
  query::Query odd = parse(R"({"order":["x"]})");
  odd.after = query::Cursor{query::Keys{{6, 1e300, "zz"}, {5, 0, "b"}}, 3, first.epoch};
  r = list_wait(*s, ListQuery{"notes", "", odd});
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.docs.empty());
}

// The counted rtsync_q_ indexes of the test's database.
std::int64_t query_indexes(backends::Backend& b, bool postgres) {
  return b.scalar(postgres ? "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                             "indexname LIKE 'rtsync\\_q\\_%'"
                           : "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'rtsync\\_q\\_%' "
                             "ESCAPE '\\'");
}

TEST_P(StoreQueryTest, IndexesAreCreatedDroppedAndUsed) {
  const query::Order status{{"status", false}, {"id", false}};
  const query::Order team_created{{"team", false}, {"created", true}, {"id", false}};
  {
    auto s = backend_->open(QueryIndexes{{"notes", {status, team_created}}, {"other", {status}}});
    EXPECT_EQ(query_indexes(*backend_, postgres()), 3);
    std::vector<DocWrite> writes;
    std::mt19937 rng(11);
    for (int i = 0; i < 4000; ++i) {
      writes.push_back(doc_write(Op::create, "d" + std::to_string(i),
                                 "{\"team\":\"t" + std::to_string(rng() % 40) + "\",\"created\":" +
                                     std::to_string(rng() % 100000) + ",\"status\":\"" + (i % 9 ? "done" : "open") +
                                     "\"}"));
    }
    write_all(*s, std::move(writes));
  }
  // Reopened with one index fewer: the other collection's is dropped, the rest kept.
  auto s = backend_->open(QueryIndexes{{"notes", {status, team_created}}});
  EXPECT_EQ(query_indexes(*backend_, postgres()), 2);
  if (postgres()) backend_->sql("ANALYZE docs");

  const auto plan = [&](const std::string& request) {
    const detail::ListSql sql = detail::list_sql(postgres() ? detail::Dialect::postgres : detail::Dialect::sqlite,
                                                 ListQuery{"notes", "", parse(request)});
    std::vector<std::string> plans;
    for (const auto& part : sql.parts) {
      std::vector<std::string> params;
      for (const auto& p : part.params) params.push_back(detail::sql_text(p));
      params.push_back("21");
      plans.push_back(backend_->explain(part.text, params));
    }
    return plans;
  };
  const std::string name = detail::index_sql(detail::Dialect::sqlite, "notes", team_created).name;
  EXPECT_EQ(name, detail::index_sql(detail::Dialect::postgres, "notes", team_created).name);
  // An equality and an order that the index serves: no scan of the collection, no sort.
  const std::vector<std::string> requests = {
      R"({"where":{"team":"t7"},"order":["-created"],"limit":20})",
      R"({"where":{"team":"t7"},"order":["-created"],"limit":20,"after":")" +
          query::next_cursor(parse(R"({"where":{"team":"t7"},"order":["-created"]})").where,
                             parse(R"({"order":["-created"]})").order,
                             query::Cursor{query::Keys{{4, 50000, ""}, {5, 0, "d1"}}, 0, ""}) +
          "\"}",
      R"({"order":["team","-created"],"limit":20})"};
  for (const auto& request : requests) {
    for (const std::string& p : plan(request)) {
      EXPECT_NE(p.find(name), std::string::npos) << request << "\n" << p;
      if (postgres()) {
        EXPECT_EQ(p.find("Seq Scan"), std::string::npos) << request << "\n" << p;
        EXPECT_EQ(p.find("Sort"), std::string::npos) << request << "\n" << p;
      } else {
        EXPECT_EQ(p.find("TEMP B-TREE"), std::string::npos) << request << "\n" << p;
        if (request.find("where") != std::string::npos) {
          EXPECT_EQ(p.find("SCAN docs"), std::string::npos) << request << "\n" << p;  // a SEARCH: a seek
        }
      }
      std::cout << GetParam() << ": " << request << "\n" << p;
    }
  }
  // And the indexed query returns what the matcher says.
  const auto all = list_wait(*s, "notes", "");
  EXPECT_EQ(all.docs.size(), 1000u);
  const query::Query q = parse(R"({"where":{"team":"t7"},"order":["-created"],"limit":5})");
  const ListResult r = list_wait(*s, ListQuery{"notes", "", q});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.docs.size(), 5u);
  for (const auto& d : r.docs) EXPECT_EQ(json::parse(d).at("team"), "t7");
  // Without indexes, every query index goes; queries still work (a scan).
  s.reset();
  s = backend_->open();
  EXPECT_EQ(query_indexes(*backend_, postgres()), 0);
  EXPECT_EQ(list_wait(*s, ListQuery{"notes", "", q}).docs, r.docs);
}

}  // namespace
}  // namespace rtsync::store
