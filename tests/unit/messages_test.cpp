// Unit tests of the wire encoding (messages.cpp): splitting a text message into commands, the push frames
// (checked by parsing their payload with Boost.JSON against PROTOCOL §4), replies, hello/bye and
// publication lists.
#include "protocol/messages.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/client_json.hpp"

namespace rtsync::protocol {
namespace {

namespace json = boost::json;

// A string with every character that needs escaping in JSON, plus non-ASCII text.
const std::string kOdd = std::string("q\"b\\s/n\nr\rt\tb\bf\f") + '\x01' + '\x1f' + "\xc3\xa9\xe2\x82\xac";

json::object parse_object(std::string_view text) {
  json::value v = json::parse(text);
  EXPECT_TRUE(v.is_object()) << text;
  return v.is_object() ? v.get_object() : json::object{};
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> k;
  for (const auto& kv : o) k.insert(std::string(kv.key()));
  return k;
}

// The payload of a server frame after checking its header: final, text, unmasked, right length.
std::string text_payload(const core::Frame& f) {
  auto v = f.view();
  EXPECT_GE(v.size(), 2u);
  if (v.size() < 2) return {};
  EXPECT_EQ(static_cast<std::uint8_t>(v[0]), 0x81);
  auto b1 = static_cast<std::uint8_t>(v[1]);
  EXPECT_EQ(b1 & 0x80, 0) << "server frames are unmasked";
  std::size_t len = b1 & 0x7f, hs = 2;
  if (len == 126) {
    len = (std::size_t{static_cast<std::uint8_t>(v[2])} << 8) | static_cast<std::uint8_t>(v[3]);
    hs = 4;
    EXPECT_GE(len, 126u);
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(v[2 + i]);
    hs = 10;
    EXPECT_GE(len, 65536u);
  }
  EXPECT_EQ(v.size(), hs + len);
  return std::string(v.substr(hs));
}

void expect_compact_line(const std::string& s) {
  EXPECT_EQ(s.find('\n'), std::string::npos) << s;
  EXPECT_EQ(s.find('\r'), std::string::npos) << s;
}

core::PublicationPtr pub(std::uint64_t offset, std::string data, std::string from, std::int64_t ts) {
  return std::make_shared<const core::Publication>(core::Publication{offset, std::move(data), std::move(from), ts});
}

// ---------------------------------------------------------------------------------------------------
// parse_message

TEST(MessagesParse, SingleObject) {
  auto lines = parse_message(R"({"id":1,"op":"sub","ch":"room","presence":true})");
  ASSERT_EQ(lines.size(), 1u);
  const auto& l = lines[0];
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.error.empty());
  EXPECT_EQ(l.cmd.op, "sub");
  ASSERT_TRUE(l.cmd.id.is_int64());
  EXPECT_EQ(l.cmd.id.as_int64(), 1);
  EXPECT_EQ(l.cmd.body.at("ch").as_string(), "room");
  EXPECT_EQ(l.cmd.body.at("presence").as_bool(), true);
  EXPECT_EQ(l.cmd.body.at("op").as_string(), "sub");  // the whole object
}

TEST(MessagesParse, SeveralObjectsNewlineAndCrlf) {
  auto lines = parse_message("{\"id\":1,\"op\":\"a\"}\n{\"id\":2,\"op\":\"b\"}\r\n{\"id\":3,\"op\":\"c\"}");
  ASSERT_EQ(lines.size(), 3u);
  const char* ops[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(lines[i].ok) << i << ": " << lines[i].error;
    EXPECT_EQ(lines[i].cmd.op, ops[i]);
    EXPECT_EQ(lines[i].cmd.id.as_int64(), i + 1);
  }
}

TEST(MessagesParse, BlankLinesIgnored) {
  auto lines = parse_message("\n\n{\"op\":\"ping\"}\n   \n\t\n\r\n\n{\"op\":\"ping\",\"id\":9}\n\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].ok);
  EXPECT_TRUE(lines[0].cmd.id.is_null());
  EXPECT_TRUE(lines[1].ok);
  EXPECT_EQ(lines[1].cmd.id.as_int64(), 9);
  EXPECT_TRUE(parse_message("").empty());
  EXPECT_TRUE(parse_message("\n").empty());
  EXPECT_TRUE(parse_message("\r\n  \r\n").empty());
}

TEST(MessagesParse, TrailingNewlineOnly) {
  auto lines = parse_message("{\"op\":\"ping\"}\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].ok);
}

TEST(MessagesParse, MalformedLineOthersStillParsed) {
  auto lines = parse_message("{\"id\":1,\"op\":\"a\"}\n{\"id\":2,\"op\":\n{\"id\":3,\"op\":\"c\"}");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[0].ok);
  EXPECT_EQ(lines[0].cmd.op, "a");
  EXPECT_FALSE(lines[1].ok);
  EXPECT_FALSE(lines[1].error.empty());
  EXPECT_TRUE(lines[1].cmd.id.is_null());  // nothing could be read
  EXPECT_TRUE(lines[2].ok);
  EXPECT_EQ(lines[2].cmd.op, "c");
}

TEST(MessagesParse, VariousMalformedJson) {
  for (std::string bad : {"{", "}", "{\"op\":\"a\",}", "{op:\"a\"}", "{\"op\":'a'}", "not json",
                          "{\"op\":\"a\"} {\"op\":\"b\"}", "{\"op\":\"a\"}x", "{\"op\":\"\xff\"}"}) {
    auto lines = parse_message(bad);
    ASSERT_EQ(lines.size(), 1u) << bad;
    EXPECT_FALSE(lines[0].ok) << bad;
    EXPECT_FALSE(lines[0].error.empty()) << bad;
  }
}

TEST(MessagesParse, DataNestsAsDeepAsOnEveryOtherFrontEnd) {
  // The limit counts from the data, not from the command around it (common/client_json.hpp).
  auto nested = [](std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  auto ok = parse_message(R"({"op":"pub","ch":"c","data":)" + nested(common::max_json_depth) + "}");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_TRUE(ok[0].ok) << ok[0].error;
  auto deep = parse_message(R"({"id":7,"op":"pub","ch":"c","data":)" + nested(common::max_json_depth + 1) + "}");
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_FALSE(deep[0].ok);
  EXPECT_EQ(deep[0].error, "nested deeper than 32 levels");
  EXPECT_EQ(deep[0].cmd.id, boost::json::value(7)) << "the refusal names the command";
  // Far deeper than anything accepted: refused by the parser itself, without building the value.
  auto hostile = parse_message(R"({"id":8,"data":)" + nested(10000) + "}");
  ASSERT_EQ(hostile.size(), 1u);
  EXPECT_FALSE(hostile[0].ok);
}

TEST(MessagesParse, NonObjectIsError) {
  for (std::string text : {"[1,2]", "42", "\"op\"", "null", "true", "[{\"op\":\"a\"}]"}) {
    auto lines = parse_message(text);
    ASSERT_EQ(lines.size(), 1u) << text;
    EXPECT_FALSE(lines[0].ok) << text;
    EXPECT_FALSE(lines[0].error.empty()) << text;
  }
}

TEST(MessagesParse, IdNumberOrStringKept) {
  auto lines = parse_message("{\"id\":\"abc\",\"op\":\"x\"}\n{\"id\":2.5,\"op\":\"x\"}\n{\"id\":18446744073709551615,\"op\":\"x\"}\n{\"id\":-3,\"op\":\"x\"}");
  ASSERT_EQ(lines.size(), 4u);
  for (auto& l : lines) EXPECT_TRUE(l.ok) << l.error;
  ASSERT_TRUE(lines[0].cmd.id.is_string());
  EXPECT_EQ(lines[0].cmd.id.as_string(), "abc");
  ASSERT_TRUE(lines[1].cmd.id.is_double());
  EXPECT_EQ(lines[1].cmd.id.as_double(), 2.5);
  ASSERT_TRUE(lines[2].cmd.id.is_uint64());
  EXPECT_EQ(lines[2].cmd.id.as_uint64(), 18446744073709551615ull);
  EXPECT_EQ(lines[3].cmd.id.as_int64(), -3);
  // Echoed back as sent.
  EXPECT_EQ(reply_ok(lines[0].cmd.id), "{\"id\":\"abc\",\"ok\":{}}");
  EXPECT_EQ(reply_ok(lines[3].cmd.id), "{\"id\":-3,\"ok\":{}}");
}

TEST(MessagesParse, IdOfOtherTypeIsError) {
  for (std::string id : {"true", "null", "{}", "[1]", "{\"n\":1}"}) {
    auto lines = parse_message("{\"id\":" + id + ",\"op\":\"ping\"}");
    ASSERT_EQ(lines.size(), 1u) << id;
    EXPECT_FALSE(lines[0].ok) << id;
    EXPECT_FALSE(lines[0].error.empty()) << id;
  }
}

TEST(MessagesParse, MissingOrNonStringOpKeepsId) {
  auto lines = parse_message("{\"id\":7}\n{\"id\":\"x\",\"op\":5}\n{\"op\":null}\n{\"id\":8,\"op\":[\"sub\"]}");
  ASSERT_EQ(lines.size(), 4u);
  for (auto& l : lines) {
    EXPECT_FALSE(l.ok);
    EXPECT_FALSE(l.error.empty());
  }
  ASSERT_TRUE(lines[0].cmd.id.is_int64());
  EXPECT_EQ(lines[0].cmd.id.as_int64(), 7);
  ASSERT_TRUE(lines[1].cmd.id.is_string());
  EXPECT_EQ(lines[1].cmd.id.as_string(), "x");
  EXPECT_TRUE(lines[2].cmd.id.is_null());
  EXPECT_EQ(lines[3].cmd.id.as_int64(), 8);
}

TEST(MessagesParse, EscapedNewlineInsideStringStaysOneLine) {
  auto lines = parse_message("{\"op\":\"pub\",\"data\":\"a\\nb\"}");
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(lines[0].ok);
  EXPECT_EQ(lines[0].cmd.body.at("data").as_string(), "a\nb");
}

// ---------------------------------------------------------------------------------------------------
// Push frames

TEST(MessagesFrames, MsgFrameIsExactPush) {
  core::Publication p{42, R"({"text":"hi","n":[1,2,{"x":null}]})", "alice", 1700000000123};
  auto f = msg_frame("room:1", p);
  ASSERT_TRUE(f);
  auto payload = text_payload(*f);
  expect_compact_line(payload);
  auto o = parse_object(payload);
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"op", "ch", "offset", "data", "from", "ts"}));
  EXPECT_EQ(o.at("op").as_string(), "msg");
  EXPECT_EQ(o.at("ch").as_string(), "room:1");
  EXPECT_EQ(o.at("offset").to_number<std::uint64_t>(), 42u);
  EXPECT_EQ(o.at("data"), json::parse(p.data));
  EXPECT_EQ(o.at("from").as_string(), "alice");
  EXPECT_EQ(o.at("ts").to_number<std::int64_t>(), 1700000000123);
  EXPECT_EQ(payload,
            R"({"op":"msg","ch":"room:1","offset":42,"data":{"text":"hi","n":[1,2,{"x":null}]},"from":"alice","ts":1700000000123})");
}

