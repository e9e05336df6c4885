// The Store seam: where durable state lives. SQLite (store_sqlite.cpp) is the default for one node;
// PostgreSQL (store_postgres.cpp) lets several nodes share it (docs/scaling.md). I/O threads never call into a store synchronously: every operation is queued
// and completes through a callback on the store's own thread, so the disk never stalls a socket.
//
// Ordering contract (the hub's gap-free guarantees rest on it):
// - Offsets of a channel are assigned in the order append() was called, starting at 1, without gaps, each
//   with its timetoken (core::next_timetoken, so strictly increasing per channel, across restarts too).
//   With several nodes on one database (PostgreSQL), offsets and timetokens are allocated inside the
//   committing transaction, so they stay unique and gap-free per channel whichever node appends; the
//   order between two nodes' appends is their commit order.
// - Callbacks run one at a time, on the store's thread, in the order the work was queued within a
//   channel; an append's callback runs only after its transaction committed (or failed).
// - load() reflects every append whose callback already ran and none whose callback runs later.
// Concurrent appends share a transaction and its fsync (group commit).
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/histogram.hpp"
#include "core/channel.hpp"
#include "core/publication.hpp"
#include "query/pubnub_filter.hpp"
#include "query/query.hpp"

namespace rtsync::store {

// The largest document's attributes, as JSON text (PROTOCOL §5 leaves it to us; docs/protocol.md says 64
// KiB). Its change-feed push must fit a connection's queue (config checks limits.max_outbound).
inline constexpr std::size_t kMaxDocument = 64 * 1024;

// An outbox write (docs/protocol.md, *Outbox*): applied at most once per (user, client, seq), however late
// it is sent again. Its record lives until the client settles it, not 24 h; a client silent for
// kOutboxRetentionMs expires: its records go and its writes are refused from then on (never applied twice).
struct Outbox {
  std::string client;         // 16-64 characters of A-Za-z0-9_-
  std::uint64_t seq = 0;      // >= 1, unique per client
  std::uint64_t settled = 0;  // the client holds every answer up to this seq: those records may go
};
inline constexpr std::int64_t kOutboxRetentionMs = 90LL * 24 * 60 * 60 * 1000;

struct AppendRequest {
  std::string channel;
  std::string data;              // compact JSON text
  std::string from;              // publisher's user id
  std::int64_t ts = 0;           // milliseconds since the Unix epoch
  std::size_t history_size = 0;  // keep at most this many publications of the channel
  std::string key;               // idempotency key; empty: none (see AppendResult::replayed)
  std::string uuid;              // PubNub publisher id; empty: none (core::Publication::uuid)
  std::string meta;              // PubNub meta, compact JSON text; empty: none
  std::string ctype;             // PubNub custom message type; empty: none
  std::int64_t expires = 0;      // PubNub ttl: when reads stop returning it (core::Publication::expires)
  std::uint8_t pn_event = 0;     // PubNub message type (core::Publication::pn_event)
  std::optional<Outbox> outbox;  // an outbox write (then without `key`)
};

struct AppendResult {
  bool ok = false;
  std::string error;                 // when !ok: what failed (logged; clients see "unavailable")
  bool expired = false;              // (!ok) the outbox client expired: nothing was appended
  std::string epoch;                 // of the channel
  core::PublicationPtr pub;          // the committed publication (with its offset)
  bool replayed = false;             // the same (from, key) within 24 h, or the same outbox seq: the first one
};

// Grouped tallies (docs/protocol.md, *Grouped tallies*): with `tally_group = "ATTR"`, the documents whose
// ATTR is G (1-32 characters of A-Za-z0-9_.@-) have a tally of their own, kept in the same transaction
// as the collection's and published on "tally:NAME:G".
inline constexpr std::size_t kMaxTallyGroup = 32;
constexpr bool valid_tally_group(std::string_view g) {
  if (g.empty() || g.size() > kMaxTallyGroup) return false;
  for (const char c : g) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '@' || c == '-')) {
      return false;
    }
  }
  return true;
}
inline std::string tally_group_channel(const std::string& collection, const std::string& group) {
  return "tally:" + collection + ":" + group;
}

