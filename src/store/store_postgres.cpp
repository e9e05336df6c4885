// The PostgreSQL store: the same contract as the SQLite one (store.hpp), for several rtsync nodes sharing
// one database. The writer thread of the store's queue (store_queue.hpp) owns a libpq connection and
// applies each run of queued writes in one transaction (group commit), by the batch algorithm both
// backends share (store_batch.hpp) over this file's row operations; the reads queued after a run execute,
// in one REPEATABLE READ snapshot, once it committed. The file is longer than ~600 lines because its
// schema, its statements and the row operations that run them read best side by side, next to the
// locking, retries and reconnects that only a shared server needs.
//
// What differs from SQLite is that other nodes write too, so nothing the writer knows of a channel's
// offset or a collection's tally survives its transaction. Each write transaction first locks the rows
// of every channel it will publish on, in name order (SELECT … ORDER BY name FOR UPDATE), and reads their
// last offset and timetoken under that lock: offsets and timetokens are allocated transactionally, two
// nodes appending to one channel serialize on its row and never collide, and taking all locks up front in
// one order means two batches cannot deadlock on channels. The coll:NAME row doubles as the lock of the
// collection's documents and tally, since every document write publishes on it. Idempotency keys are
// claimed with INSERT … ON CONFLICT before the write they guard, so the same key sent to two nodes at
// once is applied once: the second waits for the first's commit and replays its result. A transaction that
// PostgreSQL aborts as a deadlock or serialization failure is run again (nothing of it was answered yet).
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/random.hpp"
#include "store/store.hpp"
#include "store/store_batch.hpp"
#include "store/store_detail.hpp"
#include "store/store_paging.hpp"
#include "store/store_query.hpp"
#include "store/store_queue.hpp"

namespace rtsync::store {
namespace {

using namespace detail;

constexpr int kSchemaVersion = 5;  // 2: pubs.prev; 3: pubs.expires; 4: pubs.pn_event; 5: webhook tables

// Key of the advisory lock that serializes schema creation between nodes starting at once.
constexpr std::int64_t kMigrationLock = 0x72747379'6e63'01;

// A batch that PostgreSQL aborted as a deadlock or serialization failure is run again this many times.
constexpr int kMaxAttempts = 4;

// Channel names known to exist (rows are never deleted), to skip the INSERT … ON CONFLICT of a known one.
constexpr std::size_t kMaxKnownChannels = 100000;

// COLLATE "C": documents are listed by id in byte order, as SQLite's BINARY collation does.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rtsync_schema(version integer NOT NULL);
-- last_tt: the timetoken of the publication at last_off; the next one is larger, whatever the clock.
CREATE TABLE IF NOT EXISTS channels(
  id bigserial PRIMARY KEY,
  name text COLLATE "C" UNIQUE NOT NULL,
  epoch text NOT NULL,
  last_off bigint NOT NULL DEFAULT 0,
  last_tt bigint NOT NULL DEFAULT 0);
-- audience: '' for every subscriber, else the only user the publication reaches (read = "owner" feeds).
-- tt: PubNub timetoken, strictly increasing with off. uuid, meta, ctype: what a PubNub publish adds.
CREATE TABLE IF NOT EXISTS pubs(
  channel_id bigint NOT NULL,
  off bigint NOT NULL,
  data text NOT NULL,
  sender text NOT NULL,
  ts bigint NOT NULL,
  audience text NOT NULL DEFAULT '',
  tt bigint NOT NULL DEFAULT 0,
  uuid text NOT NULL DEFAULT '',
  meta text NOT NULL DEFAULT '',
  ctype text NOT NULL DEFAULT '',
  PRIMARY KEY(channel_id, off));
-- prev: a collection change's previous document (schema 2).
ALTER TABLE pubs ADD COLUMN IF NOT EXISTS prev text NOT NULL DEFAULT '';
-- expires: a PubNub ttl's end (ms since the Unix epoch; 0: never), after which reads skip it (schema 3).
ALTER TABLE pubs ADD COLUMN IF NOT EXISTS expires bigint NOT NULL DEFAULT 0;
-- pn_event: PubNub's message type when not a plain message (4: a file's message; schema 4).
ALTER TABLE pubs ADD COLUMN IF NOT EXISTS pn_event smallint NOT NULL DEFAULT 0;
-- kind 0, a publication: channel_id, off, data, pub_ts and pub_tt copy it (a replay must answer even after
-- trimming removed it). kind 1, a document write: result is the document ('' for a delete), v its version.
-- ts is when the key was claimed and decides expiry. kinds 2 and 3: the same for outbox writes (key
-- "<client>/<seq>"), which do not expire with time but are settled (store_detail.hpp).
CREATE TABLE IF NOT EXISTS idempotency(
  uid text NOT NULL,
  kind smallint NOT NULL,
  key text NOT NULL,
  channel_id bigint NOT NULL DEFAULT 0,
  off bigint NOT NULL DEFAULT 0,
  data text NOT NULL DEFAULT '',
  pub_ts bigint NOT NULL DEFAULT 0,
  pub_tt bigint NOT NULL DEFAULT 0,
  result text NOT NULL DEFAULT '',
  v bigint NOT NULL DEFAULT 0,
  ts bigint NOT NULL,
  PRIMARY KEY(uid, kind, key));
CREATE INDEX IF NOT EXISTS idempotency_ts ON idempotency(ts);
CREATE TABLE IF NOT EXISTS docs(
  collection text COLLATE "C" NOT NULL,
  id text COLLATE "C" NOT NULL,
  owner text NOT NULL,
  v bigint NOT NULL,
  data text NOT NULL,
  PRIMARY KEY(collection, id));
CREATE INDEX IF NOT EXISTS docs_owner ON docs(collection, owner, id);
-- As in SQLite: counts are valid only while the collection has its tally_totals row.
CREATE TABLE IF NOT EXISTS tallies(
  collection text NOT NULL,
  field text NOT NULL,
  value bigint NOT NULL,
  count bigint NOT NULL,
  PRIMARY KEY(collection, field, value));
CREATE TABLE IF NOT EXISTS tally_totals(
  collection text PRIMARY KEY,
  total bigint NOT NULL);
-- epoch_salt: the per-database salt of unwritten_epoch (store_detail.hpp), shared by every node. Added
-- without a schema version: older builds ignore it.
CREATE TABLE IF NOT EXISTS store_info(
  key text PRIMARY KEY,
  value text NOT NULL);
-- Outbox clients (store.hpp, Outbox), added without a schema version too: seen is the time of the
-- client's last write; expired once it was silent past the retention (its records deleted, its writes
-- refused).
CREATE TABLE IF NOT EXISTS outbox_clients(
  uid text NOT NULL,
  client text NOT NULL,
  seen bigint NOT NULL,
  expired boolean NOT NULL DEFAULT false,
  PRIMARY KEY(uid, client));
-- PubNub channel groups (store.hpp, GroupWrite), added without a schema version too: a group is its rows.
CREATE TABLE IF NOT EXISTS pubnub_groups(
  grp text COLLATE "C" NOT NULL,
  channel text COLLATE "C" NOT NULL,
  PRIMARY KEY(grp, channel));
