// Loading and validating the TOML config (PROTOCOL §2) into Config.
// Every table is walked key by key against a fixed list, so a typo or a value of the wrong type or range
// is rejected at startup with the full dotted key and its position in the file, never ignored. The file
// order of tables does not matter: [channels] is read first so that every [namespaces.NAME] starts from
// its final values.

// Use the packaged shared library, as its CMake target does, instead of compiling the parser here.
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 0
#endif
#ifndef TOML_SHARED_LIB
#define TOML_SHARED_LIB 1
#endif

#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>
#include <variant>

#include "broker/broker.hpp"
#include "common/endpoint.hpp"
#include "common/ip.hpp"
#include "store/store.hpp"

namespace rtsync::config {
namespace {

constexpr std::size_t kMaxNameLength = 64;
constexpr std::int64_t kMaxHistorySize = 1'000'000;
constexpr std::int64_t kMaxIoThreads = 256;
// RFC 6455: a client may always send control frames of 125 bytes, so a smaller limit would break pings.
constexpr std::int64_t kMinFrame = 125;
constexpr std::int64_t kMaxFrame = 16 * 1024 * 1024;
constexpr std::int64_t kMaxPresenceTimeout = 24 * 60 * 60;
constexpr std::int64_t kMaxSubscribeTimeout = 300;
constexpr std::int64_t kMaxFileSize = 100 * 1024 * 1024;
constexpr std::size_t kMinMetricsToken = 16;
constexpr std::size_t kMinApiKey = 32;  // an API key grants everything: too long to guess
constexpr std::int64_t kMaxSize =
    static_cast<std::int64_t>(std::min<std::uint64_t>(std::numeric_limits<std::int64_t>::max(),
                                                      std::numeric_limits<std::size_t>::max()));

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Names become parts of channel names (namespace) or URLs (collection, tally field), so they are kept
// to a conservative alphabet; `extra` adds the punctuation each kind allows beyond A-Za-z0-9_-.
bool is_valid_name(std::string_view name, std::string_view extra) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(),
                     [&](char c) { return is_bare_key_char(c) || extra.find(c) != std::string_view::npos; });
}

// One key segment as it would be written in TOML: quoted when it is not a bare key, so that a namespace
// named "v1.chat" shows as namespaces."v1.chat".durable rather than an ambiguous path.
std::string render_segment(std::string_view segment) {
  if (!segment.empty() && std::all_of(segment.begin(), segment.end(), is_bare_key_char)) {
    return std::string(segment);
  }
  std::string out = "\"";
  for (const char c : segment) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string join(std::string_view parent, std::string_view segment) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out += render_segment(segment);
  return out;
}

// Printable ASCII without spaces: what an Authorization header carries as it is.
bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::string in_quotes(std::string_view key) { return "\"" + std::string(key) + "\""; }

