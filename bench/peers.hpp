// Per-peer protocol adapters: how the generator subscribes, publishes and recognises deliveries on each
// server under test (see Common::proto in scenarios.hpp). Every publication's payload is the same JSON
// object, {"s":SEQ,"t":SEND_US,"p":"xxx…"}, whatever wraps it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ws_client.hpp"

namespace bench {

enum class Proto { rtsync, ws, uws, socketio, nchan, redis, pubnub };

enum class Event { none, ack, data };

struct SubState {
  std::string cursor;  // pubnub: the last t.t
  bool acked = false;
};

class Peer {
 public:
  Peer(const std::string& proto, std::string path_override, std::string pubnub_key);

  Proto proto() const { return proto_; }
  Framing sub_framing() const;
  Framing pub_framing() const;
  std::string sub_path(const std::string& ch) const;
  std::string pub_path(const std::string& ch) const;
  bool pub_per_channel() const { return proto_ == Proto::nchan; }
  bool supports_idle() const { return proto_ != Proto::pubnub; }

  // Subscriber: sends the subscription at open; true if it is in place at once (nchan: the URL is it).
  bool sub_open(Connection& c, const std::string& ch, SubState& s) const;
  // Subscriber: one line (or body); answers what the protocol needs answered (pings, polls).
  Event sub_line(Connection& c, const std::string& ch, SubState& s, std::string_view line) const;

  // Publisher: true once it may publish (socketio waits for its namespace).
  bool pub_open(Connection& c) const;
  bool pub_line(Connection& c, std::string_view line) const;  // true when it became ready
  void append_pub(std::string& out, const std::string& ch, std::string_view payload, std::uint64_t id) const;

  // Idle connection: true when open (or once the answer to its probe arrived, via idle_line).
  bool idle_open(Connection& c) const;
  bool idle_line(Connection& c, std::string_view line) const;

 private:
  std::string pubnub_get(const std::string& ch, const std::string& cursor) const;
  Proto proto_;
  std::string path_, key_;
};

// Calls f(seq, sent_us) for every payload object {"s":…,"t":…} in `text` (pubnub bodies hold several).
template <class F>
void for_each_payload(std::string_view text, F&& f) {
  std::size_t p = 0;
  while ((p = text.find("{\"s\":", p)) != std::string_view::npos) {
    p += 5;
    std::uint64_t seq = 0, t = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') seq = seq * 10 + static_cast<std::uint64_t>(text[p++] - '0');
    if (text.substr(p, 5) != ",\"t\":") continue;
    p += 5;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') t = t * 10 + static_cast<std::uint64_t>(text[p++] - '0');
    f(seq, t);
  }
}

}  // namespace bench
