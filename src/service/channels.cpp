// Channel operations shared by WebSocket, REST and PubNub front ends. See channels.hpp.
#include "service/channels.hpp"

#include "core/hub.hpp"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include "common/clock.hpp"
#include "core/channel_name.hpp"
#include "service/backend_hooks.hpp"
#include "service/pubnub_wildcard.hpp"

namespace rtsync::service {

using protocol::Code;
using protocol::Error;

namespace {
// Presence events are for long polls catching up between two requests, not a record.
constexpr std::size_t kPresenceFeedHistory = 100;
}  // namespace

Channels::Channels(const config::Config& cfg, core::Hub& hub, PubnubViews& views, store::Store& store,
                   broker::Broker& broker, const BackendHooks* hooks)
    : cfg_(cfg), hub_(hub), views_(views), store_(store), broker_(broker), hooks_(hooks) {
  // Change feeds and tallies are durable streams that only the server writes; nobody is "present" there.
  server_owned_ = cfg.channels;
  server_owned_.durable = true;
  server_owned_.client_publish = false;
  server_owned_.presence = false;
  server_owned_.anonymous = true;
}

const core::NamespaceOptions* Channels::namespace_options(std::string_view ns, std::string_view rest) const {
  if (ns.empty()) return &cfg_.channels;
  if (ns == "coll" || ns == "tally") {
    // tally:NAME:GROUP is one group's tally (a collection name has no ':').
    const auto colon = ns == "tally" ? rest.find(':') : std::string_view::npos;
    auto it = cfg_.collections.find(std::string(rest.substr(0, colon)));
    if (it == cfg_.collections.end()) return nullptr;
    if (ns == "tally" && it->second.tally.empty()) return nullptr;
    if (colon != std::string_view::npos &&
        (it->second.tally_group.empty() || !store::valid_tally_group(rest.substr(colon + 1)))) {
      return nullptr;
    }
    return &server_owned_;
  }
  auto it = cfg_.namespaces.find(std::string(ns));
  return it == cfg_.namespaces.end() ? nullptr : &it->second;
}

std::variant<core::ChannelRef, Error> Channels::resolve(std::string_view name) {
  if (!core::valid_channel_name(name))
    return Error{Code::bad_request, "channel names are 1-128 characters of A-Za-z0-9_.:@-"};
  if (name.size() > core::presence_feed_suffix.size() && name.ends_with(core::presence_feed_suffix)) {
    auto base = resolve(name.substr(0, name.size() - core::presence_feed_suffix.size()));
    if (auto* e = std::get_if<Error>(&base)) return *e;
    // Whoever may read the channel may read who comes and goes; the hub alone writes the feed.
    core::NamespaceOptions feed = std::get<core::ChannelRef>(base)->options();
    feed.durable = false;
    feed.history_size = kPresenceFeedHistory;
    feed.client_publish = false;
    feed.presence = false;
    return hub_.channel(name, feed);
  }
  auto ns = core::namespace_of(name);
  auto rest = ns.empty() ? name : name.substr(ns.size() + 1);
  const auto* opts = namespace_options(ns, rest);
  if (!opts) {
    if (ns == "coll" || ns == "tally") return Error{Code::not_found, fmt::format("no collection \"{}\"", rest)};
    return Error{Code::not_found, fmt::format("namespace \"{}\" is not declared", ns)};
  }
  return hub_.channel(name, *opts);
}

std::variant<core::ChannelRef, Error> Channels::resolve_wildcard(std::string_view pattern) {
  if (!valid_wildcard(pattern))
    return Error{Code::bad_request, "a wildcard is NAME.* or NAME.NAME.* (a channel name before the .*)"};
  auto ns = core::namespace_of(pattern);
  const auto* opts = namespace_options(ns, ns.empty() ? pattern : pattern.substr(ns.size() + 1));
  if (!opts) return Error{Code::not_found, fmt::format("namespace \"{}\" is not declared", ns)};
  core::NamespaceOptions relay = *opts;
  relay.durable = false;
  relay.history_size = 0;
  relay.client_publish = false;
  relay.presence = false;
  views_.wildcards_on();
  return hub_.channel(pattern, relay);
}

namespace {
// A collection's feeds (coll:NAME, tally:NAME) are part of reading it: a token whose caps.read names the
// collection may follow them without also listing the channels in caps.sub.
bool reads_feed_of(const protocol::jwt::Caps& caps, std::string_view channel) {
  auto ns = core::namespace_of(channel);
  if (ns != "coll" && ns != "tally") return false;
  const std::string_view rest = channel.substr(ns.size() + 1);
  return protocol::jwt::match_any(caps.read, rest.substr(0, rest.find(':')));
}
}  // namespace

bool Channels::readable(std::string_view name, const Caller& caller) const {
  if (!core::valid_channel_name(name) || name.ends_with(core::presence_feed_suffix)) return false;
  const auto ns = core::namespace_of(name);
  const auto* opts = namespace_options(ns, ns.empty() ? name : name.substr(ns.size() + 1));
  return opts && !check_read(*opts, name, caller) && !awaits_subscribe_hook(name, caller);
}

std::optional<Error> Channels::check_subscribe(const core::Channel& ch, const Caller& caller) const {
  if (auto e = check_read(ch.options(), ch.name(), caller)) return e;
  if (awaits_subscribe_hook(ch.name(), caller))
    return Error{Code::permission_denied,
                 fmt::format("the app's backend decides who reads \"{}\" (its subscribe hook): subscribe over the "
                             "WebSocket protocol", ch.name())};
  return std::nullopt;
}

std::optional<Error> Channels::check_subscribe_rules(const core::Channel& ch, const Caller& caller) const {
  return check_read(ch.options(), ch.name(), caller);
}

bool Channels::awaits_subscribe_hook(std::string_view name, const Caller& caller) const {
  return hooks_ && !caller.server && hooks_->decides_subscribe(name) &&
         !(caller.hook_approved && caller.hook_approved->contains(std::string(name)));
}

std::optional<Error> Channels::check_read(const core::NamespaceOptions& opts, std::string_view name,
                                          const Caller& caller) const {
  if (!opts.anonymous && caller.anonymous)
    return Error{Code::permission_denied, "this namespace requires a token"};
  if (caller.grant) {
    if (caller.grant->allows(protocol::pam::Resource::channel, name, protocol::pam::kRead)) return std::nullopt;
    return Error{Code::permission_denied, fmt::format("your token does not grant reading \"{}\"", name)};
  }
  if (caller.caps && !protocol::jwt::match_any(caller.caps->sub, name) && !reads_feed_of(*caller.caps, name))
    return Error{Code::permission_denied, fmt::format("your token does not allow subscribing to \"{}\"", name)};
  return std::nullopt;
}

std::optional<Error> Channels::check_publish(const core::Channel& ch, const Caller& caller) const {
  if (!ch.options().client_publish)
    return Error{Code::permission_denied, fmt::format("clients may not publish on \"{}\"", ch.name())};
  if (!ch.options().anonymous && caller.anonymous)
    return Error{Code::permission_denied, "this namespace requires a token"};
  if (caller.grant) {
    if (caller.grant->allows(protocol::pam::Resource::channel, ch.name(), protocol::pam::kWrite)) return std::nullopt;
    return Error{Code::permission_denied, fmt::format("your token does not grant writing on \"{}\"", ch.name())};
  }
  if (caller.caps && !protocol::jwt::match_any(caller.caps->pub, ch.name()))
    return Error{Code::permission_denied, fmt::format("your token does not allow publishing on \"{}\"", ch.name())};
  return std::nullopt;
}

std::optional<Error> Channels::check_server_publish(const core::Channel& ch) const {
  const std::string_view ns = core::namespace_of(ch.name());
  if (ns == "coll" || ns == "tally" || ch.name().ends_with(core::presence_feed_suffix))
    return Error{Code::permission_denied,
                 fmt::format("\"{}\" is written by the server alone (collection changes, tallies, presence feeds)",
                             ch.name())};
  return std::nullopt;
}

bool Channels::when_ready(core::Channel& ch, const Post& post, std::function<void(bool)> fn, std::uint64_t at_least) {
  auto deferred = [post, fn](bool ok) { post([fn, ok] { fn(ok); }); };
  if (!hub_.ready_or_wait(ch, deferred, at_least)) return false;
  fn(true);
  return true;
}

Error outbox_expired() {
  return Error{Code::expired, "this outbox client wrote nothing for 90 days: the server forgot which of its writes it "
                              "applied, and refuses them (none is applied twice)"};
}

std::optional<Error> Channels::check_size(std::string_view data, std::string_view meta) const {
  const std::size_t size = data.size() + meta.size();
  if (size <= cfg_.limits.max_publication) return std::nullopt;
  return Error{Code::too_large, fmt::format("the publication is {} bytes; limits.max_publication is {}", size,
                                            cfg_.limits.max_publication)};
}

bool Channels::decided_by_backend(const core::Channel& ch, const Caller& caller) const {
  return hooks_ && !caller.server && hooks_->decides_publish(ch.name());
}

void Channels::publish(core::Channel& ch, const Caller& caller, std::string data, std::string key,
                       const Post& post, std::function<void(PublishResult)> done, PublishExtras extras) {
  if (!decided_by_backend(ch, caller))
    return publish_now(ch, caller, std::move(data), std::move(key), post, std::move(done), std::move(extras));
  if (auto e = check_size(data, extras.meta)) return done(PublishResult{std::move(e)});
  // The backend answers on the hook client's thread; the publication goes on from there (the channel found
  // again by name: the caller's reference is not kept) and its result is posted back.
  const std::string asked = data;  // the request is built from it, the lambda below takes `data`
  hooks_->publish(caller, ch.name(), asked,
                  [this, name = ch.name(), caller, data = std::move(data), key = std::move(key), post,
                   done = std::move(done), extras = std::move(extras)](HookVerdict v) mutable {
                    auto posted = [post, done](PublishResult r) { post([done, r = std::move(r)] { done(r); }); };
                    if (v.error) return posted(PublishResult{std::move(v.error)});
                    if (v.data) data = boost::json::serialize(*v.data);
                    auto found = resolve(name);
                    if (auto* e = std::get_if<Error>(&found)) return posted(PublishResult{std::move(*e)});
                    publish_now(*std::get<core::ChannelRef>(found), caller, std::move(data), std::move(key), post,
                                std::move(posted), std::move(extras));
                  });
}

void Channels::publish_now(core::Channel& ch, const Caller& caller, std::string data, std::string key,
                           const Post& post, std::function<void(PublishResult)> done, PublishExtras extras) {
  if (auto e = check_size(data, extras.meta)) return done(PublishResult{std::move(e)});
  const auto ts = common::now_ms();
  if (!ch.options().durable) {
    auto in_memory = [&] {
      core::Publication p;
      p.data = std::move(data);
      p.from = caller.user;
      p.ts = ts;
      p.uuid = std::move(extras.uuid);
      p.meta = std::move(extras.meta);
      p.ctype = std::move(extras.ctype);
      p.expires = extras.expires;
      p.pn_event = extras.pn_event;
      return hub_.publish(ch, std::move(p));
    };
    // In memory an outbox write is a key like any other (kept 24 h): a user's own key could only collide
    // with the user's own outbox, which no client does.
    if (extras.outbox) key = "\x1foutbox/" + extras.outbox->client + '/' + std::to_string(extras.outbox->seq);
    auto epoch = [&] {
      auto at = hub_.position(ch);
      return at ? std::move(at->epoch) : std::string();
    };
    if (key.empty()) {
      auto pub = in_memory();
      done(PublishResult{std::nullopt, pub->offset, pub->tt, epoch()});
      return;
    }
    std::uint64_t offset;
    std::uint64_t tt = 0;  // a replay's timetoken is not remembered in memory
    {
      std::lock_guard lock(memory_keys_.mutex());
      auto now = core::IdempotencyCache::Clock::now();
      if (auto first = memory_keys_.find(caller.user, key, now)) {
        offset = *first;
      } else {
        auto pub = in_memory();
        offset = pub->offset;
        tt = pub->tt;
        memory_keys_.remember(caller.user, key, offset, now);
      }
    }
    done(PublishResult{std::nullopt, offset, tt, epoch()});
    return;
  }

  store::AppendRequest req{ch.name(), std::move(data), caller.user, ts, ch.options().history_size, std::move(key),
                           std::move(extras.uuid), std::move(extras.meta), std::move(extras.ctype),
                           extras.expires, extras.pn_event, std::move(extras.outbox)};
  store_.append(std::move(req), [this, name = ch.name(), post, done = std::move(done)](store::AppendResult r) {
    PublishResult out;
    if (r.expired) {
      out.error = outbox_expired();
    } else if (!r.ok) {
      out.error = Error{Code::unavailable, "the store could not commit the publication"};
    } else {
      out.offset = r.pub->offset;
      out.tt = r.pub->tt;
      out.epoch = std::move(r.epoch);
      // Deliver before acknowledging: a publisher that is also subscribed sees its message in order.
      if (!r.replayed) broker_.publish(name, r.pub);
    }
    post([done, out = std::move(out)] { done(out); });
  });
}

bool Channels::history(const core::ChannelRef& ch, const core::HistoryQuery& q, const Caller& caller,
                       const Post& post, std::function<void(HistoryOutcome)> done) {
  return when_ready(*ch, post, [this, ch, q, user = caller.user, done = std::move(done)](bool ok) {
    if (!ok) return done(Error{Code::unavailable, "the store is unavailable"});
    done(hub_.history(*ch, q, user));
  });
}

core::SubscribeResult Channels::subscribe(core::Channel& ch, std::size_t sink,
                                         const std::optional<core::StreamPosition>& since, const Caller& caller,
                                         const core::Member* member, bool listen_presence) {
  return hub_.subscribe(ch, sink, since, caller.user, member, listen_presence);
}

void Channels::unsubscribe(core::Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                           bool listened_presence) {
  hub_.unsubscribe(ch, sink, session_no, was_member, listened_presence);
}

PollResult Channels::poll(core::Channel& ch, std::size_t sink, const Resume& from, std::size_t limit,
                          const Caller& caller) {
  return views_.poll(ch, sink, from, limit, caller.user);
}

std::uint64_t Channels::last_timetoken(core::Channel& ch) { return views_.last_timetoken(ch); }

core::PublicationPtr Channels::signal(core::Channel& ch, core::Publication draft) {
  return views_.signal(ch, std::move(draft));
}

std::vector<core::PublicationPtr> Channels::history_tt(core::Channel& ch, const TimetokenQuery& q,
                                                       const Caller& caller) {
  return views_.history(ch, q, caller.user);
}

std::size_t Channels::count_after(core::Channel& ch, std::uint64_t after, const Caller& caller) {
  return views_.count_after(ch, after, caller.user);
}

std::variant<core::PresenceResult, Error> Channels::presence(core::Channel& ch, const Caller& caller) {
  if (auto e = check_subscribe(ch, caller)) return *e;
  if (!ch.options().presence) return Error{Code::permission_denied, "presence is disabled for this channel"};
  return hub_.presence().of(ch);
}

core::PresenceResult Channels::members(core::Channel& ch) { return hub_.presence().of(ch); }

std::vector<std::pair<std::string, core::PresenceResult>> Channels::presence_all(const Caller& caller) {
  auto all = hub_.presence().all();
  std::erase_if(all, [&](const auto& entry) {
    auto ch = hub_.find(entry.first);
    return !ch || check_subscribe(*ch, caller);
  });
  return all;
}

std::vector<std::string> Channels::channels_of_user(std::string_view user, const Caller& caller) {
  auto names = hub_.presence().channels_of_user(user);
  std::erase_if(names, [&](const std::string& name) {
    auto ch = hub_.find(name);
    return !ch || check_subscribe(*ch, caller);
  });
  return names;
}

void Channels::list(std::string prefix, std::string after, std::size_t limit, const Post& post,
                    std::function<void(std::optional<ChannelPage>)> done) {
  // One more than a page from each source: the merge's first limit + 1 are then right, and tell `more`.
  store_.channels(store::ChannelsQuery{prefix, after, limit + 1}, [this, prefix, after, limit, post,
                                                                    done = std::move(done)](store::ChannelsResult r) {
    post([this, r = std::move(r), prefix, after, limit, done] {
      if (!r.ok) return done(std::nullopt);
      std::vector<ChannelEntry> all;
      for (const auto& c : r.channels) all.push_back(ChannelEntry{c.name, c.offset, c.epoch, true});
      std::size_t memory = 0;
      for (const auto& ch : hub_.channels()) {  // sorted by name
        const std::string& name = ch->name();
        if (ch->options().durable || !name.starts_with(prefix) || name <= after) continue;
        auto at = hub_.position(*ch);
        if (!at) continue;
        all.push_back(ChannelEntry{name, at->offset, std::move(at->epoch), false});
        if (++memory > limit) break;
      }
      std::sort(all.begin(), all.end(), [](const ChannelEntry& a, const ChannelEntry& b) { return a.name < b.name; });
      ChannelPage page;
      page.more = all.size() > limit;
      if (page.more) all.resize(limit);
      page.channels = std::move(all);
      done(std::move(page));
    });
  });
}

}  // namespace rtsync::service
