// Unit tests of the token layer (protocol/jwt.cpp, common/base64url.cpp): the accept/refuse matrix of
// jwt::verify (HS256 only, alg none and every other algorithm refused, exact base64url, claim types),
// caps parsing, the `*` pattern matcher (including hostile patterns), base64url round trips and
// rejection of bad input, HMAC-SHA256 against RFC 4231 and the constant-time comparison.
#include "protocol/jwt.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <variant>

#include "common/base64url.hpp"

namespace rtsync::protocol::jwt {
namespace {

using common::base64url_decode;
using common::base64url_encode;
using common::equal_constant_time;
using common::hmac_sha256;

const std::string kSecret(64, 'k');
const std::string kOtherSecret(64, 'o');
constexpr std::int64_t kNow = 1'700'000'000;
const std::string kHs256 = R"({"alg":"HS256","typ":"JWT"})";

// A token from raw header and payload JSON, signed with HMAC-SHA256 over the usual signing input.
std::string make(const std::string& header, const std::string& payload, const std::string& secret = kSecret) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

std::string payload(const std::string& sub = "alice", std::int64_t exp = kNow + 3600, const std::string& extra = "") {
  return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp) + extra + "}";
}

// The refusal reason, or "" when the token is accepted.
std::string refusal(const std::string& token, std::int64_t now = kNow, const std::string& secret = kSecret) {
  auto r = verify(token, secret, now);
  if (auto* why = std::get_if<std::string>(&r)) {
    EXPECT_FALSE(why->empty()) << "a refusal always says why";
    return *why;
  }
  return "";
}

Claims accepted(const std::string& token, std::int64_t now = kNow) {
  auto r = verify(token, kSecret, now);
  if (auto* why = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << "refused: " << *why << " token=" << token;
    return {};
  }
  return std::get<Claims>(r);
}

// ---------------------------------------------------------------------------------------------------
// Accepted tokens

TEST(JwtVerify, ValidTokenGivesItsClaims) {
  Claims c = accepted(make(kHs256, payload("alice", kNow + 60)));
  EXPECT_EQ(c.sub, "alice");
  EXPECT_EQ(c.exp, kNow + 60);
  EXPECT_EQ(c.info, "null");
  EXPECT_EQ(c.caps, nullptr) << "no caps: no restriction";
}

TEST(JwtVerify, HeaderWithoutTypAndExtraClaimsIsFine) {
  Claims c = accepted(make(R"({"alg":"HS256"})", payload("bob", kNow + 60, R"(,"iat":1,"aud":"x","nbf":0)")));
  EXPECT_EQ(c.sub, "bob");
}

TEST(JwtVerify, InfoIsKeptAsCompactJson) {
  Claims c = accepted(make(kHs256, payload("carol", kNow + 60, R"(,"info":{ "name" : "Carol", "n":[1, 2] })")));
  EXPECT_EQ(c.info, R"({"name":"Carol","n":[1,2]})");
}

TEST(JwtVerify, SignRoundTrip) {
  std::string t = sign("dave", kNow + 100, kSecret, R"({"sub":["news.*"],"pub":["chat:*","x"]})", R"({"a":1})");
  // Three segments of the base64url alphabet, and the fixed header.
  ASSERT_EQ(std::count(t.begin(), t.end(), '.'), 2);
  EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
            std::string::npos);
  EXPECT_EQ(*base64url_decode(t.substr(0, t.find('.'))), kHs256);
  Claims c = accepted(t);
  EXPECT_EQ(c.sub, "dave");
  EXPECT_EQ(c.exp, kNow + 100);
  EXPECT_EQ(c.info, R"({"a":1})");
  ASSERT_NE(c.caps, nullptr);
  EXPECT_EQ(c.caps->sub, (std::vector<std::string>{"news.*"}));
  EXPECT_EQ(c.caps->pub, (std::vector<std::string>{"chat:*", "x"}));
}