// A write to a collection document (PROTOCOL §5). The service has validated the attributes and the
// caller's rights that do not depend on the stored document; the store checks the rest inside the
// transaction (existence, version, owner) and applies the write together with its tally update and its
// change-feed publication, in the group-commit transaction.
struct DocWrite {
  enum class Op : std::uint8_t { create, update, patch, remove };
  Op op = Op::create;
  std::string collection;
  std::string id;                          // create: empty = assign common::random_hex(8)
  std::string user;                        // the caller; the owner of what it creates
  std::optional<std::uint64_t> expected_v; // conflict when the stored version differs
  boost::json::object data;                // attributes without id/_v/_owner; patch: null removes one
  bool upsert = false;                     // update: a missing document is created (not with v > 0);
                                           // v = 0: create only (conflict when it exists)
  std::optional<std::string> echo_owner;   // `_owner` the client sent back: must equal the stored owner
  bool owner_only = false;                 // write = "owner": update/patch/remove need user == _owner
  bool owner_audience = false;             // read = "owner": the change reaches only the owner
  std::map<std::string, std::vector<std::int64_t>> tally;  // counted fields and allowed values; empty: none
  std::string tally_group;                 // with tally: the attribute whose values group it; empty: none
  std::size_t history_size = 0;            // kept publications of coll:NAME and tally:NAME
  std::string key;                         // idempotency key; empty: none
  std::optional<Outbox> outbox;            // an outbox write (then without `key`)
};

struct DocResult {
  // expired: the outbox client expired, nothing was written.
  enum class Status : std::uint8_t { ok, not_found, conflict, permission_denied, too_large, invalid, expired, failed };
  Status status = Status::failed;
  std::string error;             // failed: what went wrong (logged); invalid: what the client sent wrong
  std::string doc;               // ok (create/update/patch): the document; conflict: the current one or "null"
  std::uint64_t v = 0;           // remove: the deleted document's last version
  bool replayed = false;         // same (user, key) within 24 h, or outbox seq: `doc`/`v` are the first result
  // Committed with the write (null when replayed or failed), to hand to the broker in this order:
  core::PublicationPtr change;   // on "coll:" + collection
  core::PublicationPtr tally;    // on "tally:" + collection: the tally after this commit's last write of
                                 // the collection (set on that write only: one tally publication per commit)
  struct GroupTally {
    std::string channel;         // tally_group_channel
    core::PublicationPtr pub;
  };
  std::vector<GroupTally> group_tallies;  // the same for each group tally the commit changed
};

// A page of a collection's documents (docs/protocol.md, section 6, *Queries*).
struct ListQuery {
  std::string collection;
  std::string owner;   // non-empty: only this user's documents (read = "owner")
  // where, order (normalized: query::parse_order or query::normalize), limit and the decoded `after`.
  // The default is the first query::kMaxLimit documents by id.
  query::Query query;
};

// A later page reads at most this many changes of the collection since its paging's first page (each
// page reads them all again); past that, the cursor has expired.
inline constexpr std::uint64_t kMaxPagingChanges = 10'000;

struct ListResult {
  bool ok = false;
  // The cursor's paging cannot be placed any more (store_paging.hpp): more changes since its first page
  // than the change feed keeps or a page reads. The client lists again from the first page.
  bool expired = false;
  std::vector<std::string> docs;  // JSON texts, in the query's order
  std::vector<query::Keys> keys;  // each document's sort keys as of `paging` (where it is in the page)
  std::uint64_t offset = 0;       // of coll:NAME, consistent with `docs` (read in the same snapshot)
  std::string epoch;
  // The coll:NAME offset that every page of this paging is placed as of: `offset` on a first page, the
  // cursor's on a later one.
  std::uint64_t paging = 0;
  // The cursor of the next page (its `after`), or none on the last page. A page ends at the query's
  // limit, or before the document that would take the page past query::kMaxPageBytes of JSON text.
  std::optional<std::string> next;
};

struct GetResult {
  bool ok = false;
  bool found = false;
  std::string doc;    // JSON text
  std::string owner;
};

// A tally to read: a collection's, or with group_by one group's.
struct TallyQuery {
  std::string collection;
  std::map<std::string, std::vector<std::int64_t>> fields;  // counted fields and allowed values
  std::string group_by;  // the collection's tally_group; empty: the whole collection
  std::string group;     // a valid_tally_group
};

