// The proxy hooks (docs/hooks.md): the app's backend asked before rtsync acts. Which hooks the config
// declares and what each decides, the JSON of their requests and the meaning of their answers, in one
// place for every front end. The HTTP exchange itself is injected (the server wires hooks::HttpClient),
// so this layer has no sockets; every completion runs on the sender's thread, never an I/O thread's, and
// callers post back to their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "config/config.hpp"
#include "protocol/errors.hpp"
#include "protocol/jwt.hpp"
#include "service/channels.hpp"

namespace rtsync::service {

// What came back from one POST to a hook: an HTTP status and body, or (status 0) why nothing did.
struct HookExchange {
  unsigned status = 0;
  std::string body;
  std::string error;
};
using HookSender =
    std::function<void(const config::HookConfig& hook, std::string body, std::function<void(HookExchange)> done)>;

// subscribe, publish, write: go on (with `data` replaced when set) unless `error` (refused: the backend
// said no; unavailable: it failed and its on_failure is "refuse").
struct HookVerdict {
  std::optional<protocol::Error> error;
  std::optional<boost::json::value> data;  // publish, write: what the backend put in place of the data
};

// What the connect hook learns of a WebSocket upgrade.
struct ConnectRequest {
  std::string remote;  // the client's address (X-Forwarded-For from a trusted proxy)
  std::vector<std::pair<std::string, std::string>> headers;  // as received, names lowercased
  std::string user;       // the identity rtsync established (a token's or the anonymous cookie's)
  bool anonymous = true;
};

struct ConnectVerdict {
  // Refused (by the backend, or it failed and on_failure is "refuse"): the connection is closed with
  // this code (4100-4499 from the backend; 4403 refused, 4503 the backend failed) and reason.
  std::optional<std::uint16_t> close;
  std::string reason;
  // The backend named the user: the connection's identity, as a token's claims would give it.
  std::optional<protocol::jwt::Claims> claims;
};

struct RpcOutcome {
  std::optional<protocol::Error> error;
  std::string data;  // the backend's answer, compact JSON
};

// Close codes of a refused connect (docs/protocol.md, close codes).
inline constexpr std::uint16_t kConnectRefused = 4403;
inline constexpr std::uint16_t kConnectUnavailable = 4503;

class BackendHooks {
 public:
  BackendHooks(const config::HooksConfig& cfg, HookSender send);

  bool connects() const { return cfg_.connect.has_value(); }
  bool answers_rpc() const { return cfg_.rpc.has_value(); }
  bool decides_subscribe(std::string_view channel) const;
  bool decides_publish(std::string_view channel) const;
  bool decides_write(std::string_view collection) const;

  void connect(const ConnectRequest& req, std::function<void(ConnectVerdict)> done) const;
  void subscribe(const Caller& caller, std::string_view channel, std::function<void(HookVerdict)> done) const;
  // `data`: compact JSON.
  void publish(const Caller& caller, std::string_view channel, std::string_view data,
               std::function<void(HookVerdict)> done) const;
  // `op`: create, update, patch or delete; `data` null for a delete; `v` the version the writer expects.
  void write(const Caller& caller, std::string_view collection, std::string_view doc, std::string_view op,
             const boost::json::value& data, std::optional<std::uint64_t> v, std::function<void(HookVerdict)> done) const;
  void rpc(const Caller& caller, std::string_view method, const boost::json::value& data,
           std::function<void(RpcOutcome)> done) const;

 private:
  // Posts `body` to `hook` and hands `decide` the answer's object, or calls `failed` with why there is
  // none (no answer, not 200, not a JSON object).
  void ask(const config::HookConfig& hook, boost::json::object body, std::function<void(boost::json::object)> decide,
           std::function<void(std::string)> failed) const;
  // What an answer's `data` may be: nothing (subscribe, delete), any JSON (publish), an object (write).
  enum class Replaces : std::uint8_t { nothing, any, object };
  // A HookVerdict from a subscribe/publish/write answer.
  void decide(const config::HookConfig& hook, boost::json::object body, Replaces replaces,
              std::function<void(HookVerdict)> done) const;

  const config::HooksConfig& cfg_;
  HookSender send_;
};

}  // namespace rtsync::service