-- PubNub message actions (store.hpp, MessageAction), without a schema version too: action_tt is unique per
-- channel (allocated under the channel's row lock).
CREATE TABLE IF NOT EXISTS pubnub_actions(
  channel text COLLATE "C" NOT NULL,
  action_tt bigint NOT NULL,
  message_tt bigint NOT NULL,
  type text NOT NULL,
  value text NOT NULL,
  uuid text NOT NULL,
  PRIMARY KEY(channel, action_tt));
CREATE INDEX IF NOT EXISTS pubnub_actions_message ON pubnub_actions(channel, message_tt);
-- PubNub App Context (store.hpp, AppObject), without a schema version too: kind 0 a uuid's metadata, 1 a
-- channel's; and memberships. Writes of one record serialize on an advisory lock of its key.
CREATE TABLE IF NOT EXISTS pubnub_objects(
  kind smallint NOT NULL,
  id text COLLATE "C" NOT NULL,
  data text NOT NULL,
  updated text NOT NULL,
  etag text NOT NULL,
  PRIMARY KEY(kind, id));
CREATE TABLE IF NOT EXISTS pubnub_memberships(
  uuid text COLLATE "C" NOT NULL,
  channel text COLLATE "C" NOT NULL,
  data text NOT NULL,
  updated text NOT NULL,
  etag text NOT NULL,
  PRIMARY KEY(uuid, channel));
CREATE INDEX IF NOT EXISTS pubnub_members ON pubnub_memberships(channel, uuid);
-- PubNub tokens revoked before their end (store.hpp, TokenRevocation), without a schema version too.
CREATE TABLE IF NOT EXISTS pubnub_revoked(
  token text PRIMARY KEY,
  expires bigint NOT NULL);
-- Webhook queues (store.hpp, WebhookEntry): seq is taken under the channel's row lock, so a channel's
-- entries commit in seq order; and which node delivers each webhook until when (ms).
CREATE TABLE IF NOT EXISTS webhook_queue(
  seq bigserial PRIMARY KEY,
  hook text COLLATE "C" NOT NULL,
  channel text COLLATE "C" NOT NULL,
  pub_offset bigint NOT NULL,
  body text NOT NULL,
  created bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_at bigint NOT NULL DEFAULT 0,
  dead boolean NOT NULL DEFAULT false);
CREATE INDEX IF NOT EXISTS webhook_queue_hook ON webhook_queue(hook, dead, seq);
CREATE TABLE IF NOT EXISTS webhook_leases(
  hook text COLLATE "C" PRIMARY KEY,
  node text NOT NULL,
  until bigint NOT NULL);
)sql";

