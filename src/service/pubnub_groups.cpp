// PubNub channel groups over the store, and the long polls they wake. See pubnub_groups.hpp.
#include "service/pubnub_groups.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "core/channel_name.hpp"
#include "core/presence.hpp"

namespace rtsync::service {

bool valid_group_name(std::string_view name) {
  return core::valid_channel_name(name) && !name.ends_with(core::presence_feed_suffix);
}

ChannelGroups::ChannelGroups(store::Store& store, std::size_t max_channels)
    : store_(store), max_channels_(max_channels) {}

void ChannelGroups::write(store::GroupWrite w, const Post& post, std::function<void(store::GroupWriteResult)> done) {
  w.max_channels = max_channels_;
  std::string group = w.group;
  store_.write_group(std::move(w), [this, group = std::move(group), post, done = std::move(done)](store::GroupWriteResult r) {
    if (r.ok) {
      std::vector<std::function<void()>> wake;
      {
        std::lock_guard lock(mu_);
        for (const auto& [id, watcher] : watchers_)
          if (std::find(watcher.groups.begin(), watcher.groups.end(), group) != watcher.groups.end())
            wake.push_back(watcher.wake);
      }
      for (const auto& fn : wake) fn();
    }
    post([done, r = std::move(r)] { done(r); });
  });
}

void ChannelGroups::read(std::vector<std::string> groups, const Post& post,
                         std::function<void(store::GroupsResult)> done) {
  store_.read_groups(std::move(groups), [post, done = std::move(done)](store::GroupsResult r) {
    post([done, r = std::move(r)] { done(r); });
  });
}

std::uint64_t ChannelGroups::watch(std::vector<std::string> groups, std::function<void()> wake) {
  std::lock_guard lock(mu_);
  const auto id = next_++;
  watchers_.emplace(id, Watcher{std::move(groups), std::move(wake)});
  return id;
}

void ChannelGroups::unwatch(std::uint64_t id) {
  std::lock_guard lock(mu_);
  watchers_.erase(id);
}

}  // namespace rtsync::service
