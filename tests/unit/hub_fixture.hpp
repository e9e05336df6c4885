// What the hub's unit tests share (hub_test.cpp, hub_load_test.cpp, presence_test.cpp,
// pubnub_views_test.cpp): recording sinks, an encoder whose frames tell what was encoded, a loader the
// test completes, and the hub calls as the tests use them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/hub.hpp"

namespace rtsync::core::testing {

// Records every delivery in call order. The hub calls it with the channel lock held; the own mutex is
// only for test threads that read while others publish.
class RecordingSink : public DeliverySink {
 public:
  void deliver(Delivery d) override {
    std::lock_guard lock(mu_);
    deliveries_.push_back(std::move(d));
  }
  std::vector<Delivery> all() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return deliveries_.size();
  }
  std::vector<Delivery> publications() const {
    std::vector<Delivery> out;
    for (auto& d : all())
      if (d.kind == Delivery::Kind::publication) out.push_back(d);
    return out;
  }
  std::vector<Delivery> presences() const {
    std::vector<Delivery> out;
    for (auto& d : all())
      if (d.kind == Delivery::Kind::presence) out.push_back(d);
    return out;
  }
  void clear() {
    std::lock_guard lock(mu_);
    deliveries_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Delivery> deliveries_;
};

// Frames whose bytes tell what was encoded: "msg|ch|offset|data" and "op|ch|session|user".
inline FrameEncoder test_encoder() {
  FrameEncoder e;
  e.publication = [](const std::string& ch, const Publication& p) {
    auto f = std::make_shared<Frame>();
    f->bytes = "msg|" + ch + "|" + std::to_string(p.offset) + "|" + p.data;
    return FramePtr(f);
  };
  e.presence = [](const std::string& ch, std::string_view op, const Member& m) {
    auto f = std::make_shared<Frame>();
    f->bytes = std::string(op) + "|" + ch + "|" + m.session + "|" + m.user;
    return FramePtr(f);
  };
  return e;
}

// A loader whose calls are kept; the test decides when and with what each completes.
struct FakeLoader {
  struct Call {
    std::string name;
    std::size_t history_size = 0;
    std::size_t history_bytes = 0;
    std::function<void(ChannelSnapshot)> done;
  };
  std::mutex mu;
  std::vector<Call> calls;

  Loader loader() {
    return [this](const std::string& name, std::size_t history_size, std::size_t history_bytes,
                  std::function<void(ChannelSnapshot)> done) {
      std::lock_guard lock(mu);
      calls.push_back(Call{name, history_size, history_bytes, std::move(done)});
    };
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return calls.size();
  }
};

// The hub calls as these tests use them, for a subscriber/reader whose user is `user`.
inline SubscribeResult sub(Hub& hub, Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                    const Member* member, bool listen_presence, std::string_view user = "reader") {
  return hub.subscribe(ch, sink, since, user, member, listen_presence);
}
inline HistoryResult hist(Hub& hub, Channel& ch, const HistoryQuery& q, std::string_view user = "reader") {
  return hub.history(ch, q, user);
}

inline PublicationPtr make_pub(std::uint64_t offset, std::string data = "", std::string from = "u") {
  if (data.empty()) data = "\"p" + std::to_string(offset) + "\"";
  return std::make_shared<const Publication>(Publication{offset, std::move(data), std::move(from), 1000 + static_cast<std::int64_t>(offset)});
}

inline NamespaceOptions memory_opts(std::size_t history_size = 1000) {
  NamespaceOptions o;
  o.durable = false;
  o.history_size = history_size;
  return o;
}

inline NamespaceOptions durable_opts(std::size_t history_size = 1000) {
  NamespaceOptions o;
  o.durable = true;
  o.history_size = history_size;
  return o;
}

inline std::vector<std::uint64_t> offsets_of(const std::vector<PublicationPtr>& pubs) {
  std::vector<std::uint64_t> out;
  for (auto& p : pubs) out.push_back(p->offset);
  return out;
}

inline std::vector<std::uint64_t> offsets_of(const std::vector<Delivery>& ds) {
  std::vector<std::uint64_t> out;
  for (auto& d : ds) out.push_back(d.offset);
  return out;
}

inline std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {  // inclusive
  std::vector<std::uint64_t> out;
  for (auto i = from; i <= to; ++i) out.push_back(i);
  return out;
}

inline bool is_hex16(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A hub with `n` recording sinks attached and a fake loader (and `feed_event`, for presence feeds).
struct HubFixture {
  explicit HubFixture(std::size_t n = 2, FeedEventEncoder feed_event = {})
      : sinks(n), hub(n, test_encoder(), loader.loader(), std::move(feed_event)) {
    for (std::size_t i = 0; i < n; ++i) hub.attach(i, &sinks[i]);
  }
  FakeLoader loader;
  std::vector<RecordingSink> sinks;
  Hub hub;
};

inline void publish_n(Hub& hub, Channel& ch, int n) {
  for (int i = 0; i < n; ++i) hub.publish(ch, "\"x\"", "u", 1);
}

// Makes a durable channel ready with the given snapshot; returns the channel.
inline Channel& load_durable(HubFixture& f, const std::string& name, ChannelSnapshot snap, std::size_t history = 1000) {
  Channel& ch = *f.hub.channel(name, durable_opts(history));
  EXPECT_FALSE(f.hub.ready_or_wait(ch, [](bool) {}));
  std::function<void(ChannelSnapshot)> done;
  {
    std::lock_guard lock(f.loader.mu);
    done = f.loader.calls.back().done;
  }
  done(std::move(snap));
  EXPECT_TRUE(f.hub.ready_or_wait(ch, [](bool) { ADD_FAILURE() << "waiter of a ready channel ran"; }));
  return ch;
}

inline Member member(std::uint64_t no, std::string user, std::string info = "null") {
  return Member{no, "s" + std::to_string(no), std::move(user), std::move(info)};
}

inline PublicationPtr make_pub_for(std::uint64_t offset, std::string audience) {
  Publication p;
  p.offset = offset;
  p.data = "\"p" + std::to_string(offset) + "\"";
  p.from = "server";
  p.ts = 1;
  p.audience = std::move(audience);
  return std::make_shared<const Publication>(std::move(p));
}

inline std::vector<std::uint64_t> tts_of(const std::vector<PublicationPtr>& pubs) {
  std::vector<std::uint64_t> out;
  for (auto& p : pubs) out.push_back(p->tt);
  return out;
}

// Every unused channel is idle for a cutoff this far ahead.
inline std::chrono::steady_clock::time_point later() { return std::chrono::steady_clock::now() + std::chrono::hours(1); }

}  // namespace rtsync::core::testing
