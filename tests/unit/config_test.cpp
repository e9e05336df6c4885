// Tests for config loading (PROTOCOL §2): every accepted key, and that every rejected file names the key
// (or the file, or the syntax error's position) in its message, since that message is all an operator sees.

#include "config/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "broker/broker.hpp"

namespace rtsync::config {
namespace {

// The message of the ConfigError that loading `toml` throws; a test failure if it loads.
std::string error_of(std::string_view toml, std::string_view source = "test.toml") {
  try {
    load_string(toml, source);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError for:\n" << toml;
  return {};
}

void expect_error(std::string_view toml, std::string_view needle) {
  const std::string message = error_of(toml);
  EXPECT_NE(message.find(needle), std::string::npos)
      << "message: " << message << "\nshould contain: " << needle << "\nfor:\n" << toml;
}

std::string listen_error(const std::string& listen) {
  try {
    split_listen(listen);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected split_listen to reject \"" << listen << "\"";
  return {};
}

// A file in the temp directory that is removed when the test ends.
class TempFile {
 public:
  explicit TempFile(std::string_view contents)
      : path_(std::filesystem::temp_directory_path() /
              ("rtsync_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + ".toml")) {
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

void expect_default_options(const core::NamespaceOptions& o) {
  EXPECT_EQ(o.history_size, 1000u);
  EXPECT_EQ(o.history_bytes, 4u * 1024 * 1024);
  EXPECT_TRUE(o.durable);
  EXPECT_TRUE(o.client_publish);
  EXPECT_TRUE(o.presence);
  EXPECT_TRUE(o.anonymous);
}

// --- defaults ---

TEST(ConfigDefaults, MatchTheDocumentedValues) {
  const Config c = defaults();
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.server.data, std::filesystem::path("./data"));
  EXPECT_EQ(c.server.web, std::filesystem::path("./web/public"));
  EXPECT_TRUE(c.server.allowed_origins.empty());
  EXPECT_EQ(c.server.io_threads, 0u);
  EXPECT_EQ(c.server.metrics_token, "");
  EXPECT_TRUE(c.server.trusted_proxies.empty());
  EXPECT_EQ(c.limits.http_rate, 100u);
  EXPECT_EQ(c.limits.http_burst, 1000u);
  EXPECT_EQ(c.limits.http_user_rate, 50u);
  EXPECT_EQ(c.limits.http_user_burst, 500u);
  expect_default_options(c.channels);
  EXPECT_TRUE(c.namespaces.empty());
  EXPECT_TRUE(c.collections.empty());
  EXPECT_EQ(c.pubnub.publish_key, "");
  EXPECT_EQ(c.pubnub.subscribe_key, "");
  EXPECT_EQ(c.pubnub.presence_timeout, 300u);
  EXPECT_EQ(c.pubnub.subscribe_timeout, 280u);
  EXPECT_EQ(c.pubnub.secret_key, "") << "no Access Manager";
  EXPECT_EQ(c.limits.max_frame, 64u * 1024);
  EXPECT_EQ(c.limits.max_outbound, 1024u * 1024);
  EXPECT_EQ(c.limits.max_subscriptions, 1000u);
  EXPECT_EQ(c.limits.max_http_body, 1024u * 1024);
  EXPECT_EQ(c.limits.max_publication, 64u * 1024);
  EXPECT_EQ(c.limits.channel_idle, 60u);
  EXPECT_EQ(c.store.synchronous, "full");
}

TEST(ConfigDefaults, EmptyFileGivesTheDefaults) {
  const Config c = load_string("");
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.server.data, std::filesystem::path("./data"));
  expect_default_options(c.channels);
  EXPECT_TRUE(c.namespaces.empty());
  EXPECT_TRUE(c.collections.empty());
  EXPECT_EQ(c.limits.max_frame, 64u * 1024);
  EXPECT_EQ(c.store.synchronous, "full");
}

TEST(ConfigDefaults, EmptyTablesKeepTheDefaults) {
  const Config c = load_string("[server]\n[channels]\n[namespaces]\n[collections]\n[pubnub]\n[limits]\n[store]\n");
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  expect_default_options(c.channels);
  EXPECT_TRUE(c.namespaces.empty());
  EXPECT_TRUE(c.collections.empty());
  EXPECT_EQ(c.store.synchronous, "full");
}

// --- every key is read ---

TEST(ConfigLoad, ReadsTheProtocolExample) {
  const Config c = load_string(R"(
[server]
listen = "127.0.0.1:8080"
data = "./data"
allowed_origins = ["http://localhost:8080"]

[channels]
history_size = 1000
durable = true
client_publish = true
presence = true
anonymous = true

[namespaces.cursor]
durable = false
history_size = 10

[collections.todos]
read = "all"
write = "all"

[collections.pcm]
per_user = true
read = "owner"
write = "owner"
tally = { algorithms = [0, 1, 2, 3], data_structures = [0, 1, 2, 3] }
)");
  EXPECT_EQ(c.server.allowed_origins, std::vector<std::string>{"http://localhost:8080"});
  ASSERT_EQ(c.namespaces.count("cursor"), 1u);
  EXPECT_FALSE(c.namespaces.at("cursor").durable);
  EXPECT_EQ(c.namespaces.at("cursor").history_size, 10u);
  EXPECT_TRUE(c.namespaces.at("cursor").presence);
  ASSERT_EQ(c.collections.size(), 2u);
  const CollectionConfig& todos = c.collections.at("todos");
  EXPECT_EQ(todos.read, CollectionConfig::Read::all);
  EXPECT_EQ(todos.write, CollectionConfig::Write::all);
  EXPECT_FALSE(todos.per_user);
  EXPECT_TRUE(todos.tally.empty());
  const CollectionConfig& pcm = c.collections.at("pcm");
  EXPECT_TRUE(pcm.per_user);
  EXPECT_EQ(pcm.read, CollectionConfig::Read::owner);
  EXPECT_EQ(pcm.write, CollectionConfig::Write::owner);
  const std::map<std::string, std::vector<std::int64_t>> tally{{"algorithms", {0, 1, 2, 3}},
                                                               {"data_structures", {0, 1, 2, 3}}};
  EXPECT_EQ(pcm.tally, tally);
}

TEST(ConfigLoad, ReadsEveryServerKey) {
  const Config c = load_string(R"(
[server]
listen = "[::1]:0"
data = "/var/lib/rtsync"
web = "/srv/www"
allowed_origins = ["https://a.example", "https://b.example"]
io_threads = 4
metrics_token = "0123456789abcdef-+/="
trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]
)");
  EXPECT_EQ(c.server.listen, "[::1]:0");
  EXPECT_EQ(c.server.data, std::filesystem::path("/var/lib/rtsync"));
  EXPECT_EQ(c.server.web, std::filesystem::path("/srv/www"));
  EXPECT_EQ(c.server.allowed_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(c.server.io_threads, 4u);
  EXPECT_EQ(c.server.metrics_token, "0123456789abcdef-+/=");
  EXPECT_EQ(c.server.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8", "fd00::/8"}));
}

TEST(ConfigLoad, ReadsApiKeys) {
  EXPECT_TRUE(defaults().api.keys.empty());
  const Config c = load_string(R"(
[api]
keys = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210-+/="]
)");
  EXPECT_EQ(c.api.keys, (std::vector<std::string>{"0123456789abcdef0123456789abcdef",
                                                  "fedcba9876543210fedcba9876543210-+/="}));
}

TEST(ConfigLoad, ReadsHooks) {
  EXPECT_FALSE(defaults().hooks.connect || defaults().hooks.publish);
  const Config c = load_string(R"(
[collections.forms]

[hooks.connect]
url = "http://127.0.0.1:9000/hooks/connect"
timeout_ms = 250
on_failure = "allow"

[hooks.publish]
url = "http://backend.internal/publish"
channels = ["room:*", "news"]

[hooks.write]
url = "http://[::1]:81/w"
collections = ["forms"]

[hooks.rpc]
url = "http://127.0.0.1:9000/rpc"
)");
  ASSERT_TRUE(c.hooks.connect);
  EXPECT_EQ(c.hooks.connect->endpoint.port, "9000");
  EXPECT_EQ(c.hooks.connect->endpoint.target, "/hooks/connect");
  EXPECT_EQ(c.hooks.connect->timeout_ms, 250u);
  EXPECT_TRUE(c.hooks.connect->allow_on_failure);
  ASSERT_TRUE(c.hooks.publish);
  EXPECT_EQ(c.hooks.publish->channels, (std::vector<std::string>{"room:*", "news"}));
  EXPECT_EQ(c.hooks.publish->timeout_ms, 5000u);
  EXPECT_FALSE(c.hooks.publish->allow_on_failure);
  EXPECT_EQ(c.hooks.write->collections, (std::vector<std::string>{"forms"}));
  EXPECT_TRUE(c.hooks.rpc);
  EXPECT_FALSE(c.hooks.subscribe);
}

TEST(ConfigErrors, RefusesBadHooks) {
  expect_error("[hooks.login]\nurl = \"http://a/\"\n", "unknown key \"hooks.login\"");
  expect_error("[hooks.connect]\ntimeout_ms = 5\n", "\"hooks.connect\" needs a \"url\"");
  expect_error("[hooks.connect]\nurl = \"https://a/\"\n", "must be an http://HOST[:PORT][/PATH] URL");
  expect_error("[hooks.connect]\nurl = \"http://a/\"\ntimeout_ms = 0\n", "between 1 and 60000");
  expect_error("[hooks.connect]\nurl = \"http://a/\"\non_failure = \"maybe\"\n", "hooks.connect.on_failure");
  expect_error("[hooks.connect]\nurl = \"http://a/\"\nchannels = [\"x\"]\n", "unknown key \"hooks.connect.channels\"");
  expect_error("[hooks.publish]\nurl = \"http://a/\"\n", "needs \"channels\"");
  expect_error("[hooks.write]\nurl = \"http://a/\"\ncollections = [\"nope\"]\n", "which [collections] does not declare");
  expect_error("[hooks.rpc]\nurl = \"http://a/\"\non_failure = \"allow\"\n", "unknown key \"hooks.rpc.on_failure\"");
}

TEST(ConfigLoad, ReadsWebhooks) {
  const Config c = load_string(R"(
[collections.forms]

[webhooks.feed]
url = "http://127.0.0.1:9000/hook"
channels = ["news", "room:*"]
collections = ["forms"]
secret = "0123456789abcdef0123456789abcdef"
timeout_ms = 500
max_age = 60
)");
  ASSERT_EQ(c.webhooks.size(), 1u);
  const auto& w = c.webhooks.at("feed");
  EXPECT_EQ(w.endpoint.port, "9000");
  EXPECT_EQ(w.timeout_ms, 500u);
  EXPECT_EQ(w.max_age, 60u);
  const auto routes = webhook_routes(c);
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].name, "feed");
  EXPECT_EQ(routes[0].channels, (std::vector<std::string>{"news", "room:*", "coll:forms"}));
}

TEST(ConfigErrors, RefusesBadWebhooks) {
  const std::string secret = "secret = \"0123456789abcdef0123456789abcdef\"\n";
  expect_error("[webhooks.feed]\nchannels = [\"a\"]\n" + secret, "\"webhooks.feed\" needs a \"url\"");
  expect_error("[webhooks.feed]\nurl = \"http://a/\"\nchannels = [\"a\"]\n", "needs a \"secret\"");
  expect_error("[webhooks.feed]\nurl = \"http://a/\"\nchannels = [\"a\"]\nsecret = \"short\"\n", "at least 32 visible ASCII");
  expect_error("[webhooks.feed]\nurl = \"http://a/\"\n" + secret, "needs \"channels\" or \"collections\"");
  expect_error("[webhooks.feed]\nurl = \"http://a/\"\ncollections = [\"nope\"]\n" + secret, "which [collections] does not declare");
  expect_error("[namespaces.mem]\ndurable = false\n[webhooks.feed]\nurl = \"http://a/\"\nchannels = [\"mem:*\"]\n" + secret,
               "an in-memory namespace");
  expect_error("[webhooks.\"a b\"]\nurl = \"http://a/\"\n", "a webhook name must be");
  expect_error("[webhooks.feed]\nurl = \"http://a/\"\nchannels = [\"a\"]\nretries = 3\n" + secret,
               "unknown key \"webhooks.feed.retries\"");
}

TEST(ConfigLoad, ReadsEveryChannelsKey) {
  const Config c = load_string(R"(
[channels]
history_size = 0
history_bytes = 0
durable = false
client_publish = false
presence = false
anonymous = false
)");
  EXPECT_EQ(c.channels.history_size, 0u);
  EXPECT_EQ(c.channels.history_bytes, 0u);
  EXPECT_FALSE(c.channels.durable);
  EXPECT_FALSE(c.channels.client_publish);
  EXPECT_FALSE(c.channels.presence);
  EXPECT_FALSE(c.channels.anonymous);
}

TEST(ConfigLoad, ReadsPubnubLimitsAndStore) {
  const Config c = load_string(R"(
[pubnub]
publish_key = "pub-c-1"
subscribe_key = "sub-c-1"
secret_key = "sec-c-0123456789abcdef"
presence_timeout = 5
subscribe_timeout = 2

[limits]
max_frame = 125
max_outbound = 70000
max_subscriptions = 7
max_http_body = 4096
max_publication = 1000
channel_idle = 5
http_rate = 0
http_burst = 3
http_user_rate = 7
http_user_burst = 9

[store]
synchronous = "normal"
)");
  EXPECT_EQ(c.pubnub.publish_key, "pub-c-1");
  EXPECT_EQ(c.pubnub.subscribe_key, "sub-c-1");
  EXPECT_EQ(c.pubnub.presence_timeout, 5u);
  EXPECT_EQ(c.pubnub.subscribe_timeout, 2u);
  EXPECT_EQ(c.pubnub.secret_key, "sec-c-0123456789abcdef");
  EXPECT_EQ(c.limits.max_frame, 125u);
  EXPECT_EQ(c.limits.max_outbound, 70000u);
  EXPECT_EQ(c.limits.max_subscriptions, 7u);
  EXPECT_EQ(c.limits.max_http_body, 4096u);
  EXPECT_EQ(c.limits.max_publication, 1000u);
  EXPECT_EQ(c.limits.channel_idle, 5u);
  EXPECT_EQ(c.limits.http_rate, 0u);
  EXPECT_EQ(c.limits.http_burst, 3u);
  EXPECT_EQ(c.limits.http_user_rate, 7u);
  EXPECT_EQ(c.limits.http_user_burst, 9u);
  EXPECT_EQ(c.store.synchronous, "normal");
}

TEST(ConfigLoad, AcceptsDottedKeysAndInlineTables) {
  const Config c = load_string("server.io_threads = 2\nnamespaces.cursor = { durable = false }\n");
  EXPECT_EQ(c.server.io_threads, 2u);
  EXPECT_FALSE(c.namespaces.at("cursor").durable);
}

// --- unknown keys ---

TEST(ConfigErrors, UnknownKeysAreNamedInFull) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"foo = 1", "foo"},
      {"[sever]", "sever"},
      {"[server]\nlistn = \"127.0.0.1:1\"", "server.listn"},
      {"[channels]\nhistroy_size = 5", "channels.histroy_size"},
      {"[namespaces.cursor]\ndurabel = false", "namespaces.cursor.durabel"},
      {"[collections.todos]\nreed = \"all\"", "collections.todos.reed"},
      {"[pubnub]\npublish = \"x\"", "pubnub.publish"},
      {"[limits]\nmax_frames = 200", "limits.max_frames"},
      {"[store]\nsync = \"full\"", "store.sync"},
  };
  for (const auto& [toml, key] : cases) expect_error(toml, "unknown key \"" + key + "\"");
}

TEST(ConfigErrors, ErrorsCarryTheSourceLineAndColumn) {
  const std::string message = error_of("[server]\nio_threads = 1\n  listn = \"x:1\"\n", "rtsync.toml");
  EXPECT_EQ(message, "rtsync.toml:3:3: unknown key \"server.listn\"");
}

TEST(ConfigErrors, KeysThatAreNotBareAreQuotedInMessages) {
  expect_error("[namespaces.\"v1.chat\"]\ndurable = 1", "\"namespaces.\"v1.chat\".durable\" must be a boolean");
  expect_error("[server]\n\"my key\" = 1", "unknown key \"server.\"my key\"\"");
}

// --- wrong types ---

TEST(ConfigErrors, WrongTypesNameTheKeyAndTheExpectedType) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"server = 1", "\"server\" must be a table"},
      {"channels = \"x\"", "\"channels\" must be a table"},
      {"[[namespaces]]", "\"namespaces\" must be a table"},
      {"collections = []", "\"collections\" must be a table"},
      {"pubnub = true", "\"pubnub\" must be a table"},
      {"limits = 1", "\"limits\" must be a table"},
      {"store = 1", "\"store\" must be a table"},
      {"[server]\nlisten = 8080", "\"server.listen\" must be a string"},
      {"[server]\ndata = 1", "\"server.data\" must be a string"},
      {"[server]\nweb = true", "\"server.web\" must be a string"},
      {"[server]\nallowed_origins = \"http://a\"", "\"server.allowed_origins\" must be an array of strings"},
      {"[server]\nallowed_origins = [\"http://a\", 1]", "\"server.allowed_origins\" must be an array of strings"},
      {"[server]\nio_threads = \"4\"", "\"server.io_threads\" must be an integer"},
      {"[server]\nio_threads = 1.5", "\"server.io_threads\" must be an integer"},
      {"[channels]\nhistory_size = \"10\"", "\"channels.history_size\" must be an integer"},
      {"[channels]\nhistory_size = 10.0", "\"channels.history_size\" must be an integer"},
      {"[channels]\ndurable = 1", "\"channels.durable\" must be a boolean"},
      {"[channels]\nclient_publish = \"true\"", "\"channels.client_publish\" must be a boolean"},
      {"[channels]\npresence = []", "\"channels.presence\" must be a boolean"},
      {"[channels]\nanonymous = 0", "\"channels.anonymous\" must be a boolean"},
      {"[namespaces]\ncursor = 1", "\"namespaces.cursor\" must be a table"},
      {"[namespaces.cursor]\nhistory_size = true", "\"namespaces.cursor.history_size\" must be an integer"},
      {"[namespaces.cursor]\ndurable = \"no\"", "\"namespaces.cursor.durable\" must be a boolean"},
      {"[namespaces.cursor]\nanonymous = 1979-05-27", "\"namespaces.cursor.anonymous\" must be a boolean"},
      {"[collections]\ntodos = \"all\"", "\"collections.todos\" must be a table"},
      {"[collections.todos]\nread = 1", "\"collections.todos.read\" must be a string"},
      {"[collections.todos]\nwrite = false", "\"collections.todos.write\" must be a string"},
      {"[collections.todos]\nper_user = \"yes\"", "\"collections.todos.per_user\" must be a boolean"},
      {"[collections.todos]\ntally = [1, 2]", "\"collections.todos.tally\" must be a table"},
      {"[collections.todos]\ntally = { level = 1 }", "\"collections.todos.tally.level\" must be an array of integers"},
      {"[collections.todos]\ntally = { level = [1, \"2\"] }",
       "\"collections.todos.tally.level\" must be an array of integers"},
      {"[collections.todos]\ntally = { level = [1.5] }", "\"collections.todos.tally.level\" must be an array of integers"},
      {"[pubnub]\npublish_key = 1", "\"pubnub.publish_key\" must be a string"},
      {"[pubnub]\nsubscribe_key = true", "\"pubnub.subscribe_key\" must be a string"},
      {"[pubnub]\npresence_timeout = \"5\"", "\"pubnub.presence_timeout\" must be an integer"},
      {"[pubnub]\npresence_timeout = 0", "\"pubnub.presence_timeout\" must be between 1 and 86400"},
      {"[pubnub]\nsubscribe_timeout = 301", "\"pubnub.subscribe_timeout\" must be between 1 and 300"},
      {"[limits]\nmax_frame = \"64k\"", "\"limits.max_frame\" must be an integer"},
      {"[limits]\nmax_outbound = 1.0", "\"limits.max_outbound\" must be an integer"},
      {"[limits]\nmax_subscriptions = true", "\"limits.max_subscriptions\" must be an integer"},
      {"[limits]\nmax_http_body = \"1\"", "\"limits.max_http_body\" must be an integer"},
      {"[store]\nsynchronous = true", "\"store.synchronous\" must be a string"},
  };
  for (const auto& [toml, needle] : cases) expect_error(toml, needle);
}

