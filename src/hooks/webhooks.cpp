#include "hooks/webhooks.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "common/base64url.hpp"
#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "common/random.hpp"

namespace rtsync::hooks {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kRound = 100;             // entries read per round
constexpr std::int64_t kLeaseMs = 10'000;       // a holder that stops renewing loses the webhook after this
constexpr auto kPoll = 200ms;                   // between rounds that found nothing to do
constexpr auto kRetake = 2s;                    // between tries of a node that does not hold the lease
constexpr auto kStoreDown = 1s;                 // after a store call failed
constexpr std::int64_t kFirstRetryMs = 1000;    // doubling per attempt,
constexpr std::int64_t kMaxRetryMs = 300'000;   // up to five minutes
constexpr std::int64_t kCountsEveryMs = 1000;   // queue lengths for the metrics

std::int64_t backoff(std::uint32_t attempts) {
  std::int64_t wait = kFirstRetryMs << std::min<std::uint32_t>(attempts > 0 ? attempts - 1 : 0, 20);
  wait = std::min(wait, kMaxRetryMs);
  // Up to a quarter more, so that receivers coming back are not hit by every retry at once.
  const auto jitter = static_cast<std::int64_t>(std::stoull(common::random_hex(2), nullptr, 16)) * (wait / 4) / 65535;
  return wait + jitter;
}

}  // namespace

