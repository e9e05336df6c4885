// PubNub deleteMessages: the store, then every node's hub. See pubnub_deletion.hpp.
#include "service/pubnub_deletion.hpp"

#include <utility>

namespace rtsync::service {

MessageDeletions::MessageDeletions(store::Store& store, broker::Broker& broker) : store_(store), broker_(broker) {}

void MessageDeletions::erase(const core::ChannelRef& ch, std::uint64_t after, std::uint64_t until, const Post& post,
                             std::function<void(store::DeletionResult)> done) {
  store::MessageDeletion d{ch->name(), after, until};
  store_.delete_messages(std::move(d), [this, ch, after, until, post, done = std::move(done)](store::DeletionResult r) {
    // After the commit, like a publication: a load queued after the deletion reads the store without
    // them, and a hub that had them loaded drops them now.
    if (r.ok) broker_.erase(ch->name(), after, until);
    post([done, r = std::move(r)] { done(r); });
  });
}

}  // namespace rtsync::service