TEST(JwtVerify, ApiClaim) {
  EXPECT_FALSE(accepted(make(kHs256, payload("svc", kNow + 60))).api) << "absent: not an api token";
  EXPECT_TRUE(accepted(make(kHs256, payload("svc", kNow + 60, R"(,"api":true)"))).api);
  EXPECT_FALSE(accepted(make(kHs256, payload("svc", kNow + 60, R"(,"api":false)"))).api);
  EXPECT_TRUE(accepted(sign("svc", kNow + 60, kSecret, {}, {}, true)).api);
  EXPECT_FALSE(accepted(sign("svc", kNow + 60, kSecret)).api);
  auto r = verify(make(kHs256, payload("svc", kNow + 60, R"(,"api":1)")), kSecret, kNow);
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << "a non-boolean api claim is refused";
  EXPECT_EQ(std::get<std::string>(r), "\"api\" must be true or false");
}

// A token made by another implementation (the jwt.io example, secret "your-256-bit-secret"): the
// signature checks out, so the refusal is about the missing exp, not the signature.
TEST(JwtVerify, SignatureInteroperatesWithOtherImplementations) {
  const std::string t =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy"
      "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  EXPECT_EQ(refusal(t, kNow, "your-256-bit-secret"), "\"exp\" is required");
  EXPECT_EQ(refusal(t, kNow, "your-256-bit-secreT"), "bad signature");
}

// ---------------------------------------------------------------------------------------------------
// Expiry

TEST(JwtVerify, ExpiryIsStrict) {
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 1))), "");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow))), "expired");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow - 1))), "expired");
  EXPECT_EQ(refusal(make(kHs256, payload("a", 0))), "expired");
  EXPECT_EQ(refusal(make(kHs256, payload("a", -5))), "expired");
  // The same token is valid before its exp and refused after.
  std::string t = make(kHs256, payload("a", kNow + 10));
  EXPECT_EQ(refusal(t, kNow + 9), "");
  EXPECT_EQ(refusal(t, kNow + 10), "expired");
}

TEST(JwtVerify, ExpIsRequiredAndNumeric) {
  EXPECT_EQ(refusal(make(kHs256, R"({"sub":"a"})")), "\"exp\" is required");
  for (const char* exp : {R"("9999999999")", "null", "true", "[1]", "{}"})
    EXPECT_EQ(refusal(make(kHs256, std::string(R"({"sub":"a","exp":)") + exp + "}")), "\"exp\" is required") << exp;
}

TEST(JwtVerify, FractionalExpIsAccepted) {
  Claims c = accepted(make(kHs256, R"({"sub":"a","exp":1700000100.75})"));
  EXPECT_EQ(c.exp, kNow + 100);
  EXPECT_EQ(refusal(make(kHs256, R"({"sub":"a","exp":1699999999.5})")), "expired");
}

