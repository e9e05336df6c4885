// Webhook queues in the batch (docs/hooks.md, "Webhooks"): a publication is queued for every webhook that
// follows its channel in the transaction that commits it, so that nothing committed is ever missed and
// nothing rolled back is ever delivered; and a delivery round's outcome is settled the same way.
#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "protocol/jwt.hpp"
#include "store/store_batch.hpp"

namespace rtsync::store::detail {

namespace {

// {"webhook":NAME,"channel":CH,"epoch":E,"offset":N,"ts":MS,"from":USER,"data":…}: what the receiver gets.
std::string body_of(const std::string& hook, const std::string& channel, const std::string& epoch,
                    const core::Publication& pub) {
  std::string out = "{\"webhook\":";
  common::append_json_string(out, hook);
  out += ",\"channel\":";
  common::append_json_string(out, channel);
  out += ",\"epoch\":";
  common::append_json_string(out, epoch);
  out += ",\"offset\":";
  common::append_int(out, pub.offset);
  out += ",\"ts\":";
  common::append_int(out, pub.ts);
  out += ",\"from\":";
  common::append_json_string(out, pub.from);
  out += ",\"data\":";
  out += pub.data;
  out += '}';
  return out;
}

}  // namespace

void Batch::queue_for_webhooks(const ChannelState& ch, const std::string& name, const core::Publication& pub) {
  for (const WebhookRoute& route : webhooks_)
    if (protocol::jwt::match_any(route.channels, name))
      rows_.insert_webhook(route.name, name, pub.offset, body_of(route.name, name, ch.epoch, pub), now_);
}

WebhookWriteResult Batch::write_webhooks(const WebhookWrite& w) {
  WebhookWriteResult r;
  using Kind = WebhookWrite::Kind;
  switch (w.kind) {
    case Kind::lease:
      r.holder = rows_.lease_webhook(w.hook, w.node, now_, w.until);
      break;
    case Kind::settle:
      for (auto seq : w.delivered) rows_.delete_webhook(seq);
      for (const auto& e : w.retries) rows_.retry_webhook(e);
      for (auto seq : w.buried) rows_.bury_webhook(seq);
      break;
    case Kind::replay:
      r.count = rows_.revive_webhooks(w.hook, now_);
      break;
    case Kind::discard:
      r.count = rows_.discard_webhooks(w.hook);
      break;
  }
  r.ok = true;
  return r;
}

WebhookReadResult read_webhooks(Rows& rows, const WebhookQuery& q) {
  WebhookReadResult r;
  using Kind = WebhookQuery::Kind;
  if (q.kind == Kind::counts) {
    r.counts = rows.webhook_counts();
  } else {
    const bool dead = q.kind == Kind::dead;
    r.entries = rows.webhook_entries(q.hook, dead, q.after, dead ? q.limit + 1 : q.limit);
  }
  r.ok = true;
  return r;
}

}  // namespace rtsync::store::detail
