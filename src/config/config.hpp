// The server's configuration: PROTOCOL §2 (TOML file) with the command-line overrides of §1.
// Loading validates everything up front; an unknown key or a wrong type is a ConfigError naming the key,
// so a typo stops the start instead of silently running with a default.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/endpoint.hpp"
#include "core/namespace_options.hpp"
#include "query/query.hpp"
#include "store/store.hpp"

namespace rtsync::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";       // HOST:PORT; port 0 picks a free one
  std::filesystem::path data = "./data";        // SQLite database and the generated secret
  std::filesystem::path web = "./web/public";   // static files served under /
  std::vector<std::string> allowed_origins;     // WebSocket Origin allow-list; empty = same host only
  unsigned io_threads = 0;                      // 0 = one per core
  bool cookie_secure = false;                   // add Secure to cookies (TLS terminates in front of rtsync)
  std::string metrics_token;                    // non-empty: GET /metrics needs Authorization: Bearer <it>
  // Addresses or ADDRESS/PREFIX networks of proxies in front: a request from one of them is counted as
  // the client's that X-Forwarded-For names (the HTTP rate limit). Empty: X-Forwarded-For is ignored.
  std::vector<std::string> trusted_proxies;
};

// Room a push needs beyond its payload (frame header, op, channel name, offset, sender, ts): what
// limits.max_outbound must leave above the largest payload, so that no single push cuts a subscriber off.
inline constexpr std::size_t kPushEnvelope = 4096;

struct LimitsConfig {
  std::size_t max_frame = 64 * 1024;            // bytes per incoming WebSocket message; larger closes 1009
  std::size_t max_outbound = 1024 * 1024;       // bytes queued per connection before it is a slow consumer
  // Bytes of a publication's payload (data and PubNub meta, core::payload_bytes), on every front end;
  // at most max_outbound - kPushEnvelope.
  std::size_t max_publication = 64 * 1024;
  std::size_t max_subscriptions = 1000;         // channels per connection
  std::size_t max_http_body = 1024 * 1024;      // bytes per HTTP request body
  std::size_t rate = 2000;                      // commands per second per connection (token bucket); 0 = off
  std::size_t burst = 4000;                     // bucket size: commands a connection may send at once
  std::size_t rate_abuse = 200;                 // rate_limited replies in a row before the connection is closed
  std::size_t ping_interval = 25;               // seconds of silence before the server pings a WebSocket
  std::size_t idle_timeout = 60;                // seconds without any frame from a client before it is dropped
  std::size_t http_timeout = 30;                // seconds to receive one HTTP request (headers and body)
  // Seconds a channel nobody uses (no subscriber, member or request) stays in memory; 0 = forever.
  std::size_t channel_idle = 60;
  // HTTP requests (WebSocket upgrades aside): token buckets per client address and per user; rate 0 = off.
  // Generous: 300 PubNub long polls from one address (users behind one NAT) fit in the burst.
  std::size_t http_rate = 100;                  // requests per second per client address
  std::size_t http_burst = 1000;
  std::size_t http_user_rate = 50;              // requests per second per user (a token's, or the cookie's)
  std::size_t http_user_burst = 500;
};

struct StoreConfig {
  std::string synchronous = "full";             // SQLite synchronous: "full" (survives power loss) or "normal"
};

// A collection (PROTOCOL §5): who reads, who writes, and which fields are tallied with their allowed values.
struct CollectionConfig {
  enum class Read { all, owner };
  enum class Write { all, owner, none };
  Read read = Read::all;
  Write write = Write::all;
  bool per_user = false;
  std::map<std::string, std::vector<std::int64_t>> tally;  // field -> allowed values (integers)
  // With a tally: the attribute whose values each get a tally of their own (docs/protocol.md, *Grouped
  // tallies*); empty: none.
  std::string tally_group;
  // Query indexes (docs/protocol.md, section 6, *Queries*): each an order of attribute names ("-name"
  // descending), normalized (query::normalize: it ends with the id key), none twice.
  std::vector<query::Order> indexes;
};

// At most this many query indexes per collection: each one costs every write of the collection.
inline constexpr std::size_t kMaxIndexes = 16;

