// PubNub App Context over the store, its events, and the request side's pure parts. See pubnub_objects.hpp.
#include "service/pubnub_objects.hpp"

#include <boost/json/serialize.hpp>

#include <utility>

#include "common/clock.hpp"
#include "protocol/errors.hpp"
#include "store/store_objects.hpp"

namespace rtsync::service {

namespace json = boost::json;

namespace {

bool text_or_null(const json::value& v) { return v.is_string() || v.is_null(); }

// status, type and custom, which every kind of record has; false with `why` for a wrong value.
bool common_field(std::string_view key, const json::value& v, json::object& out, std::string& why) {
  if (key == "status" || key == "type") {
    if (!text_or_null(v)) {
      why = std::string(key) + " must be a string";
      return false;
    }
    out[key] = v;
    return true;
  }
  if (key == "custom") {
    if (!v.is_null() && !v.is_object()) {
      why = "custom must be an object";
      return false;
    }
    if (v.is_object()) {
      for (const auto& kv : v.as_object()) {
        if (!kv.value().is_string() && !kv.value().is_number() && !kv.value().is_bool()) {
          why = "custom values must be strings, numbers or booleans (\"" + std::string(kv.key()) + "\")";
          return false;
        }
      }
    }
    out[key] = v;
  }
  return true;
}

// The keys of `from` that `keep` wants, in their order.
template <class Keep>
json::object only(const json::object& from, Keep&& keep) {
  json::object out;
  for (const auto& kv : from)
    if (keep(kv.key())) out.emplace(kv.key(), kv.value());
  return out;
}

std::string event_text(std::string_view event, std::string_view type, json::object data) {
  json::object e;
  e["source"] = "objects";
  e["version"] = "2.0";
  e["event"] = event;
  e["type"] = type;
  e["data"] = store::without_nulls(std::move(data));
  return json::serialize(e);
}

json::object id_of(const std::string& id) { return json::object{{"id", id}}; }

}  // namespace

std::optional<json::object> object_fields(store::ObjectKind kind, const json::value& body, std::string& why) {
  if (!body.is_object()) {
    why = "the body must be a JSON object";
    return std::nullopt;
  }
  json::object out;
  for (const auto& kv : body.as_object()) {
    if (store::known_field(kind, kv.key())) {
      if (!text_or_null(kv.value())) {
        why = std::string(kv.key()) + " must be a string";
        return std::nullopt;
      }
      out[kv.key()] = kv.value();
    } else if (!common_field(kv.key(), kv.value(), out, why)) {
      return std::nullopt;
    }
  }
  return out;
}

std::optional<json::object> membership_fields(const json::object& entry, std::string& why) {
  json::object out;
  for (const auto& kv : entry)
    if (!common_field(kv.key(), kv.value(), out, why)) return std::nullopt;
  return out;
}

Include parse_include(std::string_view list, std::string_view side) {
  Include inc;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (item == "custom") inc.custom = true;
    else if (item == "status") inc.status = true;
    else if (item == "type") inc.type = true;
    else if (!side.empty() && item.starts_with(side)) {
      const std::string_view rest = item.substr(side.size());
      if (rest.empty()) inc.other = true;
      else if (rest == ".custom") inc.other_custom = true;
      else if (rest == ".status") inc.other_status = true;
      else if (rest == ".type") inc.other_type = true;
    }
  }
  return inc;
}

json::object included(json::object record, const Include& inc, std::string_view side) {
  auto wanted = [](bool custom, bool status, bool type) {
    return [=](std::string_view k) {
      return (k != "custom" || custom) && (k != "status" || status) && (k != "type" || type);
    };
  };
  json::object out = only(record, wanted(inc.custom, inc.status, inc.type));
  if (side.empty()) return out;
  json::object& other = out[side].as_object();
  if (inc.other) {
    other = only(other, wanted(inc.other_custom, inc.other_status, inc.other_type));
  } else {
    other = only(other, [&](std::string_view k) {
      return k == "id" || (k == "custom" && inc.other_custom) || (k == "status" && inc.other_status) ||
             (k == "type" && inc.other_type);
    });
  }
  return out;
}

AppContext::AppContext(store::Store& store, Channels& channels) : store_(store), channels_(channels) {}

void AppContext::tell(const std::string& channel, const std::string& data, const std::string& user,
                      const std::string& uuid, const Post& post) {
  if (channel.ends_with(core::presence_feed_suffix)) return;
  auto res = channels_.resolve(channel);
  if (std::holds_alternative<protocol::Error>(res)) return;
  auto ch = std::get<core::ChannelRef>(std::move(res));
  core::Publication event;
  event.data = data;
  event.from = user;
  event.uuid = uuid;
  event.ts = common::now_ms();
  event.pn_event = 2;
  // The event's timetoken is the channel's next: the channel must be in memory to know it.
  channels_.when_ready(*ch, post, [this, ch, event = std::move(event)](bool ok) mutable {
    if (ok) channels_.signal(*ch, std::move(event));
  });
}

void AppContext::write(store::ObjectWrite w, const std::string& user, const std::string& uuid, const Post& post,
                       std::function<void(store::ObjectWriteResult)> done) {
  const store::ObjectKind kind = w.kind;
  const bool remove = w.remove;
  store_.write_object(std::move(w), [=, this, done = std::move(done)](store::ObjectWriteResult r) {
    post([=, this, r = std::move(r)] {
      if (r.ok && r.changed) {
        const char* type = kind == store::ObjectKind::uuid ? "uuid" : "channel";
        tell(r.object.id,
             remove ? event_text("delete", type, id_of(r.object.id))
                    : event_text("set", type, store::served_object(kind, r.object)),
             user, uuid, post);
      }
      done(r);
    });
  });
}

void AppContext::write(store::MembershipWrite w, const std::string& user, const std::string& uuid, const Post& post,
                       std::function<void(store::MembershipWriteResult)> done) {
  store_.write_memberships(std::move(w), [=, this, done = std::move(done)](store::MembershipWriteResult r) {
    post([=, this, r = std::move(r)] {
      // On the channel named like the uuid, and on the channel.
      auto both = [&](const store::Membership& m, const std::string& text) {
        tell(m.uuid, text, user, uuid, post);
        if (m.channel != m.uuid) tell(m.channel, text, user, uuid, post);
      };
      for (const auto& m : r.removed) {
        both(m, event_text("delete", "membership", json::object{{"channel", id_of(m.channel)}, {"uuid", id_of(m.uuid)}}));
      }
      for (const auto& m : r.changed) {
        json::object data = store::served_membership(m, true, std::nullopt);
        data["uuid"] = id_of(m.uuid);
        both(m, event_text("set", "membership", std::move(data)));
      }
      done(r);
    });
  });
}

void AppContext::read(store::ObjectQuery q, const Post& post, std::function<void(store::ObjectsResult)> done) {
  store_.read_objects(std::move(q), [post, done = std::move(done)](store::ObjectsResult r) {
    post([done, r = std::move(r)] { done(r); });
  });
}

}  // namespace rtsync::service