// Far-future and out-of-range exp values must neither crash (an exception out of verify would end the
// I/O thread) nor hand a time to the session that overflows its timer arithmetic: they are clamped.
TEST(JwtVerify, HugeExpValuesAreClampedNotOverflowed) {
  for (const char* exp : {"9223372036854775807", "18446744073709551615", "1e300", "1.7976931348623157e308",
                          "99999999999999"}) {
    auto r = verify(make(kHs256, std::string(R"({"sub":"a","exp":)") + exp + "}"), kSecret, kNow);
    ASSERT_TRUE(std::holds_alternative<Claims>(r)) << exp << ": " << std::get<std::string>(r);
    auto e = std::get<Claims>(r).exp;
    EXPECT_GT(e, kNow) << exp;
    // Representable as system_clock time (nanoseconds on libstdc++) with room to spare.
    EXPECT_LE(e, std::int64_t{4'102'444'800}) << exp;  // 2100-01-01
    auto tp = std::chrono::system_clock::time_point(std::chrono::seconds(e));
    EXPECT_GT(tp.time_since_epoch().count(), 0) << exp;
  }
  // Beyond the double range Boost.JSON yields infinity (serialized as the non-JSON `Infinity`): refused.
  for (const char* exp : {"1e400", "-1e400"})
    EXPECT_EQ(refusal(make(kHs256, std::string(R"({"sub":"a","exp":)") + exp + "}")), "malformed token payload") << exp;
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"info":{"x":[1e999]})"))), "malformed token payload");
  for (const char* exp : {"-9223372036854775808", "-1e300", "-1.5"})
    EXPECT_EQ(refusal(make(kHs256, std::string(R"({"sub":"a","exp":)") + exp + "}")), "expired") << exp;
}

// ---------------------------------------------------------------------------------------------------
// Signatures and algorithms

TEST(JwtVerify, WrongSignatureIsRefused) {
  std::string t = make(kHs256, payload());
  // Flip one signature character (to another canonical one: the first character carries 6 full bits).
  std::string bad = t;
  auto sig = bad.rfind('.') + 1;
  bad[sig] = bad[sig] == 'A' ? 'B' : 'A';
  EXPECT_EQ(refusal(bad), "bad signature");
  // Signed with another secret.
  EXPECT_EQ(refusal(make(kHs256, payload(), kOtherSecret)), "bad signature");
  // The payload changed after signing (e.g. a different user): the signature no longer matches.
  std::string forged = t.substr(0, t.find('.') + 1) + base64url_encode(payload("mallory")) + t.substr(t.rfind('.'));
  EXPECT_EQ(refusal(forged), "bad signature");
  // Truncated (a canonical encoding of the first 31 bytes) and empty signatures.
  std::string input = t.substr(0, t.rfind('.'));
  EXPECT_EQ(refusal(input + "." + base64url_encode(hmac_sha256(kSecret, input).substr(0, 31))), "bad signature");
  EXPECT_EQ(refusal(input + "." + base64url_encode(hmac_sha256(kSecret, input) + "x")), "bad signature");
  EXPECT_EQ(refusal(t.substr(0, t.rfind('.') + 1)), "bad signature");
  // A signature of the right length made of zeros.
  EXPECT_EQ(refusal(t.substr(0, t.rfind('.') + 1) + base64url_encode(std::string(32, '\0'))), "bad signature");
}

TEST(JwtVerify, SignatureOverTheWholeSigningInput) {
  // The signature of header.payload must not validate a token with the same payload and another header.
  std::string t = make(kHs256, payload());
  std::string other_header = base64url_encode(R"({"typ":"JWT","alg":"HS256"})");
  std::string swapped = other_header + t.substr(t.find('.'));
  EXPECT_EQ(refusal(swapped), "bad signature");
}

TEST(JwtVerify, AlgNoneIsRefusedWithOrWithoutSignature) {
  for (const char* h : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})",
                        R"({"alg":"NONE"})", R"({"alg":""})"}) {
    std::string input = base64url_encode(h) + "." + base64url_encode(payload());
    EXPECT_EQ(refusal(input + "."), "unsupported algorithm") << h;
    // A valid HMAC over the input does not help either: the algorithm is fixed by the server.
    EXPECT_EQ(refusal(input + "." + base64url_encode(hmac_sha256(kSecret, input))), "unsupported algorithm") << h;
  }
}

TEST(JwtVerify, OtherAlgorithmsAreRefused) {
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "PS256", "hs256", "HS256 ", " HS256", "EdDSA"}) {
    std::string h = std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})";
    EXPECT_EQ(refusal(make(h, payload())), "unsupported algorithm") << alg;
  }
  // alg of another type, or missing.
  for (const char* h : {R"({"alg":256})", R"({"alg":["HS256"]})", R"({"alg":null})", R"({"typ":"JWT"})", "{}"})
    EXPECT_EQ(refusal(make(h, payload())), "unsupported algorithm") << h;
}

TEST(JwtVerify, CriticalHeaderExtensionsAreRefused) {
  EXPECT_EQ(refusal(make(R"({"alg":"HS256","crit":["exp"]})", payload())), "unsupported critical header");
}

// ---------------------------------------------------------------------------------------------------
// Malformed tokens

TEST(JwtVerify, WrongNumberOfSegments) {
  std::string t = make(kHs256, payload());
  for (const std::string& bad : {std::string(""), std::string("."), std::string("abc"),
                                 std::string("a.b"), t.substr(0, t.rfind('.')), t + ".", t + ".x", "." + t,
                                 std::string("...."), std::string("a.b.c.d.e")})
    EXPECT_EQ(refusal(bad), "malformed token") << bad;
}

TEST(JwtVerify, MalformedHeader) {
  std::string rest = "." + base64url_encode(payload()) + ".sig";
  for (const std::string& h : {std::string(""), base64url_encode("not json"), base64url_encode("[1,2]"),
                               base64url_encode("\"HS256\""), base64url_encode(R"({"alg":"HS256")"),
                               base64url_encode(R"({"alg":"HS256"} x)"), std::string("e30="), std::string("e30*"),
                               std::string("e 30")})
    EXPECT_EQ(refusal(h + rest), "malformed token header") << h;
}

