// What every Broker does the same way. See broker.hpp.
#include "broker/broker.hpp"

#include "core/hub.hpp"

namespace rtsync::broker {

void Broker::observe(core::Hub& hub) {
  hub.presence().set_member_observer(
      [this](const std::string& ch, const core::Member& m, bool joined, std::string_view action) {
        member(ch, m, joined, action);
      });
  hub.set_transient_observer([this](const std::string& ch, const core::PublicationPtr& sig) { signal(ch, sig); });
}

}  // namespace rtsync::broker
