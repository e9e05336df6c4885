// PubNub App Context's request side (service/pubnub_objects.hpp) and its records as served
// (store/store_objects.hpp): which body fields a set takes and refuses, `include`, and a record with only
// what a request includes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

#include "service/pubnub_objects.hpp"
#include "store/store_objects.hpp"

namespace rtsync::service {
namespace {

namespace json = boost::json;
using store::ObjectKind;

std::optional<json::object> fields(ObjectKind kind, const char* body, std::string* why = nullptr) {
  std::string error;
  auto f = object_fields(kind, json::parse(body), error);
  if (why) *why = error;
  return f;
}

TEST(PubnubObjects, ASetTakesTheKindsFieldsAndIgnoresOthers) {
  auto uuid = fields(ObjectKind::uuid, R"({"name":"Ann","email":null,"profileUrl":"u","externalId":"e",
                                          "status":"on","type":"t","custom":{"a":1,"b":"x","c":true},"id":"ignored",
                                          "description":"not a uuid's"})");
  ASSERT_TRUE(uuid);
  EXPECT_EQ(json::value(*uuid), json::parse(R"({"name":"Ann","email":null,"profileUrl":"u","externalId":"e",
                                               "status":"on","type":"t","custom":{"a":1,"b":"x","c":true}})"));
  auto channel = fields(ObjectKind::channel, R"({"name":"Room","description":"d","email":"ignored","custom":null})");
  ASSERT_TRUE(channel);
  EXPECT_EQ(json::value(*channel), json::parse(R"({"name":"Room","description":"d","custom":null})"));
}

TEST(PubnubObjects, WrongTypesAreRefused) {
  std::string why;
  EXPECT_FALSE(fields(ObjectKind::uuid, R"({"name":5})", &why));
  EXPECT_EQ(why, "name must be a string");
  EXPECT_FALSE(fields(ObjectKind::uuid, R"({"custom":{"deep":{"no":1}}})", &why));
  EXPECT_NE(why.find("\"deep\""), std::string::npos) << why;
  EXPECT_FALSE(fields(ObjectKind::channel, R"({"custom":[1]})"));
  EXPECT_FALSE(fields(ObjectKind::channel, R"({"status":{}})"));
  EXPECT_FALSE(fields(ObjectKind::uuid, "[]"));
  EXPECT_FALSE(membership_fields(json::parse(R"({"type":1})").as_object(), why));
  EXPECT_TRUE(membership_fields(json::parse(R"({"channel":{"id":"c"},"status":"x"})").as_object(), why));
}

TEST(PubnubObjects, IncludeAsksForFieldsOfTheRecordAndOfTheOtherSide) {
  const Include inc = parse_include("custom,channel,channel.custom,uuid.type,totalCount", "channel");
  EXPECT_TRUE(inc.custom);
  EXPECT_FALSE(inc.status);
  EXPECT_TRUE(inc.other);
  EXPECT_TRUE(inc.other_custom);
  EXPECT_FALSE(inc.other_type) << "uuid.type is for members";
  const Include members = parse_include("status,uuid.type", "uuid");
  EXPECT_TRUE(members.status);
  EXPECT_FALSE(members.other);
  EXPECT_TRUE(members.other_type);
}

TEST(PubnubObjects, ARecordWithWhatTheRequestIncludes) {
  store::AppObject room{"room", R"({"name":"Room","custom":{"k":1},"type":"public"})", "2024-01-01T00:00:00.000000Z", "E"};
  const json::object served = store::served_object(ObjectKind::channel, room);
  EXPECT_EQ(json::value(served), json::parse(R"({"id":"room","name":"Room","description":null,"custom":{"k":1},
      "status":null,"type":"public","updated":"2024-01-01T00:00:00.000000Z","eTag":"E"})"));
  EXPECT_EQ(json::value(included(served, parse_include("type", ""), "")),
            json::parse(R"({"id":"room","name":"Room","description":null,"type":"public",
                            "updated":"2024-01-01T00:00:00.000000Z","eTag":"E"})"));

  store::Membership m{"ann", "room", R"({"custom":{"role":"x"},"status":"active"})", "2024-01-02T00:00:00.000000Z", "M"};
  const json::object listed = store::served_membership(m, true, room);
  EXPECT_EQ(json::value(included(listed, parse_include("status,channel.type", "channel"), "channel")),
            json::parse(R"({"channel":{"id":"room","type":"public"},"status":"active",
                            "updated":"2024-01-02T00:00:00.000000Z","eTag":"M"})"));
  const json::object full = included(listed, parse_include("custom,channel,channel.custom", "channel"), "channel");
  EXPECT_EQ(full.at("channel").at("name"), "Room");
  EXPECT_EQ(full.at("channel").at("custom"), json::parse(R"({"k":1})"));
  EXPECT_FALSE(full.at("channel").as_object().contains("type"));
  EXPECT_EQ(full.at("custom"), json::parse(R"({"role":"x"})"));
  const json::object none = store::served_membership(m, false, std::nullopt);
  EXPECT_EQ(none.at("uuid"), json::parse(R"({"id":"ann"})")) << "a member without metadata: its id";
  EXPECT_EQ(json::value(store::without_nulls(served)),
            json::parse(R"({"id":"room","name":"Room","custom":{"k":1},"type":"public",
                            "updated":"2024-01-01T00:00:00.000000Z","eTag":"E"})"));
}

}  // namespace
}  // namespace rtsync::service