TEST(JwtVerify, NonCanonicalBase64urlIsRefused) {
  std::string t = make(kHs256, payload());
  auto sig = t.rfind('.') + 1;
  // 32 bytes -> 43 characters; the last carries 4 bits, the 2 low ones must be zero. Setting one keeps
  // the decoded bytes identical with lenient decoders: a second spelling of the same signature.
  std::string s = t.substr(sig);
  ASSERT_EQ(s.size(), 43u);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto idx = alphabet.find(s.back());
  ASSERT_EQ(idx % 4, 0u);
  std::string malleable = t.substr(0, t.size() - 1) + alphabet[idx + 1];
  EXPECT_EQ(refusal(malleable), "malformed signature");
  // Padding, the standard alphabet and whitespace are not base64url.
  EXPECT_EQ(refusal(t + "="), "malformed signature");
  std::string standard = t;
  for (std::size_t i = sig; i < standard.size(); ++i)
    standard[i] = standard[i] == '-' ? '+' : standard[i] == '_' ? '/' : standard[i];
  if (standard != t) {
    EXPECT_EQ(refusal(standard), "malformed signature");
  }
  EXPECT_EQ(refusal(t.substr(0, sig) + " " + s), "malformed signature");
  // A padded header (the payload and header are checked the same way).
  std::string h = base64url_encode(R"({"alg":"HS256"})");
  EXPECT_EQ(refusal(h + "==" + t.substr(t.find('.'))), "malformed token header");
  // Same for the payload: padding is refused even under a valid signature over the padded text.
  std::string input = base64url_encode(kHs256) + "." + base64url_encode(payload("ab")) + "=";
  EXPECT_EQ(refusal(input + "." + base64url_encode(hmac_sha256(kSecret, input))), "malformed token payload");
}

TEST(JwtVerify, PayloadMustBeAnObject) {
  for (const char* p : {"[]", R"(["sub","a"])", R"("alice")", "42", "null", "true", "not json", R"({"sub":"a")", ""})
    EXPECT_EQ(refusal(make(kHs256, p)), "malformed token payload") << p;
}

TEST(JwtVerify, SubMustBeAStringOf1To128Characters) {
  const std::string need = "\"sub\" must be a string of 1-128 characters";
  EXPECT_EQ(refusal(make(kHs256, R"({"exp":1800000000})")), need);
  for (const char* sub : {R"("")", "5", "null", R"(["a"])", R"({"id":"a"})", "true"})
    EXPECT_EQ(refusal(make(kHs256, std::string(R"({"sub":)") + sub + R"(,"exp":1800000000})")), need) << sub;
  EXPECT_EQ(refusal(make(kHs256, payload(std::string(129, 'x')))), need);
  EXPECT_EQ(accepted(make(kHs256, payload(std::string(128, 'x')))).sub, std::string(128, 'x'));
  EXPECT_EQ(accepted(make(kHs256, payload("u"))).sub, "u");
}

TEST(JwtVerify, InfoMustBeAnObject) {
  for (const char* info : {R"("Alice")", "5", "[1]", "true"})
    EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, std::string(R"(,"info":)") + info))),
              "\"info\" must be an object")
        << info;
}

TEST(JwtVerify, OverlongTokensAreRefusedBeforeParsing) {
  std::string big = make(kHs256, payload("a", kNow + 60, R"(,"pad":")" + std::string(9000, 'p') + "\""));
  EXPECT_EQ(refusal(big), "token too long");
  EXPECT_EQ(refusal(std::string(100000, '.')), "token too long");
}

TEST(JwtVerify, HostileJsonDoesNotCrash) {
  // Deep nesting is refused by the JSON parser's depth limit (or accepted as an ignored claim), never a crash.
  std::string deep = std::string(3000, '[') + std::string(3000, ']');
  EXPECT_NE(refusal(make(kHs256, payload("a", kNow + 60, ",\"x\":" + deep))), "");
  EXPECT_NE(refusal(make(std::string(R"({"alg":"HS256","x":)") + deep + "}", payload())), "");
  // Invalid UTF-8 inside JSON strings is a parse error.
  EXPECT_EQ(refusal(make(kHs256, "{\"sub\":\"\xff\xfe\",\"exp\":1800000000}")), "malformed token payload");
  // NUL bytes in the token text.
  EXPECT_NE(refusal(std::string("a\0b.c\0d.e", 9)), "");
}