std::string signature(std::string_view secret, std::string_view timestamp, std::string_view body) {
  std::string signed_text(timestamp);
  signed_text += '.';
  signed_text += body;
  const std::string mac = common::hmac_sha256(secret, signed_text);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "v1=";
  for (unsigned char c : mac) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

struct Webhooks::Hook {
  Hook(std::string n, const config::WebhookConfig& c, asio::io_context& io) : name(std::move(n)), cfg(c), timer(io) {}
  const std::string name;
  const config::WebhookConfig& cfg;
  asio::steady_timer timer;
  std::atomic<std::int64_t> counted_at{0};  // reset by revive(), on the store's thread
  // Read by metrics() from any thread.
  std::atomic<std::uint64_t> delivered{0}, failures{0}, pending{0}, dead{0};
  std::atomic<bool> holding{false};
};

// What one round has settled so far.
struct Round {
  store::WebhookWrite settle;
  std::size_t channels = 0;  // still delivering
  std::size_t read = 0;      // entries the round read
};

Webhooks::Webhooks(const config::Config& cfg, store::Store& store, HttpClient& client, std::string node)
    : cfg_(cfg), store_(store), client_(client), node_(std::move(node)) {
  for (const auto& [name, w] : cfg.webhooks) hooks_.emplace(name, std::make_unique<Hook>(name, w, client.context()));
}

Webhooks::~Webhooks() = default;

void Webhooks::start() {
  for (auto& [name, h] : hooks_) asio::post(client_.context(), [this, hook = h.get()] { round(*hook); });
}

void Webhooks::stop() {
  stopped_ = true;
  for (auto& [name, h] : hooks_) asio::post(client_.context(), [hook = h.get()] { hook->timer.cancel(); });
}

void Webhooks::later(Hook& h, std::chrono::milliseconds wait) {
  if (stopped_) return;
  if (wait == 0ms) return asio::post(client_.context(), [this, &h] { round(h); });
  h.timer.expires_after(wait);
  h.timer.async_wait([this, &h](boost::system::error_code ec) {
    if (!ec) round(h);
  });
}

void Webhooks::round(Hook& h) {
  if (stopped_) return;
  auto& io = client_.context();
  const std::int64_t now = common::now_ms();
  if (now - h.counted_at >= kCountsEveryMs) {
    h.counted_at = now;
    store_.read_webhooks(store::WebhookQuery{store::WebhookQuery::Kind::counts, {}, 0, 0},
                         [&h](store::WebhookReadResult r) {
                           if (!r.ok) return;
                           auto it = r.counts.find(h.name);
                           h.pending = it == r.counts.end() ? 0 : it->second.pending;
                           h.dead = it == r.counts.end() ? 0 : it->second.dead;
                         });
  }
  store::WebhookWrite lease;
  lease.kind = store::WebhookWrite::Kind::lease;
  lease.hook = h.name;
  lease.node = node_;
  lease.until = now + kLeaseMs;
  store_.write_webhooks(std::move(lease), [this, &h, &io](store::WebhookWriteResult r) {
    asio::post(io, [this, &h, r = std::move(r)] {
      if (stopped_) return;
      if (!r.ok) return later(h, kStoreDown);
      h.holding = r.holder == node_;
      if (!h.holding) return later(h, kRetake);
      store_.read_webhooks(store::WebhookQuery{store::WebhookQuery::Kind::pending, h.name, 0, kRound},
                           [this, &h](store::WebhookReadResult rr) {
                             asio::post(client_.context(), [this, &h, rr = std::move(rr)]() mutable {
                               if (stopped_) return;
                               if (!rr.ok) return later(h, kStoreDown);
                               deliver(h, std::move(rr.entries));
                             });
                           });
    });
  });
}

void Webhooks::deliver(Hook& h, std::vector<store::WebhookEntry> entries) {
  // Per channel in queue order; a channel whose oldest entry waits for its retry waits whole.
  std::map<std::string, std::vector<store::WebhookEntry>> by_channel;
  for (auto& e : entries) by_channel[e.channel].push_back(std::move(e));
  const std::int64_t now = common::now_ms();
  std::erase_if(by_channel, [&](const auto& kv) { return kv.second.front().next > now; });
  auto round = std::make_shared<Round>();
  round->settle.kind = store::WebhookWrite::Kind::settle;
  round->settle.hook = h.name;
  round->read = entries.size();
  round->channels = by_channel.size();
  if (by_channel.empty()) return later(h, kPoll);

  auto chains = std::make_shared<std::map<std::string, std::vector<store::WebhookEntry>>>(std::move(by_channel));
  // Posts the channel's entry `i` and, once it is settled, the next.
  // Each pending request holds the chain; the chain itself only refers to itself (no cycle).
  auto next = std::make_shared<std::function<void(const std::string&, std::size_t)>>();
  *next = [this, &h, round, chains, self = std::weak_ptr(next)](const std::string& channel, std::size_t i) {
    const auto& list = chains->at(channel);
    auto finish_channel = [&] {
      if (--round->channels > 0) return;
      const bool busy = !round->settle.delivered.empty() || !round->settle.buried.empty();
      settle(h, std::move(round->settle), busy);
    };
    if (i == list.size() || stopped_) return finish_channel();
    const store::WebhookEntry& e = list[i];
    const std::string ts = std::to_string(common::now_ms() / 1000);
    Request req;
    req.body = e.body;
    req.timeout = std::chrono::milliseconds(h.cfg.timeout_ms);
    req.headers = {{"X-Rtsync-Webhook", h.name},
                   {"X-Rtsync-Timestamp", ts},
                   {"X-Rtsync-Signature", signature(h.cfg.secret, ts, e.body)},
                   {"X-Rtsync-Delivery", std::to_string(e.seq)},
                   {"X-Rtsync-Attempt", std::to_string(e.attempts + 1)}};
    client_.post(h.cfg.endpoint, std::move(req), [this, &h, round, next = self.lock(), channel, i, e, end = list.size()](
                                                     Response r) {
      if (r.status >= 200 && r.status < 300) {
        ++h.delivered;
        round->settle.delivered.push_back(e.seq);
        return (*next)(channel, i + 1);
      }
      ++h.failures;
      const std::int64_t failed_at = common::now_ms();
      if (failed_at - e.created >= static_cast<std::int64_t>(h.cfg.max_age) * 1000) {
        spdlog::warn("webhook {}: entry {} ({} offset {}) is a dead letter after {} attempts: {}", h.name, e.seq,
                     e.channel, e.offset, e.attempts + 1, r.answered() ? "HTTP " + std::to_string(r.status) : r.error);
        round->settle.buried.push_back(e.seq);
        return (*next)(channel, i + 1);  // out of the queue: the channel goes on
      }
      store::WebhookEntry retry = e;
      retry.attempts = e.attempts + 1;
      retry.next = failed_at + backoff(retry.attempts);
      round->settle.retries.push_back(std::move(retry));
      (*next)(channel, end);  // the channel waits for this entry
    });
  };
  for (const auto& [channel, list] : *chains) (*next)(channel, 0);
}

void Webhooks::settle(Hook& h, store::WebhookWrite w, bool busy) {
  if (w.delivered.empty() && w.retries.empty() && w.buried.empty()) return later(h, busy ? 0ms : kPoll);
  store_.write_webhooks(std::move(w), [this, &h, busy](store::WebhookWriteResult r) {
    asio::post(client_.context(), [this, &h, busy, ok = r.ok] { later(h, !ok ? kStoreDown : busy ? 0ms : kPoll); });
  });
}

void Webhooks::counts(std::function<void(std::optional<std::map<std::string, store::WebhookCounts>>)> done) {
  store_.read_webhooks(store::WebhookQuery{store::WebhookQuery::Kind::counts, {}, 0, 0},
                       [done = std::move(done)](store::WebhookReadResult r) {
                         if (!r.ok) return done(std::nullopt);
                         done(std::move(r.counts));
                       });
}

void Webhooks::dead_letters(const std::string& name, std::uint64_t after, std::size_t limit,
                            std::function<void(std::optional<std::vector<store::WebhookEntry>>)> done) {
  store_.read_webhooks(store::WebhookQuery{store::WebhookQuery::Kind::dead, name, after, limit},
                       [done = std::move(done)](store::WebhookReadResult r) {
                         if (!r.ok) return done(std::nullopt);
                         done(std::move(r.entries));
                       });
}

void Webhooks::revive(const std::string& name, bool replay, std::function<void(std::optional<std::uint64_t>)> done) {
  store::WebhookWrite w;
  w.kind = replay ? store::WebhookWrite::Kind::replay : store::WebhookWrite::Kind::discard;
  w.hook = name;
  store_.write_webhooks(std::move(w), [this, name, done = std::move(done)](store::WebhookWriteResult r) {
    if (!r.ok) return done(std::nullopt);
    hooks_.at(name)->counted_at = 0;  // the metrics catch up at the next round
    done(r.count);
  });
}

std::string Webhooks::metrics() const {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    for (const auto& [hook, h] : hooks_) {
      out += name;
      out += "{webhook=";
      common::append_json_string(out, hook);
      out += "} ";
      out += std::to_string(value(*h));
      out += '\n';
    }
  };
  family("rtsync_webhook_delivered_total", "counter", "Webhook deliveries the receiver accepted (2xx), by this node.",
         [](const Hook& h) { return h.delivered.load(); });
  family("rtsync_webhook_failures_total", "counter", "Webhook attempts that failed (no answer, or not 2xx), by this node.",
         [](const Hook& h) { return h.failures.load(); });
  family("rtsync_webhook_pending", "gauge", "Entries of the webhook's queue not yet delivered (every node's).",
         [](const Hook& h) { return h.pending.load(); });
  family("rtsync_webhook_dead_letters", "gauge", "Entries given up after max_age, kept until replayed or discarded.",
         [](const Hook& h) { return h.dead.load(); });
  family("rtsync_webhook_delivering", "gauge", "1 while this node holds the webhook's lease and delivers it.",
         [](const Hook& h) { return h.holding.load() ? 1 : 0; });
  return out;
}

}  // namespace rtsync::hooks
