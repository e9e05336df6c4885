// PubNub's subscribe filter language (query/pubnub_filter.hpp): what parses and what is refused, and how
// each operator judges meta and payloads, missing fields included; and its App Context dialect over records.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>

#include "query/pubnub_filter.hpp"

namespace rtsync::query {
namespace {

// Whether `expr` lets a message with this meta and data through (the expression must parse).
bool passes(const std::string& expr, const std::string& meta, const std::string& data = "\"hi\"") {
  std::string error;
  auto f = PubnubFilter::parse(expr, error);
  EXPECT_TRUE(f.has_value()) << expr << ": " << error;
  return f && f->matches(meta, data);
}

std::string refusal(const std::string& expr) {
  std::string error;
  auto f = PubnubFilter::parse(expr, error);
  EXPECT_FALSE(f.has_value()) << expr;
  EXPECT_FALSE(error.empty()) << expr;
  return error;
}

TEST(PubnubFilter, Equality) {
  EXPECT_TRUE(passes("meta.priority == \"high\"", R"({"priority":"high"})"));
  EXPECT_FALSE(passes("meta.priority == 'high'", R"({"priority":"low"})"));
  EXPECT_TRUE(passes("meta.priority != 'high'", R"({"priority":"low"})"));
  EXPECT_FALSE(passes("meta.priority == 'High'", R"({"priority":"high"})")) << "== is case-sensitive";
  EXPECT_TRUE(passes("meta.n == 5", R"({"n":5.0})"));
  EXPECT_TRUE(passes("meta.n == 5", R"({"n":"5"})")) << "a string that holds a number";
  EXPECT_FALSE(passes("meta.n == '5x'", R"({"n":5})"));
  EXPECT_TRUE(passes("meta.ok == true", R"({"ok":true})"));
  EXPECT_TRUE(passes("meta.gone == null", R"({"gone":null})"));
  EXPECT_TRUE(passes("meta.n != 'x'", R"({"n":5})")) << "different kinds are not equal";
}

TEST(PubnubFilter, AMissingFieldFailsEveryComparison) {
  EXPECT_FALSE(passes("meta.priority == 'high'", ""));
  EXPECT_FALSE(passes("meta.priority != 'high'", "")) << "no meta";
  EXPECT_FALSE(passes("meta.priority != 'high'", R"({"other":1})"));
  EXPECT_FALSE(passes("meta.a.b > 1", R"({"a":2})"));
  EXPECT_TRUE(passes("!(meta.priority == 'high')", "")) << "but its negation holds";
}

TEST(PubnubFilter, OrderingIsForNumbers) {
  EXPECT_TRUE(passes("meta.level > 5", R"({"level":6})"));
  EXPECT_FALSE(passes("meta.level > 5", R"({"level":5})"));
  EXPECT_TRUE(passes("meta.level >= 5", R"({"level":5})"));
  EXPECT_TRUE(passes("meta.level < -1.5", R"({"level":-2})"));
  EXPECT_TRUE(passes("meta.level <= 1e3", R"({"level":"1000"})"));
  EXPECT_FALSE(passes("meta.name > 'a'", R"({"name":"b"})")) << "strings do not order";
}

TEST(PubnubFilter, LikeMatchesWildcardsCaseInsensitively) {
  EXPECT_TRUE(passes("meta.category LIKE 'news*'", R"({"category":"News-sport"})"));
  EXPECT_TRUE(passes("meta.category like '*sport'", R"({"category":"news-sport"})"));
  EXPECT_TRUE(passes("meta.category LIKE '*ws-sp*'", R"({"category":"news-sport"})"));
  EXPECT_TRUE(passes("meta.category LIKE 'n*s*t'", R"({"category":"news-sport"})"));
  EXPECT_FALSE(passes("meta.category LIKE 'news'", R"({"category":"news-sport"})")) << "whole string";
  EXPECT_TRUE(passes("meta.s LIKE 'a\\*'", R"({"s":"A*"})")) << "an escaped star is a star";
  EXPECT_FALSE(passes("meta.s LIKE 'a\\*'", R"({"s":"ab"})"));
  EXPECT_TRUE(passes("('Anne','anna','Ann') LIKE 'ann*'", ""));
  EXPECT_TRUE(passes("meta.tags LIKE 'b*'", R"({"tags":["a","bee"]})"));
  EXPECT_FALSE(passes("meta.n LIKE '5'", R"({"n":5})")) << "numbers are not strings";
}

TEST(PubnubFilter, Contains) {
  EXPECT_TRUE(passes("meta.text CONTAINS 'ell'", R"({"text":"hello"})"));
  EXPECT_FALSE(passes("meta.text contains 'ELL'", R"({"text":"hello"})"));
  EXPECT_TRUE(passes("meta.text CONTAINS 42", R"({"text":"answer 42"})"));
  EXPECT_TRUE(passes("('a','b','c') CONTAINS meta.x", R"({"x":"b"})"));
  EXPECT_FALSE(passes("('a','b','c') CONTAINS meta.x", R"({"x":"d"})"));
  EXPECT_TRUE(passes("(3,5,9) contains meta.n", R"({"n":5})"));
  EXPECT_TRUE(passes("!((3,5,9) contains meta.n)", R"({"n":4})"));
  EXPECT_TRUE(passes("meta.tags CONTAINS 'x'", R"({"tags":["x","y"]})"));
}

TEST(PubnubFilter, LogicAndPrecedence) {
  const std::string m = R"({"a":1,"b":2})";
  EXPECT_TRUE(passes("meta.a == 1 && meta.b == 2", m));
  EXPECT_FALSE(passes("meta.a == 1 && meta.b == 3", m));
  EXPECT_TRUE(passes("meta.a == 9 || meta.b == 2", m));
  // && binds tighter: true || (false && false).
  EXPECT_TRUE(passes("meta.a == 1 || meta.a == 9 && meta.b == 9", m));
  EXPECT_FALSE(passes("(meta.a == 1 || meta.a == 9) && meta.b == 9", m));
  EXPECT_TRUE(passes("!(meta.a == 9)", m));
  EXPECT_FALSE(passes("!!(meta.a == 9)", m));
  EXPECT_TRUE(passes("((meta.a == 1))", m));
  EXPECT_TRUE(passes("(meta.a) == 1", m)) << "a parenthesized operand";
}

TEST(PubnubFilter, PathsIntoMetaAndData) {
  EXPECT_TRUE(passes("uuid != 'me'", R"({"uuid":"you"})")) << "a bare name is a key of meta";
  EXPECT_TRUE(passes("meta.user[\"role\"] == 'admin'", R"({"user":{"role":"admin"}})"));
  EXPECT_TRUE(passes("meta.list[1] == 'b'", R"({"list":["a","b"]})"));
  EXPECT_FALSE(passes("meta.list[2] == 'b'", R"({"list":["a","b"]})"));
  EXPECT_TRUE(passes("data.score > 80", "", R"({"score":90})"));
  EXPECT_TRUE(passes("(meta.priority == \"high\") && (data.score > 80)", R"({"priority":"high"})", R"({"score":81})"));
  EXPECT_TRUE(passes("data == 'hi'", "", "\"hi\""));
  EXPECT_FALSE(passes("data.score > 80", "", "\"an encrypted string\""));
}

TEST(PubnubFilter, MalformedExpressionsAreRefused) {
  refusal("");
  refusal("meta.a ==");
  refusal("meta.a = 1");
  refusal("meta.a == 1 &&");
  refusal("(meta.a == 1");
  refusal("meta.a == 1)");
  refusal("meta.a == 'open");
  refusal("meta.a");
  refusal("meta.a + 1 > 2");  // no arithmetic
  refusal("meta. == 1");
  refusal("meta.a[x] == 1");
  refusal("meta.a == 1.2.3");
  refusal("(meta.a, 1) == 1");  // a list holds literals only
  refusal("meta.a == 1 meta.b == 2");
  EXPECT_NE(refusal("meta.a ~ 1").find("at 7"), std::string::npos) << "the error says where";
}

TEST(PubnubFilter, DeepOrLongExpressionsAreRefused) {
  refusal(std::string(40, '(') + "meta.a == 1" + std::string(40, ')'));
  refusal(std::string(40, '!') + "(meta.a == 1)");
  refusal(std::string(5000, '('));
  std::string long_one = "meta.a == '" + std::string(5000, 'x') + "'";
  refusal(long_one);
  EXPECT_TRUE(passes(std::string(20, '(') + "meta.a == 1" + std::string(20, ')'), R"({"a":1})"));
}

// Whether `expr`, in the App Context dialect, passes the record.
bool record_passes(const std::string& expr, const std::string& record) {
  std::string error;
  auto f = PubnubFilter::parse(expr, error, Dialect::objects);
  EXPECT_TRUE(f.has_value()) << expr << ": " << error;
  return f && f->matches(boost::json::parse(record));
}

TEST(PubnubFilter, ObjectsDialectReadsTheRecordItself) {
  const std::string ann = R"({"id":"ann","name":"Ann Lee","meta":"m","custom":{"team":"red","n":3},
                              "channel":{"id":"c","name":"Lobby"},"updated":"2024-08-12T06:37:16.441347Z"})";
  EXPECT_TRUE(record_passes(R"(name == "Ann Lee" && custom.team == 'red')", ann));
  EXPECT_TRUE(record_passes("meta == 'm'", ann)) << "meta is a plain key here";
  EXPECT_TRUE(record_passes(R"(channel.name LIKE "lob*")", ann));
  EXPECT_TRUE(record_passes("custom.n >= 3 && custom.n < 4", ann));
  EXPECT_FALSE(record_passes("custom.missing != 1", ann)) << "an absent field fails every comparison";
  EXPECT_TRUE(record_passes(R"(name > "Ann" && name < "Bob")", ann)) << "strings order byte for byte";
  EXPECT_FALSE(record_passes(R"(name > "ann")", ann));
  // Times order as times, whatever their precision or zone.
  EXPECT_TRUE(record_passes(R"(updated > "2024-08-12T06:37:16Z")", ann));
  EXPECT_TRUE(record_passes(R"(updated < "2024-08-12T06:37:17Z" && updated >= "2024-08-12")", ann));
  EXPECT_TRUE(record_passes(R"(updated < "2024-08-12T08:37:17+02:00")", ann));
  EXPECT_FALSE(record_passes(R"(updated < "2024-08-12T08:37:16+02:00")", ann));
  EXPECT_TRUE(record_passes(R"(!(id == "bob") || name == "x")", ann));
  EXPECT_FALSE(passes("name > 'a'", R"({"name":"b"})")) << "the subscribe dialect orders numbers only";
}

TEST(PubnubFilter, LikeIsAGlobWithEscapes) {
  EXPECT_TRUE(like("Hello", "h*O"));
  EXPECT_TRUE(like("a*b", "a\\*b"));
  EXPECT_FALSE(like("axb", "a\\*b"));
  EXPECT_TRUE(like("", "*"));
  EXPECT_FALSE(like("abc", "ab"));
}

}  // namespace
}  // namespace rtsync::query
