#include "service/backend_hooks.hpp"

#include <atomic>
#include <chrono>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/client_json.hpp"
#include "common/clock.hpp"

namespace rtsync::service {

namespace json = boost::json;
using protocol::Code;
using protocol::Error;

namespace {

// A refusal's message is the backend's, shown to the user: bounded like any error text.
constexpr std::size_t kMaxMessage = 1024;
// A close frame's reason: 125 bytes of payload less the code's 2.
constexpr std::size_t kMaxReason = 123;

json::object base(std::string_view hook, const Caller& caller) {
  return json::object{{"hook", hook}, {"user", caller.user}, {"anonymous", caller.anonymous}};
}

// The text of an answer's {"error":{"message":…}}, or nullopt when it is not one of those.
std::optional<std::string> refusal(const json::object& answer) {
  auto* e = answer.if_contains("error");
  if (!e || !e->is_object()) return std::nullopt;
  auto* m = e->get_object().if_contains("message");
  if (!m || !m->is_string() || m->get_string().empty()) return std::string("refused by the app's backend");
  return std::string(m->get_string().subview().substr(0, kMaxMessage));
}

// At most `max` bytes of `s`, not cutting a UTF-8 sequence.
std::string truncated(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

json::object cookies_of(const std::vector<std::pair<std::string, std::string>>& headers) {
  json::object out;
  for (const auto& [name, value] : headers) {
    if (name != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      out[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
  }
  return out;
}

}  // namespace

BackendHooks::BackendHooks(const config::HooksConfig& cfg, HookSender send) : cfg_(cfg), send_(std::move(send)) {}

bool BackendHooks::decides_subscribe(std::string_view channel) const {
  return cfg_.subscribe && protocol::jwt::match_any(cfg_.subscribe->channels, channel);
}

bool BackendHooks::decides_publish(std::string_view channel) const {
  return cfg_.publish && protocol::jwt::match_any(cfg_.publish->channels, channel);
}

bool BackendHooks::decides_write(std::string_view collection) const {
  if (!cfg_.write) return false;
  const auto& c = cfg_.write->collections;
  return std::find(c.begin(), c.end(), collection) != c.end();
}

void BackendHooks::ask(const config::HookConfig& hook, json::object body, std::function<void(json::object)> decide,
                       std::function<void(std::string)> failed) const {
  send_(hook, json::serialize(body), [decide = std::move(decide), failed = std::move(failed), &hook](HookExchange x) {
    std::string why;
    if (x.status == 0) {
      why = x.error;
    } else if (x.status == 204) {
      return decide(json::object{});
    } else if (x.status != 200) {
      why = "HTTP " + std::to_string(x.status);
    } else {
      boost::system::error_code ec;
      auto v = common::parse_client_json(x.body, ec);
      if (!ec && v.is_object() && common::all_numbers_finite(v)) return decide(std::move(v.get_object()));
      why = "an answer that is not a JSON object";
    }
    // Logged at most every 10 s: a backend that is down would otherwise log once per action.
    static std::atomic<std::int64_t> last_log{0};
    const auto now = common::now_ms();
    auto last = last_log.load(std::memory_order_relaxed);
    if (now - last >= 10'000 && last_log.compare_exchange_strong(last, now))
      spdlog::warn("hook {}: {} ({})", hook.url, why, hook.allow_on_failure ? "allowed" : "refused");
    failed(std::move(why));
  });
}

void BackendHooks::decide(const config::HookConfig& hook, json::object body, Replaces replaces,
                          std::function<void(HookVerdict)> done) const {
  const std::string name(body.at("hook").as_string());
  auto on_failure = [&hook, name, done](std::string why) {
    if (hook.allow_on_failure) return done(HookVerdict{});
    done(HookVerdict{Error{Code::unavailable, "the app's backend did not answer the " + name + " hook: " + why}, {}});
  };
  ask(hook, std::move(body),
      [replaces, done, on_failure](json::object answer) {
        if (auto message = refusal(answer)) return done(HookVerdict{Error{Code::refused, std::move(*message)}, {}});
        if (answer.contains("error")) return on_failure("an error that is not an object");
        HookVerdict v;
        auto* data = answer.if_contains("data");
        if (data && replaces != Replaces::nothing) {
          if (replaces == Replaces::object && !data->is_object()) return on_failure("data that is not an object");
          v.data = std::move(*data);
        }
        done(std::move(v));
      },
      on_failure);
}

void BackendHooks::connect(const ConnectRequest& req, std::function<void(ConnectVerdict)> done) const {
  const auto& hook = *cfg_.connect;
  json::object headers;
  for (const auto& [name, value] : req.headers) {
    auto& slot = headers[name];
    if (slot.is_string()) {
      std::string joined(slot.get_string());
      joined += name == "cookie" ? "; " : ", ";
      joined += value;
      slot = joined;
    } else {
      slot = value;
    }
  }
  json::object body{{"hook", "connect"},   {"transport", "websocket"},     {"remote", req.remote},
                    {"user", req.user},    {"anonymous", req.anonymous}, {"headers", std::move(headers)},
                    {"cookies", cookies_of(req.headers)}};
  auto failed = [&hook, done](std::string why) {
    if (hook.allow_on_failure) return done(ConnectVerdict{});
    done(ConnectVerdict{kConnectUnavailable, truncated("the app's backend is unavailable: " + why, kMaxReason), {}});
  };
  ask(hook, std::move(body),
      [done, failed](json::object answer) {
        if (auto message = refusal(answer)) {
          std::uint16_t code = kConnectRefused;
          if (auto* c = answer.at("error").as_object().if_contains("code"); c && c->is_int64() &&
                                                                           c->get_int64() >= 4100 && c->get_int64() <= 4499)
            code = static_cast<std::uint16_t>(c->get_int64());
          return done(ConnectVerdict{code, truncated(std::move(*message), kMaxReason), {}});
        }
        if (answer.contains("error")) return failed("an error that is not an object");
        if (!answer.contains("sub")) return done(ConnectVerdict{});
        auto claims = protocol::jwt::claims_of(answer, common::now_ms() / 1000, false);
        if (auto* why = std::get_if<std::string>(&claims)) return failed("its claims: " + *why);
        done(ConnectVerdict{std::nullopt, {}, std::move(std::get<protocol::jwt::Claims>(claims))});
      },
      failed);
}

void BackendHooks::subscribe(const Caller& caller, std::string_view channel, std::function<void(HookVerdict)> done) const {
  auto body = base("subscribe", caller);
  body["channel"] = channel;
  decide(*cfg_.subscribe, std::move(body), Replaces::nothing, std::move(done));
}

void BackendHooks::publish(const Caller& caller, std::string_view channel, std::string_view data,
                           std::function<void(HookVerdict)> done) const {
  auto body = base("publish", caller);
  body["channel"] = channel;
  body["data"] = json::parse(data);
  decide(*cfg_.publish, std::move(body), Replaces::any, std::move(done));
}

void BackendHooks::write(const Caller& caller, std::string_view collection, std::string_view doc, std::string_view op,
                         const json::value& data, std::optional<std::uint64_t> v, std::function<void(HookVerdict)> done) const {
  auto body = base("write", caller);
  body["collection"] = collection;
  body["doc"] = doc;
  body["op"] = op;
  body["data"] = data;
  body["v"] = v ? json::value(*v) : json::value(nullptr);
  decide(*cfg_.write, std::move(body), op == "delete" ? Replaces::nothing : Replaces::object, std::move(done));
}

void BackendHooks::rpc(const Caller& caller, std::string_view method, const json::value& data,
                       std::function<void(RpcOutcome)> done) const {
  auto body = base("rpc", caller);
  body["method"] = method;
  body["data"] = data;
  ask(*cfg_.rpc, std::move(body),
      [done](json::object answer) {
        if (auto message = refusal(answer)) return done(RpcOutcome{Error{Code::refused, std::move(*message)}, {}});
        if (answer.contains("error"))
          return done(RpcOutcome{Error{Code::unavailable, "the app's backend answered the rpc hook with an error that "
                                                          "is not an object"}, {}});
        auto* result = answer.if_contains("data");
        done(RpcOutcome{std::nullopt, result ? json::serialize(*result) : std::string("null")});
      },
      [done](std::string why) {
        done(RpcOutcome{Error{Code::unavailable, "the app's backend did not answer the rpc hook: " + why}, {}});
      });
}

}  // namespace rtsync::service