// --- ranges and allowed sets ---

TEST(ConfigErrors, OutOfRangeValuesNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[server]\nio_threads = -1", "\"server.io_threads\" must be between 0 and 256"},
      {"[server]\nio_threads = 257", "\"server.io_threads\" must be between 0 and 256"},
      {"[channels]\nhistory_size = -1", "\"channels.history_size\" must be between 0 and 1000000"},
      {"[channels]\nhistory_size = 1000001", "\"channels.history_size\" must be between 0 and 1000000"},
      {"[namespaces.a]\nhistory_size = 1000001", "\"namespaces.a.history_size\" must be between 0 and 1000000"},
      {"[limits]\nmax_frame = 124", "\"limits.max_frame\" must be between 125 and 16777216"},
      {"[limits]\nmax_frame = 16777217", "\"limits.max_frame\" must be between 125 and 16777216"},
      {"[limits]\nmax_outbound = 0", "\"limits.max_outbound\" must be a positive integer"},
      {"[limits]\nmax_subscriptions = -3", "\"limits.max_subscriptions\" must be a positive integer"},
      {"[limits]\nmax_http_body = 0", "\"limits.max_http_body\" must be a positive integer"},
      {"[server]\ndata = \"\"", "\"server.data\" must not be empty"},
      {"[server]\nmetrics_token = \"short\"", "\"server.metrics_token\" must be empty or at least 16"},
      {"[server]\nmetrics_token = \"0123456789 abcdef\"", "\"server.metrics_token\" must be empty or at least 16"},
      {"[server]\nmetrics_token = 1", "\"server.metrics_token\" must be a string"},
      {"[api]\nkeys = \"0123456789abcdef0123456789abcdef\"", "\"api.keys\" must be an array of strings"},
      {"[api]\nkeys = [1]", "\"api.keys\" must be an array of strings"},
      {"[api]\nkeys = [\"0123456789abcdef0123456789abcde\"]", "\"api.keys\" entries must be at least 32"},
      {"[api]\nkeys = [\"0123456789abcdef 0123456789abcdef\"]", "\"api.keys\" entries must be at least 32"},
      {"[api]\nkeys = [\"0123456789abcdef0123456789abcdef\", \"0123456789abcdef0123456789abcdef\"]",
       "\"api.keys\" lists a key twice"},
      {"[api]\nkey = []", "unknown key \"api.key\""},
      {"api = 1", "\"api\" must be a table"},
      {"[server]\ntrusted_proxies = \"127.0.0.1\"", "\"server.trusted_proxies\" must be an array of strings"},
      {"[server]\ntrusted_proxies = [\"10.0.0.0/33\"]", "\"server.trusted_proxies\": \"10.0.0.0/33\" is not an IP address"},
      {"[server]\ntrusted_proxies = [\"proxy.local\"]", "\"server.trusted_proxies\": \"proxy.local\" is not an IP address"},
      {"[limits]\nhttp_rate = -1", "\"limits.http_rate\" must be between 0 and 1000000"},
      {"[limits]\nhttp_burst = 0", "\"limits.http_burst\" must be a positive integer"},
      {"[limits]\nhttp_user_rate = 1000001", "\"limits.http_user_rate\" must be between 0 and 1000000"},
      {"[limits]\nhttp_user_burst = 0", "\"limits.http_user_burst\" must be a positive integer"},
      {"[server]\nweb = \"\"", "\"server.web\" must not be empty"},
  };
  for (const auto& [toml, needle] : cases) expect_error(toml, needle);
}