// The prepared statements, by name. Parameters are sent as text.
struct Sql {
  const char* name;
  const char* text;
};
constexpr Sql kStatements[] = {
    {"ensure_channels",
     "INSERT INTO channels(name, epoch) SELECT n, e FROM unnest($1::text[], $2::text[]) AS t(n, e) "
     "ORDER BY n ON CONFLICT (name) DO NOTHING"},
    {"lock_channels",
     "SELECT name, id, epoch, last_off, last_tt FROM channels WHERE name = ANY($1::text[]) ORDER BY name "
     "FOR UPDATE"},
    {"update_channel", "UPDATE channels SET last_off = $2, last_tt = $3 WHERE id = $1"},
    {"insert_pub",
     "INSERT INTO pubs(channel_id, off, data, sender, ts, audience, tt, uuid, meta, ctype, prev, expires, pn_event) "
     "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"},
    {"trim_pubs", "DELETE FROM pubs WHERE channel_id = $1 AND off <= $2"},
    // One statement, one snapshot: the channel's position and its kept history agree. `kept`: the bytes of
    // a publication and every newer one (core::payload_bytes), for the history byte limit.
    {"snapshot",
     "SELECT c.epoch, c.last_off, c.last_tt, p.off, p.data, p.sender, p.ts, p.audience, p.tt, p.uuid, p.meta, "
     "p.ctype, p.prev, p.expires, p.pn_event FROM channels c LEFT JOIN LATERAL (SELECT * FROM (SELECT *, sum(octet_length(data) + "
     "octet_length(meta) + octet_length(prev)) OVER (ORDER BY off DESC) AS kept FROM pubs WHERE channel_id = c.id ORDER BY off DESC "
     "LIMIT $2) newest WHERE kept <= $3::bigint) p ON true WHERE c.name = $1 ORDER BY p.off"},
    {"channel_pos", "SELECT epoch, last_off FROM channels WHERE name = $1"},
    {"feed_after",
     "SELECT p.off, p.data, p.prev FROM pubs p JOIN channels c ON c.id = p.channel_id WHERE c.name = $1 AND p.off > $2 "
     "ORDER BY p.off"},
    // Claims (uid, kind, key): a row comes back when this transaction now owns the key (new, or expired).
    {"claim_key",
     "INSERT INTO idempotency(uid, kind, key, ts) VALUES($1, $2, $3, $4) ON CONFLICT (uid, kind, key) DO UPDATE "
     "SET channel_id = 0, off = 0, data = '', pub_ts = 0, pub_tt = 0, result = '', v = 0, ts = EXCLUDED.ts "
     "WHERE idempotency.ts < $5 RETURNING 1"},
    {"select_pub_key",
     "SELECT i.off, i.data, i.pub_ts, c.epoch, i.pub_tt FROM idempotency i JOIN channels c ON c.id = i.channel_id "
     "WHERE i.uid = $1 AND i.kind = $3 AND i.key = $2"},
    {"fill_pub_key",
     "UPDATE idempotency SET channel_id = $3, off = $4, data = $5, pub_ts = $6, pub_tt = $7 "
     "WHERE uid = $1 AND kind = $8 AND key = $2"},
    {"select_doc_key", "SELECT result, v FROM idempotency WHERE uid = $1 AND kind = $3 AND key = $2"},
    {"fill_doc_key", "UPDATE idempotency SET result = $3, v = $4 WHERE uid = $1 AND kind = $5 AND key = $2"},
    {"release_key", "DELETE FROM idempotency WHERE uid = $1 AND kind = $2 AND key = $3"},
    {"sweep_keys", "DELETE FROM idempotency WHERE ts < $1 AND kind < 2"},
    // A row comes back when the client may write (not expired).
    {"touch_client",
     "INSERT INTO outbox_clients(uid, client, seen) VALUES($1, $2, $3) ON CONFLICT (uid, client) DO UPDATE "
     "SET seen = EXCLUDED.seen WHERE outbox_clients.expired = false RETURNING 1"},
    // Bytewise ("C") ranges: a collation that skips punctuation would mix two clients' keys.
    {"settle_client",
     "DELETE FROM idempotency WHERE uid = $1 AND kind IN (2, 3) AND key COLLATE \"C\" >= $2 AND key COLLATE \"C\" <= $3"},
    {"sweep_client_keys",
     "DELETE FROM idempotency i USING outbox_clients c WHERE i.kind IN (2, 3) AND c.uid = i.uid AND "
     "c.expired = false AND c.seen < $1 AND left(i.key, length(c.client) + 1) = c.client || '/'"},
    {"expire_clients", "UPDATE outbox_clients SET expired = true WHERE expired = false AND seen < $1"},
    {"select_doc", "SELECT owner, v, data FROM docs WHERE collection = $1 AND id = $2"},
    // name is COLLATE "C": bytewise, as the Server API's `after` means (and as SQLite compares).
    {"select_channels",
     "SELECT name, epoch, last_off FROM channels WHERE name > $1::text AND left(name, length($2::text)) = $2::text ORDER BY name "
     "LIMIT $3"},
    // The same as detail::id_in.
    {"select_docs_in",
     "SELECT data FROM docs WHERE collection = $1 AND id IN (SELECT json_array_elements_text($2::json) COLLATE \"C\")"},
    {"insert_doc", "INSERT INTO docs(collection, id, owner, v, data) VALUES($1, $2, $3, $4, $5)"},
    {"update_doc", "UPDATE docs SET v = $3, data = $4 WHERE collection = $1 AND id = $2"},
    {"delete_doc", "DELETE FROM docs WHERE collection = $1 AND id = $2"},
    {"list_docs", "SELECT data FROM docs WHERE collection = $1 ORDER BY id"},
    {"select_total", "SELECT total FROM tally_totals WHERE collection = $1"},
    {"select_counts", "SELECT field, value, count FROM tallies WHERE collection = $1"},
    {"upsert_total",
     "INSERT INTO tally_totals(collection, total) VALUES($1, $2) ON CONFLICT (collection) DO UPDATE "
     "SET total = EXCLUDED.total"},
    {"upsert_count",
     "INSERT INTO tallies(collection, field, value, count) VALUES($1, $2, $3, $4) "
     "ON CONFLICT (collection, field, value) DO UPDATE SET count = EXCLUDED.count"},
    {"delete_count", "DELETE FROM tallies WHERE collection = $1 AND field = $2 AND value = $3"},
    {"delete_counts", "DELETE FROM tallies WHERE collection = $1"},
    {"delete_total", "DELETE FROM tally_totals WHERE collection = $1"},
    // Group rows are "NAME:…" (TallyKey::row).
    {"delete_group_counts", "DELETE FROM tallies WHERE left(collection, length($1) + 1) = $1 || ':'"},
    {"delete_group_totals", "DELETE FROM tally_totals WHERE left(collection, length($1) + 1) = $1 || ':'"},
    {"select_info", "SELECT value FROM store_info WHERE key = $1"},
    {"upsert_info",
     "INSERT INTO store_info(key, value) VALUES($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"},
    {"select_group", "SELECT channel FROM pubnub_groups WHERE grp = $1 ORDER BY channel"},
    {"select_group_names", "SELECT DISTINCT grp FROM pubnub_groups ORDER BY grp"},
    // Two nodes adding one channel at once: the second does nothing.
    {"insert_group", "INSERT INTO pubnub_groups(grp, channel) VALUES($1, $2) ON CONFLICT DO NOTHING"},
    {"delete_group", "DELETE FROM pubnub_groups WHERE grp = $1 AND channel = $2"},
    {"select_action",
     "SELECT message_tt, action_tt, type, value, uuid FROM pubnub_actions WHERE channel = $1 AND message_tt = $2 "
     "AND action_tt = $3"},
    {"select_same_action",
     "SELECT message_tt, action_tt, type, value, uuid FROM pubnub_actions WHERE channel = $1 AND message_tt = $2 "
     "AND type = $3 AND value = $4 AND uuid = $5"},
    {"last_action", "SELECT coalesce(max(action_tt), 0) FROM pubnub_actions WHERE channel = $1"},
    {"insert_action",
     "INSERT INTO pubnub_actions(channel, action_tt, message_tt, type, value, uuid) VALUES($1, $2, $3, $4, $5, $6)"},
    {"delete_action", "DELETE FROM pubnub_actions WHERE channel = $1 AND action_tt = $2"},
    {"delete_pubs", "DELETE FROM pubs WHERE channel_id = $1 AND tt > $2 AND tt <= $3"},
    {"delete_message_actions", "DELETE FROM pubnub_actions WHERE channel = $1 AND message_tt > $2 AND message_tt <= $3"},
    {"select_actions",
     "SELECT message_tt, action_tt, type, value, uuid FROM pubnub_actions WHERE channel = $1 AND action_tt >= $2 "
     "AND action_tt < $3 ORDER BY action_tt DESC LIMIT $4"},
    {"select_message_actions",
     "SELECT message_tt, action_tt, type, value, uuid FROM pubnub_actions WHERE channel = $1 AND message_tt >= $2 "
     "AND message_tt <= $3 ORDER BY action_tt LIMIT $4"},
    {"lock_record", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"},
    {"select_object", "SELECT id, data, updated, etag FROM pubnub_objects WHERE kind = $1 AND id = $2"},
    {"put_object",
     "INSERT INTO pubnub_objects(kind, id, data, updated, etag) VALUES($1, $2, $3, $4, $5) ON CONFLICT (kind, id) "
     "DO UPDATE SET data = EXCLUDED.data, updated = EXCLUDED.updated, etag = EXCLUDED.etag"},
    {"delete_object", "DELETE FROM pubnub_objects WHERE kind = $1 AND id = $2"},
    {"each_object", "SELECT id, data, updated, etag FROM pubnub_objects WHERE kind = $1"},
    {"select_membership",
     "SELECT uuid, channel, data, updated, etag FROM pubnub_memberships WHERE uuid = $1 AND channel = $2"},
    {"put_membership",
     "INSERT INTO pubnub_memberships(uuid, channel, data, updated, etag) VALUES($1, $2, $3, $4, $5) ON CONFLICT "
     "(uuid, channel) DO UPDATE SET data = EXCLUDED.data, updated = EXCLUDED.updated, etag = EXCLUDED.etag"},
    {"delete_membership", "DELETE FROM pubnub_memberships WHERE uuid = $1 AND channel = $2"},
    {"uuid_memberships",
     "SELECT m.uuid, m.channel, m.data, m.updated, m.etag, o.id, o.data, o.updated, o.etag FROM pubnub_memberships m "
     "LEFT JOIN pubnub_objects o ON o.kind = 1 AND o.id = m.channel WHERE m.uuid = $1"},
    {"channel_members",
     "SELECT m.uuid, m.channel, m.data, m.updated, m.etag, o.id, o.data, o.updated, o.etag FROM pubnub_memberships m "
     "LEFT JOIN pubnub_objects o ON o.kind = 0 AND o.id = m.uuid WHERE m.channel = $1"},
    {"insert_revocation", "INSERT INTO pubnub_revoked(token, expires) VALUES($1, $2) ON CONFLICT DO NOTHING"},
    {"sweep_revocations", "DELETE FROM pubnub_revoked WHERE expires < $1"},
    {"select_revocations", "SELECT token FROM pubnub_revoked WHERE expires >= $1"},
    {"insert_webhook", "INSERT INTO webhook_queue(hook, channel, pub_offset, body, created) VALUES($1, $2, $3, $4, $5)"},
    // Taken or renewed unless another node holds it past now; the row says who holds it either way.
    {"lease_webhook",
     "INSERT INTO webhook_leases(hook, node, until) VALUES($1, $2, $4) ON CONFLICT (hook) DO UPDATE SET "
     "node = excluded.node, until = excluded.until WHERE webhook_leases.node = excluded.node OR webhook_leases.until < $3"},
    {"webhook_holder", "SELECT node FROM webhook_leases WHERE hook = $1"},
    {"delete_webhook", "DELETE FROM webhook_queue WHERE seq = $1"},
    {"retry_webhook", "UPDATE webhook_queue SET attempts = $2, next_at = $3 WHERE seq = $1"},
    {"bury_webhook", "UPDATE webhook_queue SET dead = true WHERE seq = $1"},
    {"revive_webhooks",
     "UPDATE webhook_queue SET dead = false, attempts = 0, next_at = 0, created = $2 WHERE hook = $1 AND dead "
     "RETURNING seq"},
    {"discard_webhooks", "DELETE FROM webhook_queue WHERE hook = $1 AND dead RETURNING seq"},
    {"webhook_entries",
     "SELECT seq, channel, pub_offset, body, created, attempts, next_at FROM webhook_queue "
     "WHERE hook = $1 AND dead = $2 AND seq > $3 ORDER BY seq LIMIT $4"},
    {"webhook_counts",
     "SELECT h.hook, (SELECT count(*) FROM webhook_queue q WHERE q.hook = h.hook AND NOT q.dead), "
     "(SELECT count(*) FROM webhook_queue q WHERE q.hook = h.hook AND q.dead), l.node, coalesce(l.until, 0) "
     "FROM (SELECT DISTINCT hook FROM webhook_queue UNION SELECT hook FROM webhook_leases) h "
     "LEFT JOIN webhook_leases l ON l.hook = h.hook"},
};

// An error from PostgreSQL, with its SQLSTATE ("" when the connection failed).
struct PgError : std::runtime_error {
  PgError(const std::string& what, std::string code) : std::runtime_error(what), sqlstate(std::move(code)) {}
  std::string sqlstate;
};

using Result = std::unique_ptr<PGresult, FreeWith<PQclear>>;
using ConnPtr = std::unique_ptr<PGconn, FreeWith<PQfinish>>;

// A text[] literal: every element double-quoted, with " and \ escaped.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::int64_t to_int(const char* s) { return std::strtoll(s, nullptr, 10); }

// A statement's parameters as text; numbers are formatted here so callers can pass them as they are.
class Params {
 public:
  Params& add(std::string v) {
    values_.push_back(std::move(v));
    return *this;
  }
  Params& add(std::int64_t v) { return add(std::to_string(v)); }
  Params& add(std::uint64_t v) { return add(to_i64(v)); }
  Params& add(int v) { return add(static_cast<std::int64_t>(v)); }
  Params& add(const char* v) { return add(std::string(v)); }

  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> p;
    p.reserve(values_.size());
    for (const auto& v : values_) p.push_back(v.c_str());
    return p;
  }
  std::vector<int> lengths() const {
    std::vector<int> l;
    l.reserve(values_.size());
    for (const auto& v : values_) l.push_back(static_cast<int>(v.size()));
    return l;
  }

 private:
  std::vector<std::string> values_;
};