TEST(MessagesFrames, MsgFrameEscapesStrings) {
  core::Publication p{1, "\"s\"", kOdd, 5};
  auto f = msg_frame(kOdd, p);
  auto payload = text_payload(*f);
  expect_compact_line(payload);
  auto o = parse_object(payload);
  EXPECT_EQ(o.at("ch").as_string(), kOdd);
  EXPECT_EQ(o.at("from").as_string(), kOdd);
  EXPECT_EQ(o.at("data").as_string(), "s");
}

TEST(MessagesFrames, MsgFrameLargePayloadHeaders) {
  for (std::size_t n : {100u, 200u, 70000u}) {
    core::Publication p{3, "\"" + std::string(n, 'd') + "\"", "u", 0};
    auto f = msg_frame("c", p);
    auto o = parse_object(text_payload(*f));
    EXPECT_EQ(o.at("data").as_string().size(), n);
  }
}

TEST(MessagesFrames, PresenceFrameIsExactPush) {
  core::Member m{7, "sess-1", "bob", R"({"name":"Bob","age":3})"};
  for (std::string op : {"join", "leave"}) {
    auto f = presence_frame("lobby", op, m);
    ASSERT_TRUE(f);
    auto payload = text_payload(*f);
    expect_compact_line(payload);
    auto o = parse_object(payload);
    EXPECT_EQ(keys_of(o), (std::set<std::string>{"op", "ch", "session", "user", "info"}));
    EXPECT_EQ(o.at("op").as_string(), op);
    EXPECT_EQ(o.at("ch").as_string(), "lobby");
    EXPECT_EQ(o.at("session").as_string(), "sess-1");
    EXPECT_EQ(o.at("user").as_string(), "bob");
    EXPECT_EQ(o.at("info"), json::parse(m.info));
  }
}