TEST(ConfigLoad, RangeBoundsAreInclusive) {
  const Config low = load_string("[server]\nio_threads = 0\n[channels]\nhistory_size = 0\n[limits]\nmax_frame = 125\n"
                                 "max_outbound = 69632\nmax_subscriptions = 1\nmax_http_body = 1\n"
                                 "max_publication = 1\nchannel_idle = 0\n");
  EXPECT_EQ(low.server.io_threads, 0u);
  EXPECT_EQ(low.channels.history_size, 0u);
  EXPECT_EQ(low.limits.max_frame, 125u);
  EXPECT_EQ(low.limits.max_outbound, 69632u);  // 64 KiB (a document) + 4 KiB
  EXPECT_EQ(low.limits.max_publication, 1u);
  EXPECT_EQ(low.limits.channel_idle, 0u);
  const Config high =
      load_string("[server]\nio_threads = 256\n[channels]\nhistory_size = 1000000\n[limits]\nmax_frame = 16777216\n");
  EXPECT_EQ(high.server.io_threads, 256u);
  EXPECT_EQ(high.channels.history_size, 1000000u);
  EXPECT_EQ(high.limits.max_frame, 16u * 1024 * 1024);
}

// A push larger than a connection's queue would cut off every subscriber of its channel: refused at load.
TEST(ConfigErrors, ASecretKeyIsLongAndComesWithAPublishKey) {
  expect_error("[pubnub]\nsecret_key = \"short\"", "\"pubnub.secret_key\" must be at least 16 characters");
  expect_error("[pubnub]\nsecret_key = \"sec-c-0123456789abcdef\"", "\"pubnub.secret_key\" needs \"pubnub.publish_key\"");
}

