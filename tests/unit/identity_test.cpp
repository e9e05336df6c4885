// The anonymous cookie identity (PROTOCOL §3) and the server secret: a browser keeps its id across
// requests, nobody can forge or alter one, and the secret file is private, stable and validated.
#include "server/identity.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common/random.hpp"
#include "log_capture.hpp"

namespace rtsync::server {
namespace {
// Cookie tests never send tokens; token errors are covered by the token tests.
std::string ignored_error;


namespace fs = std::filesystem;

const std::string kSecret(64, 'a');

Request with_cookie(std::string_view cookie) {
  Request req{http::verb::get, "/v1/ws", 11};
  if (!cookie.empty()) req.set(http::field::cookie, cookie);
  return req;
}

// "rtsync_uid=<value>" out of a Set-Cookie header value.
std::string cookie_pair(const std::string& set_cookie) { return set_cookie.substr(0, set_cookie.find(';')); }

TEST(CookieAuthenticator, NoCookieGetsFreshIdAndSetCookie) {
  auto auth = make_authenticator(kSecret);
  std::string set_cookie;
  Principal p = auth->identify(with_cookie(""), set_cookie, ignored_error);
  EXPECT_TRUE(p.anonymous);
  EXPECT_FALSE(p.cookie) << "a fresh id is nobody's: no cross-site check needed";
  EXPECT_EQ(p.info, "null");
  ASSERT_TRUE(p.user.starts_with("anon-")) << p.user;
  EXPECT_EQ(p.user.size(), 5u + 16u);
  EXPECT_TRUE(set_cookie.starts_with("rtsync_uid=" + p.user + ".")) << set_cookie;
  EXPECT_NE(set_cookie.find("; Path=/"), std::string::npos);
  EXPECT_NE(set_cookie.find("; Max-Age=31536000"), std::string::npos);
  EXPECT_NE(set_cookie.find("; HttpOnly"), std::string::npos);
  EXPECT_NE(set_cookie.find("; SameSite=Lax"), std::string::npos);
  // base64url without padding: 32 bytes -> 43 characters, no '+', '/', '='.
  std::string value = cookie_pair(set_cookie).substr(std::string("rtsync_uid=").size());
  std::string sig = value.substr(value.find('.') + 1);
  EXPECT_EQ(sig.size(), 43u);
  EXPECT_EQ(sig.find_first_of("+/="), std::string::npos);

  std::string second;
  EXPECT_NE(auth->identify(with_cookie(""), second, ignored_error).user, p.user);
}

TEST(CookieAuthenticator, CookieSentBackKeepsTheSameUser) {
  auto auth = make_authenticator(kSecret);
  std::string set_cookie;
  Principal first = auth->identify(with_cookie(""), set_cookie, ignored_error);
  std::string again = "stale";
  Principal second = auth->identify(with_cookie(cookie_pair(set_cookie)), again, ignored_error);
  EXPECT_EQ(second.user, first.user);
  EXPECT_TRUE(second.anonymous);
  EXPECT_TRUE(second.cookie) << "the identity rides the cookie: cross-site writes are refused";
  EXPECT_TRUE(again.empty());

  // A new authenticator with the same secret (a restarted server) recognizes it too.
  auto restarted = make_authenticator(kSecret);
  EXPECT_EQ(restarted->identify(with_cookie(cookie_pair(set_cookie)), again, ignored_error).user, first.user);
  EXPECT_TRUE(again.empty());
}

TEST(CookieAuthenticator, OtherCookiesAroundItAreIgnored) {
  auto auth = make_authenticator(kSecret);
  std::string set_cookie;
  Principal first = auth->identify(with_cookie(""), set_cookie, ignored_error);
  std::string pair = cookie_pair(set_cookie);
  for (const std::string& header : {"theme=dark; " + pair + "; lang=en", pair + ";other=1", "a=b;" + pair,
                                    "x_rtsync_uid=nope; " + pair, "rtsync_uid=garbage; " + pair}) {
    std::string out;
    EXPECT_EQ(auth->identify(with_cookie(header), out, ignored_error).user, first.user) << header;
    EXPECT_TRUE(out.empty()) << header;
  }
  // Several Cookie header fields.
  Request req = with_cookie("theme=dark");
  req.insert(http::field::cookie, pair);
  std::string out;
  EXPECT_EQ(auth->identify(req, out, ignored_error).user, first.user);
  EXPECT_TRUE(out.empty());
}

TEST(CookieAuthenticator, TamperedCookieIsReplaced) {
  auto auth = make_authenticator(kSecret);
  std::string set_cookie;
  Principal first = auth->identify(with_cookie(""), set_cookie, ignored_error);
  std::string pair = cookie_pair(set_cookie);
  auto dot = pair.find('.');
  std::string id = pair.substr(std::string("rtsync_uid=").size(), dot - std::string("rtsync_uid=").size());
  std::string sig = pair.substr(dot + 1);

  std::string other_id = id;
  other_id.back() = other_id.back() == '0' ? '1' : '0';
  std::string other_sig = sig;
  other_sig.front() = other_sig.front() == 'A' ? 'B' : 'A';

  for (const std::string& value : {other_id + "." + sig, id + "." + other_sig, id + ".", id, "." + sig,
                                   id + "." + sig + "x", id + "." + sig.substr(1), std::string("anon-x.") + sig}) {
    std::string out;
    Principal p = auth->identify(with_cookie("rtsync_uid=" + value), out, ignored_error);
    EXPECT_NE(p.user, first.user) << value;
    EXPECT_NE(p.user, other_id) << value;
    EXPECT_TRUE(p.user.starts_with("anon-"));
    EXPECT_FALSE(out.empty()) << value;
  }
}

TEST(CookieAuthenticator, CookieFromAnotherSecretIsRejected) {
  auto ours = make_authenticator(kSecret);
  auto theirs = make_authenticator(std::string(64, 'b'));
  std::string set_cookie;
  Principal foreign = theirs->identify(with_cookie(""), set_cookie, ignored_error);
  std::string out;
  Principal p = ours->identify(with_cookie(cookie_pair(set_cookie)), out, ignored_error);
  EXPECT_NE(p.user, foreign.user);
  EXPECT_FALSE(out.empty());
}

class SecretTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::temp_directory_path() / ("rtsync_secret_" + common::random_hex(6)); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SecretTest, CreatedPrivateAndStable) {
  fs::path data = dir_ / "nested" / "data";  // missing directories are created
  std::string secret = load_or_create_secret(data.string());
  EXPECT_EQ(secret.size(), 64u);
  EXPECT_EQ(secret.find_first_not_of("0123456789abcdef"), std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat((data / "secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(data / "secret");
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), secret);

  EXPECT_EQ(load_or_create_secret(data.string()), secret);
  EXPECT_NE(load_or_create_secret((dir_ / "other").string()), secret);
}

TEST_F(SecretTest, HandWrittenSecretWithNewlineIsAccepted) {
  fs::create_directories(dir_);
  std::string hex = common::random_hex(32);
  std::ofstream(dir_ / "secret") << hex << "\n";
  EXPECT_EQ(load_or_create_secret(dir_.string()), hex);
}

TEST_F(SecretTest, CorruptSecretThrowsNamingTheFile) {
  fs::create_directories(dir_);
  for (std::string bad : {std::string(), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g'),
                          common::random_hex(32).replace(10, 1, " ")}) {
    std::ofstream(dir_ / "secret", std::ios::trunc) << bad;
    try {
      load_or_create_secret(dir_.string());
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find((dir_ / "secret").string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(SecretTest, UncreatableDirectoryThrows) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(load_or_create_secret((dir_ / "file" / "data").string()), std::runtime_error);
}

// A data dir in use (its database exists) that lost its secret: a new secret would silently invalidate
// every token, cookie and anonymous owner, so it is refused, naming the file. A fresh dir still gets one.
TEST_F(SecretTest, MissingSecretBesideTheDatabaseIsRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "rtsync.db") << "x";
  try {
    load_or_create_secret(dir_.string(), dir_ / "rtsync.db");
    ADD_FAILURE() << "a new secret was made beside the database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "secret").string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "secret"));
  EXPECT_EQ(load_or_create_secret((dir_ / "fresh").string(), dir_ / "fresh" / "rtsync.db").size(), 64u);
}

TEST_F(SecretTest, SecretReadableByOthersIsLoadedWithAWarning) {
  fs::create_directories(dir_);
  const std::string hex = common::random_hex(32);
  std::ofstream(dir_ / "secret") << hex;
  fs::permissions(dir_ / "secret", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const testing::LogCapture log;
  EXPECT_EQ(load_or_create_secret(dir_.string()), hex);
  const std::string warning = (dir_ / "secret").string() + " is readable by group or others (mode 0640)";
  EXPECT_EQ(log.lines("warning", warning).size(), 1u);
  fs::permissions(dir_ / "secret", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(load_or_create_secret(dir_.string()), hex);
  EXPECT_EQ(log.lines("warning").size(), 1u) << "0600 is quiet";
}

}  // namespace
}  // namespace rtsync::server