TEST(MessagesFrames, PresenceFrameEscapesAndNullInfo) {
  core::Member m{1, kOdd, kOdd, "null"};
  auto payload = text_payload(*presence_frame(kOdd, "join", m));
  expect_compact_line(payload);
  auto o = parse_object(payload);
  EXPECT_EQ(o.at("ch").as_string(), kOdd);
  EXPECT_EQ(o.at("session").as_string(), kOdd);
  EXPECT_EQ(o.at("user").as_string(), kOdd);
  EXPECT_TRUE(o.at("info").is_null());
}

TEST(MessagesFrames, FrameEncoderUsesSameEncoding) {
  auto enc = frame_encoder();
  ASSERT_TRUE(enc.publication);
  ASSERT_TRUE(enc.presence);
  core::Publication p{9, "[1]", "x", 2};
  EXPECT_EQ(enc.publication("c", p)->view(), msg_frame("c", p)->view());
  core::Member m{2, "s", "u", "{}"};
  EXPECT_EQ(enc.presence("c", "leave", m)->view(), presence_frame("c", "leave", m)->view());
}

// ---------------------------------------------------------------------------------------------------
// Replies, hello, bye

TEST(MessagesReplies, HistoryBodyStopsAtItsByteLimitAndSaysSo) {
  core::HistoryResult h;
  h.offset = 3;
  h.epoch = "e";
  for (std::uint64_t o = 1; o <= 3; ++o)
    h.pubs.push_back(std::make_shared<const core::Publication>(core::Publication{o, "\"" + std::string(20, 'x') + "\"", "u", 7}));
  const std::string whole = history_body(h, SIZE_MAX);
  EXPECT_EQ(boost::json::parse(whole).at("pubs").as_array().size(), 3u);
  EXPECT_EQ(whole.find("truncated"), std::string::npos);
  EXPECT_EQ(history_body(h, whole.size()), whole);  // exactly enough
  const std::size_t bare = history_body(h, 0).size();  // no publication at all: only this may exceed a limit
  for (std::size_t max = 30; max < whole.size(); ++max) {
    const std::string cut = history_body(h, max);
    EXPECT_LE(cut.size(), std::max(max, bare)) << max;
    const auto v = boost::json::parse(cut).as_object();
    EXPECT_TRUE(v.at("truncated").as_bool()) << max;
    const auto& pubs = v.at("pubs").as_array();
    ASSERT_LT(pubs.size(), 3u);
    for (std::size_t i = 0; i < pubs.size(); ++i) EXPECT_EQ(pubs[i].at("offset").as_int64(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(v.at("offset").as_int64(), 3);
  }
}

TEST(MessagesReplies, ReplyOk) {
  EXPECT_EQ(reply_ok(json::value(5)), "{\"id\":5,\"ok\":{}}");
  EXPECT_EQ(reply_ok(json::value(nullptr)), "{\"ok\":{}}");
  EXPECT_EQ(reply_ok(json::value("a\"b"), R"({"offset":3})"), R"({"id":"a\"b","ok":{"offset":3}})");
  auto o = parse_object(reply_ok(json::value(12), R"({"offset":4,"epoch":"e","recovered":true,"pubs":[]})"));
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"id", "ok"}));
  EXPECT_EQ(o.at("id").as_int64(), 12);
  EXPECT_EQ(o.at("ok").at("epoch").as_string(), "e");
  EXPECT_EQ(o.at("ok").at("recovered").as_bool(), true);
}

