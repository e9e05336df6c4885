// Identity: JWT bearer tokens, else an anonymous identity by signed cookie; and the server secret that
// signs both. The cookie carries its own
// proof (`<id>.<HMAC>`), so the server keeps no session table and an identity survives restarts as long as
// DATA_DIR/secret does. The HMAC input is domain-separated ("rtsync_uid:" + id) and the id must look like
// one this file issued, so no other signature made with the same secret (a JWT's) can pass for a cookie.
#include "server/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "common/base64url.hpp"
#include "common/random.hpp"
#include "protocol/jwt.hpp"

namespace rtsync::server {

namespace {

constexpr std::string_view kCookieName = "rtsync_uid";
constexpr std::string_view kAnonPrefix = "anon-";
constexpr std::size_t kAnonRandomBytes = 8;  // 64 bits: collisions among anonymous users are negligible
constexpr std::string_view kCookieAttributes = "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax";  // one year
constexpr std::size_t kSecretHexChars = 64;

bool is_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// Only ids of the shape this file issues are accepted; anything else is a forgery or another format.
bool is_anon_id(std::string_view id) {
  return id.starts_with(kAnonPrefix) && id.size() == kAnonPrefix.size() + 2 * kAnonRandomBytes &&
         is_hex(id.substr(kAnonPrefix.size()));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Tokens first (Authorization: Bearer, then ?token=), the anonymous cookie otherwise.
class SecretAuthenticator final : public Authenticator {
 public:
  SecretAuthenticator(std::string secret, bool secure_cookie)
      : secret_(std::move(secret)), cookie_attributes_(std::string(kCookieAttributes) + (secure_cookie ? "; Secure" : "")) {}

  Principal identify(const Request& req, std::string& set_cookie, std::string& error) override {
    set_cookie.clear();
    error.clear();
    if (auto token = token_of(req)) {
      if (auto who = from_token(*token, error)) return std::move(*who);
      return Principal{};
    }
    // Clients normally send one Cookie header, but nothing forbids several; duplicates of our cookie (e.g.
    // one left over from another Path) are tried in turn.
    auto [first, last] = req.equal_range(http::field::cookie);
    for (auto it = first; it != last; ++it) {
      std::string_view header = it->value();
      while (!header.empty()) {
        auto semi = header.find(';');
        std::string_view pair = trim(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != kCookieName) continue;
        std::string_view value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (auto user = verify(value)) return Principal{.user = std::string(*user), .anonymous = true, .cookie = true};
      }
    }
    std::string id = std::string(kAnonPrefix) + common::random_hex(kAnonRandomBytes);
    set_cookie = std::string(kCookieName) + "=" + id + "." + sign(id) + cookie_attributes_;
    return Principal{.user = std::move(id), .anonymous = true};
  }

  std::optional<Principal> from_token(std::string_view token, std::string& error) override {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    auto r = protocol::jwt::verify(token, secret_, now.count());
    if (auto* why = std::get_if<std::string>(&r)) {
      error = "invalid token: " + *why;
      return std::nullopt;
    }
    auto& c = std::get<protocol::jwt::Claims>(r);
    return Principal{.user = std::move(c.sub), .info = std::move(c.info), .anonymous = false, .expires = c.exp,
                     .caps = std::move(c.caps), .api = c.api};
  }

  std::string issue(std::string_view sub, std::int64_t exp, std::string_view caps_json, std::string_view info_json,
                    bool api) override {
    return protocol::jwt::sign(sub, exp, secret_, caps_json, info_json, api);
  }

 private:
  static std::optional<std::string_view> token_of(const Request& req) {
    if (auto auth = req.find(http::field::authorization); auth != req.end()) {
      std::string_view v = auth->value();
      if (v.size() > 7 && boost::beast::iequals(v.substr(0, 7), "Bearer ")) return trim(v.substr(7));
    }
    // ?token= on the URL: browsers cannot set headers on a WebSocket upgrade.
    auto target = req.target();
    auto q = target.find('?');
    while (q != std::string_view::npos) {
      auto param = target.substr(q + 1);
      auto amp = param.find('&');
      auto pair = param.substr(0, amp);
      if (pair.starts_with("token=")) return pair.substr(6);  // JWTs are URL-safe: no decoding needed
      q = amp == std::string_view::npos ? amp : q + 1 + amp;
    }
    return std::nullopt;
  }

  std::string sign(std::string_view id) const {
    return common::base64url_encode(common::hmac_sha256(secret_, std::string(kCookieName) + ":" + std::string(id)));
  }

  // The id when `value` is `<id>.<signature>` with a valid signature.
  std::optional<std::string_view> verify(std::string_view value) const {
    auto dot = value.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    std::string_view id = value.substr(0, dot);
    std::string_view sig = value.substr(dot + 1);
    if (!is_anon_id(id)) return std::nullopt;
    // Constant time, so response timing does not reveal how much of a guessed signature was right.
    if (!common::equal_constant_time(sig, sign(id))) return std::nullopt;
    return id;
  }

  std::string secret_;
  std::string cookie_attributes_;
};

[[noreturn]] void fail(std::string_view what, const std::filesystem::path& path, int err) {
  throw std::runtime_error(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

std::string read_secret(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  if (struct stat st{}; ::fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0) {
    spdlog::warn("{} is readable by group or others (mode {:04o}): whoever reads it can sign tokens; chmod 600 it",
                 path.string(), st.st_mode & 07777);
  }
  std::string text;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail("cannot read", path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 4096) break;  // far beyond any valid secret; the check below rejects it
  }
  ::close(fd);
  // Tolerate the trailing newline an editor or `echo` adds when an operator writes the file by hand.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() != kSecretHexChars || !is_hex(text)) {
    throw std::runtime_error("invalid secret in " + path.string() + ": expected " + std::to_string(kSecretHexChars) +
                             " hex characters");
  }
  return text;
}

}  // namespace

std::unique_ptr<Authenticator> make_authenticator(std::string secret, bool secure_cookie) {
  return std::make_unique<SecretAuthenticator>(std::move(secret), secure_cookie);
}

std::string load_or_create_secret(const std::string& data_dir, const std::filesystem::path& state) {
  std::filesystem::path dir(data_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create directory", dir, ec.value());
  std::filesystem::path path = dir / "secret";

  if (!state.empty() && !std::filesystem::exists(path, ec) && std::filesystem::exists(state, ec)) {
    throw std::runtime_error(path.string() + " is missing but " + state.string() +
                             " exists: restore the secret (every token, cookie and anonymous owner depends on it), "
                             "or write a new one on purpose (docs/security.md, rotating the secret)");
  }
  // O_EXCL makes creation race-free: whoever loses reads the winner's file instead of replacing it.
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return read_secret(path);
    fail("cannot create", path, errno);
  }
  std::string secret = common::random_hex(kSecretHexChars / 2);
  std::size_t written = 0;
  while (written < secret.size()) {
    ssize_t n = ::write(fd, secret.data() + written, secret.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(path.c_str());  // a half-written secret would make every later start fail
      fail("cannot write", path, err);
    }
    written += static_cast<std::size_t>(n);
  }
  // Durable before use: cookies signed with a secret that a crash then loses would all turn invalid.
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    fail("cannot sync", path, err);
  }
  if (::close(fd) != 0) fail("cannot close", path, errno);
  // The new directory entry must be durable too; best effort, the file itself is already safe.
  if (int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return secret;
}

}  // namespace rtsync::server