struct TallyResult {
  bool ok = false;
  std::string tally;  // {"total":N,"counts":{"field":{"value":count}}}, every declared field and value
  std::uint64_t offset = 0;  // of tally:NAME (or tally:NAME:G), consistent with `tally`
  std::string epoch;
};

// PubNub channel groups (docs/pubnub.md, section 7): named sets of channel names, kept durably. A group
// exists while it has channels.
struct GroupWrite {
  std::string group;
  std::vector<std::string> add;     // channel names, added (those already there stay)
  std::vector<std::string> remove;  // channel names, removed first (those not there are ignored)
  bool drop = false;                // removes every channel: the group is gone (add, remove unused)
  std::size_t max_channels = 0;     // > 0: a write that would leave more channels is refused, changing nothing
};

struct GroupWriteResult {
  bool ok = false;
  bool too_many = false;  // (!ok) past max_channels
  std::string error;      // (!ok, !too_many) what failed
};

// The durable channels the store holds (the Server API's channel list), by name.
struct ChannelsQuery {
  std::string prefix;      // names starting with it
  std::string after;       // names sorting (bytewise) after it; empty: from the first
  std::size_t limit = 100;
};
struct ChannelsResult {
  bool ok = false;
  struct Channel {
    std::string name;
    std::string epoch;
    std::uint64_t offset = 0;  // the last offset assigned
  };
  std::vector<Channel> channels;  // ascending by name, at most limit
};

struct GroupsResult {
  bool ok = false;
  // Each group asked for, with its channels sorted (none: a group that does not exist); or, for a read
  // of every group, each existing group's name with no channels listed.
  std::map<std::string, std::vector<std::string>> groups;
};

// PubNub message actions (docs/pubnub.md, section 7.4): reactions and the like, attached to a message of
// a channel by its timetoken, kept durably, each with a timetoken of its own.
struct MessageAction {
  std::uint64_t message_tt = 0;
  std::uint64_t action_tt = 0;  // unique per channel, assigned by add (core::next_timetoken of the last)
  std::string type;             // PubNub's action type and value, as the client sent them
  std::string value;
  std::string uuid;             // who added it
};

struct ActionWrite {
  std::string channel;
  bool remove = false;
  // add: message_tt, type, value, uuid; remove: message_tt and action_tt
  MessageAction action;
};

struct ActionWriteResult {
  bool ok = false;
  bool exists = false;   // (!ok) add: that uuid already added this type and value to that message
  bool not_found = false;  // (ok) remove: there was no such action
  std::string error;     // (!ok, !exists) what failed
  MessageAction action;  // add: as stored, with its action_tt; remove: the removed one
};

struct ActionQuery {
  std::string channel;
  // Actions with since <= action_tt < before (PubNub's end, inclusive, and start, exclusive); the newest
  // `limit` of them, returned ascending by action_tt.
  std::uint64_t since = 0;
  std::uint64_t before = UINT64_MAX;
  // Or, when messages_until > 0, every action of the messages with messages_from <= message_tt <=
  // messages_until (a history page's), at most `limit`, ascending by action_tt.
  std::uint64_t messages_from = 0;
  std::uint64_t messages_until = 0;
  std::size_t limit = 100;
};

struct ActionsResult {
  bool ok = false;
  std::vector<MessageAction> actions;
  bool more = false;  // the range held more than `limit`
};

// Deletes a durable channel's publications by timetoken (PubNub deleteMessages, docs/pubnub.md 7.5):
// those with after < tt <= until, and the message actions of those timetokens. The channel's offsets and
// its last timetoken stay: an offset is never given again.
struct MessageDeletion {
  std::string channel;
  std::uint64_t after = 0;
  std::uint64_t until = UINT64_MAX;
};

struct DeletionResult {
  bool ok = false;
  std::string error;        // (!ok) what failed
  std::uint64_t deleted = 0;  // publications deleted
};

// PubNub App Context (docs/pubnub.md, section 7.6): uuid metadata and channel metadata (objects), and the
// memberships that relate a uuid to a channel, kept durably. A record's fields are a JSON object without
// its id: for a uuid name, email, externalId, profileUrl; for a channel name, description; for both and
// for memberships status, type and custom (a flat object). `updated` is when its fields last changed
// (ISO 8601, UTC, microseconds: "2024-08-12T06:37:16.441347Z") and `etag` is derived from its id and
// fields, so that setting the same fields again changes neither.
enum class ObjectKind : std::uint8_t { uuid = 0, channel = 1 };