// Walks a parsed document; every error carries SOURCE:LINE:COLUMN of the offending key or value.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Config read(const toml::table& root) {
    Config config;
    for (auto&& [key, node] : root) {
      const std::string_view name = key.str();
      if (name != "server" && name != "channels" && name != "namespaces" && name != "collections" &&
          name != "pubnub" && name != "limits" && name != "store" && name != "cluster" && name != "api" &&
          name != "hooks" && name != "webhooks") {
        unknown(key, join("", name));
      }
      table(node, join("", name));  // a section given as a value is a type error, checked up front
    }
    // [channels] before [namespaces]: a namespace inherits the final [channels], wherever it appears.
    if (const auto* t = root["channels"].as_table()) read_channel_options(*t, "channels", config.channels);
    if (const auto* t = root["server"].as_table()) read_server(*t, config.server);
    if (const auto* t = root["namespaces"].as_table()) read_namespaces(*t, config);
    if (const auto* t = root["collections"].as_table()) read_collections(*t, config.collections);
    if (const auto* t = root["pubnub"].as_table()) read_pubnub(*t, config.pubnub);
    if (const auto* t = root["limits"].as_table()) read_limits(*t, config.limits);
    if (const auto* t = root["store"].as_table()) read_store(*t, config.store);
    if (const auto* t = root["cluster"].as_table()) read_cluster(*t, config.cluster);
    if (const auto* t = root["api"].as_table()) read_api(*t, config.api);
    if (const auto* t = root["hooks"].as_table()) read_hooks(*t, config);
    if (const auto* t = root["webhooks"].as_table()) read_webhooks(*t, config);
    if (config.cluster.broker != "local") {
      // Every node must agree on every channel's offsets and epochs, so in a cluster nothing is kept in
      // one node's memory alone: in-memory namespaces are stored like durable ones (docs/scaling.md).
      // Presence feeds (NAME-pnpres) stay per node: every node derives the same events from the shared
      // presence.
      config.channels.durable = true;
      for (auto& [name, ns] : config.namespaces) ns.durable = true;
    }
    return config;
  }

 private:
  [[noreturn]] void fail(const toml::source_region& where, const std::string& message) const {
    std::string out = source_;
    if (where.begin.line != 0) {
      out += ':' + std::to_string(where.begin.line) + ':' + std::to_string(where.begin.column);
    }
    throw ConfigError(out + ": " + message);
  }

  [[noreturn]] void unknown(const toml::key& key, const std::string& path) const {
    fail(key.source(), "unknown key " + in_quotes(path));
  }

  // An array of strings, each with its node (for the position of an error about it).
  std::vector<std::pair<std::string, const toml::node*>> strings(const toml::node& node, const std::string& path) const {
    const auto* array = node.as_array();
    if (array == nullptr) fail(node.source(), in_quotes(path) + " must be an array of strings");
    std::vector<std::pair<std::string, const toml::node*>> out;
    for (const toml::node& element : *array) {
      const auto* v = element.as_string();
      if (v == nullptr) fail(element.source(), in_quotes(path) + " must be an array of strings");
      out.emplace_back(v->get(), &element);
    }
    return out;
  }

  const toml::table& table(const toml::node& node, const std::string& path) const {
    const auto* t = node.as_table();
    if (t == nullptr) fail(node.source(), in_quotes(path) + " must be a table");
    return *t;
  }

  bool boolean(const toml::node& node, const std::string& path) const {
    const auto* v = node.as_boolean();
    if (v == nullptr) fail(node.source(), in_quotes(path) + " must be a boolean");
    return v->get();
  }

  std::string string(const toml::node& node, const std::string& path) const {
    const auto* v = node.as_string();
    if (v == nullptr) fail(node.source(), in_quotes(path) + " must be a string");
    return v->get();
  }

  std::int64_t integer(const toml::node& node, const std::string& path, std::int64_t min,
                       std::int64_t max) const {
    const auto* v = node.as_integer();
    if (v == nullptr) fail(node.source(), in_quotes(path) + " must be an integer");
    const std::int64_t value = v->get();
    if (value < min || value > max) {
      fail(node.source(), in_quotes(path) + " must be between " + std::to_string(min) + " and " +
                              std::to_string(max) + ", got " + std::to_string(value));
    }
    return value;
  }

  std::size_t positive(const toml::node& node, const std::string& path) const {
    const auto* v = node.as_integer();
    if (v == nullptr) fail(node.source(), in_quotes(path) + " must be an integer");
    if (v->get() <= 0 || v->get() > kMaxSize) {
      fail(node.source(), in_quotes(path) + " must be a positive integer, got " + std::to_string(v->get()));
    }
    return static_cast<std::size_t>(v->get());
  }

  std::filesystem::path path_value(const toml::node& node, const std::string& path) const {
    std::string value = string(node, path);
    // An empty path would silently mean the working directory; it is almost certainly a mistake.
    if (value.empty()) fail(node.source(), in_quotes(path) + " must not be empty");
    return value;
  }

  // A string restricted to a fixed set, mapped to its enum value.
  template <class T>
  T choice(const toml::node& node, const std::string& path,
           std::initializer_list<std::pair<std::string_view, T>> allowed) const {
    const std::string value = string(node, path);
    std::string names;
    for (const auto& [name, result] : allowed) {
      if (value == name) return result;
      names += names.empty() ? "" : ", ";
      names += in_quotes(name);
    }
    fail(node.source(), in_quotes(path) + " must be one of " + names + ", got " + in_quotes(value));
  }

  void read_server(const toml::table& t, ServerConfig& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("server", key.str());
      if (key == "listen") {
        out.listen = string(node, path);
        try {
          split_listen(out.listen);
        } catch (const ConfigError& e) {
          fail(node.source(), in_quotes(path) + ": " + e.what());
        }
      } else if (key == "data") {
        out.data = path_value(node, path);
      } else if (key == "web") {
        out.web = path_value(node, path);
      } else if (key == "allowed_origins") {
        out.allowed_origins.clear();
        for (const auto& [origin, element] : strings(node, path)) out.allowed_origins.push_back(origin);
      } else if (key == "trusted_proxies") {
        out.trusted_proxies.clear();
        for (const auto& [proxy, element] : strings(node, path)) {
          if (!common::parse_network(proxy))
            fail(element->source(), in_quotes(path) + ": " + in_quotes(proxy) +
                                        " is not an IP address or ADDRESS/PREFIX network");
          out.trusted_proxies.push_back(proxy);
        }
      } else if (key == "io_threads") {
        out.io_threads = static_cast<unsigned>(integer(node, path, 0, kMaxIoThreads));
      } else if (key == "cookie_secure") {
        out.cookie_secure = boolean(node, path);
      } else if (key == "metrics_token") {
        out.metrics_token = string(node, path);
        // It goes in an Authorization header as it is; a short one could be guessed.
        if (!out.metrics_token.empty() && (out.metrics_token.size() < kMinMetricsToken || !visible_ascii(out.metrics_token)))
          fail(node.source(), in_quotes(path) + " must be empty or at least 16 visible ASCII characters without spaces");
      } else {
        unknown(key, path);
      }
    }
  }

  // [channels] and every [namespaces.NAME]: each key present overrides the value already in `out`.
  void read_channel_options(const toml::table& t, const std::string& parent, core::NamespaceOptions& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join(parent, key.str());
      if (key == "history_size") {
        out.history_size = static_cast<std::size_t>(integer(node, path, 0, kMaxHistorySize));
      } else if (key == "history_bytes") {
        out.history_bytes = static_cast<std::size_t>(integer(node, path, 0, kMaxSize));
      } else if (key == "durable") {
        out.durable = boolean(node, path);
      } else if (key == "client_publish") {
        out.client_publish = boolean(node, path);
      } else if (key == "presence") {
        out.presence = boolean(node, path);
      } else if (key == "anonymous") {
        out.anonymous = boolean(node, path);
      } else {
        unknown(key, path);
      }
    }
  }

  void read_namespaces(const toml::table& t, Config& config) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("namespaces", key.str());
      // ':' separates the namespace from the rest of a channel name, so it cannot be part of one.
      if (!is_valid_name(key.str(), ".@")) {
        fail(key.source(), in_quotes(path) + ": a namespace name must be 1-64 characters of A-Za-z0-9_.@- (no ':')");
      }
      // The server publishes collection changes on coll:NAME and tallies on tally:NAME.
      if (key == "coll" || key == "tally") {
        fail(key.source(), in_quotes(path) + ": the namespace name is reserved for the server's collections");
      }
      core::NamespaceOptions options = config.channels;
      read_channel_options(table(node, path), path, options);
      config.namespaces.insert_or_assign(std::string(key.str()), options);
    }
  }

  void read_collections(const toml::table& t, std::map<std::string, CollectionConfig>& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("collections", key.str());
      if (!is_valid_name(key.str(), ".@")) {
        fail(key.source(), in_quotes(path) + ": a collection name must be 1-64 characters of A-Za-z0-9_.@-");
      }
      out.insert_or_assign(std::string(key.str()), read_collection(table(node, path), path));
    }
  }

  CollectionConfig read_collection(const toml::table& t, const std::string& parent) const {
    using Read = CollectionConfig::Read;
    using Write = CollectionConfig::Write;
    CollectionConfig out;
    for (auto&& [key, node] : t) {
      const std::string path = join(parent, key.str());
      if (key == "read") {
        out.read = choice<Read>(node, path, {{"all", Read::all}, {"owner", Read::owner}});
      } else if (key == "write") {
        out.write = choice<Write>(node, path, {{"all", Write::all}, {"owner", Write::owner}, {"none", Write::none}});
      } else if (key == "per_user") {
        out.per_user = boolean(node, path);
      } else if (key == "tally") {
        read_tally(table(node, path), path, out.tally);
      } else if (key == "indexes") {
        out.indexes = read_indexes(node, path);
      } else if (key == "tally_group") {
        out.tally_group = string(node, path);
        const std::string_view g = out.tally_group;
        if (!is_valid_name(g, ".") || g == "id" || g.front() == '_') {
          fail(node.source(), in_quotes(path) + " must name an attribute: 1-64 characters of A-Za-z0-9_.-, not \"id\" "
                                                "nor starting with '_'");
        }
      } else {
        unknown(key, path);
      }
    }
    if (!out.tally_group.empty()) {
      const std::string path = join(parent, "tally_group");
      if (out.tally.empty()) fail(t.source(), in_quotes(path) + " needs a tally in the same collection");
      if (out.tally.contains(out.tally_group)) {
        fail(t.source(), in_quotes(path) + ": \"" + out.tally_group + "\" is a tally field; group by another attribute");
      }
    }
    return out;
  }

  // indexes = ["status", ["team", "-created"]]: each entry one name or an array of names, like `order`.
  std::vector<query::Order> read_indexes(const toml::node& node, const std::string& path) const {
    const std::string shape = in_quotes(path) + " must be an array whose entries are attribute names or arrays of them";
    const auto* array = node.as_array();
    if (array == nullptr) fail(node.source(), shape);
    if (array->size() > kMaxIndexes) {
      fail(node.source(), in_quotes(path) + " lists at most " + std::to_string(kMaxIndexes) + " indexes");
    }
    std::vector<query::Order> out;
    for (const toml::node& entry : *array) {
      std::vector<const toml::node*> names;
      if (const auto* list = entry.as_array()) {
        if (list->empty()) fail(entry.source(), in_quotes(path) + ": an index names at least one attribute");
        if (list->size() > query::kMaxOrderKeys) {
          fail(entry.source(), in_quotes(path) + ": an index names at most " + std::to_string(query::kMaxOrderKeys) +
                                   " attributes");
        }
        for (const toml::node& n : *list) names.push_back(&n);
      } else {
        names.push_back(&entry);
      }
      query::Order order;
      for (const toml::node* n : names) {
        const auto* s = n->as_string();
        if (s == nullptr) fail(n->source(), shape);
        auto key = query::parse_order_key(s->get());
        if (const auto* e = std::get_if<query::Error>(&key)) fail(n->source(), in_quotes(path) + ": " + e->message);
        const auto& k = std::get<query::OrderKey>(key);
        if (std::any_of(order.begin(), order.end(), [&](const query::OrderKey& o) { return o.attr == k.attr; })) {
          fail(n->source(), in_quotes(path) + ": an index names \"" + k.attr + "\" twice");
        }
        order.push_back(k);
      }
      order = query::normalize(std::move(order));
      if (std::find(out.begin(), out.end(), order) != out.end()) {
        fail(entry.source(), in_quotes(path) + " lists the same index twice");
      }
      out.push_back(std::move(order));
    }
    return out;
  }

  void read_tally(const toml::table& t, const std::string& parent,
                  std::map<std::string, std::vector<std::int64_t>>& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join(parent, key.str());
      const std::string_view field = key.str();
      if (!is_valid_name(field, ".")) {
        fail(key.source(), in_quotes(path) + ": a tally field name must be 1-64 characters of A-Za-z0-9_.-");
      }
      // A tallied field is a document attribute; "id" and "_*" are the server's (PROTOCOL §5).
      if (field == "id" || field.front() == '_') {
        fail(key.source(), in_quotes(path) + ": \"id\" and names starting with '_' are reserved document attributes");
      }
      const auto* array = node.as_array();
      if (array == nullptr) fail(node.source(), in_quotes(path) + " must be an array of integers");
      if (array->empty()) fail(node.source(), in_quotes(path) + " must list at least one allowed value");
      std::vector<std::int64_t> values;
      std::set<std::int64_t> seen;
      for (const toml::node& element : *array) {
        const auto* v = element.as_integer();
        if (v == nullptr) fail(element.source(), in_quotes(path) + " must be an array of integers");
        if (!seen.insert(v->get()).second) {
          fail(element.source(), in_quotes(path) + " lists the value " + std::to_string(v->get()) + " twice");
        }
        values.push_back(v->get());
      }
      out.insert_or_assign(std::string(field), std::move(values));
    }
  }

  void read_pubnub(const toml::table& t, PubnubConfig& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("pubnub", key.str());
      if (key == "publish_key") {
        out.publish_key = string(node, path);
      } else if (key == "subscribe_key") {
        out.subscribe_key = string(node, path);
      } else if (key == "secret_key") {
        out.secret_key = string(node, path);
        if (out.secret_key.size() < 16) fail(node.source(), in_quotes(path) + " must be at least 16 characters");
      } else if (key == "presence_timeout") {
        out.presence_timeout = static_cast<unsigned>(integer(node, path, 1, kMaxPresenceTimeout));
      } else if (key == "subscribe_timeout") {
        // The SDK gives up on a subscribe request after 310 s: an answer must come before that.
        out.subscribe_timeout = static_cast<unsigned>(integer(node, path, 1, kMaxSubscribeTimeout));
      } else if (key == "max_file_size") {
        // Held in memory while it is written: bounded well below what a node has.
        out.max_file_size = static_cast<std::size_t>(integer(node, path, 1, kMaxFileSize));
      } else {
        unknown(key, path);
      }
    }
    if (!out.secret_key.empty() && out.publish_key.empty())
      fail(t.source(), "\"pubnub.secret_key\" needs \"pubnub.publish_key\": request signatures include it");
  }

  void read_limits(const toml::table& t, LimitsConfig& out) const {
    const toml::node* sizes = nullptr;  // max_publication or max_outbound, where a conflict is reported
    for (auto&& [key, node] : t) {
      const std::string path = join("limits", key.str());
      if (key == "max_frame") {
        out.max_frame = static_cast<std::size_t>(integer(node, path, kMinFrame, kMaxFrame));
      } else if (key == "max_outbound") {
        out.max_outbound = positive(node, path);
        if (!sizes) sizes = &node;
      } else if (key == "max_publication") {
        out.max_publication = positive(node, path);
        sizes = &node;
      } else if (key == "channel_idle") {
        out.channel_idle = static_cast<std::size_t>(integer(node, path, 0, 86400));
      } else if (key == "max_subscriptions") {
        out.max_subscriptions = positive(node, path);
      } else if (key == "max_http_body") {
        out.max_http_body = positive(node, path);
      } else if (key == "rate") {
        out.rate = static_cast<std::size_t>(integer(node, path, 0, 1'000'000));
      } else if (key == "burst") {
        out.burst = positive(node, path);
      } else if (key == "rate_abuse") {
        out.rate_abuse = positive(node, path);
      } else if (key == "ping_interval") {
        out.ping_interval = static_cast<std::size_t>(integer(node, path, 1, 3600));
      } else if (key == "idle_timeout") {
        out.idle_timeout = static_cast<std::size_t>(integer(node, path, 1, 86400));
      } else if (key == "http_timeout") {
        out.http_timeout = static_cast<std::size_t>(integer(node, path, 1, 3600));
      } else if (key == "http_rate") {
        out.http_rate = static_cast<std::size_t>(integer(node, path, 0, 1'000'000));
      } else if (key == "http_burst") {
        out.http_burst = positive(node, path);
      } else if (key == "http_user_rate") {
        out.http_user_rate = static_cast<std::size_t>(integer(node, path, 0, 1'000'000));
      } else if (key == "http_user_burst") {
        out.http_user_burst = positive(node, path);
      } else {
        unknown(key, path);
      }
    }
    // Every push (a publication's, a document change's) must fit a subscriber's queue on its own, or one
    // publication would cut off every subscriber of its channel (4001), again on each recovery.
    const std::size_t largest = std::max(out.max_publication, store::kMaxDocument);
    if (sizes && out.max_outbound < largest + kPushEnvelope) {
      fail(sizes->source(), "\"limits.max_outbound\" (" + std::to_string(out.max_outbound) +
                                ") must be at least " + std::to_string(kPushEnvelope) +
                                " bytes above the largest push: \"limits.max_publication\" (" +
                                std::to_string(out.max_publication) + ") and a " + std::to_string(store::kMaxDocument) +
                                "-byte collection document");
    }
  }

  void read_store(const toml::table& t, StoreConfig& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("store", key.str());
      if (key == "synchronous") {
        out.synchronous = choice<std::string>(node, path, {{"full", "full"}, {"normal", "normal"}});
      } else {
        unknown(key, path);
      }
    }
  }

  void read_api(const toml::table& t, ApiConfig& out) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("api", key.str());
      if (key != "keys") unknown(key, path);
      out.keys.clear();
      for (const auto& [k, element] : strings(node, path)) {
        // Sent as it is in an Authorization header; a short one could be guessed.
        if (k.size() < kMinApiKey || !visible_ascii(k))
          fail(element->source(), in_quotes(path) + " entries must be at least 32 visible ASCII characters without spaces");
        if (std::find(out.keys.begin(), out.keys.end(), k) != out.keys.end())
          fail(element->source(), in_quotes(path) + " lists a key twice");
        out.keys.push_back(k);
      }
    }
  }

  // The backend's URL of a hook or webhook (common::parse_endpoint), and its endpoint.
  std::string url(const toml::node& node, const std::string& path, common::Endpoint& endpoint) const {
    std::string text = string(node, path);
    auto parsed = common::parse_endpoint(text);
    if (!parsed) fail(node.source(), in_quotes(path) + " must be an http://HOST[:PORT][/PATH] URL, got " + in_quotes(text));
    endpoint = std::move(*parsed);
    return text;
  }

  // An array of collection names, each declared in [collections].
  std::vector<std::string> declared_collections(const toml::node& node, const std::string& path, const Config& config) const {
    std::vector<std::string> out;
    for (auto& [name, element] : strings(node, path)) {
      if (!config.collections.contains(name))
        fail(element->source(), in_quotes(path) + " names " + in_quotes(name) + ", which [collections] does not declare");
      out.push_back(name);
    }
    return out;
  }

  // [hooks.connect], [hooks.subscribe], [hooks.publish], [hooks.write], [hooks.rpc] (docs/hooks.md).
  void read_hooks(const toml::table& t, Config& config) const {
    for (auto&& [key, node] : t) {
      const std::string path = join("hooks", key.str());
      const std::string_view name = key.str();
      std::optional<HookConfig>* slot = name == "connect"     ? &config.hooks.connect
                                        : name == "subscribe" ? &config.hooks.subscribe
                                        : name == "publish"   ? &config.hooks.publish
                                        : name == "write"     ? &config.hooks.write
                                        : name == "rpc"       ? &config.hooks.rpc
                                                              : nullptr;
      if (!slot) unknown(key, path);
      *slot = read_hook(table(node, path), path, name, config);
    }
  }

  HookConfig read_hook(const toml::table& t, const std::string& hook_path, std::string_view hook,
                       const Config& config) const {
    HookConfig out;
    const bool on_channels = hook == "subscribe" || hook == "publish";
    for (auto&& [key, node] : t) {
      const std::string path = join(hook_path, key.str());
      if (key == "url") {
        out.url = url(node, path, out.endpoint);
      } else if (key == "timeout_ms") {
        out.timeout_ms = static_cast<std::uint32_t>(integer(node, path, 1, 60000));
      } else if (key == "on_failure" && hook != "rpc") {
        // An rpc has no action to let through: a failed one is always an error.
        out.allow_on_failure = choice<bool>(node, path, {{"refuse", false}, {"allow", true}});
      } else if (key == "channels" && on_channels) {
        for (auto& [pattern, element] : strings(node, path)) {
          if (pattern.empty()) fail(element->source(), in_quotes(path) + " entries must not be empty");
          out.channels.push_back(pattern);
        }
      } else if (key == "collections" && hook == "write") {
        out.collections = declared_collections(node, path, config);
      } else {
        unknown(key, path);
      }
    }
    if (out.url.empty()) fail(t.source(), in_quotes(hook_path) + " needs a \"url\"");
    if (on_channels && out.channels.empty())
      fail(t.source(), in_quotes(hook_path) + " needs \"channels\": the channel patterns it decides");
    if (hook == "write" && out.collections.empty())
      fail(t.source(), in_quotes(hook_path) + " needs \"collections\": the collections it decides");
    return out;
  }

  // [webhooks.NAME] (docs/hooks.md, "Webhooks").
  void read_webhooks(const toml::table& t, Config& config) const {
    for (auto&& [key, node] : t) {
      const std::string hook_path = join("webhooks", key.str());
      if (!is_valid_name(key.str(), "")) fail(key.source(), in_quotes(hook_path) + ": a webhook name must be 1-64 characters of A-Za-z0-9_-");
      const toml::table& w = table(node, hook_path);
      WebhookConfig out;
      for (auto&& [k, v] : w) {
        const std::string path = join(hook_path, k.str());
        if (k == "url") {
          out.url = url(v, path, out.endpoint);
        } else if (k == "channels") {
          for (auto& [pattern, element] : strings(v, path)) {
            if (pattern.empty()) fail(element->source(), in_quotes(path) + " entries must not be empty");
            // Publications of in-memory channels are never committed: there is nothing to deliver.
            const auto colon = pattern.find(':');
            const std::string ns = colon == std::string::npos ? "" : pattern.substr(0, colon);
            if (ns.find('*') == std::string::npos && (colon != std::string::npos || pattern.find('*') == std::string::npos)) {
              auto it = config.namespaces.find(ns);
              const bool durable = ns.empty() ? config.channels.durable : it == config.namespaces.end() || it->second.durable;
              if (!durable && config.cluster.broker == "local")
                fail(element->source(), in_quotes(path) + " names " + in_quotes(pattern) +
                                            ", an in-memory namespace: webhooks follow committed publications only");
            }
            out.channels.push_back(pattern);
          }
        } else if (k == "collections") {
          out.collections = declared_collections(v, path, config);
        } else if (k == "secret") {
          out.secret = string(v, path);
          if (out.secret.size() < kMinApiKey || !visible_ascii(out.secret))
            fail(v.source(), in_quotes(path) + " must be at least 32 visible ASCII characters without spaces");
        } else if (k == "timeout_ms") {
          out.timeout_ms = static_cast<std::uint32_t>(integer(v, path, 1, 60000));
        } else if (k == "max_age") {
          out.max_age = static_cast<std::uint32_t>(integer(v, path, 1, 30 * 86400));
        } else {
          unknown(k, path);
        }
      }
      if (out.url.empty()) fail(w.source(), in_quotes(hook_path) + " needs a \"url\"");
      if (out.secret.empty()) fail(w.source(), in_quotes(hook_path) + " needs a \"secret\": every delivery is signed with it");
      if (out.channels.empty() && out.collections.empty())
        fail(w.source(), in_quotes(hook_path) + " needs \"channels\" or \"collections\": what it follows");
      config.webhooks.insert_or_assign(std::string(key.str()), std::move(out));
    }
  }

  void read_cluster(const toml::table& t, ClusterConfig& out) const {
    const toml::node* broker_node = nullptr;
    for (auto&& [key, node] : t) {
      const std::string path = join("cluster", key.str());
      if (key == "broker") {
        out.broker = string(node, path);
        broker::RedisAddress addr;
        if (out.broker != "local" && !broker::parse_redis_url(out.broker, addr)) {
          fail(node.source(), in_quotes(path) + " must be \"local\" or a redis://[[user]:password@]host[:port][/db] URL, got " +
                                  in_quotes(out.broker));
        }
        broker_node = &node;
      } else if (key == "store") {
        out.store = string(node, path);
        if (out.store != "sqlite" && !out.store.starts_with("postgres://") && !out.store.starts_with("postgresql://")) {
          fail(node.source(), in_quotes(path) + " must be \"sqlite\" or a postgres:// URL, got " + in_quotes(out.store));
        }
      } else if (key == "node") {
        out.node = string(node, path);
        const bool ok = !out.node.empty() && out.node.size() <= 64 &&
                        std::all_of(out.node.begin(), out.node.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                 c == '_' || c == '-' || c == '.';
                        });
        if (!ok) fail(node.source(), in_quotes(path) + " must be 1-64 characters of A-Za-z0-9_.-");
      } else if (key == "presence_ttl") {
        out.presence_ttl = static_cast<unsigned>(integer(node, path, 1, 3600));
      } else {
        unknown(key, path);
      }
    }
    // Nodes on one Redis must agree on offsets: that takes one shared store.
    if (out.broker != "local" && out.store == "sqlite") {
      fail(broker_node->source(), "\"cluster.broker\" = redis needs a shared store: set \"cluster.store\" to a postgres:// URL");
    }
  }

  std::string source_;
};

}  // namespace

