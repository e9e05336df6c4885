// PubNub message actions over the store, their events, and their JSON. See pubnub_actions.hpp.
#include "service/pubnub_actions.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "common/clock.hpp"
#include "common/json_text.hpp"

namespace rtsync::service {

using common::append_json_string;

namespace {
void append_tt(std::string& out, std::uint64_t tt) {
  out += '"';
  common::append_int(out, tt);
  out += '"';
}
}  // namespace

void append_action(std::string& out, const store::MessageAction& a) {
  out += "{\"type\":";
  append_json_string(out, a.type);
  out += ",\"value\":";
  append_json_string(out, a.value);
  out += ",\"uuid\":";
  append_json_string(out, a.uuid);
  out += ",\"actionTimetoken\":";
  append_tt(out, a.action_tt);
  out += ",\"messageTimetoken\":";
  append_tt(out, a.message_tt);
  out += '}';
}

std::string action_event(std::string_view event, const store::MessageAction& a) {
  std::string out = R"({"source":"actions","version":"1.0","event":)";
  append_json_string(out, event);
  out += ",\"data\":{\"type\":";
  append_json_string(out, a.type);
  out += ",\"value\":";
  append_json_string(out, a.value);
  out += ",\"messageTimetoken\":";
  append_tt(out, a.message_tt);
  out += ",\"actionTimetoken\":";
  append_tt(out, a.action_tt);
  out += "}}";
  return out;
}

void append_message_actions(std::string& out, const std::vector<store::MessageAction>& actions,
                            std::uint64_t message_tt) {
  std::map<std::string_view, std::map<std::string_view, std::vector<const store::MessageAction*>>> grouped;
  for (const auto& a : actions)
    if (a.message_tt == message_tt) grouped[a.type][a.value].push_back(&a);
  out += '{';
  bool first_type = true;
  for (auto& [type, values] : grouped) {
    if (!first_type) out += ',';
    first_type = false;
    append_json_string(out, type);
    out += ":{";
    bool first_value = true;
    for (auto& [value, list] : values) {
      if (!first_value) out += ',';
      first_value = false;
      std::sort(list.begin(), list.end(), [](auto* x, auto* y) { return x->action_tt < y->action_tt; });
      append_json_string(out, value);
      out += ":[";
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out += ',';
        out += "{\"uuid\":";
        append_json_string(out, list[i]->uuid);
        out += ",\"actionTimetoken\":";
        append_tt(out, list[i]->action_tt);
        out += '}';
      }
      out += ']';
    }
    out += '}';
  }
  out += '}';
}

MessageActions::MessageActions(store::Store& store, Channels& channels) : store_(store), channels_(channels) {}

void MessageActions::write(const core::ChannelRef& ch, store::ActionWrite w, const std::string& from,
                           const Post& post, std::function<void(store::ActionWriteResult)> done) {
  const bool remove = w.remove;
  store_.write_action(std::move(w), [this, ch, remove, from, post, done = std::move(done)](store::ActionWriteResult r) {
    post([this, ch, remove, from, post, done, r = std::move(r)] {
      if (r.ok && !r.not_found) {
        core::Publication event;
        event.data = action_event(remove ? "removed" : "added", r.action);
        event.from = from;
        event.uuid = r.action.uuid;
        event.ts = common::now_ms();
        event.pn_event = core::pn_action_event;
        // The event's timetoken is the channel's next: the channel must be in memory to know it.
        channels_.when_ready(*ch, post, [this, ch, event = std::move(event)](bool ok) mutable {
          if (ok) channels_.signal(*ch, std::move(event));
        });
      }
      done(r);
    });
  });
}

void MessageActions::read(store::ActionQuery q, const Post& post, std::function<void(store::ActionsResult)> done) {
  store_.read_actions(std::move(q), [post, done = std::move(done)](store::ActionsResult r) {
    post([done, r = std::move(r)] { done(r); });
  });
}

}  // namespace rtsync::service
