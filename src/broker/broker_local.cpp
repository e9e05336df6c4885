// The single-node broker: this process's hub is every hub there is.
#include "broker/broker.hpp"

namespace rtsync::broker {

namespace {
class LocalBroker final : public Broker {
 public:
  explicit LocalBroker(core::Hub& hub) : hub_(hub) {}
  void publish(const std::string& channel, core::PublicationPtr pub) override {
    hub_.deliver_committed(channel, std::move(pub));
  }

 private:
  core::Hub& hub_;
};
}  // namespace

std::unique_ptr<Broker> make_local(core::Hub& hub) { return std::make_unique<LocalBroker>(hub); }

}  // namespace rtsync::broker