Config load_file(const std::filesystem::path& file) {
  // An ifstream opens a directory without complaint and then reads nothing; say what is wrong instead.
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    throw ConfigError("cannot read config file \"" + file.string() + "\": it is a directory");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw ConfigError("cannot read config file \"" + file.string() + "\": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw ConfigError("cannot read config file \"" + file.string() + "\": " + std::strerror(errno));
  }
  return load_string(text.str(), file.string());
}

Config load_string(std::string_view toml, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(toml, source_name);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    throw ConfigError(std::string(source_name) + ':' + std::to_string(at.line) + ':' + std::to_string(at.column) +
                      ": TOML syntax error: " + std::string(e.description()));
  }
  return Reader(source_name).read(root);
}

Config defaults() { return Config{}; }

std::map<std::string, std::vector<query::Order>> query_indexes(const Config& config) {
  std::map<std::string, std::vector<query::Order>> out;
  for (const auto& [name, c] : config.collections) {
    if (!c.indexes.empty()) out.emplace(name, c.indexes);
  }
  return out;
}

std::vector<store::WebhookRoute> webhook_routes(const Config& config) {
  std::vector<store::WebhookRoute> out;
  for (const auto& [name, w] : config.webhooks) {
    store::WebhookRoute r{name, w.channels};
    for (const auto& c : w.collections) r.channels.push_back("coll:" + c);
    out.push_back(std::move(r));
  }
  return out;
}