TEST(ConfigErrors, PublicationsMustFitTheOutboundQueue) {
  expect_error("[limits]\nmax_publication = 1048576", "test.toml:2:19: \"limits.max_outbound\" (1048576) must be at "
                                                    "least 4096 bytes above the largest push");
  expect_error("[limits]\nmax_outbound = 69631", "\"limits.max_outbound\" (69631) must be at least 4096 bytes above");
  expect_error("[limits]\nmax_outbound = 200000\nmax_publication = 196000", "\"limits.max_publication\" (196000)");
  EXPECT_EQ(load_string("[limits]\nmax_outbound = 200000\nmax_publication = 195904\n").limits.max_publication, 195904u);
  expect_error("[limits]\nchannel_idle = -1", "\"limits.channel_idle\"");
  expect_error("[channels]\nhistory_bytes = -1", "\"channels.history_bytes\"");
}

TEST(ConfigErrors, ValuesOutsideTheAllowedSetNameTheKey) {
  expect_error("[store]\nsynchronous = \"off\"", "\"store.synchronous\" must be one of \"full\", \"normal\"");
  expect_error("[store]\nsynchronous = \"FULL\"", "\"store.synchronous\" must be one of");
  expect_error("[collections.c]\nread = \"none\"", "\"collections.c.read\" must be one of \"all\", \"owner\"");
  expect_error("[collections.c]\nwrite = \"some\"", "\"collections.c.write\" must be one of \"all\", \"owner\", \"none\"");
}

