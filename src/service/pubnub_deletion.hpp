// PubNub deleteMessages (docs/pubnub.md, section 7.5): deleting a durable channel's publications by
// timetoken, in the store (store::MessageDeletion, with their message actions) and then in what every
// node's hub keeps (broker::Broker::erase), so that no history, recovery or PubNub read returns them again,
// after a restart neither. Offsets are never given again: a native subscriber recovering over the range
// gets the publications that remain (docs/protocol.md §4, *Deleted publications*).
#pragma once

#include <cstdint>
#include <functional>

#include "broker/broker.hpp"
#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

class MessageDeletions {
 public:
  MessageDeletions(store::Store& store, broker::Broker& broker);

  // Deletes the publications of `ch` (durable, checked by the caller) with after < tt <= until; `done`
  // runs through `post` once they are gone from the store and from this node's hub.
  void erase(const core::ChannelRef& ch, std::uint64_t after, std::uint64_t until, const Post& post,
             std::function<void(store::DeletionResult)> done);

 private:
  store::Store& store_;
  broker::Broker& broker_;
};

}  // namespace rtsync::service
