// Fuzz target: the JWT parser (protocol::jwt::verify) with a fixed secret and a fixed "now". Besides
// crashes, checks that nothing unsigned gets through: an accepted token's signature must really be the
// HMAC of its signing input, and its claims must respect the documented bounds.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "common/base64url.hpp"
#include "protocol/jwt.hpp"

namespace jwt = rtsync::protocol::jwt;

namespace {
const std::string kSecret(64, 'k');
constexpr std::int64_t kNow = 1'700'000'000;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view token(reinterpret_cast<const char*>(data), size);
  auto r = jwt::verify(token, kSecret, kNow);
  if (auto* why = std::get_if<std::string>(&r)) {
    if (why->empty()) std::abort();
  } else {
    const auto& c = std::get<jwt::Claims>(r);
    auto dot = token.rfind('.');
    auto sig = rtsync::common::base64url_decode(token.substr(dot + 1));
    if (!sig || *sig != rtsync::common::hmac_sha256(kSecret, token.substr(0, dot))) std::abort();
    if (c.sub.empty() || c.sub.size() > 128 || c.exp <= kNow) std::abort();
    (void)std::chrono::system_clock::time_point(std::chrono::seconds(c.exp));
    if (c.caps) {
      for (const auto& p : c.caps->sub) (void)jwt::match(p, "chat:lobby");
      for (const auto& p : c.caps->pub) (void)jwt::match(p, std::string(200, 'a'));
    }
  }
  // The same bytes as a signed payload: exercises claim parsing behind a valid signature, which random
  // inputs almost never reach. The input is split at its first NUL into payload and header text.
  std::string_view text = token;
  std::string_view header = R"({"alg":"HS256"})";
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    header = text.substr(nul + 1);
    text = text.substr(0, nul);
  }
  std::string input = rtsync::common::base64url_encode(header) + "." + rtsync::common::base64url_encode(text);
  std::string signed_token = input + "." + rtsync::common::base64url_encode(rtsync::common::hmac_sha256(kSecret, input));
  auto s = jwt::verify(signed_token, kSecret, kNow);
  if (auto* c = std::get_if<jwt::Claims>(&s)) {
    if (c->sub.empty() || c->sub.size() > 128 || c->exp <= kNow) std::abort();
    (void)std::chrono::system_clock::time_point(std::chrono::seconds(c->exp)).time_since_epoch().count();
  }
  // base64url: decoding is the exact inverse of encoding.
  if (auto d = rtsync::common::base64url_decode(token)) {
    if (rtsync::common::base64url_encode(*d) != token) std::abort();
  }
  auto round = rtsync::common::base64url_decode(rtsync::common::base64url_encode(token));
  if (!round || *round != token) std::abort();
  // Pattern matching on arbitrary text terminates (and '*' alone matches everything).
  auto half = token.size() / 2;
  (void)jwt::match(token.substr(0, half), token.substr(half));
  if (!jwt::match("*", token)) std::abort();
  if (!jwt::match(token, token)) std::abort();  // '*' also matches a literal '*'
  return 0;
}
