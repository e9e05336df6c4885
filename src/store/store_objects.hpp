// PubNub App Context records as PubNub serves them (store.hpp, AppObject and Membership), with every field:
// what a listing's filter and sort read, in the store, and what the front end answers, leaving out the
// fields a request's `include` does not ask for. Unset fields are null. Pure functions.
//   uuid:       {"id","name","externalId","profileUrl","email","custom","status","type","updated","eTag"}
//   channel:    {"id","name","description","custom","status","type","updated","eTag"}
//   membership: {"channel":CHANNEL,"custom","status","type","updated","eTag"} (a uuid's memberships), or
//               {"uuid":UUID,…} (a channel's members), CHANNEL and UUID the object as served, or {"id"}
//               when it has none.
#pragma once

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

#include "store/store.hpp"

namespace rtsync::store {

boost::json::object served_object(ObjectKind kind, const AppObject& o);
// of_uuid: as a uuid's memberships list it (naming the channel); else as a channel's members (the uuid).
boost::json::object served_membership(const Membership& m, bool of_uuid, const std::optional<AppObject>& other);

// The record without its null fields (nested objects too): what a filter reads, so that a field that is
// not set fails every comparison, and what an event carries.
boost::json::object without_nulls(boost::json::object record);

// The fields each kind has besides custom, status and type.
bool known_field(ObjectKind kind, std::string_view field);

}  // namespace rtsync::store
