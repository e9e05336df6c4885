// Webhook delivery (docs/hooks.md, "Webhooks"): each [webhooks.NAME]'s queue, kept in the store (its
// entries are queued in the transaction that commits their publication), delivered to its URL by the
// node that holds its lease, in rounds on the HTTP client's thread: take or renew the lease, read the
// oldest entries, POST them (in order per channel, channels side by side), and settle the round in the
// store (delivered entries leave, failed ones wait with backoff, old ones become dead letters). A kill
// between a delivery and its settling delivers it again: at least once, a repeat recognized by its offset.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "hooks/http_client.hpp"
#include "store/store.hpp"

namespace rtsync::hooks {

// The signature of a delivery: "v1=" and the lowercase hex HMAC-SHA256 of "TIMESTAMP.BODY" with `secret`.
std::string signature(std::string_view secret, std::string_view timestamp, std::string_view body);

class Webhooks {
 public:
  // `node`: this node's name in the lease (with SQLite, the only node, it always holds it).
  Webhooks(const config::Config& cfg, store::Store& store, HttpClient& client, std::string node);
  ~Webhooks();
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  void start();
  // No round starts after this (before the store closes); one under way ends without settling, and its
  // entries are delivered again by the next holder.
  void stop();

  // Prometheus lines (rtsync_webhook_*), any thread.
  std::string metrics() const;

  // For the Server API; `done` runs on the store's thread, nullopt when the store failed.
  bool has(const std::string& name) const { return hooks_.contains(name); }
  void counts(std::function<void(std::optional<std::map<std::string, store::WebhookCounts>>)> done);
  // Dead letters with seq > after, at most limit + 1 (one more tells there are more).
  void dead_letters(const std::string& name, std::uint64_t after, std::size_t limit,
                    std::function<void(std::optional<std::vector<store::WebhookEntry>>)> done);
  // Every dead letter back into the queue (replay) or deleted (discard): how many.
  void revive(const std::string& name, bool replay, std::function<void(std::optional<std::uint64_t>)> done);

 private:
  struct Hook;
  void round(Hook& h);
  void deliver(Hook& h, std::vector<store::WebhookEntry> entries);
  void settle(Hook& h, store::WebhookWrite w, bool busy);
  void later(Hook& h, std::chrono::milliseconds wait);

  const config::Config& cfg_;
  store::Store& store_;
  HttpClient& client_;
  const std::string node_;
  std::map<std::string, std::unique_ptr<Hook>> hooks_;
  std::atomic<bool> stopped_{false};
};

}  // namespace rtsync::hooks