struct AppObject {
  std::string id;
  std::string data = "{}";  // the fields, compact JSON
  std::string updated;
  std::string etag;
};

struct Membership {
  std::string uuid;
  std::string channel;
  std::string data = "{}";  // status, type, custom
  std::string updated;
  std::string etag;
};

// Sets an object's fields (PubNub's PATCH: those given replace the stored ones, null removes one, the
// others stay; `custom` is replaced whole), creating it if missing, or removes it.
struct ObjectWrite {
  ObjectKind kind = ObjectKind::uuid;
  std::string id;
  bool remove = false;
  boost::json::object fields;  // set: validated by the caller
  std::string if_match;        // set, non-empty: applied only if the stored object has this etag
};

struct ObjectWriteResult {
  bool ok = false;
  bool mismatch = false;  // (!ok) if_match is not the stored etag, or nothing is stored
  bool changed = false;   // (ok) set: the fields differ from the stored ones; remove: there was one
  std::string error;      // (!ok, !mismatch) what failed
  AppObject object;       // set: as stored now; remove: as it was
};

// Sets and removes memberships, in one transaction; a set applies its fields as ObjectWrite does. A
// membership named in both is set (removes go first).
struct MembershipChange {
  std::string uuid;
  std::string channel;
  boost::json::object fields;  // status, type, custom
};
struct MembershipWrite {
  std::vector<MembershipChange> set;
  std::vector<std::pair<std::string, std::string>> remove;  // (uuid, channel)
};

struct MembershipWriteResult {
  bool ok = false;
  std::string error;
  std::vector<Membership> changed;  // the sets that changed something, as stored now
  std::vector<Membership> removed;  // the removes that found one, as they were
};

// A read of App Context: one object, or a page of a listing. A listing is filtered (the filter's
// Dialect::objects, over each record as served: store_objects.hpp), sorted by `sort` then by its id, and
// cut at `limit` after `start` (a `next` of an earlier page) or before `end` (a `prev`); it reads every
// record it lists from (every uuid, every channel, or the memberships of one uuid or channel).
struct ObjectQuery {
  enum class Of : std::uint8_t { uuid, channel, uuids, channels, memberships, members };
  Of of = Of::uuids;
  std::string id;  // uuid, channel: the object; memberships: the uuid's; members: the channel's
  std::shared_ptr<const query::PubnubFilter> filter;  // none: every record
  std::vector<std::pair<std::string, bool>> sort;     // paths of the served record, each descending or not
  std::string start, end;
  std::size_t limit = 100;
  // uuids, channels: only the ids it passes are listed (and counted). Runs on the store's thread.
  std::function<bool(const std::string&)> visible;
};

struct ObjectsResult {
  bool ok = false;
  bool bad_cursor = false;  // (!ok) start or end is not a cursor
  std::vector<boost::json::object> records;  // as served (store_objects.hpp); uuid, channel: none or one
  std::size_t total = 0;    // records that pass the filter
  std::string next, prev;   // cursors of the pages after and before this one; empty: none there
};

// PubNub Access Manager tokens revoked before their end (docs/pubnub.md, section 7.7), by their id; kept
// until they would have expired anyway.
struct TokenRevocation {
  std::string token;        // the token's id
  std::int64_t expires = 0; // ms since the Unix epoch
};

struct RevocationResult {
  bool ok = false;
  std::string error;
};

struct RevocationsResult {
  bool ok = false;
  std::vector<std::string> tokens;  // every revoked token that has not expired
};

// Webhooks (docs/hooks.md): every committed publication on a channel a webhook follows is queued for it
// in the same transaction, and stays queued until its delivery is settled.
struct WebhookRoute {
  std::string name;
  std::vector<std::string> channels;  // patterns (protocol::jwt::match); a collection NAME is "coll:NAME"
};

struct WebhookEntry {
  std::uint64_t seq = 0;  // the queue's order (one sequence for all webhooks)
  std::string channel;
  std::uint64_t offset = 0;
  std::string body;       // the JSON object delivered
  std::int64_t created = 0;  // ms since the Unix epoch: when it was queued
  std::uint32_t attempts = 0;
  std::int64_t next = 0;     // ms: not tried again before
};

