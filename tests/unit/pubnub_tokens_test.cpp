// PubNub Access Manager tokens as the server checks them (service/pubnub_tokens.hpp), over a real SQLite
// store: off without a key; a token in force, expired, not this server's, not a token at all; revoked at
// once on the node that revokes, after a restart (load), and on another node once it refreshed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "common/clock.hpp"
#include "common/random.hpp"
#include "service/pubnub_tokens.hpp"
#include "store/store.hpp"

namespace rtsync::service {
namespace {

namespace fs = std::filesystem;
namespace pam = protocol::pam;

class PubnubTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rtsync-tokens-test-" + common::random_hex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<store::Store> open() { return store::open_sqlite(store::SqliteOptions{dir_ / "rtsync.db"}); }

  static pam::Grant grant(std::int64_t issued_s, std::int64_t ttl_minutes = 10) {
    pam::Grant g;
    g.issued = issued_s;
    g.ttl = ttl_minutes;
    g.resources[0]["chat"] = pam::kRead;
    return g;
  }
  static void revoke(PubnubTokens& t, const PubnubTokens::Checked& c) {
    std::promise<bool> done;
    t.revoke(c, [](std::function<void()> fn) { fn(); }, [&](bool ok) { done.set_value(ok); });
    EXPECT_TRUE(done.get_future().get());
  }

  fs::path dir_;
};

constexpr const char* kKey = "sec-c-0123456789abcdef";

TEST_F(PubnubTokensTest, OffWithoutAKey) {
  auto store = open();
  PubnubTokens off(*store, "");
  EXPECT_FALSE(off.enabled());
  PubnubTokens on(*store, kKey);
  EXPECT_FALSE(off.check(on.issue(grant(common::now_ms() / 1000)), common::now_ms()).token);
}

TEST_F(PubnubTokensTest, InForceExpiredForeignOrNoToken) {
  auto store = open();
  PubnubTokens tokens(*store, kKey);
  const std::int64_t now = common::now_ms();
  const std::string token = tokens.issue(grant(now / 1000));
  EXPECT_NE(tokens.issue(grant(now / 1000)), token) << "every token is its own";
  auto ok = tokens.check(token, now);
  ASSERT_TRUE(ok.grant) << ok.why;
  EXPECT_TRUE(ok.grant->allows(pam::Resource::channel, "chat", pam::kRead));
  EXPECT_EQ(tokens.check(token, now).id, ok.id) << "the second check, from the cache";

  auto late = tokens.check(token, now + 11 * 60 * 1000);
  EXPECT_TRUE(late.token);
  EXPECT_FALSE(late.grant);
  EXPECT_EQ(late.why, "expired");

  PubnubTokens elsewhere(*store, "another-secret-key-0000");
  auto foreign = tokens.check(elsewhere.issue(grant(now / 1000)), now);
  EXPECT_TRUE(foreign.token);
  EXPECT_EQ(foreign.why, "bad signature");

  EXPECT_FALSE(tokens.check("a-pam-v2-auth-key", now).token);
  EXPECT_FALSE(tokens.check("eyJ.eyJ.sig", now).token);
}

TEST_F(PubnubTokensTest, RevokedHereAtOnceAfterARestartAndElsewhereOnceRefreshed) {
  const std::int64_t now = common::now_ms();
  std::string token, kept;
  {
    auto store = open();
    PubnubTokens here(*store, kKey);
    PubnubTokens there(*store, kKey);  // another node on the same database
    token = here.issue(grant(now / 1000));
    kept = here.issue(grant(now / 1000));
    ASSERT_TRUE(there.check(token, now).grant);
    revoke(here, here.check(token, now));
    EXPECT_EQ(here.check(token, common::now_ms()).why, "revoked");
    EXPECT_TRUE(there.check(token, common::now_ms()).grant) << "not yet refreshed";
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (there.check(token, common::now_ms()).grant && std::chrono::steady_clock::now() < until) {
      there.refresh();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(there.check(token, common::now_ms()).why, "revoked");
    EXPECT_TRUE(there.check(kept, common::now_ms()).grant);
  }
  auto store = open();
  PubnubTokens restarted(*store, kKey);
  EXPECT_TRUE(restarted.load());
  EXPECT_EQ(restarted.check(token, common::now_ms()).why, "revoked");
  EXPECT_TRUE(restarted.check(kept, common::now_ms()).grant);
}

}  // namespace
}  // namespace rtsync::service