TEST(JwtVerify, DuplicateKeysAreRefusedAtAnyDepth) {
  // Readers disagree on which duplicate wins (Boost.JSON keeps the last, others the first).
  EXPECT_EQ(refusal(make(kHs256, R"({"sub":"alice","sub":"admin","exp":1800000000})")),
            "duplicate key in the token payload");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"sub":["x"],"sub":["*"]})"))),
            "duplicate key in the token payload");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"info":{"n":{"k":1,"k":2}})"))),
            "duplicate key in the token payload");
  EXPECT_EQ(refusal(make(R"({"alg":"none","alg":"HS256"})", payload())), "duplicate key in the token header");
  // The same key in sibling objects is no duplicate.
  EXPECT_EQ(accepted(make(kHs256, payload("a", kNow + 60, R"(,"info":{"a":{"k":1},"b":{"k":2}})"))).sub, "a");
}

// ---------------------------------------------------------------------------------------------------
// Caps

TEST(JwtCaps, ParsedIntoSubAndPubLists) {
  Claims c = accepted(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"sub":["news.*","x"],"pub":[]})")));
  ASSERT_NE(c.caps, nullptr);
  EXPECT_EQ(c.caps->sub, (std::vector<std::string>{"news.*", "x"}));
  EXPECT_TRUE(c.caps->pub.empty());
}

TEST(JwtCaps, CollectionListsAreParsed) {
  Claims c = accepted(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"read":["pcm","todo*"],"write":["pcm"]})")));
  ASSERT_NE(c.caps, nullptr);
  EXPECT_EQ(c.caps->read, (std::vector<std::string>{"pcm", "todo*"}));
  EXPECT_EQ(c.caps->write, (std::vector<std::string>{"pcm"}));
  EXPECT_TRUE(c.caps->sub.empty());
  Claims channels_only = accepted(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"sub":["*"],"pub":["*"]})")));
  EXPECT_TRUE(channels_only.caps->read.empty()) << "caps that name no collection reach none";
  EXPECT_TRUE(channels_only.caps->write.empty());
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"read":"pcm"})"))),
            "\"caps\" lists must be arrays of strings");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"write":[7]})"))),
            "\"caps\" lists must be arrays of strings");
}

TEST(JwtCaps, AMissingListAllowsNothing) {
  // caps present: what it does not list is not allowed (an empty caps object grants no channel).
  Claims c = accepted(make(kHs256, payload("a", kNow + 60, R"(,"caps":{"sub":["*"]})")));
  ASSERT_NE(c.caps, nullptr);
  EXPECT_EQ(c.caps->sub, (std::vector<std::string>{"*"}));
  EXPECT_TRUE(c.caps->pub.empty());
  EXPECT_FALSE(match_any(c.caps->pub, "anything"));
  Claims e = accepted(make(kHs256, payload("a", kNow + 60, R"(,"caps":{})")));
  ASSERT_NE(e.caps, nullptr);
  EXPECT_TRUE(e.caps->sub.empty());
  EXPECT_TRUE(e.caps->pub.empty());
}

TEST(JwtCaps, MalformedCapsAreRefused) {
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":["news.*"])"))), "\"caps\" must be an object");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":"*")"))), "\"caps\" must be an object");
  EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, R"(,"caps":null)"))), "\"caps\" must be an object");
  for (const char* caps : {R"({"sub":"news.*"})", R"({"pub":{"a":1}})", R"({"sub":[1]})", R"({"sub":["a",null]})",
                           R"({"pub":["a",["b"]]})", R"({"sub":["a"],"pub":true})"})
    EXPECT_EQ(refusal(make(kHs256, payload("a", kNow + 60, std::string(R"(,"caps":)") + caps))),
              "\"caps\" lists must be arrays of strings")
        << caps;
}

// ---------------------------------------------------------------------------------------------------
// Pattern matching

