// Unit tests of the collection rules (service/collections.cpp, `prepare_write`; docs/protocol.md §6): the
// write rule, per_user and `me`, ids in the data, invalid ids, `_v` as the expected version, `_owner`, the
// other reserved names, tally fields and values, the 64 KiB document limit, and what is carried into the
// store::DocWrite (owner_only, owner_audience, tally, history_size, key).
#include "service/collections.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rtsync::protocol {
// Readable codes in failure messages.
[[maybe_unused]] static void PrintTo(Code c, std::ostream* os) { *os << to_string(c); }
}  // namespace rtsync::protocol

namespace rtsync::service {
namespace {

namespace json = boost::json;
using config::CollectionConfig;
using protocol::Code;
using protocol::Error;
using store::DocWrite;
using Op = DocWrite::Op;

const Caller alice{"anon-aaaaaaaaaaaaaaaa", true};
const Caller backend{"rtsync:api", false, nullptr, nullptr, true};  // the Server API
constexpr std::size_t kHistory = 1000;

CollectionConfig all_rules() { return CollectionConfig{}; }  // read all, write all

CollectionConfig owner_rules() {
  CollectionConfig c;
  c.read = CollectionConfig::Read::owner;
  c.write = CollectionConfig::Write::owner;
  return c;
}

CollectionConfig none_rules() {
  CollectionConfig c;
  c.write = CollectionConfig::Write::none;
  return c;
}

CollectionConfig per_user_rules() {
  CollectionConfig c = owner_rules();
  c.per_user = true;
  return c;
}

CollectionConfig votes_rules() {
  CollectionConfig c = per_user_rules();
  c.tally = {{"q1", {0, 1, 2, 3}}, {"q2", {0, 1, 2, 3}}};
  return c;
}

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

WriteRequest request(Op op, std::string id, std::string_view data_json = "{}",
                     std::optional<std::uint64_t> v = std::nullopt, std::string key = "") {
  WriteRequest r;
  r.op = op;
  r.collection = "things";
  r.id = std::move(id);
  r.data = json::parse(data_json).as_object();
  r.expected_v = v;
  r.key = std::move(key);
  return r;
}

// The DocWrite `prepare_write` produces; a test failure (and an empty DocWrite) if it returned an error.
DocWrite ok_write(const CollectionConfig& rules, WriteRequest req, const Caller& caller = alice,
                  std::size_t history = kHistory) {
  auto r = prepare_write(rules, history, caller, std::move(req));
  if (auto* e = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "expected success, got " << protocol::to_string(e->code) << ": " << e->message;
    return DocWrite{};
  }
  return std::get<DocWrite>(r);
}

// The error code `prepare_write` returns; a test failure (and `internal`) if it succeeded.
Code error_code(const CollectionConfig& rules, WriteRequest req, const Caller& caller = alice) {
  auto r = prepare_write(rules, kHistory, caller, std::move(req));
  if (auto* e = std::get_if<Error>(&r)) {
    EXPECT_FALSE(e->message.empty()) << "errors carry a message";
    return e->code;
  }
  ADD_FAILURE() << "expected an error, got a DocWrite for id \"" << std::get<DocWrite>(r).id << "\"";
  return Code::internal;
}

// ---------------------------------------------------------------------------------------------------
// write = "none" / "owner" / "all"

TEST(CollRulesWrite, NoneDeniesEveryWrite) {
  for (Op op : {Op::create, Op::update, Op::patch, Op::remove}) {
    const std::string id = op == Op::create ? "" : "doc1";
    EXPECT_EQ(error_code(none_rules(), request(op, id, R"({"a":1})")), Code::permission_denied)
        << "op " << static_cast<int>(op);
  }
}

TEST(CollRulesWrite, NoneDeniesEvenAPerUserOwnDocument) {
  CollectionConfig c = none_rules();
  c.per_user = true;
  EXPECT_EQ(error_code(c, request(Op::create, "", R"({"a":1})")), Code::permission_denied);
  EXPECT_EQ(error_code(c, request(Op::update, "me", R"({"a":1})")), Code::permission_denied);
}

// The Server API (Caller::server): past every per-user rule, still through validation.
TEST(CollRulesServer, WritesWhereClientsMayNot) {
  DocWrite w = ok_write(none_rules(), request(Op::update, "doc1", R"({"a":1})"), backend);
  EXPECT_EQ(w.id, "doc1");
  EXPECT_FALSE(w.owner_only);
  EXPECT_FALSE(ok_write(owner_rules(), request(Op::patch, "doc1", R"({"a":1})"), backend).owner_only)
      << "write = owner does not bind the backend";
}

TEST(CollRulesServer, PerUserDocumentsAreNamedAndOwnedByTheirUser) {
  DocWrite w = ok_write(per_user_rules(), request(Op::update, "bob", R"({"a":1})"), backend);
  EXPECT_EQ(w.id, "bob");
  EXPECT_EQ(w.user, "bob") << "created on the user's behalf: the user owns it";
  EXPECT_EQ(ok_write(owner_rules(), request(Op::create, "", R"({"a":1})"), backend).user, "rtsync:api");
  EXPECT_EQ(error_code(per_user_rules(), request(Op::update, "me", R"({"a":1})"), backend), Code::bad_request);
  EXPECT_EQ(error_code(per_user_rules(), request(Op::create, "", R"({"a":1})"), backend), Code::bad_request);
  EXPECT_EQ(error_code(all_rules(), request(Op::create, "", R"({"id":"me"})"), backend), Code::bad_request);
}

TEST(CollRulesServer, ValuesAreStillValidated) {
  EXPECT_EQ(error_code(votes_rules(), request(Op::update, "bob", R"({"q1":9})"), backend), Code::invalid);
  EXPECT_EQ(error_code(votes_rules(), request(Op::update, "bob", R"({"zz":1})"), backend), Code::invalid);
  EXPECT_EQ(error_code(all_rules(), request(Op::update, "doc1", R"({"_secret":1})"), backend), Code::invalid);
  EXPECT_EQ(ok_write(votes_rules(), request(Op::update, "bob", R"({"q1":2})"), backend).data, obj(R"({"q1":2})"));
}

TEST(CollRulesWrite, OwnerAndAllAcceptACreate) {
  EXPECT_EQ(ok_write(owner_rules(), request(Op::create, "", R"({"a":1})")).data, obj(R"({"a":1})"));
  EXPECT_EQ(ok_write(all_rules(), request(Op::create, "", R"({"a":1})")).data, obj(R"({"a":1})"));
}

TEST(CollRulesWrite, UpdateWithoutIdIsBadRequest) {
  for (Op op : {Op::update, Op::patch, Op::remove})
    EXPECT_EQ(error_code(all_rules(), request(op, "", R"({"a":1})")), Code::bad_request);
}

// ---------------------------------------------------------------------------------------------------
// per_user and `me`

TEST(CollRulesPerUser, MeResolvesToTheCaller) {
  for (Op op : {Op::update, Op::patch, Op::remove}) {
    DocWrite w = ok_write(per_user_rules(), request(op, "me", R"({"a":1})"));
    EXPECT_EQ(w.id, alice.user);
    EXPECT_EQ(w.user, alice.user);
    EXPECT_EQ(w.op, op);
  }
}

TEST(CollRulesPerUser, CreateWithoutIdGetsTheUserId) {
  DocWrite w = ok_write(per_user_rules(), request(Op::create, "", R"({"a":1})"));
  EXPECT_EQ(w.id, alice.user);
  EXPECT_EQ(w.data, obj(R"({"a":1})"));
}

TEST(CollRulesPerUser, CreateWithOwnIdOrMeInTheData) {
  DocWrite own = ok_write(per_user_rules(), request(Op::create, "", R"({"id":"anon-aaaaaaaaaaaaaaaa","a":1})"));
  EXPECT_EQ(own.id, alice.user);
  EXPECT_FALSE(own.data.contains("id")) << "id is taken out of the attributes";
  DocWrite me = ok_write(per_user_rules(), request(Op::create, "", R"({"id":"me","a":1})"));
  EXPECT_EQ(me.id, alice.user);
  EXPECT_FALSE(me.data.contains("id"));
}

TEST(CollRulesPerUser, OwnIdByNameIsAccepted) {
  EXPECT_EQ(ok_write(per_user_rules(), request(Op::update, alice.user, R"({"a":2})")).id, alice.user);
}

TEST(CollRulesPerUser, AnotherUsersIdIsDenied) {
  const std::string bob = "anon-bbbbbbbbbbbbbbbb";
  for (Op op : {Op::update, Op::patch, Op::remove})
    EXPECT_EQ(error_code(per_user_rules(), request(op, bob, R"({"a":1})")), Code::permission_denied)
        << "op " << static_cast<int>(op);
  EXPECT_EQ(error_code(per_user_rules(), request(Op::create, "", R"({"id":"anon-bbbbbbbbbbbbbbbb","a":1})")),
            Code::permission_denied);
}

TEST(CollRulesPerUser, MeInANonPerUserCollectionIsBadRequest) {
  for (Op op : {Op::update, Op::patch, Op::remove}) {
    EXPECT_EQ(error_code(all_rules(), request(op, "me", R"({"a":1})")), Code::bad_request);
    EXPECT_EQ(error_code(owner_rules(), request(op, "me", R"({"a":1})")), Code::bad_request);
  }
}

// ---------------------------------------------------------------------------------------------------
// ids

TEST(CollRulesIds, CreateTakesTheIdFromTheData) {
  DocWrite w = ok_write(all_rules(), request(Op::create, "", R"({"id":"my-doc.1","a":1})"));
  EXPECT_EQ(w.id, "my-doc.1");
  EXPECT_EQ(w.data, obj(R"({"a":1})"));
}

TEST(CollRulesIds, CreateWithoutIdLeavesItToTheStore) {
  EXPECT_EQ(ok_write(all_rules(), request(Op::create, "", R"({"a":1})")).id, "");
}

TEST(CollRulesIds, MatchingIdInTheDataIsAcceptedAndRemoved) {
  for (Op op : {Op::update, Op::patch}) {
    DocWrite w = ok_write(all_rules(), request(op, "doc1", R"({"id":"doc1","a":1})"));
    EXPECT_EQ(w.id, "doc1");
    EXPECT_EQ(w.data, obj(R"({"a":1})"));
  }
}

TEST(CollRulesIds, MismatchingIdInTheDataIsInvalid) {
  for (Op op : {Op::update, Op::patch})
    EXPECT_EQ(error_code(all_rules(), request(op, "doc1", R"({"id":"doc2","a":1})")), Code::invalid);
}

TEST(CollRulesIds, NonStringIdInTheDataIsInvalid) {
  EXPECT_EQ(error_code(all_rules(), request(Op::create, "", R"({"id":5})")), Code::invalid);
  EXPECT_EQ(error_code(all_rules(), request(Op::update, "doc1", R"({"id":null})")), Code::invalid);
}

TEST(CollRulesIds, InvalidIdsAreBadRequest) {
  const std::vector<std::string> bad = {"has space", "a/b", "a?b", "é", std::string(129, 'x'), "a\"b", "a#b"};
  for (const auto& id : bad) {
    EXPECT_EQ(error_code(all_rules(), request(Op::update, id, R"({"a":1})")), Code::bad_request) << id;
    json::object data{{"id", json::string_view(id)}, {"a", 1}};
    WriteRequest create = request(Op::create, "");
    create.data = data;
    EXPECT_EQ(error_code(all_rules(), std::move(create)), Code::bad_request) << "create with id " << id;
  }
}

TEST(CollRulesIds, EmptyIdInCreateDataIsBadRequest) {
  // docs/protocol.md §6: "create with an id in data uses it (1-128 characters …)": "" is not such an id.
  WriteRequest empty_id = request(Op::create, "");
  empty_id.data = json::object{{"id", ""}, {"a", 1}};
  EXPECT_EQ(error_code(all_rules(), std::move(empty_id)), Code::bad_request) << "create with an empty id";
}

TEST(CollRulesIds, TheWholeIdAlphabetUpTo128IsValid) {
  const std::string longest(128, 'z');
  EXPECT_EQ(ok_write(all_rules(), request(Op::update, longest, "{}")).id, longest);
  const std::string alphabet = "AZaz09_.:@-";
  EXPECT_EQ(ok_write(all_rules(), request(Op::patch, alphabet, "{}")).id, alphabet);
}

// ---------------------------------------------------------------------------------------------------
// _v, _owner and the other reserved names

TEST(CollRulesReserved, UnderscoreVIsTheExpectedVersionWhenVIsAbsent) {
  for (Op op : {Op::update, Op::patch}) {
    DocWrite w = ok_write(all_rules(), request(op, "doc1", R"({"_v":3,"a":1})"));
    ASSERT_TRUE(w.expected_v.has_value());
    EXPECT_EQ(*w.expected_v, 3u);
    EXPECT_EQ(w.data, obj(R"({"a":1})")) << "_v is not stored as an attribute";
  }
}

TEST(CollRulesReserved, VWinsOverUnderscoreV) {
  DocWrite w = ok_write(all_rules(), request(Op::update, "doc1", R"({"_v":3,"a":1})", 7));
  ASSERT_TRUE(w.expected_v.has_value());
  EXPECT_EQ(*w.expected_v, 7u);
  EXPECT_FALSE(w.data.contains("_v"));
}

TEST(CollRulesReserved, NoVersionMeansUnconditional) {
  EXPECT_FALSE(ok_write(all_rules(), request(Op::update, "doc1", R"({"a":1})")).expected_v.has_value());
  DocWrite given = ok_write(all_rules(), request(Op::remove, "doc1", "{}", 4));
  ASSERT_TRUE(given.expected_v.has_value());
  EXPECT_EQ(*given.expected_v, 4u);
}

TEST(CollRulesReserved, MalformedUnderscoreVIsInvalid) {
  for (const char* data : {R"({"_v":"3"})", R"({"_v":-1})", R"({"_v":1.5})", R"({"_v":null})", R"({"_v":true})"})
    EXPECT_EQ(error_code(all_rules(), request(Op::update, "doc1", data)), Code::invalid) << data;
}

TEST(CollRulesReserved, OwnOwnerIsAcceptedAndRemoved) {
  DocWrite w = ok_write(all_rules(), request(Op::update, "doc1",
                                             R"({"_owner":"anon-aaaaaaaaaaaaaaaa","_v":2,"id":"doc1","a":1})"));
  EXPECT_EQ(w.data, obj(R"({"a":1})"));
  EXPECT_EQ(w.id, "doc1");
  ASSERT_TRUE(w.expected_v.has_value());
  EXPECT_EQ(*w.expected_v, 2u);
  DocWrite c = ok_write(all_rules(), request(Op::create, "", R"({"_owner":"anon-aaaaaaaaaaaaaaaa","a":1})"));
  EXPECT_EQ(c.data, obj(R"({"a":1})"));
}

TEST(CollRulesReserved, AnOwnerSentBackGoesToTheStoreToCheck) {
  // Whose document it is, only the store knows: the rules pass _owner on (see StoreCollectionsTest).
  DocWrite w = ok_write(all_rules(), request(Op::update, "doc1", R"({"_owner":"anon-bbbbbbbbbbbbbbbb","a":1})"));
  EXPECT_EQ(w.data, obj(R"({"a":1})"));
  ASSERT_TRUE(w.echo_owner.has_value());
  EXPECT_EQ(*w.echo_owner, "anon-bbbbbbbbbbbbbbbb");
  EXPECT_TRUE(w.upsert);
  EXPECT_FALSE(ok_write(all_rules(), request(Op::patch, "doc1", R"({"a":1})")).upsert);
  EXPECT_FALSE(ok_write(all_rules(), request(Op::patch, "doc1", R"({"a":1})")).echo_owner.has_value());
  EXPECT_EQ(error_code(all_rules(), request(Op::patch, "doc1", R"({"_owner":7})")), Code::invalid);
  EXPECT_EQ(error_code(all_rules(), request(Op::patch, "doc1", R"({"_owner":null})")), Code::invalid);
}

TEST(CollRulesReserved, OtherUnderscoreNamesAreInvalid) {
  for (const char* data : {R"({"_x":1})", R"({"_":1})", R"({"_id":"doc1"})", R"({"a":1,"_created":2})",
                           R"({"__proto__":{}})"}) {
    EXPECT_EQ(error_code(all_rules(), request(Op::create, "", data)), Code::invalid) << data;
    EXPECT_EQ(error_code(all_rules(), request(Op::patch, "doc1", data)), Code::invalid) << data;
  }
}

TEST(CollRulesReserved, UnderscoreInsideANameIsFine) {
  EXPECT_EQ(ok_write(all_rules(), request(Op::create, "", R"({"a_b":1,"x_":2})")).data,
            obj(R"({"a_b":1,"x_":2})"));
}

TEST(CollRulesReserved, AttributeNameLength) {
  EXPECT_EQ(error_code(all_rules(), request(Op::create, "", R"({"":1})")), Code::invalid);
  json::object too_long{{std::string(129, 'n'), 1}};
  WriteRequest r = request(Op::create, "");
  r.data = too_long;
  EXPECT_EQ(error_code(all_rules(), std::move(r)), Code::invalid);
  json::object longest{{std::string(128, 'n'), 1}};
  WriteRequest ok = request(Op::create, "");
  ok.data = longest;
  EXPECT_EQ(ok_write(all_rules(), std::move(ok)).data, longest);
}

// ---------------------------------------------------------------------------------------------------
// Tally collections

TEST(CollRulesTally, DeclaredFieldsWithAllowedValuesAreAccepted) {
  DocWrite w = ok_write(votes_rules(), request(Op::create, "", R"({"q1":0,"q2":3})"));
  EXPECT_EQ(w.data, obj(R"({"q1":0,"q2":3})"));
  EXPECT_EQ(ok_write(votes_rules(), request(Op::update, "me", R"({"q2":1})")).data, obj(R"({"q2":1})"))
      << "a missing field is allowed (it counts nowhere)";
  EXPECT_EQ(ok_write(votes_rules(), request(Op::create, "", "{}")).data, json::object{});
}

TEST(CollRulesTally, UndeclaredFieldIsInvalid) {
  for (Op op : {Op::create, Op::update, Op::patch}) {
    const std::string id = op == Op::create ? "" : "me";
    EXPECT_EQ(error_code(votes_rules(), request(op, id, R"({"q1":1,"q3":1})")), Code::invalid);
    EXPECT_EQ(error_code(votes_rules(), request(op, id, R"({"comment":"hi"})")), Code::invalid);
  }
}

TEST(CollRulesTally, ValueOutsideTheAllowedSetIsInvalid) {
  for (const char* data : {R"({"q1":4})", R"({"q1":-1})", R"({"q2":100})", R"({"q1":1,"q2":9})"}) {
    EXPECT_EQ(error_code(votes_rules(), request(Op::create, "", data)), Code::invalid) << data;
    EXPECT_EQ(error_code(votes_rules(), request(Op::update, "me", data)), Code::invalid) << data;
    EXPECT_EQ(error_code(votes_rules(), request(Op::patch, "me", data)), Code::invalid) << data;
  }
}

TEST(CollRulesTally, NonIntegerValuesAreInvalid) {
  for (const char* data : {R"({"q1":"1"})", R"({"q1":1.5})", R"({"q1":true})", R"({"q1":[1]})", R"({"q1":{"v":1}})",
                           R"({"q1":18446744073709551615})"}) {
    EXPECT_EQ(error_code(votes_rules(), request(Op::create, "", data)), Code::invalid) << data;
    EXPECT_EQ(error_code(votes_rules(), request(Op::patch, "me", data)), Code::invalid) << data;
  }
}

TEST(CollRulesTally, NullOnlyInAPatch) {
  DocWrite w = ok_write(votes_rules(), request(Op::patch, "me", R"({"q1":null,"q2":2})"));
  ASSERT_TRUE(w.data.contains("q1"));
  EXPECT_TRUE(w.data.at("q1").is_null()) << "the null reaches the store, which removes the answer";
  EXPECT_EQ(w.data.at("q2"), json::value(2));
  EXPECT_EQ(error_code(votes_rules(), request(Op::create, "", R"({"q1":null})")), Code::invalid);
  EXPECT_EQ(error_code(votes_rules(), request(Op::update, "me", R"({"q1":null})")), Code::invalid);
  EXPECT_EQ(error_code(votes_rules(), request(Op::patch, "me", R"({"q3":null})")), Code::invalid)
      << "null does not excuse an undeclared field";
}

TEST(CollRulesTally, ReservedNamesAreCheckedBeforeFields) {
  DocWrite w = ok_write(votes_rules(), request(Op::update, "me", R"({"_v":2,"id":"me","q1":1})"));
  EXPECT_EQ(w.data, obj(R"({"q1":1})"));
  ASSERT_TRUE(w.expected_v.has_value());
  EXPECT_EQ(*w.expected_v, 2u);
  EXPECT_EQ(error_code(votes_rules(), request(Op::update, "me", R"({"_x":1,"q1":1})")), Code::invalid);
}

TEST(CollRulesTally, ADeleteCarriesNoAttributes) {
  DocWrite w = ok_write(votes_rules(), request(Op::remove, "me", "{}", 3));
  EXPECT_EQ(w.id, alice.user);
  EXPECT_TRUE(w.data.empty());
  ASSERT_TRUE(w.expected_v.has_value());
  EXPECT_EQ(*w.expected_v, 3u);
}

// ---------------------------------------------------------------------------------------------------
// Size

TEST(CollRulesSize, DocumentsOver64KiBAreTooLarge) {
  const std::string text(70 * 1024, 'x');
  WriteRequest big = request(Op::create, "");
  big.data["text"] = json::string_view(text);
  EXPECT_EQ(error_code(all_rules(), std::move(big)), Code::too_large);
  WriteRequest big_patch = request(Op::patch, "doc1");
  const std::string part(700, 'y');
  for (int i = 0; i < 100; ++i) big_patch.data["f" + std::to_string(i)] = json::string_view(part);
  EXPECT_EQ(error_code(all_rules(), std::move(big_patch)), Code::too_large);
}

TEST(CollRulesSize, DocumentsUnder64KiBAreAccepted) {
  WriteRequest fits = request(Op::create, "");
  const std::string text(60 * 1024, 'x');
  fits.data["text"] = json::string_view(text);
  EXPECT_EQ(ok_write(all_rules(), std::move(fits)).data.at("text").as_string().size(), 60u * 1024);
}

// ---------------------------------------------------------------------------------------------------
// What the DocWrite carries

TEST(CollRulesCarry, OwnerOnlyFollowsWriteOwner) {
  EXPECT_TRUE(ok_write(owner_rules(), request(Op::update, "doc1", "{}")).owner_only);
  EXPECT_FALSE(ok_write(all_rules(), request(Op::update, "doc1", "{}")).owner_only);
}

TEST(CollRulesCarry, OwnerAudienceFollowsReadOwner) {
  EXPECT_TRUE(ok_write(owner_rules(), request(Op::create, "", "{}")).owner_audience);
  EXPECT_FALSE(ok_write(all_rules(), request(Op::create, "", "{}")).owner_audience);
  CollectionConfig read_owner_write_all;
  read_owner_write_all.read = CollectionConfig::Read::owner;
  DocWrite w = ok_write(read_owner_write_all, request(Op::create, "", "{}"));
  EXPECT_TRUE(w.owner_audience);
  EXPECT_FALSE(w.owner_only);
}

TEST(CollRulesCarry, TallyHistorySizeKeyAndCaller) {
  const Caller bob{"anon-bbbbbbbbbbbbbbbb", true};
  DocWrite w = ok_write(votes_rules(), request(Op::patch, "me", R"({"q1":2})", 5, "retry-key-1"), bob, 42);
  EXPECT_EQ(w.op, Op::patch);
  EXPECT_EQ(w.collection, "things");
  EXPECT_EQ(w.id, bob.user);
  EXPECT_EQ(w.user, bob.user);
  EXPECT_EQ(w.tally, (std::map<std::string, std::vector<std::int64_t>>{{"q1", {0, 1, 2, 3}}, {"q2", {0, 1, 2, 3}}}));
  EXPECT_EQ(w.history_size, 42u);
  EXPECT_EQ(w.key, "retry-key-1");
  ASSERT_TRUE(w.expected_v.has_value());
  EXPECT_EQ(*w.expected_v, 5u);
  EXPECT_TRUE(w.owner_only);
  EXPECT_TRUE(w.owner_audience);

  DocWrite plain = ok_write(all_rules(), request(Op::create, "", R"({"a":1})"), bob, 7);
  EXPECT_TRUE(plain.tally.empty());
  EXPECT_EQ(plain.history_size, 7u);
  EXPECT_EQ(plain.key, "");
  EXPECT_EQ(plain.user, bob.user);
}

}  // namespace
}  // namespace rtsync::service
