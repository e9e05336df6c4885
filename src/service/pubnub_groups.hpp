// PubNub channel groups (docs/pubnub.md, section 7.2): a named set of channel names that a subscribe,
// heartbeat, leave or here_now may name instead of its channels (`channel-group=`). Groups are kept by
// the store (store::GroupWrite), so they survive restarts and every node of a cluster shares them; each
// request reads the groups it names from the store (through its queue: an I/O thread never waits), so a
// request sees every change made before it, on any node.
//
// A pending long poll already has its channels. A change made on this node wakes the long polls on the
// group that wait here (watch()), which answer and poll again with the new channels at once; a long poll
// on another node sees the change at its next poll (within [pubnub] subscribe_timeout).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

// A group's name: a channel name (1-128 of A-Za-z0-9_.:@-) that is not a presence feed's (NAME-pnpres
// names the presence of the group's channels).
bool valid_group_name(std::string_view name);

class ChannelGroups {
 public:
  // `max_channels`: the most channels a group may have (limits.max_subscriptions, which a subscribe
  // through it must stay within too).
  ChannelGroups(store::Store& store, std::size_t max_channels);

  std::size_t max_channels() const { return max_channels_; }

  // A change (its max_channels is set here); `done` runs through `post`, after the commit. Wakes this
  // node's long polls watching the group.
  void write(store::GroupWrite w, const Post& post, std::function<void(store::GroupWriteResult)> done);
  // The channels of `groups` (none: every group's name), through `post`.
  void read(std::vector<std::string> groups, const Post& post, std::function<void(store::GroupsResult)> done);

  // A long poll through `groups` waits: `wake` runs (on the store's thread; it must only post) when one of
  // them changes on this node. Returns the id that unwatch() takes.
  std::uint64_t watch(std::vector<std::string> groups, std::function<void()> wake);
  void unwatch(std::uint64_t id);

 private:
  struct Watcher {
    std::vector<std::string> groups;
    std::function<void()> wake;
  };

  store::Store& store_;
  const std::size_t max_channels_;
  std::mutex mu_;  // guards watchers_ and next_
  std::map<std::uint64_t, Watcher> watchers_;
  std::uint64_t next_ = 1;
};

}  // namespace rtsync::service
