// The commands of PROTOCOL §4 as typed requests, decoded once from a command's JSON object with the
// limits every front end shares; and the field readers REST and PubNub use for the same fields in URLs
// and headers. A decoder returns the request or the `bad_request` error to answer; it checks the shape
// and the limits of fields, not permissions or whether a channel or collection exists (the service
// layer's part).
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/channel.hpp"
#include "protocol/errors.hpp"
#include "query/query.hpp"

namespace rtsync::protocol {

inline constexpr std::size_t max_key = 256;             // an idempotency key: `key`, Idempotency-Key
inline constexpr std::size_t max_history_limit = 1000;  // `limit` of a history request

// A request, or the error to answer with.
template <class T>
using Decoded = std::variant<T, Error>;

struct SubRequest {
  std::string ch;
  std::optional<core::StreamPosition> since;
  bool presence = false;
  std::optional<query::Where> where;  // a live filtered view; only on coll: channels
};

struct ChannelRequest {  // unsub, presence
  std::string ch;
};

struct PubRequest {
  std::string ch;
  const boost::json::value* data = nullptr;  // into the command: serialized by the handler
  std::string key;
  std::optional<std::uint64_t> seq;  // an outbox write's (never with key)
};

struct HistoryRequest {
  std::string ch;
  core::HistoryQuery query;
};

struct TallyRequest {
  std::string coll;
  std::string group;  // the group's tally (docs/protocol.md, *Grouped tallies*); empty: the collection's
};

struct ListRequest {
  std::string coll;
  query::Query query;  // where, order, limit, after (docs/protocol.md §6, "Queries and pages")
};

struct GetRequest {
  std::string coll;
  std::string doc;
};

enum class WriteOp : std::uint8_t { create, update, patch, remove };

struct WriteRequest {
  WriteOp op = WriteOp::create;
  std::string coll;
  std::string doc;                          // the id; empty on a create without one ("me" allowed)
  boost::json::object data;                 // taken out of the command (none for remove)
  std::optional<std::uint64_t> v;           // the version the client saw
  std::string key;
  std::optional<std::uint64_t> seq;         // an outbox write's (never with key)
};

// `hello`: names the connection's outbox client (docs/protocol.md, *Outbox*).
struct HelloRequest {
  std::string client;
  std::uint64_t settled = 0;
};

struct AuthRequest {
  std::string token;
};

// `rpc`: a call the app's backend answers (its rpc hook, docs/hooks.md).
struct RpcRequest {
  std::string method;         // 1-128 characters of A-Za-z0-9_.:/-
  boost::json::value data;    // any JSON; null when absent
};

Decoded<SubRequest> decode_sub(const boost::json::object& cmd);
Decoded<ChannelRequest> decode_channel(const boost::json::object& cmd);
Decoded<ChannelRequest> decode_unsub(const boost::json::object& cmd);  // the name is checked here: unsub resolves none
Decoded<PubRequest> decode_pub(const boost::json::object& cmd);
Decoded<HistoryRequest> decode_history(const boost::json::object& cmd);
Decoded<TallyRequest> decode_tally(const boost::json::object& cmd);
Decoded<ListRequest> decode_list(const boost::json::object& cmd);
Decoded<GetRequest> decode_get(const boost::json::object& cmd);
Decoded<WriteRequest> decode_write(boost::json::object& cmd, WriteOp op);  // moves `data` out
Decoded<AuthRequest> decode_auth(const boost::json::object& cmd);
Decoded<HelloRequest> decode_hello(const boost::json::object& cmd);
Decoded<RpcRequest> decode_rpc(boost::json::object& cmd);  // moves `data` out

// The largest outbox seq: every one is exact as a JavaScript number (2^53 - 1).
inline constexpr std::uint64_t max_seq = (std::uint64_t{1} << 53) - 1;

// Text fields (URL parameters, headers): a decimal integer, a boolean (true/false/1/0), an idempotency key.
std::optional<std::uint64_t> parse_uint(std::string_view s);
std::optional<bool> parse_bool(std::string_view s);
bool valid_key(std::string_view key);

}  // namespace rtsync::protocol
