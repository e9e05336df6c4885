// The Broker seam: how a committed publication reaches every node's hub. The local broker (the default)
// hands it straight to this process's hub; a Redis broker for several nodes comes with the scale-out work.
#pragma once

#include <memory>
#include <string>

#include "core/hub.hpp"
#include "core/publication.hpp"

namespace rtsync::broker {

class Broker {
 public:
  virtual ~Broker() = default;
  // Delivers a publication the store committed to the hubs of every node, this one included. Called from
  // the store's thread in commit order; per channel, each hub receives publications in offset order (a
  // hub that sees a gap drops its in-memory history after the gap, so recovery never spans a hole).
  virtual void publish(const std::string& channel, core::PublicationPtr pub) = 0;
};

std::unique_ptr<Broker> make_local(core::Hub& hub);

}  // namespace rtsync::broker