TEST(JwtMatch, LiteralPatterns) {
  EXPECT_TRUE(match("news", "news"));
  EXPECT_FALSE(match("news", "news2"));
  EXPECT_FALSE(match("news2", "news"));
  EXPECT_FALSE(match("News", "news"));
  EXPECT_TRUE(match("", ""));
  EXPECT_FALSE(match("", "a"));
  EXPECT_FALSE(match("a", ""));
}

TEST(JwtMatch, StarAnywhere) {
  EXPECT_TRUE(match("*", ""));
  EXPECT_TRUE(match("*", "anything:at.all"));
  EXPECT_TRUE(match("news.*", "news.today"));
  EXPECT_TRUE(match("news.*", "news."));
  EXPECT_FALSE(match("news.*", "news"));
  EXPECT_FALSE(match("news.*", "sports.news.today"));
  EXPECT_TRUE(match("*.today", "news.today"));
  EXPECT_FALSE(match("*.today", "news.today2"));
  EXPECT_TRUE(match("chat:*:mod", "chat:room1:mod"));
  EXPECT_TRUE(match("chat:*:mod", "chat::mod"));
  EXPECT_FALSE(match("chat:*:mod", "chat:room1:mod2"));
  EXPECT_FALSE(match("chat:*:mod", "chat:mod"));
}