struct PubnubConfig {
  std::string publish_key;    // empty: accept any
  std::string subscribe_key;  // empty: accept any
  // Access Manager (docs/pubnub.md 7.7): the key that grantToken and revokeToken must be signed with and
  // that signs the tokens rtsync issues. Empty (default): no grants, and `auth` values that are not rtsync
  // JWTs are ignored. Needs publish_key, which request signatures include.
  std::string secret_key;
  // Seconds a PubNub uuid stays present on a channel after its last heartbeat or subscribe request (a
  // pending long poll keeps it present). A client's smaller `heartbeat=` wins. PubNub's default: 300.
  unsigned presence_timeout = 300;
  // Seconds a subscribe long poll waits for a message before answering empty; below the SDK's 310 s
  // request timeout.
  unsigned subscribe_timeout = 280;
  // Bytes of one file a PubNub client uploads (sendFile), kept under server.data/files. PubNub's: 5 MB.
  std::size_t max_file_size = 5 * 1024 * 1024;
};

// Several nodes behind a load balancer (docs/scaling.md). The defaults are one node on its own.
struct ClusterConfig {
  std::string broker = "local";  // "local", or "redis://[[user]:password@]host[:port][/db]": nodes share one Redis
  std::string store = "sqlite";  // "sqlite" (server.data/rtsync.db), or "postgres://…" (a libpq URI) shared by nodes
  std::string node;              // this node's name, unique in the cluster; empty: a random one per start
  unsigned presence_ttl = 15;    // seconds a node may go silent before its presence members time out elsewhere
};

// The Server API for the app's backend (/v1/api/…, docs/protocol.md section 8).
struct ApiConfig {
  std::vector<std::string> keys;  // accepted as `Authorization: Bearer <key>`; each >= 32 visible ASCII
                                  // characters, no duplicates; empty: only tokens with "api": true
};

// A proxy hook (docs/hooks.md): the app's backend, asked over HTTP before rtsync acts.
struct HookConfig {
  std::string url;                       // http://HOST[:PORT]/PATH
  common::Endpoint endpoint;             // url, parsed
  std::uint32_t timeout_ms = 5000;       // the whole exchange
  bool allow_on_failure = false;         // on_failure = "allow": a backend that is down, slow or answers
                                         // garbage lets the action through; "refuse" (default) refuses it
  std::vector<std::string> channels;     // subscribe, publish: the channel patterns it decides (caps' syntax)
  std::vector<std::string> collections;  // write: the collections it decides
};

struct HooksConfig {
  std::optional<HookConfig> connect, subscribe, publish, write, rpc;
};

// A webhook (docs/hooks.md): every committed publication on what it follows, delivered to its URL.
struct WebhookConfig {
  std::string url;                       // http://HOST[:PORT]/PATH
  common::Endpoint endpoint;             // url, parsed
  std::vector<std::string> channels;     // channel patterns (caps' syntax)
  std::vector<std::string> collections;  // declared collections: their change feeds, coll:NAME
  std::string secret;                    // signs each delivery (HMAC-SHA256); >= 32 visible ASCII characters
  std::uint32_t timeout_ms = 10000;      // per attempt
  std::uint32_t max_age = 86400;         // seconds an undelivered entry is retried before it is a dead letter
};

struct Config {
  ServerConfig server;
  ApiConfig api;
  HooksConfig hooks;
  std::map<std::string, WebhookConfig> webhooks;  // [webhooks.NAME]
  core::NamespaceOptions channels;                          // the default namespace
  std::map<std::string, core::NamespaceOptions> namespaces; // [namespaces.NAME], each starting from `channels`
  std::map<std::string, CollectionConfig> collections;
  PubnubConfig pubnub;
  LimitsConfig limits;
  StoreConfig store;
  ClusterConfig cluster;
};

// Reads and validates a TOML file. Throws ConfigError naming the offending key (e.g. "server.listn");
// messages start with "FILE:LINE:COLUMN:".
Config load_file(const std::filesystem::path& file);
// Same, from TOML text (tests, and the built-in defaults).
Config load_string(std::string_view toml, std::string_view source_name = "config");
// The built-in defaults used without --config.
Config defaults();

// The PCM app's collection (PROTOCOL §6) from its matrix definition: per_user, read and write "owner",
// a tally over every row id with the level ids as allowed values. Throws ConfigError naming the file
// when the matrix is missing or malformed.
CollectionConfig pcm_collection(const std::filesystem::path& matrix_json);

// The query indexes of every collection that has some, for the store's options (store::QueryIndexes).
std::map<std::string, std::vector<query::Order>> query_indexes(const Config& config);

// What each webhook follows, for the store's options (store::WebhookRoute): its channels and the change
// feeds of its collections.
std::vector<store::WebhookRoute> webhook_routes(const Config& config);

// Splits "HOST:PORT" (also "[::1]:PORT"); throws ConfigError on a malformed value.
std::pair<std::string, std::uint16_t> split_listen(const std::string& listen);

}  // namespace rtsync::config
