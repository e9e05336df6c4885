// PubNub Access Manager tokens (protocol/pubnub_token.hpp): a grant survives issue and verify whole; any
// change to a token, or another key, fails it; bits of exact names and of patterns add up; grantToken's
// body as the SDK sends it, and the bodies refused; request signatures as the SDK computes them.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>
#include <variant>

#include "common/base64url.hpp"
#include "protocol/pubnub_token.hpp"

namespace rtsync::protocol::pam {
namespace {

// The body pubnub@11's grantToken sends (endpoints/access_manager/grant_token.js).
constexpr std::string_view kSdkBody =
    R"({"ttl":15,"permissions":{"uuid":"ann","resources":{"channels":{"chat":3,"news":1},"groups":{"g":5},)"
    R"("uuids":{"ann":96},"users":{},"spaces":{}},"patterns":{"channels":{"^room-[0-9]+$":1},"groups":{},)"
    R"("uuids":{},"users":{},"spaces":{}},"meta":{"plan":"pro","n":2,"ok":true}}})";

Grant parsed(std::string_view body = kSdkBody) {
  auto g = parse_grant(body, 1'700'000'000);
  if (auto* why = std::get_if<std::string>(&g)) ADD_FAILURE() << *why;
  return std::get<Grant>(g);
}

TEST(PubnubToken, AGrantSurvivesIssueAndVerify) {
  const Grant g = parsed();
  EXPECT_EQ(g.ttl, 15);
  EXPECT_EQ(g.expires_ms(), (1'700'000'000LL + 900) * 1000);
  const std::string token = issue(g, "secret");
  EXPECT_EQ(token.find_first_of("+/="), std::string::npos) << "base64url";
  auto v = verify(token, "secret");
  ASSERT_TRUE(std::holds_alternative<Verified>(v)) << std::get<std::string>(v);
  const Verified& ok = std::get<Verified>(v);
  EXPECT_EQ(ok.id.size(), 43u) << "the signature, 32 bytes";
  const Grant& back = *ok.grant;
  EXPECT_EQ(back.issued, 1'700'000'000);
  EXPECT_EQ(back.ttl, 15);
  EXPECT_EQ(back.authorized_uuid, "ann");
  EXPECT_EQ(back.resources, g.resources);
  ASSERT_EQ(back.patterns[0].size(), 1u);
  EXPECT_EQ(back.patterns[0][0].text, "^room-[0-9]+$");
  EXPECT_EQ(back.meta, g.meta);
  EXPECT_EQ(issue(back, "secret"), token) << "the encoding is deterministic";

  Grant unique = g;
  unique.nonce = "12345678";
  const std::string other = issue(unique, "secret");
  EXPECT_NE(other, token) << "a nonce makes another token of the same grant";
  const auto again = verify(other, "secret");
  ASSERT_TRUE(std::holds_alternative<Verified>(again));
  EXPECT_EQ(std::get<Verified>(again).grant->nonce, "12345678");
  EXPECT_NE(std::get<Verified>(again).id, ok.id);
}

TEST(PubnubToken, AnyChangeOrAnotherKeyFailsIt) {
  const std::string token = issue(parsed(), "secret");
  EXPECT_EQ(std::get<std::string>(verify(token, "other")), "bad signature");
  auto raw = *common::base64url_decode(token);
  for (std::size_t i = 0; i < raw.size(); i += 7) {
    std::string bent = raw;
    bent[i] = static_cast<char>(bent[i] ^ 0x01);
    EXPECT_TRUE(std::holds_alternative<std::string>(verify(common::base64url_encode(bent), "secret"))) << "byte " << i;
  }
  EXPECT_EQ(std::get<std::string>(verify("not-a-token", "secret")), "malformed");
  EXPECT_EQ(std::get<std::string>(verify("eyJhbGciOiJIUzI1NiJ9.e30.x", "secret")), "malformed") << "a JWT";
}

TEST(PubnubToken, BitsOfNamesAndPatternsAddUp) {
  Grant g = parsed();
  EXPECT_TRUE(g.allows(Resource::channel, "chat", kRead | kWrite));
  EXPECT_FALSE(g.allows(Resource::channel, "news", kWrite));
  EXPECT_FALSE(g.allows(Resource::channel, "chat2", kRead)) << "names are exact";
  EXPECT_TRUE(g.allows(Resource::channel, "room-12", kRead)) << "a pattern";
  EXPECT_FALSE(g.allows(Resource::channel, "room-12x", kRead)) << "anchored by the pattern itself";
  EXPECT_FALSE(g.allows(Resource::uuid, "chat", kRead)) << "another resource type";
  EXPECT_TRUE(g.allows(Resource::uuid, "ann", kGet | kUpdate));
  EXPECT_FALSE(g.allows(Resource::uuid, "ann", kDelete));
  EXPECT_TRUE(g.allows(Resource::group, "g", kRead | kManage));
  auto unanchored = parse_grant(R"({"ttl":1,"permissions":{"patterns":{"channels":{"ro":2}}}})", 0);
  EXPECT_TRUE(std::get<Grant>(unanchored).allows(Resource::channel, "a-room", kWrite)) << "searched for";
}

TEST(PubnubToken, GrantBodiesRefused) {
  for (const char* body : {
           "[]",
           R"({"permissions":{"resources":{"channels":{"a":1}}}})",            // no ttl
           R"({"ttl":0,"permissions":{"resources":{"channels":{"a":1}}}})",    // out of range
           R"({"ttl":43201,"permissions":{"resources":{"channels":{"a":1}}}})",
           R"({"ttl":1.5,"permissions":{"resources":{"channels":{"a":1}}}})",
           R"({"ttl":5})",
           R"({"ttl":5,"permissions":{"resources":{"channels":{"a":0}}}})",    // nothing granted
           R"({"ttl":5,"permissions":{"resources":{"channels":{"a":256}}}})",
           R"({"ttl":5,"permissions":{"resources":{"rooms":{"a":1}}}})",
           R"({"ttl":5,"permissions":{"resources":{"users":{"u":1}}}})",
           R"({"ttl":5,"permissions":{"patterns":{"channels":{"(":1}}}})",     // not a regular expression
           R"({"ttl":5,"permissions":{"resources":{"channels":{"a":1}},"meta":{"x":{"y":1}}}})",
           R"({"ttl":5,"permissions":{"resources":{"channels":{"a":1}},"uuid":7}})",
       }) {
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_grant(body, 0))) << body;
  }
}

TEST(PubnubToken, RequestSignaturesAreTheSdks) {
  // Computed as pubnub@11 does (transport/middleware.js, RequestSignature), with node's crypto.
  const std::vector<std::pair<std::string, std::string>> query{{"uuid", "admin (1)"},
                                                               {"pnsdk", "PubNub-JS-Nodejs/11.0.2"},
                                                               {"timestamp", "1700000000"},
                                                               {"requestid", "r~1*"},
                                                               {"signature", "ignored"}};
  EXPECT_EQ(request_signature("sec-c-1", "POST", "pub-c-1", "/v3/pam/sub-c-1/grant", query,
                              R"({"ttl":15,"permissions":{}})"),
            "v2.3U-__w_BTLjhssz-2m18b2ylCNKR8L_6FMw1Rm0vyqA");
  EXPECT_EQ(request_signature("sec-c-1", "GET", "pub-c-1", "/publish/pub-c-1/sub-c-1/0/ch/0/%22hi%22", query, "ignored"),
            "v2.T8PSsuuH0tponXNgQkIeZsqlKG7iQw3X7ciYNiVPbNs");
}

}  // namespace
}  // namespace rtsync::protocol::pam