template <class... A>
Params params(A&&... a) {
  Params p;
  (p.add(std::forward<A>(a)), ...);
  return p;
}

std::string cell(const Result& r, int row, int col) {
  return std::string(PQgetvalue(r.get(), row, col), static_cast<std::size_t>(PQgetlength(r.get(), row, col)));
}

class PostgresStore final : public QueuedStore, private Rows {
 public:
  explicit PostgresStore(const PostgresOptions& opts) : conninfo_(opts.conninfo), webhooks_(opts.webhooks) {
    connect();
    migrate();
    ensure_indexes(opts.indexes);
    prepare_all();
    start();
  }

  ~PostgresStore() override { close(); }

 private:
  // --- libpq helpers (writer thread, or the constructor before the writer starts) ---

  [[noreturn]] void fail(std::string_view what, const PGresult* r = nullptr) const {
    std::string code;
    if (r) {
      if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) code = s;
    }
    std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw PgError("postgres store: " + std::string(what) + ": " + msg, std::move(code));
  }

  void connect() {
    conn_.reset(PQconnectdb(conninfo_.c_str()));
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
      std::string msg = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw PgError("postgres store: cannot connect: " + msg, "");
    }
    // Notices (e.g. "relation already exists, skipping") are not errors; keep them out of stderr.
    PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
  }

  void release() override { conn_.reset(); }

  Result check(PGresult* raw, std::string_view what) const {
    Result r(raw);
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(what, r.get());
    return r;
  }

  Result exec(const char* sql) const { return check(PQexec(conn_.get(), sql), sql); }

  Result run(const char* stmt, const Params& p) const {
    const auto values = p.pointers();
    const auto lengths = p.lengths();
    return check(PQexecPrepared(conn_.get(), stmt, p.size(), values.data(), lengths.data(), nullptr, 0), stmt);
  }

  void prepare_all() {
    for (const auto& s : kStatements) check(PQprepare(conn_.get(), s.name, s.text, 0, nullptr), s.name);
  }

  void migrate() {
    exec("BEGIN");
    try {
      // Nodes starting together must not race on CREATE TABLE IF NOT EXISTS (it is not atomic).
      run_text("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
      exec(std::string(kSchema).c_str());
      const Result v = exec("SELECT max(version) FROM rtsync_schema");
      const int version = PQgetisnull(v.get(), 0, 0) ? 0 : static_cast<int>(to_int(PQgetvalue(v.get(), 0, 0)));
      if (version > kSchemaVersion) {
        throw std::runtime_error("postgres store: database schema version " + std::to_string(version) +
                                 " is newer than this build's (" + std::to_string(kSchemaVersion) + ")");
      }
      if (version == 0) run_text("INSERT INTO rtsync_schema(version) VALUES(" + std::to_string(kSchemaVersion) + ")");
      if (version > 0 && version < kSchemaVersion)  // the schema text above added what was missing
        run_text("UPDATE rtsync_schema SET version = " + std::to_string(kSchemaVersion));
      // The first node to start makes the salt; the advisory lock makes the others wait and read it.
      const std::string key(kEpochSaltKey);
      run_text("INSERT INTO store_info(key, value) VALUES('" + key + "', '" + common::random_hex(16) +
               "') ON CONFLICT (key) DO NOTHING");
      const Result salt = exec(("SELECT value FROM store_info WHERE key = '" + key + "'").c_str());
      if (PQntuples(salt.get()) != 1) throw std::runtime_error("postgres store: no epoch salt");
      salt_ = cell(salt, 0, 0);
      exec("COMMIT");
    } catch (...) {
      PQclear(PQexec(conn_.get(), "ROLLBACK"));
      throw;
    }
  }

  void run_text(const std::string& sql) const { check(PQexec(conn_.get(), sql.c_str()), sql); }

  // After the connection broke (the server restarted, a network blip): a new session, with its statements.
  bool reconnect() {
    PQreset(conn_.get());
    queries_.clear();  // a new session has none of the old one's statements
    if (PQstatus(conn_.get()) != CONNECTION_OK) return false;
    try {
      prepare_all();
    } catch (const std::exception&) {
      return false;
    }
    return true;
  }

  // --- The writer ---

  static bool retryable(const std::string& sqlstate) {
    return sqlstate == "40001" || sqlstate == "40P01";  // serialization failure, deadlock detected
  }

  // The channels a batch publishes on, in lock order.
  static std::set<std::string> channels_of(const std::vector<Mutation>& mutations) {
    std::set<std::string> names;
    for (const Mutation& m : mutations) {
      std::visit(Overloaded{[&](const PendingAppend& a) { names.insert(a.req.channel); },
                            [&](const PendingWrite& p) {
                              names.insert(coll_channel(p.w.collection));
                              if (!p.w.tally.empty()) names.insert(tally_channel(p.w.collection));
                            },
                            // Group rows are their own: INSERT … ON CONFLICT and DELETE need no lock.
                            [](const PendingGroupWrite&) {},
                            // The channel's row lock serializes the allocation of its action timetokens.
                            [&](const PendingActionWrite& a) { names.insert(a.w.channel); },
                            [&](const PendingDeletion& d) { names.insert(d.d.channel); },
                            // App Context records lock themselves (records_of); revocations need no lock.
                            [](const PendingObjectWrite&) {}, [](const PendingMembershipWrite&) {},
                            [](const PendingRevocation&) {}, [](const PendingWebhookWrite&) {}},
                 m);
    }
    return names;
  }

  // The App Context records a batch writes, as advisory lock keys, in lock order: two nodes writing one
  // record serialize (its If-Match check and its merge see the other's commit), and taking them sorted
  // keeps two batches from waiting on each other.
  static std::set<std::string> records_of(const std::vector<Mutation>& mutations) {
    std::set<std::string> keys;
    for (const Mutation& m : mutations) {
      if (const auto* o = std::get_if<PendingObjectWrite>(&m)) {
        keys.insert(std::string(o->w.kind == ObjectKind::uuid ? "u:" : "c:") + o->w.id);
      } else if (const auto* ms = std::get_if<PendingMembershipWrite>(&m)) {
        for (const auto& c : ms->w.set) keys.insert("m:" + c.uuid + '\n' + c.channel);
        for (const auto& [uuid, channel] : ms->w.remove) keys.insert("m:" + uuid + '\n' + channel);
      }
    }
    return keys;
  }

  // Creates the rows of channels never written (with the epochs their loads gave out), unless known to
  // exist already.
  void ensure_channels(const std::set<std::string>& names) {
    std::vector<std::string> missing, epochs;
    for (const auto& n : names) {
      if (!known_.contains(n)) {
        missing.push_back(n);
        epochs.push_back(unwritten_epoch(salt_, n));
      }
    }
    if (missing.empty()) return;
    run("ensure_channels", params(text_array(missing), text_array(epochs)));
  }

  void remember(const std::set<std::string>& names) {
    if (known_.size() > kMaxKnownChannels) known_.clear();
    known_.insert(names.begin(), names.end());
  }

  void run_batch(std::vector<Mutation>& mutations, std::vector<Read>& reads) override {
    const std::set<std::string> names = channels_of(mutations);
    std::vector<Outcome> results;
    if (!mutations.empty()) {
      std::string error;
      for (int attempt = 1;; ++attempt) {
        bool commit_sent = false;
        try {
          if (PQstatus(conn_.get()) != CONNECTION_OK && !reconnect()) fail("reconnect");
          results = write_transaction(mutations, names, commit_sent);
          remember(names);
          error.clear();
          break;
        } catch (const std::exception& e) {
          error = e.what();
          const auto* pg = dynamic_cast<const PgError*>(&e);
          if (PQstatus(conn_.get()) == CONNECTION_OK) {
            PQclear(PQexec(conn_.get(), "ROLLBACK"));
          }
          // Retried: an abort PostgreSQL asks us to retry, or a broken connection before COMMIT was sent (a
          // COMMIT whose answer was lost may have committed: running it again could apply it twice).
          const bool again = pg && (retryable(pg->sqlstate) ||
                                    (!commit_sent && PQstatus(conn_.get()) != CONNECTION_OK && reconnect()));
          if (!again || attempt >= kMaxAttempts) break;
        }
      }
      if (!error.empty()) {
        known_.clear();
        results = failed(mutations, error);
      }
    }
    answer_writes(mutations, results);
    if (!reads.empty()) run_reads(reads);
  }

  std::vector<Outcome> write_transaction(const std::vector<Mutation>& mutations, const std::set<std::string>& names,
                                         bool& commit_sent) {
    const auto began = std::chrono::steady_clock::now();
    exec("BEGIN");
    // A collection's tally as this transaction sees it: its coll: row is locked, so nobody else moves it.
    Tallies tallies(*this);
    Batch b(*this, tallies, webhooks_);
    ensure_channels(names);
    locked_.clear();
    if (!names.empty()) {
      const Result r = run("lock_channels", params(text_array({names.begin(), names.end()})));
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        ChannelState st;
        st.id = to_int(PQgetvalue(r.get(), i, 1));
        st.epoch = cell(r, i, 2);
        st.last_offset = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 3)));
        st.last_tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 4)));
        locked_.emplace(cell(r, i, 0), std::move(st));
      }
    }
    for (const auto& key : records_of(mutations)) run("lock_record", params(key));
    std::vector<Outcome> results = b.apply(mutations, sweeps_.due());
    commit_sent = true;
    exec("COMMIT");
    sweeps_.committed();
    committed(b.appended(), mutations.size(), began);
    return results;
  }

  // --- Rows (store_batch.hpp), under the locks write_transaction took ---

  // A channel's row is this transaction's to write only once locked, so a channel missed by channels_of()
  // is a bug, not a row to create here; except a group tally (tally:NAME:GROUP), which only the stored
  // document names. That one is locked now, under the lock of coll:NAME that every write of the
  // collection takes first: writers of one collection lock its groups one batch at a time, so this later
  // lock cannot deadlock with theirs.
  ChannelState& channel(const std::string& name) override {
    auto it = locked_.find(name);
    if (it != locked_.end()) return it->second;
    const auto colon = name.find(':', 6);
    if (!name.starts_with("tally:") || colon == std::string::npos ||
        !locked_.contains("coll:" + name.substr(6, colon - 6))) {
      throw std::logic_error("postgres store: channel not locked: " + name);
    }
    ensure_channels({name});
    const Result r = run("lock_channels", params(text_array({name})));
    if (PQntuples(r.get()) != 1) throw std::runtime_error("postgres store: no row for channel " + name);
    ChannelState st;
    st.id = to_int(PQgetvalue(r.get(), 0, 1));
    st.epoch = cell(r, 0, 2);
    st.last_offset = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 3)));
    st.last_tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 4)));
    return locked_.emplace(name, std::move(st)).first->second;
  }

  void insert_pub(const ChannelState& ch, const core::Publication& p) override {
    run("insert_pub",
        params(ch.id, p.offset, p.data, p.from, p.ts, p.audience, p.tt, p.uuid, p.meta, p.ctype, p.prev, p.expires,
               static_cast<std::int64_t>(p.pn_event)));
  }

  void update_channel(const ChannelState& ch) override {
    run("update_channel", params(ch.id, ch.last_offset, ch.last_tt));
  }

  void trim_pubs(const ChannelState& ch, std::uint64_t upto) override { run("trim_pubs", params(ch.id, upto)); }

  // True when this transaction now owns (uid, kind, key); false: a live key exists (committed by anyone, or
  // earlier in this batch), whose result is to be replayed. A key another node claimed but has not
  // committed yet makes this INSERT wait for that commit.
  bool claim(const KeyRef& key, bool doc, std::int64_t now) {
    const Result r = run("claim_key", params(key.user, key.kind(doc), key.text, now, key.live_since(now)));
    return PQntuples(r.get()) == 1;
  }

  std::optional<PubReplay> claim_pub_key(const KeyRef& key, std::int64_t now) override {
    if (claim(key, false, now)) return std::nullopt;
    const Result k = run("select_pub_key", params(key.user, key.text, key.kind(false)));
    if (PQntuples(k.get()) != 1) throw std::runtime_error("postgres store: claimed key vanished");
    PubReplay r;
    r.pub = std::make_shared<core::Publication>();
    r.pub->offset = static_cast<std::uint64_t>(to_int(PQgetvalue(k.get(), 0, 0)));
    r.pub->data = cell(k, 0, 1);
    r.pub->ts = to_int(PQgetvalue(k.get(), 0, 2));
    r.epoch = cell(k, 0, 3);
    r.pub->tt = static_cast<std::uint64_t>(to_int(PQgetvalue(k.get(), 0, 4)));
    return r;
  }

  // The claim recorded when the key was taken.
  void fill_pub_key(const KeyRef& key, const ChannelState& ch, const core::Publication& pub, std::int64_t) override {
    run("fill_pub_key", params(key.user, key.text, ch.id, pub.offset, pub.data, pub.ts, pub.tt, key.kind(false)));
  }

  std::optional<DocReplay> claim_doc_key(const KeyRef& key, std::int64_t now) override {
    if (claim(key, true, now)) return std::nullopt;
    const Result k = run("select_doc_key", params(key.user, key.text, key.kind(true)));
    if (PQntuples(k.get()) != 1) throw std::runtime_error("postgres store: claimed key vanished");
    return DocReplay{cell(k, 0, 0), static_cast<std::uint64_t>(to_int(PQgetvalue(k.get(), 0, 1)))};
  }

  void fill_doc_key(const KeyRef& key, const std::string& doc, std::uint64_t v, std::int64_t) override {
    run("fill_doc_key", params(key.user, key.text, doc, v, key.kind(true)));
  }

  void release_doc_key(const KeyRef& key) override { run("release_key", params(key.user, key.kind(true), key.text)); }

  void sweep_keys(std::int64_t before) override { run("sweep_keys", params(before)); }

  bool touch_client(const std::string& user, const std::string& client, std::int64_t now) override {
    return PQntuples(run("touch_client", params(user, client, now)).get()) == 1;
  }

  void settle_client(const std::string& user, const std::string& client, const std::string& upto) override {
    run("settle_client", params(user, client + '/', upto));
  }

  void sweep_clients(std::int64_t before) override {
    run("sweep_client_keys", params(before));
    run("expire_clients", params(before));
  }

  std::optional<StoredDoc> find_doc(const std::string& collection, const std::string& id) override {
    const Result r = run("select_doc", params(collection, id));
    if (PQntuples(r.get()) == 0) return std::nullopt;
    StoredDoc d;
    d.owner = cell(r, 0, 0);
    d.v = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 1)));
    d.data = cell(r, 0, 2);
    return d;
  }

  void insert_doc(const std::string& collection, const std::string& id, const std::string& owner, std::uint64_t v,
                  const std::string& data) override {
    run("insert_doc", params(collection, id, owner, v, data));
  }

  void update_doc(const std::string& collection, const std::string& id, std::uint64_t v,
                  const std::string& data) override {
    run("update_doc", params(collection, id, v, data));
  }

  void delete_doc(const std::string& collection, const std::string& id) override {
    run("delete_doc", params(collection, id));
  }

  void each_doc(const std::string& collection, const std::function<void(const std::string&)>& each) override {
    const Result d = run("list_docs", params(collection));
    for (int i = 0; i < PQntuples(d.get()); ++i) each(cell(d, i, 0));
  }

  std::optional<std::int64_t> read_total(const std::string& collection) override {
    const Result t = run("select_total", params(collection));
    if (PQntuples(t.get()) != 1) return std::nullopt;
    return to_int(PQgetvalue(t.get(), 0, 0));
  }

  void read_counts(const std::string& collection, TallyCounts& counts) override {
    const Result c = run("select_counts", params(collection));
    for (int i = 0; i < PQntuples(c.get()); ++i) {
      counts[cell(c, i, 0)][to_int(PQgetvalue(c.get(), i, 1))] = to_int(PQgetvalue(c.get(), i, 2));
    }
  }

  void write_total(const std::string& collection, std::int64_t total) override {
    run("upsert_total", params(collection, total));
  }

  void write_count(const std::string& collection, const std::string& field, std::int64_t value,
                   std::int64_t n) override {
    if (n == 0) {
      run("delete_count", params(collection, field, value));
    } else {
      run("upsert_count", params(collection, field, value, n));
    }
  }

  void delete_counts(const std::string& collection) override { run("delete_counts", params(collection)); }
  void delete_total(const std::string& collection) override { run("delete_total", params(collection)); }
  void delete_groups(const std::string& collection) override {
    run("delete_group_counts", params(collection));
    run("delete_group_totals", params(collection));
  }

  std::optional<std::string> read_info(const std::string& key) override {
    const Result r = run("select_info", params(key));
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return cell(r, 0, 0);
  }
  void write_info(const std::string& key, const std::string& value) override {
    run("upsert_info", params(key, value));
  }

  std::vector<std::string> texts(const char* stmt, const Params& p) {
    const Result r = run(stmt, p);
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(cell(r, i, 0));
    return out;
  }
  std::vector<std::string> group_channels(const std::string& group) override {
    return texts("select_group", params(group));
  }
  std::vector<std::string> group_names() override { return texts("select_group_names", Params{}); }
  void add_to_group(const std::string& group, const std::string& channel) override {
    run("insert_group", params(group, channel));
  }
  void remove_from_group(const std::string& group, const std::string& channel) override {
    run("delete_group", params(group, channel));
  }

  static std::vector<MessageAction> action_rows(const Result& r) {
    std::vector<MessageAction> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      MessageAction a;
      a.message_tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 0)));
      a.action_tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 1)));
      a.type = cell(r, i, 2);
      a.value = cell(r, i, 3);
      a.uuid = cell(r, i, 4);
      out.push_back(std::move(a));
    }
    return out;
  }
  static std::optional<MessageAction> first(std::vector<MessageAction> v) {
    if (v.empty()) return std::nullopt;
    return std::move(v.front());
  }
  std::optional<MessageAction> find_action(const std::string& channel, std::uint64_t message_tt,
                                           std::uint64_t action_tt) override {
    return first(action_rows(run("select_action", params(channel, message_tt, action_tt))));
  }
  std::optional<MessageAction> find_same_action(const std::string& channel, const MessageAction& a) override {
    return first(action_rows(run("select_same_action", params(channel, a.message_tt, a.type, a.value, a.uuid))));
  }
  std::uint64_t last_action_tt(const std::string& channel) override {
    const Result r = run("last_action", params(channel));
    return static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 0)));
  }
  void insert_action(const std::string& channel, const MessageAction& a) override {
    run("insert_action", params(channel, a.action_tt, a.message_tt, a.type, a.value, a.uuid));
  }
  void delete_action(const std::string& channel, std::uint64_t action_tt) override {
    run("delete_action", params(channel, action_tt));
  }
  std::uint64_t delete_pubs(const ChannelState& ch, std::uint64_t after, std::uint64_t until) override {
    const Result r = run("delete_pubs", params(ch.id, after, until));
    return static_cast<std::uint64_t>(std::strtoull(PQcmdTuples(r.get()), nullptr, 10));
  }
  void delete_message_actions(const std::string& channel, std::uint64_t after, std::uint64_t until) override {
    run("delete_message_actions", params(channel, after, until));
  }
  std::vector<MessageAction> find_actions(const ActionQuery& q) override {
    const auto limit = static_cast<std::uint64_t>(q.limit) + 1;
    if (q.messages_until > 0)
      return action_rows(run("select_message_actions", params(q.channel, q.messages_from, q.messages_until, limit)));
    auto out = action_rows(run("select_actions", params(q.channel, q.since, q.before, limit)));
    std::reverse(out.begin(), out.end());  // read newest first for the LIMIT
    return out;
  }

  static AppObject object_row(const Result& r, int i, int col) {
    return AppObject{cell(r, i, col), cell(r, i, col + 1), cell(r, i, col + 2), cell(r, i, col + 3)};
  }
  static Membership membership_row(const Result& r, int i) {
    return Membership{cell(r, i, 0), cell(r, i, 1), cell(r, i, 2), cell(r, i, 3), cell(r, i, 4)};
  }
  std::optional<AppObject> find_object(ObjectKind kind, const std::string& id) override {
    const Result r = run("select_object", params(static_cast<int>(kind), id));
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return object_row(r, 0, 0);
  }
  void put_object(ObjectKind kind, const AppObject& o) override {
    run("put_object", params(static_cast<int>(kind), o.id, o.data, o.updated, o.etag));
  }
  void delete_object(ObjectKind kind, const std::string& id) override {
    run("delete_object", params(static_cast<int>(kind), id));
  }
  void each_object(ObjectKind kind, const std::function<void(AppObject)>& each) override {
    const Result r = run("each_object", params(static_cast<int>(kind)));
    for (int i = 0; i < PQntuples(r.get()); ++i) each(object_row(r, i, 0));
  }
  std::optional<Membership> find_membership(const std::string& uuid, const std::string& channel) override {
    const Result r = run("select_membership", params(uuid, channel));
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return membership_row(r, 0);
  }
  void put_membership(const Membership& m) override {
    run("put_membership", params(m.uuid, m.channel, m.data, m.updated, m.etag));
  }
  void delete_membership(const std::string& uuid, const std::string& channel) override {
    run("delete_membership", params(uuid, channel));
  }
  void each_membership(bool of_uuid, const std::string& id,
                       const std::function<void(Membership, std::optional<AppObject>)>& each) override {
    const Result r = run(of_uuid ? "uuid_memberships" : "channel_members", params(id));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::optional<AppObject> other;
      if (!PQgetisnull(r.get(), i, 5)) other = object_row(r, i, 5);
      each(membership_row(r, i), std::move(other));
    }
  }
  void insert_revocation(const TokenRevocation& t) override { run("insert_revocation", params(t.token, t.expires)); }
  void sweep_revocations(std::int64_t now) override { run("sweep_revocations", params(now)); }
  std::vector<std::string> revocations(std::int64_t now) override {
    const Result r = run("select_revocations", params(now));
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(cell(r, i, 0));
    return out;
  }

  void insert_webhook(const std::string& hook, const std::string& channel, std::uint64_t offset,
                      const std::string& body, std::int64_t now) override {
    run("insert_webhook", params(hook, channel, offset, body, now));
  }
  std::string lease_webhook(const std::string& hook, const std::string& node, std::int64_t now,
                            std::int64_t until) override {
    run("lease_webhook", params(hook, node, now, until));
    const Result r = run("webhook_holder", params(hook));
    return PQntuples(r.get()) == 1 ? cell(r, 0, 0) : std::string();
  }
  void delete_webhook(std::uint64_t seq) override { run("delete_webhook", params(seq)); }
  void retry_webhook(const WebhookEntry& e) override {
    run("retry_webhook", params(e.seq, static_cast<std::int64_t>(e.attempts), e.next));
  }
  void bury_webhook(std::uint64_t seq) override { run("bury_webhook", params(seq)); }
  std::uint64_t revive_webhooks(const std::string& hook, std::int64_t now) override {
    return static_cast<std::uint64_t>(PQntuples(run("revive_webhooks", params(hook, now)).get()));
  }
  std::uint64_t discard_webhooks(const std::string& hook) override {
    return static_cast<std::uint64_t>(PQntuples(run("discard_webhooks", params(hook)).get()));
  }
  std::vector<WebhookEntry> webhook_entries(const std::string& hook, bool dead, std::uint64_t after,
                                            std::size_t limit) override {
    const Result r = run("webhook_entries", params(hook, std::string(dead ? "true" : "false"), after,
                                                   static_cast<std::int64_t>(limit)));
    std::vector<WebhookEntry> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const auto n = [&](int col) { return to_int(PQgetvalue(r.get(), i, col)); };
      out.push_back(WebhookEntry{static_cast<std::uint64_t>(n(0)), cell(r, i, 1), static_cast<std::uint64_t>(n(2)),
                                 cell(r, i, 3), n(4), static_cast<std::uint32_t>(n(5)), n(6)});
    }
    return out;
  }
  std::map<std::string, WebhookCounts> webhook_counts() override {
    const Result r = run("webhook_counts", params());
    std::map<std::string, WebhookCounts> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out[cell(r, i, 0)] = WebhookCounts{static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 1))),
                                         static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 2))),
                                         PQgetisnull(r.get(), i, 3) ? std::string() : cell(r, i, 3),
                                         to_int(PQgetvalue(r.get(), i, 4))};
    }
    return out;
  }

  // --- Reads: one REPEATABLE READ snapshot for the whole run, taken after the writes before it committed ---

  void run_reads(std::vector<Read>& reads) {
    bool ok = false;
    std::string error = "cannot reach the PostgreSQL server";
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      try {
        if (PQstatus(conn_.get()) != CONNECTION_OK && !reconnect()) break;
        exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        ok = true;
      } catch (const std::exception& e) {
        error = e.what();
        if (PQstatus(conn_.get()) == CONNECTION_OK) break;
      }
    }
    answer_reads(reads, ok ? std::string{} : error);
    if (ok && PQstatus(conn_.get()) == CONNECTION_OK) PQclear(PQexec(conn_.get(), "COMMIT"));
  }

  // A failed read inside the snapshot transaction aborts it; the remaining reads of the run fail too.
  core::ChannelSnapshot snapshot(const std::string& name, std::size_t history_size,
                                 std::size_t history_bytes) override {
    const Result r = run("snapshot", params(name, static_cast<std::uint64_t>(history_size),
                                            static_cast<std::uint64_t>(history_bytes)));
    core::ChannelSnapshot snap;
    if (PQntuples(r.get()) == 0) {
      snap.epoch = unwritten_epoch(salt_, name);  // never written: no row
      return snap;
    }
    snap.epoch = cell(r, 0, 0);
    snap.offset = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 1)));
    snap.last_tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), 0, 2)));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      if (PQgetisnull(r.get(), i, 3)) continue;
      auto pub = std::make_shared<core::Publication>();
      pub->offset = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 3)));
      pub->data = cell(r, i, 4);
      pub->from = cell(r, i, 5);
      pub->ts = to_int(PQgetvalue(r.get(), i, 6));
      pub->audience = cell(r, i, 7);
      pub->tt = static_cast<std::uint64_t>(to_int(PQgetvalue(r.get(), i, 8)));
      pub->uuid = cell(r, i, 9);
      pub->meta = cell(r, i, 10);
      pub->ctype = cell(r, i, 11);
      pub->prev = cell(r, i, 12);
      pub->expires = to_int(PQgetvalue(r.get(), i, 13));
      pub->pn_event = static_cast<std::uint8_t>(to_int(PQgetvalue(r.get(), i, 14)));
      snap.pubs.push_back(std::move(pub));
    }
    return snap;
  }

  // A channel's epoch and last offset; a channel never written has no row and is at offset 0.
  void read_position(const std::string& channel, std::string& epoch, std::uint64_t& offset) {
    const Result pos = run("channel_pos", params(channel));
    if (PQntuples(pos.get()) == 0) {
      epoch = unwritten_epoch(salt_, channel);
      offset = 0;
      return;
    }
    epoch = cell(pos, 0, 0);
    offset = static_cast<std::uint64_t>(to_int(PQgetvalue(pos.get(), 0, 1)));
  }

  ListResult list_docs(const ListQuery& q) override {
    ListResult r;
    const std::string channel = coll_channel(q.collection);
    read_position(channel, r.epoch, r.offset);
    r.paging = q.query.after ? q.query.after->offset : r.offset;
    std::optional<Changed> changed;
    std::vector<Placed> placed;
    if (q.query.after) {
      std::vector<FeedChange> feed;
      if (Changed::needs_feed(*q.query.after, r)) {
        const Result f = run("feed_after", params(channel, r.paging));
        for (int i = 0; i < PQntuples(f.get()); ++i) {
          feed.push_back(FeedChange{static_cast<std::uint64_t>(to_int(PQgetvalue(f.get(), i, 0))), cell(f, i, 1),
                                    cell(f, i, 2)});
        }
      }
      changed.emplace(q, r, feed);
      if (changed->expired()) {
        r.ok = r.expired = true;
        return r;
      }
      if (!changed->placed_ids().empty()) {
        const Result d = run("select_docs_in", params(q.collection, changed->placed_ids()));
        std::vector<std::string> current;
        for (int i = 0; i < PQntuples(d.get()); ++i) current.push_back(cell(d, i, 0));
        placed = changed->place(q, current);
      }
    }
    const ListSql sql = list_sql(Dialect::postgres, q, changed ? changed->excluded() : std::string());
    PageFill fill(q, r, std::move(placed));
    std::int64_t wanted = static_cast<std::int64_t>(q.query.limit) + 1;  // rows, to know of a next page
    bool full = false;
    for (const ListSql::Part& part : sql.parts) {
      if (wanted == 0 || full) break;
      Params p;
      for (const auto& v : part.params) p.add(sql_text(v));
      p.add(wanted);
      const Result d = run(query_stmt(part.text).c_str(), p);
      for (int i = 0; i < PQntuples(d.get()) && !full; ++i) {
        --wanted;
        full = !fill.offer(cell(d, i, 0), row_keys(d, i, sql.keys));
      }
    }
    if (!full) fill.finish();
    r.ok = true;
    return r;
  }

  // A list query's prepared statement (its name), prepared on first use. Names are never reused, so a
  // statement whose DEALLOCATE failed (in an aborted transaction) cannot be mistaken for another.
  const std::string& query_stmt(const std::string& sql) {
    if (const std::string* name = queries_.find(sql)) return *name;
    std::string name = "q" + std::to_string(++query_names_);
    check(PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr), "prepare a list query");
    if (auto evicted = queries_.insert(sql, std::move(name))) {
      PQclear(PQexec(conn_.get(), ("DEALLOCATE " + *evicted).c_str()));
    }
    return *queries_.find(sql);
  }

  // The sort keys of row `row`.
  static query::Keys row_keys(const Result& r, int row, const std::vector<KeyColumns>& keys) {
    return detail::row_keys(
        keys, [&](int c) { return to_int(PQgetvalue(r.get(), row, c)); },
        [&](int c) {
          boost::system::error_code ec;
          json::value v = json::parse(cell(r, row, c), ec);  // numeric text: an int64, a uint64 or a double
          return ec || !v.is_number() ? json::value(0) : query::sort_key(&v).num;
        },
        [&](int c) { return cell(r, row, c); });
  }

  // The configured query indexes, made when missing; the query indexes of this schema's docs no longer
  // configured, dropped. Under the migration lock: nodes starting together take turns.
  void ensure_indexes(const QueryIndexes& indexes) {
    const std::vector<IndexSql> wanted = index_sqls(Dialect::postgres, indexes);
    exec("BEGIN");
    try {
      run_text("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
      const Result have = exec(
          "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
          "WHERE x.indrelid = 'docs'::regclass AND i.relname LIKE 'rtsync\\_q\\_%'");
      for (int row = 0; row < PQntuples(have.get()); ++row) {
        const std::string name = cell(have, row, 0);
        if (!wanted_index(wanted, name)) run_text("DROP INDEX IF EXISTS " + name);
      }
      for (const auto& i : wanted) run_text(i.create);
      exec("COMMIT");
    } catch (...) {
      PQclear(PQexec(conn_.get(), "ROLLBACK"));
      throw;
    }
  }

  GroupsResult read_group_rows(const std::vector<std::string>& groups) override { return detail::read_groups(*this, groups); }
  ActionsResult read_action_rows(const ActionQuery& q) override { return detail::read_actions(*this, q); }
  ObjectsResult read_object_rows(const ObjectQuery& q) override { return detail::read_objects(*this, q); }
  RevocationsResult read_revocation_rows() override { return detail::read_revocations(*this); }
  WebhookReadResult read_webhook_rows(const WebhookQuery& q) override { return detail::read_webhooks(*this, q); }

  ChannelsResult read_channels(const ChannelsQuery& q) override {
    const Result res = run("select_channels", params(q.after, q.prefix, static_cast<std::int64_t>(q.limit)));
    ChannelsResult r;
    for (int i = 0; i < PQntuples(res.get()); ++i)
      r.channels.push_back({cell(res, i, 0), cell(res, i, 1), static_cast<std::uint64_t>(to_int(PQgetvalue(res.get(), i, 2)))});
    r.ok = true;
    return r;
  }

  TallyResult read_tally(const TallyQuery& q) override {
    TallyResult r;
    const TallyKey key = tally_key(q);
    read_position(key.channel(), r.epoch, r.offset);
    r.tally = tally_json(read_tally_state(*this, key), q.fields);
    r.ok = true;
    return r;
  }

  const std::string conninfo_;
  const std::vector<WebhookRoute> webhooks_;
  ConnPtr conn_;

  // Writer-thread state.
  std::set<std::string> known_;  // channel rows known to exist
  std::map<std::string, ChannelState> locked_;  // the current write transaction's channel rows
  SweepSchedule sweeps_;
  std::string salt_;  // of unwritten_epoch, read once at start
  StatementCache<std::string> queries_;  // list queries' statement names, by SQL text
  std::uint64_t query_names_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_postgres(const PostgresOptions& opts) { return std::make_unique<PostgresStore>(opts); }

}  // namespace rtsync::store
