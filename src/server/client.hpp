// One client of the protocol of PROTOCOL §4, whatever transport it arrives on (server/transport.hpp):
// its identity, its subscriptions, the commands it has held back, its unacknowledged writes and its rate
// limit. Commands are decoded (protocol/requests.hpp), run through the service layer and answered
// (protocol/replies.hpp) by the op table in server/commands.cpp; a Client writes only through its
// Transport. Centrifuge's Client + Transport is the model.
//
// Order: commands take effect in the order they were sent. A `sub` or `history` that must wait for the
// store to load its channel holds back the commands after it (blocked(): the transport stops feeding
// input) until it completes, so "sub, then pub" always delivers the pub to the new subscription.
// Publications are ordered by the store queue and do not hold anything back, but a `history` waits for
// this client's unacknowledged publications and writes, so a client reads its own writes. Collection
// reads go through the same store queue as writes, so they see this client's earlier writes anyway.
// A command the app's backend decides (a proxy hook, docs/hooks.md) holds back the commands after it
// until it completes, so that a slow answer cannot let a later command overtake it.
//
// Threading: a client lives on its worker's thread; completions come back through Transport::post, and
// each holds the transport (Transport::hold), which owns the client.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/token_bucket.hpp"
#include "protocol/messages.hpp"
#include "protocol/requests.hpp"
#include "server/context.hpp"
#include "server/identity.hpp"
#include "server/subscriber.hpp"
#include "server/transport.hpp"
#include "service/live_view.hpp"

namespace rtsync::server {

class Worker;

class Client final : public Subscriber {
 public:
  Client(Context& ctx, Worker& worker, Transport& transport, Principal who);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& id() const { return id_; }
  const std::string& user() const { return who_.user; }

  // Sends hello (PROTOCOL §4.1).
  void start();
  // One message of the client's protocol: its lines are run or, while blocked(), held back in order.
  void on_message(std::string_view text);
  // Commands are held back: the transport should stop reading until Transport::resumed().
  bool blocked() const { return blocked_; }
  // Closes the connection once the token has expired.
  void check_expiry(std::chrono::system_clock::time_point wall);
  // The transport is closing: nothing held back runs any more.
  void stop();
  // The connection is gone: leaves every channel. Completions still outstanding find it ended.
  void end();

  // Subscriber: the worker filtered it; push its shared frame.
  void on_delivery(const core::Delivery& d) override { transport_.send_frame(d.frame); }

 private:
  struct Subscription {
    core::ChannelRef channel;  // keeps it in memory while subscribed
    bool member;    // counted in presence
    bool presence;  // receives join/leave
    bool pending;   // waiting for the store to load the channel
    std::unique_ptr<service::LiveView> view{};  // a live filtered view (its address is the worker's)
  };

  void dispatch(protocol::ParsedLine& line);
  void resume();  // a held-back command completed
  bool take_token();  // rate limit: false when the bucket is empty
  void write_done();
  service::Post poster();

  // The op table and handlers (server/commands.cpp).
  void handle(protocol::Command& cmd);
  void op_ping(protocol::Command& cmd);
  void op_sub(protocol::Command& cmd);
  void op_unsub(protocol::Command& cmd);
  void op_pub(protocol::Command& cmd);
  void op_history(protocol::Command& cmd);
  void op_presence(protocol::Command& cmd);
  void op_create(protocol::Command& cmd);
  void op_update(protocol::Command& cmd);
  void op_patch(protocol::Command& cmd);
  void op_delete(protocol::Command& cmd);
  void op_write(protocol::Command& cmd, protocol::WriteOp op);
  void op_list(protocol::Command& cmd);
  void op_get(protocol::Command& cmd);
  void op_tally(protocol::Command& cmd);
  void op_auth(protocol::Command& cmd);
  void op_hello(protocol::Command& cmd);
  void op_rpc(protocol::Command& cmd);
  // When the subscribe hook decides `ch` and has not allowed it on this connection yet: asks it, holds
  // later commands back, and runs `cmd` again once it allowed (or answers its refusal); true then.
  bool awaiting_approval(protocol::Command& cmd, const core::Channel& ch);
  // Holds later commands back until a command the app's backend decides completes: a hook answers in
  // its own time, and the next command must not overtake it.
  void hold_for_backend() { blocked_ = true; }
  void backend_done() {
    if (!ended_) resume();
  }
  // The outbox write a command with `seq` is (none without); false after answering why it may not be.
  bool outbox_of(const protocol::Command& cmd, const std::optional<std::uint64_t>& seq,
                 std::optional<store::Outbox>& out);
  // True when `d` holds the request; otherwise answers its error.
  template <class Request>
  bool decoded(const protocol::Command& cmd, protocol::Decoded<Request>& d);
  // The channel named `name` (answering the error when there is none).
  core::ChannelRef resolve(const protocol::Command& cmd, const std::string& name);
  void reply(std::string_view json) { transport_.send_text(json); }
  void reply_error(const boost::json::value& id, const protocol::Error& e);

  Context& ctx_;
  Worker& worker_;
  Transport& transport_;
  WorkerMetrics& metrics_;  // this worker's counters
  Principal who_;           // replaced by the `auth` op
  const std::uint64_t no_;  // process-unique; presence and logs
  const std::string id_;    // session id clients see
  service::Caller caller_;

  bool blocked_ = false;            // a command waits for the store; later ones are held back
  bool blocked_on_writes_ = false;  // ... namely a history waiting for pending_writes_ to reach 0
  bool stopped_ = false;            // the transport is closing
  bool ended_ = false;              // the connection is gone
  std::size_t pending_writes_ = 0;  // durable pubs and collection writes not yet acknowledged
  std::optional<protocol::HelloRequest> outbox_;  // the outbox client that `hello` named
  std::list<protocol::ParsedLine> held_;  // a list, unlike a deque, costs nothing while empty

  std::unordered_map<std::string, Subscription> subs_;
  // Channels the subscribe hook allowed this connection to read (shared with caller_.hook_approved).
  std::shared_ptr<std::unordered_set<std::string>> approved_ = std::make_shared<std::unordered_set<std::string>>();

  common::TokenBucket bucket_;
  std::size_t strikes_ = 0;  // rate_limited replies in a row
};

}  // namespace rtsync::server
