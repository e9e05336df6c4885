// PubNub App Context (docs/pubnub.md, section 7.6): uuid metadata, channel metadata and memberships over
// the store (store::ObjectWrite and the rest), and their events. Every change is told as PubNub does,
// an App Context event (subscribe envelope `e: 2`, the SDK's `objects` listener) on the channel the record
// names: a uuid's on the channel named like the uuid, a channel's on the channel, a membership's on both;
// {"source":"objects","version":"2.0","event":"set"|"delete","type":"uuid"|"channel"|"membership",
// "data":RECORD} with the record as served without its null fields. Like message actions' events, they
// are transients (PubNub long polls only, the last ones kept for those that catch up, sent to every node);
// none for a name that is no rtsync channel, and none when a write changed nothing.
//
// The request side's pure parts are here too: a body's fields, `include`, and a record as included.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

// The largest body of a set, and of one record's fields.
inline constexpr std::size_t kMaxObjectBytes = 32 * 1024;

// The fields of setUUIDMetadata's or setChannelMetadata's body: strings (or null: removed) for the kind's
// fields, status and type, a flat object of strings, numbers and booleans (or null) for custom; other
// properties are ignored, as PubNub ignores them. nullopt with `why` for a wrong type.
std::optional<boost::json::object> object_fields(store::ObjectKind kind, const boost::json::value& body,
                                                 std::string& why);
// The same for a membership (status, type, custom) in an entry of setMemberships' or setChannelMembers'
// list.
std::optional<boost::json::object> membership_fields(const boost::json::object& entry, std::string& why);

// A request's `include`: the record's own custom, status and type, and for memberships (members) the
// channel's (uuid's) fields and their custom, status and type.
struct Include {
  bool custom = false, status = false, type = false;
  bool other = false, other_custom = false, other_status = false, other_type = false;
};
// `side`: "channel" for memberships, "uuid" for members, empty for objects.
Include parse_include(std::string_view list, std::string_view side);
// A served record (store_objects.hpp) with only what `inc` asks for.
boost::json::object included(boost::json::object record, const Include& inc, std::string_view side);

class AppContext {
 public:
  AppContext(store::Store& store, Channels& channels);

  // Applies a write; `done` runs through `post` after the commit, and its events, published by `uuid`
  // (the rtsync user `user`), follow when it changed something.
  void write(store::ObjectWrite w, const std::string& user, const std::string& uuid, const Post& post,
             std::function<void(store::ObjectWriteResult)> done);
  void write(store::MembershipWrite w, const std::string& user, const std::string& uuid, const Post& post,
             std::function<void(store::MembershipWriteResult)> done);
  void read(store::ObjectQuery q, const Post& post, std::function<void(store::ObjectsResult)> done);

 private:
  // The event on `channel`, once it is in memory, when it is a channel.
  void tell(const std::string& channel, const std::string& data, const std::string& user, const std::string& uuid,
            const Post& post);

  store::Store& store_;
  Channels& channels_;
};

}  // namespace rtsync::service