// A webhook's deliveries, written in the group-commit transaction like everything else.
struct WebhookWrite {
  enum class Kind : std::uint8_t {
    lease,    // `node` delivers `hook` until `until` (ms), if nobody else holds it (SQLite: it always may)
    settle,   // a round's outcome: `delivered` leave the queue, `retries` wait, `buried` become dead letters
    replay,   // every dead letter of `hook` back into its queue, in order, as if new
    discard,  // every dead letter of `hook` deleted
  };
  Kind kind = Kind::lease;
  std::string hook;
  std::string node;
  std::int64_t until = 0;
  std::vector<std::uint64_t> delivered, buried;
  std::vector<WebhookEntry> retries;  // seq, attempts and next
};

struct WebhookWriteResult {
  bool ok = false;
  std::string error;
  std::string holder;     // lease: the node holding it now
  std::uint64_t count = 0;  // replay, discard: dead letters moved or deleted
};

struct WebhookQuery {
  enum class Kind : std::uint8_t {
    pending,  // the oldest `limit` live entries of `hook`, by seq
    dead,     // dead letters of `hook` with seq > after, by seq, at most `limit` (+1 to tell more)
    counts,   // every webhook's live and dead entries, and its lease
  };
  Kind kind = Kind::pending;
  std::string hook;
  std::uint64_t after = 0;
  std::size_t limit = 100;
};

struct WebhookCounts {
  std::uint64_t pending = 0;
  std::uint64_t dead = 0;
  std::string holder;        // the node that holds its lease, empty: none yet
  std::int64_t until = 0;    // ms: until when
};

struct WebhookReadResult {
  bool ok = false;
  std::vector<WebhookEntry> entries;             // pending, dead
  std::map<std::string, WebhookCounts> counts;   // counts: by webhook
};

struct StoreStats {
  std::uint64_t commits = 0;
  std::uint64_t appends = 0;
  // The store's live histograms (written by its writer thread, readable from any thread while it exists):
  // seconds from BEGIN to the end of COMMIT, and writes (appends and document writes) per commit.
  const common::Histogram<10>* commit_seconds = nullptr;
  const common::Histogram<8>* commit_batch = nullptr;
};

class Store {
 public:
  virtual ~Store() = default;

  // Appends one publication to a durable channel (its row created on first use, with the epoch loads gave
  // out) and trims the channel to `history_size`. A (from, key) pair seen within the last 24 hours is not appended again:
  // the result carries the first publication and `replayed`.
  virtual void append(AppendRequest req, std::function<void(AppendResult)> done) = 0;

  // Reads a durable channel's epoch, last offset and timetoken, and kept history: the newest publications,
  // at most `history_size` of them weighing at most `history_bytes` together (core::payload_bytes),
  // ascending. A read writes nothing: a channel never written has no row, and gets the epoch that its
  // first append will persist (detail::unwritten_epoch), so the epoch is stable from the first subscribe.
  virtual void load(std::string channel, std::size_t history_size, std::size_t history_bytes,
                    std::function<void(core::ChannelSnapshot)> done) = 0;

  // Applies a collection write. Callbacks run in queue order, after the commit; see DocWrite/DocResult.
  virtual void write(DocWrite w, std::function<void(DocResult)> done) = 0;
  // Reads a page of a collection's documents that match the query, in its order, and the coll:NAME
  // offset they match. Keyset paging as of the first page: every document that exists and matches from
  // the first page to the last is returned exactly once, whatever is written meanwhile, each with its
  // text at the time of its page; a document created or first matching after the first page is left to
  // the change feed (store_paging.hpp). The SQL is the query's (src/store/store_query.hpp); a query that
  // no configured index serves scans the collection's documents (with owner: the owner's).
  virtual void list(ListQuery q, std::function<void(ListResult)> done) = 0;
  virtual void get(std::string collection, std::string id, std::function<void(GetResult)> done) = 0;
  // Reads a tally and the offset of its channel that it matches. A group without documents has the
  // tally of none.
  virtual void tally(TallyQuery q, std::function<void(TallyResult)> done) = 0;

