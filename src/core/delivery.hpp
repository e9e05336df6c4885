// What the hub hands to each I/O thread: one Delivery per publication, presence event or signal, and the
// DeliverySink that receives them (server::Worker). Apart from the hub so that the I/O layer sees only
// this, never the hub.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/frame.hpp"
#include "core/publication.hpp"

namespace rtsync::core {

class Channel;

struct Delivery {
  // signal: a transient publication (Hub::transient: a PubNub signal, a message published with store=0,
  // or a message action's event; no offset, no history, no frame): only PubNub long polls take it.
  // relayed: a publication or transient of another channel, handed to `channel` (a PubNub wildcard
  // subscription's, Hub::relay_to): only PubNub long polls take it.
  enum class Kind : std::uint8_t { publication, presence, signal, relayed };
  const Channel* channel = nullptr;
  FramePtr frame;              // publication, presence: the WebSocket push
  PublicationPtr pub;          // publication: for its audience (empty: everyone); signal, relayed: it
  std::uint64_t offset = 0;    // publication: its offset; relayed: its place among the channel's relays; else 0
  Kind kind = Kind::publication;
  std::uint64_t origin = 0;    // presence: the session whose join/leave this is (not told of itself)
  // relayed: the name of the channel it was published on (a transient, offset 0, is a signal there)
  std::shared_ptr<const std::string> source{};
};

// Receives deliveries for one I/O thread. Called with the channel's lock held, from any thread:
// it must only queue and wake its thread, never block or call back into the hub.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  virtual void deliver(Delivery d) = 0;
};

}  // namespace rtsync::core
