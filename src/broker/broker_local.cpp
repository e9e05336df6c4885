// The single-node broker: this process's hub is every hub there is, so each part of the contract is
// handed to it, or is already done by it.
#include "broker/broker.hpp"

#include "core/hub.hpp"

namespace rtsync::broker {

namespace {
class LocalBroker final : public Broker {
 public:
  explicit LocalBroker(core::Hub& hub) : hub_(hub) {}
  void publish(const std::string& channel, core::PublicationPtr pub) override {
    hub_.deliver_committed(channel, std::move(pub));
  }
  void member(const std::string&, const core::Member&, bool, std::string_view) override {}
  void signal(const std::string&, const core::PublicationPtr&) override {}
  std::size_t resync() override { return hub_.resync_all(); }
  void erase(const std::string& channel, std::uint64_t after, std::uint64_t until) override {
    hub_.erase(channel, after, until);
  }
  void start() override { observe(hub_); }
  void stop() override {}

 private:
  core::Hub& hub_;
};
}  // namespace

std::unique_ptr<Broker> make_local(core::Hub& hub) { return std::make_unique<LocalBroker>(hub); }

}  // namespace rtsync::broker
