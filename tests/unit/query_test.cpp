// Unit tests of the query layer (query/query.hpp): decoding where/order/limit/after with their error
// messages, the matcher's operators and type rules, sort keys and orders, and cursors. That the stores'
// SQL agrees with this matcher is store_query_test.cpp's.
#include "query/query.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "common/base64url.hpp"

namespace rtsync::query {
namespace {

json::object obj(const std::string& text) { return json::parse(text).as_object(); }

Where where(const std::string& text) {
  auto p = parse_where(json::parse(text));
  if (auto* e = std::get_if<Error>(&p)) {
    ADD_FAILURE() << text << ": " << e->message;
    return {};
  }
  return std::get<Where>(p);
}

std::string where_error(const std::string& text) {
  auto p = parse_where(json::parse(text));
  if (auto* e = std::get_if<Error>(&p)) return e->message;
  return "(accepted)";
}

std::string query_error(const std::string& request) {
  auto p = parse_query(obj(request));
  if (auto* e = std::get_if<Error>(&p)) return e->message;
  return "(accepted)";
}

Order order(const std::string& text) { return std::get<Order>(parse_order(json::parse(text))); }

bool match(const std::string& w, const std::string& doc) { return matches(where(w), obj(doc)); }

TEST(QueryTest, WhereDecodesScalarsAsEqualityAndOperators) {
  const Where w = where(R"({"b":{"gte":2,"lt":5},"a":"x","c":{"in":[1,"y",null]},"d":{"exists":false}})");
  ASSERT_EQ(w.size(), 5u);
  // Canonical order: by attribute, then operator.
  EXPECT_EQ(w[0].attr, "a");
  EXPECT_EQ(w[0].op, Op::eq);
  EXPECT_EQ(w[1].attr, "b");
  EXPECT_EQ(w[1].op, Op::lt);
  EXPECT_EQ(w[2].op, Op::gte);
  EXPECT_EQ(w[3].op, Op::in);
  EXPECT_EQ(w[3].values.size(), 3u);
  EXPECT_EQ(w[4].op, Op::exists);
  // Equal wheres written differently are one canonical text.
  EXPECT_EQ(canonical(where(R"({"a":1,"b":{"lt":2}})"), order(R"(["id"])")),
            canonical(where(R"({"b":{"lt":2},"a":{"eq":1}})"), order(R"(["id"])")));
}

TEST(QueryTest, WhereErrorsNameTheProblem) {
  EXPECT_EQ(where_error("[1]"), "where must be an object");
  EXPECT_EQ(where_error(R"({"a":{"eqq":1}})"),
            R"(where."a": "eqq" is not an operator (eq, ne, lt, lte, gt, gte, in, exists))");
  EXPECT_EQ(where_error(R"({"a":{}})"),
            R"(where."a": an operator object needs an operator (eq, ne, lt, lte, gt, gte, in, exists))");
  EXPECT_EQ(where_error(R"({"a":[1]})"),
            R"(where."a": the value is a scalar (equality) or an operator object (eq, ne, lt, lte, gt, gte, in, exists))");
  EXPECT_EQ(where_error(R"({"a":{"eq":[1]}})"),
            R"(where."a": eq needs a scalar (null, true, false, a number or a string))");
  EXPECT_EQ(where_error(R"({"a":{"ne":{}}})"),
            R"(where."a": ne needs a scalar (null, true, false, a number or a string))");
  for (const char* op : {"lt", "lte", "gt", "gte"}) {
    for (const char* v : {"true", "null", "[1]"}) {
      EXPECT_EQ(where_error(std::string(R"({"a":{")") + op + "\":" + v + "}}"),
                std::string(R"(where."a": )") + op + " needs a number or a string");
    }
  }
  EXPECT_EQ(where_error(R"({"a":{"in":1}})"), R"(where."a": in needs an array of scalars)");
  EXPECT_EQ(where_error(R"({"a":{"in":[[1]]}})"), R"(where."a": in needs an array of scalars)");
  EXPECT_EQ(where_error(R"({"a":{"exists":1}})"), R"(where."a": exists needs true or false)");
  std::string many = R"({"a":{"in":[)";
  for (int i = 0; i <= 100; ++i) many += (i ? "," : "") + std::to_string(i);
  EXPECT_EQ(where_error(many + "]}}"), R"(where."a": in takes at most 100 values)");
  const std::string name_rule = R"(where: attribute names are 1-256 bytes without '"', '\' or control characters: )";
  EXPECT_EQ(where_error(R"({"a\"b":1})"), name_rule + R"("a\"b")");
  EXPECT_EQ(where_error(R"({"a\\b":1})"), name_rule + R"("a\\b")");
  EXPECT_EQ(where_error(R"({"a\nb":1})"), name_rule + R"("a\nb")");
  EXPECT_EQ(where_error(R"({"":1})"), name_rule + R"("")");
  EXPECT_EQ(where_error("{\"" + std::string(257, 'x') + "\":1}").substr(0, name_rule.size()), name_rule);
  EXPECT_EQ(where_error("{\"" + std::string(256, 'x') + "\":1}"), "(accepted)");
  // Names the stores can write into a JSON path: dots, quotes of the other kind, spaces, UTF-8.
  EXPECT_EQ(where_error(R"({"a.b":1,"it's":2,"x y":3,"é":4,"[0]":5})"), "(accepted)");
}

TEST(QueryTest, AtMostSixteenConditionsEachOperatorCounting) {
  std::string w = "{";
  for (int i = 0; i < 8; ++i) w += (i ? ",\"a" : "\"a") + std::to_string(i) + R"(":{"gt":0,"lt":9})";
  EXPECT_EQ(where_error(w + "}"), "(accepted)");  // 8 attributes x 2 operators
  EXPECT_EQ(where_error(w + R"(,"z":1})"), "where: at most 16 conditions (each operator counts as one)");
}

TEST(QueryTest, OrderLimitAndQueryDecoding) {
  EXPECT_EQ(order(R"(["-a","b"])"), (Order{{"a", true}, {"b", false}, {"id", false}}));
  EXPECT_EQ(order(R"(["a","-id","b"])"), (Order{{"a", false}, {"id", true}}));  // keys after id never decide
  EXPECT_EQ(query_error(R"({"order":"a"})"), R"(order must be an array of attribute names ("-name" for descending))");
  EXPECT_EQ(query_error(R"({"order":[1]})"), R"(order must be an array of attribute names ("-name" for descending))");
  EXPECT_EQ(query_error(R"({"order":[]})"), "order needs at least one attribute name");
  EXPECT_EQ(query_error(R"({"order":["a","-a"]})"), R"(order names "a" twice)");
  EXPECT_EQ(query_error(R"({"order":["a","b","c","d","e","f","g","h","i"]})"), "order names at most 8 attributes");
  EXPECT_EQ(query_error(R"({"order":["-"]})"),
            R"(order: attribute names are 1-256 bytes without '"', '\' or control characters: "")");
  for (const char* bad : {"0", "1001", "1.5", "\"10\"", "-1", "18446744073709551615"}) {
    EXPECT_EQ(query_error(std::string(R"({"limit":)") + bad + "}"), "limit must be an integer from 1 to 1000") << bad;
  }
  EXPECT_EQ(query_error(R"({"after":5})"), "after must be a string: the next of the previous page");

  const auto q = std::get<Query>(parse_query(obj(R"({"coll":"x","limit":10,"where":null,"after":null})")));
  EXPECT_EQ(q.limit, 10u);
  EXPECT_TRUE(q.where.empty());
  EXPECT_EQ(q.order, (Order{{"id", false}}));
  EXPECT_FALSE(q.after);
  EXPECT_EQ(std::get<Query>(parse_query(json::object{})).limit, kMaxLimit);
}

TEST(QueryTest, EqualityAndTypeRules) {
  // Numbers by value across integers and fractions; never equal to a string.
  EXPECT_TRUE(match(R"({"n":1})", R"({"n":1.0})"));
  EXPECT_TRUE(match(R"({"n":1.0})", R"({"n":1})"));
  EXPECT_FALSE(match(R"({"n":1})", R"({"n":"1"})"));
  EXPECT_FALSE(match(R"({"n":"1"})", R"({"n":1})"));
  // null matches a present null only; false and 0 differ; true and 1 differ.
  EXPECT_TRUE(match(R"({"n":null})", R"({"n":null})"));
  EXPECT_FALSE(match(R"({"n":null})", R"({})"));
  EXPECT_FALSE(match(R"({"n":false})", R"({"n":0})"));
  EXPECT_FALSE(match(R"({"n":true})", R"({"n":1})"));
  EXPECT_TRUE(match(R"({"n":true})", R"({"n":true})"));
  // Arrays and objects equal no scalar.
  EXPECT_FALSE(match(R"({"n":1})", R"({"n":[1]})"));
  // ne: present and different.
  EXPECT_TRUE(match(R"({"n":{"ne":1}})", R"({"n":2})"));
  EXPECT_TRUE(match(R"({"n":{"ne":1}})", R"({"n":"1"})"));
  EXPECT_TRUE(match(R"({"n":{"ne":1}})", R"({"n":[1]})"));
  EXPECT_TRUE(match(R"({"n":{"ne":null}})", R"({"n":false})"));
  EXPECT_FALSE(match(R"({"n":{"ne":1}})", R"({"n":1.0})"));
  EXPECT_FALSE(match(R"({"n":{"ne":1}})", R"({})"));
  EXPECT_FALSE(match(R"({"n":{"ne":null}})", R"({})"));
  // in
  EXPECT_TRUE(match(R"({"n":{"in":[2,"x",null]}})", R"({"n":null})"));
  EXPECT_TRUE(match(R"({"n":{"in":[2,"x",null]}})", R"({"n":2.0})"));
  EXPECT_FALSE(match(R"({"n":{"in":[2,"x",null]}})", R"({})"));
  EXPECT_FALSE(match(R"({"n":{"in":[]}})", R"({"n":1})"));
  // exists
  EXPECT_TRUE(match(R"({"n":{"exists":true}})", R"({"n":null})"));
  EXPECT_FALSE(match(R"({"n":{"exists":true}})", R"({})"));
  EXPECT_TRUE(match(R"({"n":{"exists":false}})", R"({"m":1})"));
  // The server's fields are attributes of the document as served.
  EXPECT_TRUE(match(R"({"id":"x","_v":2,"_owner":"bob"})", R"({"id":"x","_v":2,"_owner":"bob"})"));
  EXPECT_FALSE(match(R"({"_v":"2"})", R"({"id":"x","_v":2,"_owner":"bob"})"));
}

TEST(QueryTest, RangesHoldWithinTheirTypeOnly) {
  EXPECT_TRUE(match(R"({"n":{"gt":1}})", R"({"n":1.5})"));
  EXPECT_FALSE(match(R"({"n":{"gt":1}})", R"({"n":"2"})"));
  EXPECT_FALSE(match(R"({"n":{"gt":1}})", R"({"n":true})"));
  EXPECT_FALSE(match(R"({"n":{"lt":1}})", R"({"n":null})"));
  EXPECT_FALSE(match(R"({"n":{"lt":1}})", R"({})"));
  EXPECT_FALSE(match(R"({"n":{"lt":"a"}})", R"({"n":1})"));
  EXPECT_TRUE(match(R"({"n":{"lte":1}})", R"({"n":1.0})"));
  EXPECT_TRUE(match(R"({"n":{"gte":-1,"lt":1}})", R"({"n":-0.5})"));
  // Strings by UTF-8 bytes: uppercase before lowercase, é (C3 A9) after z.
  EXPECT_TRUE(match(R"({"s":{"lt":"a"}})", R"({"s":"Z"})"));
  EXPECT_TRUE(match(R"({"s":{"gt":"z"}})", R"({"s":"é"})"));
  EXPECT_TRUE(match(R"({"s":{"gt":"ab"}})", R"({"s":"abc"})"));
  EXPECT_FALSE(match(R"({"s":{"gt":"ab"}})", R"({"s":"ab"})"));
  // Exact comparisons of integers against fractions, beyond 2^53 too.
  EXPECT_TRUE(match(R"({"n":{"gt":9007199254740992.0}})", R"({"n":9007199254740993})"));
  EXPECT_TRUE(match(R"({"n":{"lt":9007199254740993}})", R"({"n":9007199254740992.0})"));
  EXPECT_TRUE(match(R"({"n":{"gt":-9223372036854775808}})", R"({"n":-1e300})") == false);
  EXPECT_TRUE(match(R"({"n":{"lt":9223372036854775807}})", R"({"n":1e19})") == false);
}

TEST(QueryTest, StringsCompareUpToTheirFirstNul) {
  EXPECT_TRUE(match(R"({"s":"ab"})", R"({"s":"ab\u0000cd"})"));
  EXPECT_TRUE(match(R"({"s":"ab\u0000x"})", R"({"s":"ab"})"));
  EXPECT_FALSE(match(R"({"s":{"gt":"ab"}})", R"({"s":"ab\u0000cd"})"));
}

TEST(QueryTest, SortKeysOrderTypesAndMissingFirst) {
  const std::vector<std::string> docs = {
      R"({"id":"m"})",          R"({"id":"n","a":null})", R"({"id":"f","a":false})", R"({"id":"t","a":true})",
      R"({"id":"x","a":-2.5})", R"({"id":"y","a":3})",    R"({"id":"s","a":"A"})",   R"({"id":"r","a":"b"})",
      R"({"id":"o","a":{}})",   R"({"id":"p","a":[1]})",  R"({"id":"l","a":3.0})"};
  std::vector<json::object> objs;
  for (const auto& d : docs) objs.push_back(obj(d));
  const auto ids = [&](const Order& o) {
    auto sorted = objs;
    std::sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) { return before(o, a, b); });
    std::string out;
    for (const auto& d : sorted) out += d.at("id").as_string().c_str();
    return out;
  };
  // missing < null < false < true < numbers < strings < arrays/objects (tied: then id); ties by id.
  EXPECT_EQ(ids(order(R"(["a"])")), "mnftxlysrop");
  EXPECT_EQ(ids(order(R"(["-a"])")), "oprslyxtfnm");
  EXPECT_EQ(ids(order(R"(["-a","-id"])")), "porsylxtfnm");
}

TEST(QueryTest, CursorsRoundTripAndBelongToTheirWhereAndOrder) {
  const Where w = where(R"({"a":{"gt":1}})");
  const Order o = order(R"(["-a"])");
  const Keys last = sort_keys(o, obj(R"({"id":"k","a":2.5})"));
  const std::string c = next_cursor(w, o, Cursor{last, 41, "ep"});
  const auto back = std::get<Cursor>(parse_cursor(c, w, o));
  ASSERT_EQ(back.keys.size(), 2u);
  EXPECT_EQ(compare(o, back.keys, last), 0);
  EXPECT_EQ(back.keys[0].rank, kNumber);
  EXPECT_EQ(back.keys[1].str, "k");
  EXPECT_EQ(back.offset, 41u);
  EXPECT_EQ(back.epoch, "ep");

  const auto error = [](const Parsed<Cursor>& p) { return std::get<Error>(p).message; };
  const std::string other = "after: the cursor belongs to another where or order";
  EXPECT_EQ(error(parse_cursor(c, where(R"({"a":{"gt":2}})"), o)), other);
  EXPECT_EQ(error(parse_cursor(c, w, order(R"(["a"])"))), other);
  const std::string malformed = "after: malformed cursor (pass the next of the previous page as it is)";
  EXPECT_EQ(error(parse_cursor("", w, o)), malformed);
  EXPECT_EQ(error(parse_cursor("!!", w, o)), malformed);
  EXPECT_EQ(error(parse_cursor(c.substr(0, c.size() - 3), w, o)), malformed);
  EXPECT_EQ(error(parse_cursor(common::base64url_encode("[1]"), w, o)), malformed);
  const std::string h = short_hash(canonical(w, o));
  const auto made = [&](const std::string& rest) { return common::base64url_encode(R"({"h":")" + h + "\"," + rest + "}"); };
  EXPECT_EQ(error(parse_cursor(made(R"("k":[[4,1,""]],"s":1,"e":"x")"), w, o)), malformed);
  EXPECT_EQ(error(parse_cursor(made(R"("k":[[9,1,""],[5,0,"k"]],"s":1,"e":"x")"), w, o)), malformed);
  // Without the paging's offset and epoch (or with a negative offset): not a cursor of this server.
  EXPECT_EQ(error(parse_cursor(made(R"("k":[[4,1,""],[5,0,"k"]])"), w, o)), malformed);
  EXPECT_EQ(error(parse_cursor(made(R"("k":[[4,1,""],[5,0,"k"]],"s":-1,"e":"x")"), w, o)), malformed);
  EXPECT_EQ(error(parse_cursor(made(R"("k":[[4,1,""],[5,0,"k"]],"s":1,"e":7)"), w, o)), malformed);
  EXPECT_TRUE(std::holds_alternative<Cursor>(parse_cursor(made(R"("k":[[4,1,""],[5,0,"k"]],"s":0,"e":"x")"), w, o)));

  // Through parse_query: the cursor is checked against the request's where and order.
  EXPECT_EQ(query_error(R"({"where":{"a":{"gt":1}},"order":["-a"],"after":")" + c + "\"}"), "(accepted)");
  EXPECT_EQ(query_error(R"({"order":["-a"],"after":")" + c + "\"}"), other);
}

}  // namespace
}  // namespace rtsync::query