TEST(MessagesReplies, ReplyError) {
  auto s = reply_error(json::value(3), Code::not_found, "no such thing");
  EXPECT_EQ(s, R"({"id":3,"error":{"code":"not_found","message":"no such thing"}})");
  auto o = parse_object(reply_error(json::value(nullptr), Code::bad_request, kOdd));
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"error"}));
  EXPECT_EQ(keys_of(o.at("error").as_object()), (std::set<std::string>{"code", "message"}));
  EXPECT_EQ(o.at("error").at("code").as_string(), "bad_request");
  EXPECT_EQ(o.at("error").at("message").as_string(), kOdd);
}

TEST(MessagesReplies, ReplyErrorExtraMembers) {
  auto s = reply_error(json::value("r1"), Code::conflict, "version mismatch", R"("version":7,"doc":{"a":1})");
  expect_compact_line(s);
  auto o = parse_object(s);
  EXPECT_EQ(o.at("id").as_string(), "r1");
  const auto& e = o.at("error").as_object();
  EXPECT_EQ(keys_of(e), (std::set<std::string>{"code", "message", "version", "doc"}));
  EXPECT_EQ(e.at("code").as_string(), "conflict");
  EXPECT_EQ(e.at("message").as_string(), "version mismatch");
  EXPECT_EQ(e.at("version").as_int64(), 7);
  EXPECT_EQ(e.at("doc").at("a").as_int64(), 1);
}