TEST(JwtMatch, SeveralStars) {
  EXPECT_TRUE(match("**", ""));
  EXPECT_TRUE(match("a**b", "ab"));
  EXPECT_TRUE(match("*a*", "xxaxx"));
  EXPECT_FALSE(match("*a*", "xxbxx"));
  EXPECT_TRUE(match("a*b*c", "abc"));
  EXPECT_TRUE(match("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(match("a*b*c", "abcbc"));
  EXPECT_FALSE(match("a*b*c", "acb"));
  EXPECT_FALSE(match("a*b*c", "abcx"));
  EXPECT_TRUE(match("*x*y*z*", "..x..y..z.."));
  EXPECT_FALSE(match("*x*y*z*", "..z..y..x.."));
  // Backtracking past a false start.
  EXPECT_TRUE(match("*aab", "aaaab"));
  EXPECT_TRUE(match("a*ab", "aaab"));
  EXPECT_TRUE(match("*ab*ab", "abxabab"));
}

TEST(JwtMatch, OtherCharactersAreLiteral) {
  // No '?', character classes or regex: they match themselves only.
  EXPECT_FALSE(match("a?c", "abc"));
  EXPECT_TRUE(match("a?c", "a?c"));
  EXPECT_FALSE(match("[ab]", "a"));
  EXPECT_FALSE(match("a.c", "abc"));
  EXPECT_TRUE(match("a.c", "a.c"));
}

TEST(JwtMatch, PathologicalPatternsFinishQuickly) {
  // Exponential (recursive) or quadratic-in-input matchers never finish these within the test timeout.
  const std::string as(200'000, 'a');
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(match("a*a*a*a*b", as));
  EXPECT_FALSE(match("*a*a*a*a*a*a*a*a*a*a*b", as));
  EXPECT_TRUE(match("a*a*a*a*a", as));
  EXPECT_FALSE(match(std::string(4000, '*') + "b", as));
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "a*";
  EXPECT_FALSE(match(many + "b", std::string(4000, 'a')));
  EXPECT_TRUE(match(many, std::string(4000, 'a')));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(20)) << "a blow-up, not a slow machine: linear work is milliseconds";
}

TEST(JwtMatch, AgreesWithAReferenceMatcher) {
  // Dynamic programming reference over random short patterns and inputs.
  auto reference = [](const std::string& p, const std::string& s) {
    std::vector<std::vector<bool>> dp(p.size() + 1, std::vector<bool>(s.size() + 1, false));
    dp[0][0] = true;
    for (std::size_t i = 1; i <= p.size(); ++i) {
      for (std::size_t j = 0; j <= s.size(); ++j) {
        if (p[i - 1] == '*') dp[i][j] = dp[i - 1][j] || (j > 0 && dp[i][j - 1]);
        else dp[i][j] = j > 0 && dp[i - 1][j - 1] && p[i - 1] == s[j - 1];
      }
    }
    return static_cast<bool>(dp[p.size()][s.size()]);
  };
  std::mt19937 rng(42);
  const std::string alpha = "ab*";
  for (int n = 0; n < 20000; ++n) {
    std::string p, s;
    for (int i = rng() % 7; i > 0; --i) p += alpha[rng() % 3];
    for (int i = rng() % 9; i > 0; --i) s += alpha[rng() % 2];
    ASSERT_EQ(match(p, s), reference(p, s)) << "pattern \"" << p << "\" input \"" << s << "\"";
  }
}

TEST(JwtMatch, MatchAny) {
  EXPECT_FALSE(match_any({}, "a"));
  EXPECT_FALSE(match_any({}, ""));
  EXPECT_TRUE(match_any({"x", "news.*"}, "news.a"));
  EXPECT_FALSE(match_any({"x", "news.*"}, "chat.a"));
  EXPECT_TRUE(match_any({"x", "*"}, "chat.a"));
}

// ---------------------------------------------------------------------------------------------------
// base64url, HMAC, constant-time comparison

TEST(Base64url, Rfc4648Vectors) {
  const std::pair<const char*, const char*> v[] = {{"", ""},         {"f", "Zg"},         {"fo", "Zm8"},
                                                   {"foo", "Zm9v"},  {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    EXPECT_EQ(base64url_encode(plain), enc);
    auto d = base64url_decode(enc);
    ASSERT_TRUE(d) << enc;
    EXPECT_EQ(*d, plain);
  }
}

TEST(Base64url, UrlAlphabet) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(*base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(base64url_encode(std::string("\0\0\0", 3)), "AAAA");
  EXPECT_EQ(*base64url_decode("AAAA"), std::string("\0\0\0", 3));
}

TEST(Base64url, RandomRoundTrips) {
  std::mt19937 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::string bytes(rng() % 100, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::string enc = base64url_encode(bytes);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(enc.size(), (bytes.size() * 4 + 2) / 3);
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec);
    EXPECT_EQ(*dec, bytes);
  }
}

TEST(Base64url, RejectsBadInput) {
  for (const char* bad : {"Zg==", "Zg=", "Z", "Zm9vY", "Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9v=",
                          "Zm.9", "Zm9v!", "\xc3\xa9", "Zh", "Zm9", "Zm-"})
    EXPECT_FALSE(base64url_decode(bad)) << bad;
  EXPECT_FALSE(base64url_decode(std::string("Zm\0v", 4)));
  // Canonical neighbours of the non-canonical ones above are accepted.
  EXPECT_TRUE(base64url_decode("Zg"));
  EXPECT_TRUE(base64url_decode("Zm8"));
  EXPECT_TRUE(base64url_decode(""));
}

TEST(Base64url, EveryNonCanonicalTailIsRejected) {
  // For 1 and 2 trailing bytes, exactly one of each group of 16 (resp. 4) final characters is canonical.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int ok2 = 0, ok3 = 0;
  for (char c : alphabet) {
    ok2 += base64url_decode(std::string("Q") + c).has_value();
    ok3 += base64url_decode(std::string("QU") + c).has_value();
  }
  EXPECT_EQ(ok2, 4);
  EXPECT_EQ(ok3, 16);
}

TEST(Hmac, Rfc4231Vectors) {
  auto hex = [](const std::string& b) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) out += {d[c >> 4], d[c & 15]};
    return out;
  };
  // Test case 2.
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 1: key 20 x 0x0b, "Hi There".
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 6: a key longer than the block size.
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hmac_sha256("k", "").size(), 32u);
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(equal_constant_time("", ""));
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_TRUE(equal_constant_time(std::string("a\0c", 3), std::string("a\0c", 3)));
  EXPECT_FALSE(equal_constant_time(std::string("a\0c", 3), std::string("a\0d", 3)));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "xbc"));
  EXPECT_FALSE(equal_constant_time("abc", "ab"));
  EXPECT_FALSE(equal_constant_time("ab", "abc"));
  EXPECT_FALSE(equal_constant_time("", "a"));
  std::string a(32, 'x'), b = a;
  b[31] = 'y';
  EXPECT_FALSE(equal_constant_time(a, b));
}

}  // namespace
}  // namespace rtsync::protocol::jwt