  // PubNub channel groups. A write is applied in the group-commit transaction, in queue order with
  // everything else. A read gives the channels of `groups` as of the writes queued before it; with no
  // groups, the names of every group (a listing, without their channels).
  virtual void write_group(GroupWrite w, std::function<void(GroupWriteResult)> done) = 0;
  virtual void read_groups(std::vector<std::string> groups, std::function<void(GroupsResult)> done) = 0;
  // The channels table, a page at a time, after the writes queued before it.
  virtual void channels(ChannelsQuery q, std::function<void(ChannelsResult)> done) = 0;

  // PubNub message actions, applied and read like channel groups: an add in the group-commit transaction
  // (its action_tt allocated there, unique per channel whichever node adds), a read as of the writes
  // queued before it.
  virtual void write_action(ActionWrite w, std::function<void(ActionWriteResult)> done) = 0;
  virtual void read_actions(ActionQuery q, std::function<void(ActionsResult)> done) = 0;

  // Applied in the group-commit transaction like an append, in queue order: a load queued after it no
  // longer has those publications, whichever node loads.
  virtual void delete_messages(MessageDeletion d, std::function<void(DeletionResult)> done) = 0;

  // PubNub App Context, applied and read like channel groups: a write in the group-commit transaction
  // (with several nodes, writes of one record serialize), a read as of the writes queued before it.
  virtual void write_object(ObjectWrite w, std::function<void(ObjectWriteResult)> done) = 0;
  virtual void write_memberships(MembershipWrite w, std::function<void(MembershipWriteResult)> done) = 0;
  virtual void read_objects(ObjectQuery q, std::function<void(ObjectsResult)> done) = 0;

  // PubNub token revocations, the same way; the read gives every revocation in force.
  virtual void revoke_token(TokenRevocation r, std::function<void(RevocationResult)> done) = 0;
  virtual void read_revocations(std::function<void(RevocationsResult)> done) = 0;

  // Webhook queues: a write in the group-commit transaction, a read as of the writes queued before it.
  virtual void write_webhooks(WebhookWrite w, std::function<void(WebhookWriteResult)> done) = 0;
  virtual void read_webhooks(WebhookQuery q, std::function<void(WebhookReadResult)> done) = 0;

  // Runs queued work to completion and stops the store's thread. Later calls fail their callbacks
  // at once, on the caller's thread.
  virtual void close() = 0;

  virtual StoreStats stats() const = 0;

  // Whether the store is failing (/readyz, PROTOCOL §5), from any thread: a write batch failed and none
  // committed since, or a read failed and none succeeded since, the last such failure less than
  // kFailingFor ago. The time limit lets a node that a load balancer took out of rotation (and so gets no
  // work that could succeed) be tried again.
  virtual bool failing() const = 0;
  static constexpr std::chrono::seconds kFailingFor{5};
};

// The query indexes of each collection ([collections.NAME] indexes, config::query_indexes): each one an
// order (normalized, query::normalize) whose sort keys it holds. At open the store creates the missing
// ones and drops every query index (named rtsync_q_*) that this map no longer names: give every node
// sharing one database the same map.
using QueryIndexes = std::map<std::string, std::vector<query::Order>>;

struct SqliteOptions {
  std::filesystem::path file;          // the database file; created with its tables if missing
  std::string synchronous = "full";    // "full" or "normal" (WAL either way)
  QueryIndexes indexes{};  // none: every query index is dropped
  std::vector<WebhookRoute> webhooks{};  // what each webhook follows: its publications are queued for it
};

// Opens (creating if needed) the database and starts the writer thread. Throws std::runtime_error.
std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts);

struct PostgresOptions {
  std::string conninfo;  // a libpq connection string or URI: "postgres://user@host:5432/rtsync"
  QueryIndexes indexes{};  // none: every query index is dropped
  std::vector<WebhookRoute> webhooks{};  // as SqliteOptions::webhooks; give every node the same
};

// Connects, creates the tables if missing (several nodes may start at once) and starts the writer
// thread. Throws std::runtime_error when the server cannot be reached or its schema is newer. A
// connection lost later is re-established by the next batch; the batch that lost it fails (its callers
// see errors), unless it had not sent COMMIT yet, in which case it is run again on the new connection.
std::unique_ptr<Store> open_postgres(const PostgresOptions& opts);

}  // namespace rtsync::store