TEST(MessagesReplies, ErrorCodeNames) {
  const std::pair<Code, const char*> codes[] = {
      {Code::bad_request, "bad_request"}, {Code::unknown_op, "unknown_op"},   {Code::not_found, "not_found"},
      {Code::permission_denied, "permission_denied"}, {Code::conflict, "conflict"}, {Code::invalid, "invalid"},
      {Code::too_large, "too_large"},     {Code::rate_limited, "rate_limited"}, {Code::limit, "limit"},
      {Code::unavailable, "unavailable"}, {Code::internal, "internal"}};
  for (auto [code, name] : codes) {
    auto o = parse_object(reply_error(json::value(1), code, "m"));
    EXPECT_EQ(o.at("error").at("code").as_string(), name);
  }
}

TEST(MessagesReplies, Hello) {
  auto s = hello("sess-9", "anon-1234");
  expect_compact_line(s);
  auto o = parse_object(s);
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"op", "session", "user", "server"}));
  EXPECT_EQ(o.at("op").as_string(), "hello");
  EXPECT_EQ(o.at("session").as_string(), "sess-9");
  EXPECT_EQ(o.at("user").as_string(), "anon-1234");
  EXPECT_EQ(o.at("server").as_string(), std::string("rtsync/") + RTSYNC_VERSION);
  EXPECT_NE(std::string(RTSYNC_VERSION), "");
  EXPECT_EQ(parse_object(hello("s", kOdd)).at("user").as_string(), kOdd);
}

TEST(MessagesReplies, Bye) {
  auto s = bye(1001, "server shutting down");
  EXPECT_EQ(s, R"({"op":"bye","code":1001,"reason":"server shutting down"})");
  auto o = parse_object(bye(4001, kOdd));
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"op", "code", "reason"}));
  EXPECT_EQ(o.at("op").as_string(), "bye");
  EXPECT_EQ(o.at("code").as_int64(), 4001);
  EXPECT_EQ(o.at("reason").as_string(), kOdd);
}

// ---------------------------------------------------------------------------------------------------
// Publications

TEST(MessagesPublications, AppendPublications) {
  std::string out = "prefix:";
  append_publications(out, {});
  EXPECT_EQ(out, "prefix:[]");

  out.clear();
  append_publications(out, {pub(4, "{\"a\":1}", "alice", 100), pub(5, "null", kOdd, -1)});
  expect_compact_line(out);
  json::value v = json::parse(out);
  ASSERT_TRUE(v.is_array());
  const auto& arr = v.as_array();
  ASSERT_EQ(arr.size(), 2u);
  const auto& a = arr[0].as_object();
  EXPECT_EQ(keys_of(a), (std::set<std::string>{"offset", "data", "from", "ts"}));
  EXPECT_EQ(a.at("offset").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(a.at("data").at("a").as_int64(), 1);
  EXPECT_EQ(a.at("from").as_string(), "alice");
  EXPECT_EQ(a.at("ts").as_int64(), 100);
  const auto& b = arr[1].as_object();
  EXPECT_EQ(b.at("offset").to_number<std::uint64_t>(), 5u);
  EXPECT_TRUE(b.at("data").is_null());
  EXPECT_EQ(b.at("from").as_string(), kOdd);
  EXPECT_EQ(b.at("ts").as_int64(), -1);
}

TEST(MessagesPublications, AppendPublicationExact) {
  std::string out;
  append_publication(out, core::Publication{1, "[true]", "u", 9});
  EXPECT_EQ(out, R"({"offset":1,"data":[true],"from":"u","ts":9})");
  // Appends, never replaces.
  append_publication(out, core::Publication{2, "0", "v", 10});
  EXPECT_EQ(out, R"({"offset":1,"data":[true],"from":"u","ts":9}{"offset":2,"data":0,"from":"v","ts":10})");
}

TEST(MessagesPublications, InsideAnOkReply) {
  std::string body = "{\"offset\":2,\"pubs\":";
  append_publications(body, {pub(1, "1", "a", 1), pub(2, "2", "b", 2)});
  body += "}";
  auto o = parse_object(reply_ok(json::value(1), body));
  EXPECT_EQ(o.at("ok").at("pubs").as_array().size(), 2u);
  EXPECT_EQ(o.at("ok").at("pubs").as_array()[1].at("from").as_string(), "b");
}

}  // namespace
}  // namespace rtsync::protocol