TEST(ConfigLoad, CollectionWriteNone) {
  const Config c = load_string("[collections.log]\nwrite = \"none\"\n");
  EXPECT_EQ(c.collections.at("log").write, CollectionConfig::Write::none);
}

TEST(ConfigErrors, ListenIsValidated) {
  expect_error("[server]\nlisten = \"localhost\"", "\"server.listen\"");
  expect_error("[server]\nlisten = \"localhost\"", "missing port");
  expect_error("[server]\nlisten = \":80\"", "\"server.listen\"");
  expect_error("[server]\nlisten = \"h:70000\"", "\"server.listen\"");
}

// --- namespaces ---

TEST(ConfigNamespaces, InheritFromChannelsWrittenAfterThem) {
  const Config c = load_string(R"(
[namespaces.cursor]
history_size = 10

[namespaces.chat]

[channels]
durable = false
anonymous = false
history_size = 50
)");
  const core::NamespaceOptions& cursor = c.namespaces.at("cursor");
  EXPECT_EQ(cursor.history_size, 10u);  // its own
  EXPECT_FALSE(cursor.durable);         // from [channels], although [channels] comes later
  EXPECT_FALSE(cursor.anonymous);
  EXPECT_TRUE(cursor.presence);         // neither sets it: the built-in default
  const core::NamespaceOptions& chat = c.namespaces.at("chat");
  EXPECT_EQ(chat.history_size, 50u);
  EXPECT_FALSE(chat.durable);
  EXPECT_FALSE(chat.anonymous);
  EXPECT_TRUE(chat.client_publish);
}

