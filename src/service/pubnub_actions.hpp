// PubNub message actions (docs/pubnub.md, section 7.4): reactions, receipts and the like that clients
// attach to a message of a durable channel by its timetoken. The store keeps them (store::MessageAction)
// and gives each its own timetoken; every add and remove is then told on the channel as a PubNub
// `message_action` event: a transient publication (like a signal: PubNub long polls only, the last ones
// kept for those that catch up, sent to every node of a cluster) whose pn_event is 3.
//
// The JSON of actions and of their events, in PubNub's shapes, is here too, as pure functions.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

// PubNub's limits: an action type of at most 15 characters (the SDK refuses longer ones); rtsync's own
// on the value, which PubNub does not document.
inline constexpr std::size_t kMaxActionType = 15;
inline constexpr std::size_t kMaxActionValue = 1024;

// One action as the actions API answers it: {"type","value","uuid","actionTimetoken","messageTimetoken"},
// timetokens as strings.
void append_action(std::string& out, const store::MessageAction& a);
// Its event's data: {"source":"actions","version":"1.0","event":"added"|"removed","data":{"type","value",
// "messageTimetoken","actionTimetoken"}} (the SDK adds the uuid from the envelope's publisher).
std::string action_event(std::string_view event, const store::MessageAction& a);
// The `actions` of one message in history with actions: {TYPE:{VALUE:[{"uuid","actionTimetoken"}]}},
// of those of `actions` that belong to it (any order), each list ascending by action timetoken.
void append_message_actions(std::string& out, const std::vector<store::MessageAction>& actions,
                            std::uint64_t message_tt);

class MessageActions {
 public:
  MessageActions(store::Store& store, Channels& channels);

  // Adds (or, with w.remove, removes) an action on a durable channel `ch` that the caller may publish on
  // (checked by the caller); `done` runs through `post` after the commit. A change is then told on the
  // channel (its event, published by `from`, once the channel is in memory).
  void write(const core::ChannelRef& ch, store::ActionWrite w, const std::string& from, const Post& post,
             std::function<void(store::ActionWriteResult)> done);
  void read(store::ActionQuery q, const Post& post, std::function<void(store::ActionsResult)> done);

 private:
  store::Store& store_;
  Channels& channels_;
};

}  // namespace rtsync::service