std::pair<std::string, std::uint16_t> split_listen(const std::string& listen) {
  const auto bad = [&](std::string_view why) -> ConfigError {
    return ConfigError("invalid listen address \"" + listen + "\" (expected HOST:PORT): " + std::string(why));
  };
  std::string host;
  std::string_view rest;  // what follows the host: ":PORT"
  if (!listen.empty() && listen.front() == '[') {
    const std::size_t close = listen.find(']');
    if (close == std::string::npos) throw bad("missing ']' after an IPv6 address");
    host = listen.substr(1, close - 1);
    rest = std::string_view(listen).substr(close + 1);
  } else {
    const std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) throw bad("missing port");
    host = listen.substr(0, colon);
    rest = std::string_view(listen).substr(colon);
    // Without brackets "::1:80" could split in more than one way.
    if (host.find(':') != std::string::npos) throw bad("an IPv6 address must be written in brackets, e.g. [::1]:8080");
  }
  if (host.empty()) throw bad("empty host");
  if (host.find_first_of("[]") != std::string::npos) throw bad("misplaced bracket");
  if (rest.empty() || rest.front() != ':') throw bad("missing port");
  const std::string_view port = rest.substr(1);
  if (port.empty()) throw bad("missing port");
  // from_chars would accept a prefix ("80x"); insist on digits only, and no sign.
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw bad("the port must be a number");
  }
  unsigned long value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc() || end != port.data() + port.size() || value > 65535) {
    throw bad("the port must be between 0 and 65535");
  }
  return {host, static_cast<std::uint16_t>(value)};
}

}  // namespace rtsync::config