TEST(ConfigNamespaces, OverridesDoNotLeakIntoChannelsOrOtherNamespaces) {
  const Config c = load_string(R"(
[channels]
presence = false
[namespaces.a]
presence = true
client_publish = false
[namespaces.b]
durable = false
)");
  EXPECT_FALSE(c.channels.presence);
  EXPECT_TRUE(c.channels.client_publish);
  EXPECT_TRUE(c.channels.durable);
  EXPECT_TRUE(c.namespaces.at("a").presence);
  EXPECT_FALSE(c.namespaces.at("a").client_publish);
  EXPECT_TRUE(c.namespaces.at("a").durable);
  EXPECT_FALSE(c.namespaces.at("b").presence);
  EXPECT_TRUE(c.namespaces.at("b").client_publish);
  EXPECT_FALSE(c.namespaces.at("b").durable);
}

TEST(ConfigNamespaces, NamesUseTheAllowedAlphabet) {
  const std::string longest(64, 'n');
  const Config c = load_string("[namespaces.\"v1.chat@x-y_Z9\"]\n[namespaces." + longest + "]\n");
  EXPECT_EQ(c.namespaces.count("v1.chat@x-y_Z9"), 1u);
  EXPECT_EQ(c.namespaces.count(longest), 1u);

  expect_error("[namespaces.\"a:b\"]", "\"namespaces.\"a:b\"\": a namespace name must be 1-64 characters");
  expect_error("[namespaces.\"\"]", "a namespace name must be 1-64 characters");
  expect_error("[namespaces.\"a b\"]", "a namespace name must be 1-64 characters");
  expect_error("[namespaces.\"a/b\"]", "a namespace name must be 1-64 characters");
  expect_error("[namespaces." + std::string(65, 'n') + "]", "a namespace name must be 1-64 characters");
}

TEST(ConfigNamespaces, CollAndTallyAreReserved) {
  expect_error("[namespaces.coll]", "\"namespaces.coll\": the namespace name is reserved");
  expect_error("[namespaces.tally]\ndurable = false", "\"namespaces.tally\": the namespace name is reserved");
  // Only the exact names: others that merely start alike are ordinary namespaces.
  const Config c = load_string("[namespaces.collab]\n[namespaces.tallyho]\n");
  EXPECT_EQ(c.namespaces.size(), 2u);
}

// --- collections ---

TEST(ConfigCollections, TallyAsATableKeepsValueOrder) {
  const Config c = load_string(R"(
[collections.votes]
per_user = true

[collections.votes.tally]
choice = [3, 1, 2]
"level.v2" = [-1, 0, 9000000000]
)");
  const CollectionConfig& votes = c.collections.at("votes");
  EXPECT_TRUE(votes.per_user);
  ASSERT_EQ(votes.tally.size(), 2u);
  EXPECT_EQ(votes.tally.at("choice"), (std::vector<std::int64_t>{3, 1, 2}));
  EXPECT_EQ(votes.tally.at("level.v2"), (std::vector<std::int64_t>{-1, 0, 9000000000}));
}

TEST(ConfigCollections, TallyValuesMustBeNonEmptyAndDistinct) {
  expect_error("[collections.v]\ntally = { choice = [] }", "\"collections.v.tally.choice\" must list at least one");
  expect_error("[collections.v]\ntally = { choice = [1, 2, 1] }",
               "\"collections.v.tally.choice\" lists the value 1 twice");
}

TEST(ConfigCollections, TallyGroup) {
  const Config c = load_string("[collections.v]\ntally = { choice = [1] }\ntally_group = \"room\"\n");
  EXPECT_EQ(c.collections.at("v").tally_group, "room");
  EXPECT_TRUE(load_string("[collections.v]\ntally = { choice = [1] }\n").collections.at("v").tally_group.empty());
  expect_error("[collections.v]\ntally_group = \"room\"", "\"collections.v.tally_group\" needs a tally");
  expect_error("[collections.v]\ntally = { room = [1] }\ntally_group = \"room\"", "\"room\" is a tally field");
  for (const std::string bad : {"\"id\"", "\"_owner\"", "\"a b\"", "\"\"", "7"}) {
    expect_error("[collections.v]\ntally = { choice = [1] }\ntally_group = " + bad, "\"collections.v.tally_group\"");
  }
}

TEST(ConfigCollections, TallyFieldNames) {
  const std::string longest(64, 'f');
  const Config c = load_string("[collections.v.tally]\nidentity = [1]\n\"a.b-c_D9\" = [1]\n" + longest + " = [1]\n");
  EXPECT_EQ(c.collections.at("v").tally.size(), 3u);

  expect_error("[collections.v.tally]\nid = [1]", "\"collections.v.tally.id\": \"id\" and names starting with '_'");
  expect_error("[collections.v.tally]\n_v = [1]", "\"collections.v.tally._v\": \"id\" and names starting with '_'");
  expect_error("[collections.v.tally]\n_owner = [1]", "\"collections.v.tally._owner\"");
  expect_error("[collections.v.tally]\n\"a@b\" = [1]", "a tally field name must be 1-64 characters");
  expect_error("[collections.v.tally]\n\"a b\" = [1]", "a tally field name must be 1-64 characters");
  expect_error("[collections.v.tally]\n\"\" = [1]", "a tally field name must be 1-64 characters");
  expect_error("[collections.v.tally]\n" + std::string(65, 'f') + " = [1]",
               "a tally field name must be 1-64 characters");
}

TEST(ConfigCollections, Names) {
  const Config c = load_string("[collections.\"todos.v2@team-a_B\"]\n[collections." + std::string(64, 'c') + "]\n");
  EXPECT_EQ(c.collections.size(), 2u);
  expect_error("[collections.\"a:b\"]", "\"collections.\"a:b\"\": a collection name must be 1-64 characters");
  expect_error("[collections.\"\"]", "a collection name must be 1-64 characters");
  expect_error("[collections.\"a/b\"]", "a collection name must be 1-64 characters");
  expect_error("[collections." + std::string(65, 'c') + "]", "a collection name must be 1-64 characters");
}

