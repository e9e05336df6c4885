// What an I/O worker hands channel deliveries to: a protocol client (server/client.hpp), or a pending
// PubNub long poll.
#pragma once

#include "core/delivery.hpp"

namespace rtsync::server {

// Called on the subscriber's worker thread while the worker walks the channel's subscriber list: it must
// not add or remove subscribers synchronously (post that instead). The worker has already applied the
// filters given to Worker::add_subscriber (offset, audience, presence, signals).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual void on_delivery(const core::Delivery& d) = 0;
};

}  // namespace rtsync::server
