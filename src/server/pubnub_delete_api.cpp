// PubNub deleteMessages: DELETE /v3/history/sub-key/{sub}/channel/{ch}?start=&end= on a durable channel,
// over service::MessageDeletions. start is exclusive and end inclusive, in either order, as for history;
// neither deletes the whole channel. Answer: {"status":200,"error":false,"error_message":""}; errors in
// history v3's shape.
#include "server/pubnub_detail.hpp"
#include "service/pubnub_deletion.hpp"

namespace rtsync::server::pubnub {

void delete_messages(Call& c) {
  const auto& req = c.req;
  auto names = name_list(c.seg[5]);
  if (!names || names->size() != 1)
    return c.respond(history_error(req, http::status::bad_request, "Invalid Arguments: one channel"));
  auto res = c.ctx.channels.resolve(names->front());
  if (auto* e = std::get_if<protocol::Error>(&res))
    return c.respond(history_error(req, status_for(*e), "Invalid channel: " + e->message));
  auto ch = std::get<core::ChannelRef>(std::move(res));
  if (!ch->options().durable || !ch->options().client_publish)
    return c.respond(history_error(req, http::status::bad_request,
                                   "Deleting messages needs a durable channel that clients publish on"));
  // Destructive and not undone: only a caller with a token that may publish here (PubNub needs it enabled
  // on the keys, and the secret key under Access Manager), or an Access Manager token's delete.
  if ((c.who.anonymous && !c.who.grant) || !may_remove(c, *ch))
    return c.respond(history_error(req, http::status::forbidden,
                                   "Forbidden: deleting messages needs a token that may publish on the channel"));
  auto q = timetoken_range(c);
  if (!q) return c.respond(history_error(req, http::status::bad_request, "Invalid Arguments: start/end"));
  c.ctx.pubnub_deletions->erase(ch, q->after, q->until, c.post, [&req, respond = c.respond](store::DeletionResult r) {
    if (!r.ok) return respond(history_error(req, http::status::service_unavailable, "the store is unavailable"));
    respond(reply(req, http::status::ok, R"({"status":200,"error":false,"error_message":""})"));
  });
}

}  // namespace rtsync::server::pubnub