// --- syntax errors and files ---

TEST(ConfigSyntax, ErrorsNameTheSourceLineAndColumn) {
  const std::string message = error_of("[server]\nio_threads = 2\nlisten = \n", "rtsync.toml");
  EXPECT_EQ(message.rfind("rtsync.toml:3:", 0), 0u) << message;
  EXPECT_NE(message.find("TOML syntax error"), std::string::npos) << message;
  EXPECT_NE(message.find("rtsync.toml:3:10:"), std::string::npos) << message;
}

TEST(ConfigSyntax, DuplicateKeysAreSyntaxErrors) {
  const std::string message = error_of("[channels]\ndurable = true\ndurable = false\n", "dup.toml");
  EXPECT_EQ(message.rfind("dup.toml:3:", 0), 0u) << message;
}

TEST(ConfigFile, LoadsAFile) {
  const TempFile file("[server]\nlisten = \"0.0.0.0:9000\"\n[channels]\nhistory_size = 5\n");
  const Config c = load_file(file.path());
  EXPECT_EQ(c.server.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.channels.history_size, 5u);
}

TEST(ConfigFile, ErrorsInAFileNameTheFile) {
  const TempFile file("[server]\nlistn = \"0.0.0.0:9000\"\n");
  try {
    load_file(file.path());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message, file.path().string() + ":2:1: unknown key \"server.listn\"");
  }
}

TEST(ConfigFile, MissingFileIsNamed) {
  const std::filesystem::path missing = std::filesystem::temp_directory_path() / "rtsync_no_such_config.toml";
  try {
    load_file(missing);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
}

TEST(ConfigFile, DirectoryIsNamed) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  try {
    load_file(dir);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
  }
}

// --- split_listen ---

TEST(SplitListen, SplitsHostAndPort) {
  EXPECT_EQ(split_listen("127.0.0.1:8080"), (std::pair<std::string, std::uint16_t>{"127.0.0.1", 8080}));
  EXPECT_EQ(split_listen("[::1]:0"), (std::pair<std::string, std::uint16_t>{"::1", 0}));
  EXPECT_EQ(split_listen("localhost:80"), (std::pair<std::string, std::uint16_t>{"localhost", 80}));
  EXPECT_EQ(split_listen("0.0.0.0:65535"), (std::pair<std::string, std::uint16_t>{"0.0.0.0", 65535}));
  EXPECT_EQ(split_listen("[fe80::1%eth0]:443"), (std::pair<std::string, std::uint16_t>{"fe80::1%eth0", 443}));
}

TEST(SplitListen, RejectsMalformedAddresses) {
  EXPECT_NE(listen_error("localhost").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("localhost:").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("[::1]").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("[::1]:").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("[::1]80").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("").find("missing port"), std::string::npos);
  EXPECT_NE(listen_error("host:http").find("must be a number"), std::string::npos);
  EXPECT_NE(listen_error("host:80x").find("must be a number"), std::string::npos);
  EXPECT_NE(listen_error("host:-1").find("must be a number"), std::string::npos);
  EXPECT_NE(listen_error("host:+80").find("must be a number"), std::string::npos);
  EXPECT_NE(listen_error("host:65536").find("between 0 and 65535"), std::string::npos);
  EXPECT_NE(listen_error("host:99999999999999999999").find("between 0 and 65535"), std::string::npos);
  EXPECT_NE(listen_error(":80").find("empty host"), std::string::npos);
  EXPECT_NE(listen_error("[]:80").find("empty host"), std::string::npos);
  EXPECT_NE(listen_error("::1:80").find("brackets"), std::string::npos);
  EXPECT_NE(listen_error("[::1:80").find("']'"), std::string::npos);
  EXPECT_NE(listen_error("::1]:80").find("brackets"), std::string::npos);
  EXPECT_NE(listen_error("a]b:80").find("bracket"), std::string::npos);
  // The message quotes the whole value so the operator sees what was rejected.
  EXPECT_NE(listen_error("nope").find("\"nope\""), std::string::npos);
}

// --- [cluster] (docs/scaling.md) ---

TEST(ConfigCluster, DefaultsAreOneNodeOnItsOwn) {
  const Config c = load_string("");
  EXPECT_EQ(c.cluster.broker, "local");
  EXPECT_EQ(c.cluster.store, "sqlite");
  EXPECT_EQ(c.cluster.node, "");
  EXPECT_EQ(c.cluster.presence_ttl, 15u);
  EXPECT_EQ(load_string("[cluster]\n").cluster.broker, "local");
}

TEST(ConfigCluster, ReadsEveryKey) {
  const Config c = load_string(R"([cluster]
broker = "redis://:s3cret@redis.internal:6380/2"
store = "postgres://rtsync:pw@db.internal:5432/rtsync"
node = "node-1.eu"
presence_ttl = 30
)");
  EXPECT_EQ(c.cluster.broker, "redis://:s3cret@redis.internal:6380/2");
  EXPECT_EQ(c.cluster.store, "postgres://rtsync:pw@db.internal:5432/rtsync");
  EXPECT_EQ(c.cluster.node, "node-1.eu");
  EXPECT_EQ(c.cluster.presence_ttl, 30u);
  // One node on PostgreSQL, without Redis, is fine too.
  EXPECT_EQ(load_string("[cluster]\nstore = \"postgresql://db/rtsync\"").cluster.store, "postgresql://db/rtsync");
}

TEST(ConfigCluster, AClusterStoresEveryNamespace) {
  // Nodes must agree on offsets, so nothing lives in one node's memory alone.
  const std::string ns = "[channels]\ndurable = false\n[namespaces.cursor]\ndurable = false\n";
  const Config one = load_string(ns);
  EXPECT_FALSE(one.channels.durable);
  EXPECT_FALSE(one.namespaces.at("cursor").durable);
  const Config cluster =
      load_string(ns + "[cluster]\nbroker = \"redis://127.0.0.1\"\nstore = \"postgres://db/rtsync\"\n");
  EXPECT_TRUE(cluster.channels.durable);
  EXPECT_TRUE(cluster.namespaces.at("cursor").durable);
}

TEST(ConfigCluster, InvalidValuesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cluster = 1", "\"cluster\" must be a table"},
      {"[cluster]\nbrokers = \"local\"", "unknown key \"cluster.brokers\""},
      {"[cluster]\nbroker = 1", "\"cluster.broker\" must be a string"},
      {"[cluster]\nbroker = \"redis\"", "\"cluster.broker\" must be \"local\" or a redis://"},
      {"[cluster]\nbroker = \"http://redis:6379\"", "\"cluster.broker\" must be \"local\" or a redis://"},
      {"[cluster]\nbroker = \"redis://host:99999\"", "\"cluster.broker\" must be \"local\" or a redis://"},
      {"[cluster]\nbroker = \"redis://host:6379/x\"", "\"cluster.broker\" must be \"local\" or a redis://"},
      {"[cluster]\nbroker = \"redis://\"", "\"cluster.broker\" must be \"local\" or a redis://"},
      {"[cluster]\nstore = \"mysql://db\"", "\"cluster.store\" must be \"sqlite\" or a postgres:// URL"},
      {"[cluster]\nstore = true", "\"cluster.store\" must be a string"},
      {"[cluster]\nnode = \"\"", "\"cluster.node\" must be 1-64 characters"},
      {"[cluster]\nnode = \"a b\"", "\"cluster.node\" must be 1-64 characters"},
      {"[cluster]\nnode = \"" + std::string(65, 'n') + "\"", "\"cluster.node\" must be 1-64 characters"},
      {"[cluster]\npresence_ttl = 0", "\"cluster.presence_ttl\" must be between 1 and 3600"},
      {"[cluster]\npresence_ttl = \"15s\"", "\"cluster.presence_ttl\" must be an integer"},
      // Nodes on one Redis need one store: each with its own SQLite file would assign the same offsets.
      {"[cluster]\nbroker = \"redis://127.0.0.1\"", "needs a shared store"},
  };
  for (const auto& [toml, needle] : cases) expect_error(toml, needle);
}

TEST(ConfigCluster, RedisUrlsAreParsed) {
  broker::RedisAddress a;
  ASSERT_TRUE(broker::parse_redis_url("redis://127.0.0.1", a));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.db, 0);
  EXPECT_TRUE(a.password.empty());
  ASSERT_TRUE(broker::parse_redis_url("redis://user:pa:ss@cache:7000/3", a));
  EXPECT_EQ(a.host, "cache");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.user, "user");
  EXPECT_EQ(a.password, "pa:ss");
  EXPECT_EQ(a.db, 3);
  ASSERT_TRUE(broker::parse_redis_url("redis://[::1]:6390", a));
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 6390);
  for (const char* bad : {"redis://", "redis://:6379", "rediss://h", "redis://h:0", "redis://h:x", "redis://[::1",
                          "redis://h/-1", "redis://a b"}) {
    EXPECT_FALSE(broker::parse_redis_url(bad, a)) << bad;
  }
}

TEST(ConfigLoad, ReadsQueryIndexes) {
  const Config c = load_string(R"([collections.todos]
indexes = ["status", ["team", "-created"], ["-due", "id", "x"]]
[collections.notes]
)");
  const auto& todos = c.collections.at("todos");
  ASSERT_EQ(todos.indexes.size(), 3u);
  // Normalized like an order: ending with id.
  EXPECT_EQ(todos.indexes[0], (query::Order{{"status", false}, {"id", false}}));
  EXPECT_EQ(todos.indexes[1], (query::Order{{"team", false}, {"created", true}, {"id", false}}));
  EXPECT_EQ(todos.indexes[2], (query::Order{{"due", true}, {"id", false}}));
  EXPECT_TRUE(c.collections.at("notes").indexes.empty());
  const auto all = query_indexes(c);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.at("todos"), todos.indexes);
}

TEST(ConfigErrors, QueryIndexesAreValidatedLikeOrders) {
  const std::string shape = "must be an array whose entries are attribute names or arrays of them";
  expect_error("[collections.t]\nindexes = \"status\"", "\"collections.t.indexes\" " + shape);
  expect_error("[collections.t]\nindexes = [1]", "test.toml:2:12: \"collections.t.indexes\" " + shape);
  expect_error("[collections.t]\nindexes = [[\"a\", 2]]", shape);
  expect_error("[collections.t]\nindexes = [[]]", "\"collections.t.indexes\": an index names at least one attribute");
  expect_error("[collections.t]\nindexes = [[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]]",
               "an index names at most 8 attributes");
  expect_error("[collections.t]\nindexes = [[\"a\", \"-a\"]]", "\"collections.t.indexes\": an index names \"a\" twice");
  expect_error("[collections.t]\nindexes = [\"a\", [\"a\", \"id\"]]", "\"collections.t.indexes\" lists the same index twice");
  expect_error("[collections.t]\nindexes = [\"a\\\"b\"]",
               "attribute names are 1-256 bytes without '\"', '\\' or control characters");
  expect_error("[collections.t]\nindexes = [\"-\"]", "attribute names are 1-256 bytes");
  std::string many = "[collections.t]\nindexes = [";
  for (int i = 0; i < 17; ++i) many += (i ? ", \"a" : "\"a") + std::to_string(i) + "\"";
  expect_error(many + "]", "\"collections.t.indexes\" lists at most 16 indexes");
}

}  // namespace
}  // namespace rtsync::config
