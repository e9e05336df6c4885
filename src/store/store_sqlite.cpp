// The SQLite store: durable channel history (offsets, epochs, kept publications), collection documents,
// their tallies and idempotency keys in one WAL-mode database file. The writer thread of the store's queue
// (store_queue.hpp) owns the connection and applies each run of queued writes in one transaction (group
// commit), by the batch algorithm both backends share (store_batch.hpp) over this file's row operations:
// concurrent writers share one fsync, which is what makes synchronous=full affordable. The reads queued
// after a run execute once it committed. The file is longer than ~600 lines because its schema, its
// statements and the row operations that run them read best side by side.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
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

// Another process (a backup, the sqlite3 shell) may hold the write lock for a moment. Waiting longer than
// this would stall every publisher behind one batch; failing the batch lets clients retry instead.
constexpr int kBusyTimeoutMs = 5000;

// The channel cache saves a SELECT per append; past this many entries it is dropped and refilled on
// demand, so a flood of distinct channel names cannot grow memory without bound.
constexpr std::size_t kMaxCachedChannels = 100000;

constexpr std::string_view kSchema = R"sql(
-- last_tt: the timetoken of the publication at last_offset; the next one is larger, whatever the clock.
CREATE TABLE IF NOT EXISTS channels(
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL,
  epoch TEXT NOT NULL,
  last_offset INTEGER NOT NULL,
  last_tt INTEGER NOT NULL DEFAULT 0);
-- audience: '' for every subscriber, else the only user the publication reaches (read = "owner" feeds).
-- tt: PubNub timetoken (100-ns ticks since the Unix epoch), strictly increasing with offset. uuid, meta
-- and ctype: what a PubNub publish adds ('' when none). prev: a collection change's previous document.
-- expires: a PubNub ttl's end (ms since the Unix epoch; 0: never), after which reads skip the row.
-- pn_event: PubNub's message type when not a plain message (4: a file's message).
CREATE TABLE IF NOT EXISTS pubs(
  channel_id INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  data TEXT NOT NULL,
  sender TEXT NOT NULL,
  ts INTEGER NOT NULL,
  audience TEXT NOT NULL DEFAULT '',
  tt INTEGER NOT NULL DEFAULT 0,
  uuid TEXT NOT NULL DEFAULT '',
  meta TEXT NOT NULL DEFAULT '',
  ctype TEXT NOT NULL DEFAULT '',
  prev TEXT NOT NULL DEFAULT '',
  expires INTEGER NOT NULL DEFAULT 0,
  pn_event INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(channel_id, offset)) WITHOUT ROWID;
-- kind 0, a publication: channel_id, offset, data, pub_ts and pub_tt copy it, since a replay must answer even
-- after trimming removed it. kind 1, a document write: result is the document ('' for a delete) and v its
-- version. ts is when the key was recorded (the store's clock) and decides expiry. kinds 2 and 3: the same
-- for outbox writes (key "<client>/<seq>"), which do not expire with time but are settled (store_detail.hpp).
CREATE TABLE IF NOT EXISTS idempotency(
  user TEXT NOT NULL,
  kind INTEGER NOT NULL,
  key TEXT NOT NULL,
  channel_id INTEGER NOT NULL DEFAULT 0,
  offset INTEGER NOT NULL DEFAULT 0,
  data TEXT NOT NULL DEFAULT '',
  pub_ts INTEGER NOT NULL DEFAULT 0,
  pub_tt INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  v INTEGER NOT NULL DEFAULT 0,
  ts INTEGER NOT NULL,
  PRIMARY KEY(user, kind, key)) WITHOUT ROWID;
-- Lets the periodic sweep delete expired keys without scanning a day's worth of them.
CREATE INDEX IF NOT EXISTS idempotency_ts ON idempotency(ts);
-- data is the document as served (attributes, then id, _v, _owner); owner and v copy it for the checks.
CREATE TABLE IF NOT EXISTS docs(
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  owner TEXT NOT NULL,
  v INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY(collection, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_owner ON docs(collection, owner, id);
-- A tally collection's counts: how many documents have the integer `value` in attribute `field` (rows
-- with a zero count are deleted). They are valid only while the collection has its tally_totals row
-- (total = the number of documents); without one they are recounted from docs on first use.
CREATE TABLE IF NOT EXISTS tallies(
  collection TEXT NOT NULL,
  field TEXT NOT NULL,
  value INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY(collection, field, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tally_totals(
  collection TEXT PRIMARY KEY,
  total INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// Created on every open, outside the versioned schema: a table added later that older builds ignore.
// epoch_salt: the per-database salt of detail::unwritten_epoch.
constexpr std::string_view kInfoSchema = R"sql(
CREATE TABLE IF NOT EXISTS store_info(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL) WITHOUT ROWID;
-- Outbox clients (store.hpp, Outbox): seen is the time of the client's last write; expired once it was
-- silent past the retention (its records then deleted, its writes refused).
CREATE TABLE IF NOT EXISTS outbox_clients(
  user TEXT NOT NULL,
  client TEXT NOT NULL,
  seen INTEGER NOT NULL,
  expired INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user, client)) WITHOUT ROWID;
-- PubNub channel groups (store.hpp, GroupWrite): a group is its rows.
CREATE TABLE IF NOT EXISTS pubnub_groups(
  grp TEXT NOT NULL,
  channel TEXT NOT NULL,
  PRIMARY KEY(grp, channel)) WITHOUT ROWID;
-- PubNub message actions (store.hpp, MessageAction): action_tt is unique per channel.
CREATE TABLE IF NOT EXISTS pubnub_actions(
  channel TEXT NOT NULL,
  action_tt INTEGER NOT NULL,
  message_tt INTEGER NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  uuid TEXT NOT NULL,
  PRIMARY KEY(channel, action_tt)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pubnub_actions_message ON pubnub_actions(channel, message_tt);
-- PubNub App Context (store.hpp, AppObject): kind 0 a uuid's metadata, 1 a channel's; and memberships.
CREATE TABLE IF NOT EXISTS pubnub_objects(
  kind INTEGER NOT NULL,
  id TEXT NOT NULL,
  data TEXT NOT NULL,
  updated TEXT NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY(kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pubnub_memberships(
  uuid TEXT NOT NULL,
  channel TEXT NOT NULL,
  data TEXT NOT NULL,
  updated TEXT NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY(uuid, channel)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pubnub_members ON pubnub_memberships(channel, uuid);
-- PubNub tokens revoked before their end (store.hpp, TokenRevocation); expires: ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS pubnub_revoked(
  token TEXT PRIMARY KEY,
  expires INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// Webhook queues (store.hpp, WebhookEntry): one sequence for every webhook; dead: a dead letter. And who
// delivers each webhook until when (ms).
constexpr std::string_view kWebhookSchema = R"sql(
CREATE TABLE IF NOT EXISTS webhook_queue(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  hook TEXT NOT NULL,
  channel TEXT NOT NULL,
  pub_offset INTEGER NOT NULL,
  body TEXT NOT NULL,
  created INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL DEFAULT 0,
  dead INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_queue_hook ON webhook_queue(hook, dead, seq);
CREATE TABLE IF NOT EXISTS webhook_leases(
  hook TEXT PRIMARY KEY,
  node TEXT NOT NULL,
  until INTEGER NOT NULL) WITHOUT ROWID;
)sql";

std::string column_text(sqlite3_stmt* s, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col))) : std::string();
}

using StmtPtr = std::unique_ptr<sqlite3_stmt, FreeWith<sqlite3_finalize>>;
using DbPtr = std::unique_ptr<sqlite3, FreeWith<sqlite3_close_v2>>;

// Resets a cached statement when leaving scope, on error paths too: a statement left mid-step would keep
// its read transaction open and pin the WAL.
class Use {
 public:
  explicit Use(const StmtPtr& s) : s_(s.get()) {}
  ~Use() { sqlite3_reset(s_); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

class SqliteStore final : public QueuedStore, private Rows {
 public:
  explicit SqliteStore(const SqliteOptions& opts)
      : where_("sqlite store " + opts.file.string()), webhooks_(opts.webhooks) {
    // Validate before touching the disk: a typo in the config must not leave a half-made database.
    std::string sync_pragma;
    if (opts.synchronous == "full") {
      sync_pragma = "PRAGMA synchronous=FULL";
    } else if (opts.synchronous == "normal") {
      sync_pragma = "PRAGMA synchronous=NORMAL";
    } else {
      throw std::runtime_error("sqlite store: synchronous must be \"full\" or \"normal\", not \"" +
                               opts.synchronous + "\"");
    }
    if (opts.file.has_parent_path()) std::filesystem::create_directories(opts.file.parent_path());
    create_private(opts.file);

    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(opts.file.string().c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(raw);  // even a failed open allocates a handle that must be closed
    if (rc != SQLITE_OK) {
      throw std::runtime_error(where_ + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db_.get(), 1);
    sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);

    check_integrity();
    {
      // WAL: readers (backups, the shell) never block the writer, and a commit is one sequential write.
      const StmtPtr wal = prepare("PRAGMA journal_mode=WAL");
      const Use u(wal);
      if (!step(u) || column_text(u.get(), 0) != "wal") throw std::runtime_error(where_ + ": cannot enable WAL");
    }
    exec(sync_pragma.c_str());
    migrate();
    salt_ = epoch_salt();
    ensure_indexes(opts.indexes);

    begin_ = prepare("BEGIN IMMEDIATE");
    commit_ = prepare("COMMIT");
    rollback_ = prepare("ROLLBACK");
    select_channel_ = prepare("SELECT id, epoch, last_offset, last_tt FROM channels WHERE name = ?1");
    insert_channel_ = prepare("INSERT INTO channels(name, epoch, last_offset, last_tt) VALUES(?1, ?2, 0, 0)");
    update_channel_ = prepare("UPDATE channels SET last_offset = ?2, last_tt = ?3 WHERE id = ?1");
    insert_pub_ = prepare(
        "INSERT INTO pubs(channel_id, offset, data, sender, ts, audience, tt, uuid, meta, ctype, prev, expires, pn_event) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    trim_pubs_ = prepare("DELETE FROM pubs WHERE channel_id = ?1 AND offset <= ?2");
    select_pubs_ = prepare(
        "SELECT offset, data, sender, ts, audience, tt, uuid, meta, ctype, prev, expires, pn_event FROM pubs "
        "WHERE channel_id = ?1 ORDER BY offset DESC LIMIT ?2");
    select_key_ = prepare(
        "SELECT i.offset, i.data, i.pub_ts, c.epoch, i.pub_tt FROM idempotency i "
        "JOIN channels c ON c.id = i.channel_id WHERE i.user = ?1 AND i.kind = ?4 AND i.key = ?2 AND i.ts >= ?3");
    // REPLACE: an expired row for the same (user, key) may still be there until the next sweep.
    insert_key_ = prepare(
        "INSERT OR REPLACE INTO idempotency(user, kind, key, channel_id, offset, data, pub_ts, pub_tt, ts) "
        "VALUES(?1, ?9, ?2, ?3, ?4, ?5, ?6, ?8, ?7)");
    select_doc_key_ = prepare(
        "SELECT result, v FROM idempotency WHERE user = ?1 AND kind = ?4 AND key = ?2 AND ts >= ?3");
    insert_doc_key_ = prepare(
        "INSERT OR REPLACE INTO idempotency(user, kind, key, result, v, ts) VALUES(?1, ?6, ?2, ?3, ?4, ?5)");
    sweep_keys_ = prepare("DELETE FROM idempotency WHERE ts < ?1 AND kind < 2");
    touch_client_ = prepare(
        "INSERT INTO outbox_clients(user, client, seen) VALUES(?1, ?2, ?3) ON CONFLICT(user, client) "
        "DO UPDATE SET seen = excluded.seen WHERE expired = 0");
    settle_client_ = prepare("DELETE FROM idempotency WHERE user = ?1 AND kind IN (2, 3) AND key >= ?2 AND key <= ?3");
    sweep_client_keys_ = prepare(
        "DELETE FROM idempotency WHERE kind IN (2, 3) AND EXISTS (SELECT 1 FROM outbox_clients c WHERE "
        "c.user = idempotency.user AND c.expired = 0 AND c.seen < ?1 AND "
        "substr(idempotency.key, 1, length(c.client) + 1) = c.client || '/')");
    expire_clients_ = prepare("UPDATE outbox_clients SET expired = 1 WHERE expired = 0 AND seen < ?1");
    select_doc_ = prepare("SELECT owner, v, data FROM docs WHERE collection = ?1 AND id = ?2");
    // Text compares bytewise (BINARY), as the Server API's `after` means.
    select_channels_ = prepare("SELECT name, epoch, last_offset FROM channels WHERE name > ?1 AND "
                               "substr(name, 1, length(?2)) = ?2 ORDER BY name LIMIT ?3");
    select_docs_in_ = prepare(("SELECT data FROM docs WHERE collection = ?1 AND " + id_in(Dialect::sqlite, "?2")).c_str());
    select_feed_ = prepare("SELECT offset, data, prev FROM pubs WHERE channel_id = ?1 AND offset > ?2 ORDER BY offset");
    insert_doc_ = prepare("INSERT INTO docs(collection, id, owner, v, data) VALUES(?1, ?2, ?3, ?4, ?5)");
    update_doc_ = prepare("UPDATE docs SET v = ?3, data = ?4 WHERE collection = ?1 AND id = ?2");
    delete_doc_ = prepare("DELETE FROM docs WHERE collection = ?1 AND id = ?2");
    list_docs_ = prepare("SELECT data FROM docs WHERE collection = ?1 ORDER BY id");
    select_total_ = prepare("SELECT total FROM tally_totals WHERE collection = ?1");
    select_counts_ = prepare("SELECT field, value, count FROM tallies WHERE collection = ?1");
    upsert_total_ = prepare("INSERT OR REPLACE INTO tally_totals(collection, total) VALUES(?1, ?2)");
    upsert_count_ = prepare(
        "INSERT OR REPLACE INTO tallies(collection, field, value, count) VALUES(?1, ?2, ?3, ?4)");
    delete_count_ = prepare("DELETE FROM tallies WHERE collection = ?1 AND field = ?2 AND value = ?3");
    delete_counts_ = prepare("DELETE FROM tallies WHERE collection = ?1");
    delete_total_ = prepare("DELETE FROM tally_totals WHERE collection = ?1");
    // Group rows are "NAME:…" (TallyKey::row); substr, since a LIKE pattern would read '_' as a wildcard.
    delete_group_counts_ = prepare("DELETE FROM tallies WHERE substr(collection, 1, length(?1) + 1) = ?1 || ':'");
    delete_group_totals_ = prepare("DELETE FROM tally_totals WHERE substr(collection, 1, length(?1) + 1) = ?1 || ':'");
    select_info_ = prepare("SELECT value FROM store_info WHERE key = ?1");
    upsert_info_ = prepare("INSERT OR REPLACE INTO store_info(key, value) VALUES(?1, ?2)");
    select_group_ = prepare("SELECT channel FROM pubnub_groups WHERE grp = ?1 ORDER BY channel");
    select_group_names_ = prepare("SELECT DISTINCT grp FROM pubnub_groups ORDER BY grp");
    insert_group_ = prepare("INSERT OR IGNORE INTO pubnub_groups(grp, channel) VALUES(?1, ?2)");
    delete_group_ = prepare("DELETE FROM pubnub_groups WHERE grp = ?1 AND channel = ?2");
    constexpr const char* kAction = "SELECT message_tt, action_tt, type, value, uuid FROM pubnub_actions ";
    select_action_ = prepare((std::string(kAction) + "WHERE channel = ?1 AND message_tt = ?2 AND action_tt = ?3").c_str());
    select_same_action_ = prepare(
        (std::string(kAction) + "WHERE channel = ?1 AND message_tt = ?2 AND type = ?3 AND value = ?4 AND uuid = ?5").c_str());
    last_action_ = prepare("SELECT max(action_tt) FROM pubnub_actions WHERE channel = ?1");
    insert_action_ = prepare(
        "INSERT INTO pubnub_actions(channel, action_tt, message_tt, type, value, uuid) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    delete_action_ = prepare("DELETE FROM pubnub_actions WHERE channel = ?1 AND action_tt = ?2");
    delete_pubs_ = prepare("DELETE FROM pubs WHERE channel_id = ?1 AND tt > ?2 AND tt <= ?3");
    delete_message_actions_ = prepare("DELETE FROM pubnub_actions WHERE channel = ?1 AND message_tt > ?2 AND message_tt <= ?3");
    select_actions_ = prepare((std::string(kAction) +
                               "WHERE channel = ?1 AND action_tt >= ?2 AND action_tt < ?3 ORDER BY action_tt DESC LIMIT ?4")
                                  .c_str());
    select_message_actions_ = prepare(
        (std::string(kAction) + "WHERE channel = ?1 AND message_tt >= ?2 AND message_tt <= ?3 ORDER BY action_tt LIMIT ?4")
            .c_str());

    select_object_ = prepare("SELECT id, data, updated, etag FROM pubnub_objects WHERE kind = ?1 AND id = ?2");
    put_object_ = prepare(
        "INSERT OR REPLACE INTO pubnub_objects(kind, id, data, updated, etag) VALUES(?1, ?2, ?3, ?4, ?5)");
    delete_object_ = prepare("DELETE FROM pubnub_objects WHERE kind = ?1 AND id = ?2");
    each_object_ = prepare("SELECT id, data, updated, etag FROM pubnub_objects WHERE kind = ?1");
    select_membership_ = prepare(
        "SELECT uuid, channel, data, updated, etag FROM pubnub_memberships WHERE uuid = ?1 AND channel = ?2");
    put_membership_ = prepare(
        "INSERT OR REPLACE INTO pubnub_memberships(uuid, channel, data, updated, etag) VALUES(?1, ?2, ?3, ?4, ?5)");
    delete_membership_ = prepare("DELETE FROM pubnub_memberships WHERE uuid = ?1 AND channel = ?2");
    constexpr const char* kMembership =
        "SELECT m.uuid, m.channel, m.data, m.updated, m.etag, o.id, o.data, o.updated, o.etag FROM pubnub_memberships m "
        "LEFT JOIN pubnub_objects o ON ";
    uuid_memberships_ = prepare((std::string(kMembership) + "o.kind = 1 AND o.id = m.channel WHERE m.uuid = ?1").c_str());
    channel_members_ = prepare((std::string(kMembership) + "o.kind = 0 AND o.id = m.uuid WHERE m.channel = ?1").c_str());
    insert_revocation_ = prepare("INSERT OR IGNORE INTO pubnub_revoked(token, expires) VALUES(?1, ?2)");
    sweep_revocations_ = prepare("DELETE FROM pubnub_revoked WHERE expires < ?1");
    select_revocations_ = prepare("SELECT token FROM pubnub_revoked WHERE expires >= ?1");
    insert_webhook_ = prepare(
        "INSERT INTO webhook_queue(hook, channel, pub_offset, body, created) VALUES(?1, ?2, ?3, ?4, ?5)");
    // The only node: the lease is always this process's.
    lease_webhook_ = prepare(
        "INSERT INTO webhook_leases(hook, node, until) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(hook) DO UPDATE SET node = excluded.node, until = excluded.until");
    delete_webhook_ = prepare("DELETE FROM webhook_queue WHERE seq = ?1");
    retry_webhook_ = prepare("UPDATE webhook_queue SET attempts = ?2, next_at = ?3 WHERE seq = ?1");
    bury_webhook_ = prepare("UPDATE webhook_queue SET dead = 1 WHERE seq = ?1");
    revive_webhooks_ = prepare(
        "UPDATE webhook_queue SET dead = 0, attempts = 0, next_at = 0, created = ?2 WHERE hook = ?1 AND dead = 1");
    discard_webhooks_ = prepare("DELETE FROM webhook_queue WHERE hook = ?1 AND dead = 1");
    webhook_entries_ = prepare(
        "SELECT seq, channel, pub_offset, body, created, attempts, next_at FROM webhook_queue "
        "WHERE hook = ?1 AND dead = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4");
    webhook_counts_ = prepare(
        "SELECT q.hook, sum(q.dead = 0), sum(q.dead = 1), l.node, l.until FROM webhook_queue q "
        "LEFT JOIN webhook_leases l ON l.hook = q.hook GROUP BY q.hook "
        "UNION ALL SELECT l.hook, 0, 0, l.node, l.until FROM webhook_leases l "
        "WHERE NOT EXISTS (SELECT 1 FROM webhook_queue q WHERE q.hook = l.hook)");

    start();
  }

  ~SqliteStore() override { close(); }

 private:
  // --- SQLite helpers (writer thread, or the constructor before the writer starts) ---

  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error(where_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_.get()));
  }

  // A new database file is made 0600 before SQLite opens it: its -wal and -shm files take the database
  // file's mode, so all three stay private. An existing file keeps the mode its operator gave it.
  static void create_private(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("sqlite store " + file.string() + ": cannot create: " + std::strerror(errno));
    ::close(fd);
  }

  // PRAGMA quick_check: every page and b-tree is readable and well formed (it reads the whole database).
  // A corrupt database refuses to start rather than failing one operation after another once serving.
  void check_integrity() const {
    std::string problems;
    try {
      const StmtPtr check = prepare("PRAGMA quick_check(5)");
      const Use u(check);
      while (step(u)) {
        const std::string row = column_text(u.get(), 0);
        if (row != "ok") problems += (problems.empty() ? "" : "; ") + row;
      }
    } catch (const std::exception& e) {
      problems = e.what();
    }
    if (!problems.empty()) {
      throw std::runtime_error(where_ + ": integrity check failed (" + problems +
                               "): restore it from a backup, or move it away to start with an empty database");
    }
  }

  StmtPtr prepare(const char* sql) const {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      sqlite3_finalize(s);
      fail(sql);
    }
    return StmtPtr(s);
  }

  void exec(const char* sql) const {
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }

  // true: a row is available; false: done.
  bool step(const Use& u) const {
    const int rc = sqlite3_step(u.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(sqlite3_sql(u.get()));
  }

  void bind(const Use& u, int i, std::int64_t v) const {
    if (sqlite3_bind_int64(u.get(), i, v) != SQLITE_OK) fail("bind");
  }
  // SQLITE_STATIC: the text outlives the step, and copying every publication again would be waste.
  void bind(const Use& u, int i, const std::string& v) const {
    if (sqlite3_bind_text(u.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC) != SQLITE_OK) {
      fail("bind");
    }
  }
  // A temporary would be gone before the step.
  void bind(const Use& u, int i, std::string&& v) const = delete;

  // Binds a statement's parameters, in order.
  template <class... A>
  void bind_all(const Use& u, A&&... params) const {
    int i = 0;
    (bind(u, ++i, std::forward<A>(params)), ...);
  }

  // Runs a statement that returns no rows.
  template <class... A>
  void run_stmt(const StmtPtr& s, A&&... params) const {
    const Use u(s);
    bind_all(u, std::forward<A>(params)...);
    step(u);
  }

  void migrate() {
    const StmtPtr version = prepare("PRAGMA user_version");
    auto read_version = [&] {
      const Use u(version);
      return step(u) ? sqlite3_column_int(u.get(), 0) : 0;
    };
    if (read_version() == kSchemaVersion) return;
    exec("BEGIN IMMEDIATE");
    try {
      // Read again under the write lock: another process may have created the schema meanwhile.
      const int v = read_version();
      if (v > kSchemaVersion) {
        throw std::runtime_error(where_ + ": database schema version " + std::to_string(v) +
                                 " is newer than this build's (" + std::to_string(kSchemaVersion) + ")");
      }
      if (v == 0) exec(std::string(kSchema).c_str());
      if (v == 1) exec("ALTER TABLE pubs ADD COLUMN prev TEXT NOT NULL DEFAULT ''");
      if (v >= 1 && v < 3) exec("ALTER TABLE pubs ADD COLUMN expires INTEGER NOT NULL DEFAULT 0");
      if (v >= 1 && v < 4) exec("ALTER TABLE pubs ADD COLUMN pn_event INTEGER NOT NULL DEFAULT 0");
      if (v < 5) exec(std::string(kWebhookSchema).c_str());
      exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // The database's salt, made by whoever opened it first.
  std::string epoch_salt() {
    exec(std::string(kInfoSchema).c_str());
    const std::string fresh = common::random_hex(16);
    const std::string key(kEpochSaltKey);
    run_stmt(prepare("INSERT OR IGNORE INTO store_info(key, value) VALUES(?1, ?2)"), key, fresh);
    const StmtPtr select = prepare("SELECT value FROM store_info WHERE key = ?1");
    const Use u(select);
    bind(u, 1, key);
    if (!step(u)) fail("no epoch salt");
    return column_text(u.get(), 0);
  }

  void release() override {
    // Statements first: closing a connection with live statements would leave it a zombie.
    for (StmtPtr* s : {&begin_, &commit_, &rollback_, &select_channel_, &insert_channel_, &update_channel_,
                       &insert_pub_, &trim_pubs_, &select_pubs_, &select_feed_, &select_key_, &insert_key_, &select_doc_key_,
                       &insert_doc_key_, &sweep_keys_, &touch_client_, &settle_client_, &sweep_client_keys_,
                       &expire_clients_, &select_doc_, &select_channels_, &select_docs_in_, &insert_doc_, &update_doc_, &delete_doc_,
                       &list_docs_, &select_total_, &select_counts_, &upsert_total_,
                       &upsert_count_, &delete_count_, &delete_counts_, &delete_total_, &delete_group_counts_,
                       &delete_group_totals_, &select_info_, &upsert_info_, &select_group_, &select_group_names_,
                       &insert_group_, &delete_group_, &select_action_, &select_same_action_, &last_action_,
                       &insert_action_, &delete_action_, &select_actions_, &select_message_actions_, &delete_pubs_,
                       &delete_message_actions_, &select_object_, &put_object_, &delete_object_, &each_object_,
                       &select_membership_, &put_membership_, &delete_membership_, &uuid_memberships_,
                       &channel_members_, &insert_revocation_, &sweep_revocations_, &select_revocations_,
                       &insert_webhook_, &lease_webhook_, &delete_webhook_, &retry_webhook_, &bury_webhook_,
                       &revive_webhooks_, &discard_webhooks_, &webhook_entries_, &webhook_counts_}) {
      s->reset();
    }
    queries_.clear();
    db_.reset();
  }

  // --- The writer ---

  // Whether a read can run without writing: only a tally may have to be recounted and stored first, which
  // is done in the batch's transaction, so a first tally costs no fsync of its own. Channel reads never
  // write (a channel without a row has its unwritten_epoch).
  bool read_ready(const Read& r) const {
    const auto* t = std::get_if<PendingTally>(&r);
    if (!t) return true;
    return tallies_.known(tally_key(t->q).row());
  }

  void prepare_read(const Read& r) {
    if (const auto* t = std::get_if<PendingTally>(&r)) tallies_.counted(tally_key(t->q));
  }

  void run_batch(std::vector<Mutation>& mutations, std::vector<Read>& reads) override {
    if (channels_.size() > kMaxCachedChannels) channels_.clear();

    const bool reads_write =
        std::any_of(reads.begin(), reads.end(), [&](const Read& r) { return !read_ready(r); });

    std::vector<Outcome> results;
    if (!mutations.empty() || reads_write) {
      const auto began = std::chrono::steady_clock::now();
      try {
        run_stmt(begin_);
        Batch b(*this, tallies_, webhooks_);
        for (const Read& r : reads) prepare_read(r);
        results = b.apply(mutations, sweeps_.due());
        run_stmt(commit_);
        sweeps_.committed();
        committed(b.appended(), mutations.size(), began);
      } catch (const std::exception& e) {
        // Some errors (SQLITE_FULL, IOERR) roll the transaction back by themselves; only an open one needs it.
        if (!sqlite3_get_autocommit(db_.get())) {
          const Use u(rollback_);
          sqlite3_step(u.get());
        }
        // The caches may hold offsets, channels and counts of the rolled-back transaction.
        channels_.clear();
        tallies_.clear();
        results = failed(mutations, e.what());
      }
    }
    answer_writes(mutations, results);
    answer_reads(reads);
  }

  // The cached state of a channel that has a row (read into the cache), or nullptr.
  ChannelState* row(const std::string& name) {
    if (auto it = channels_.find(name); it != channels_.end()) return &it->second;
    const Use u(select_channel_);
    bind(u, 1, name);
    if (!step(u)) return nullptr;
    ChannelState st;
    st.id = sqlite3_column_int64(u.get(), 0);
    st.epoch = column_text(u.get(), 1);
    st.last_offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 2));
    st.last_tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 3));
    return &channels_.emplace(name, std::move(st)).first->second;
  }

  // A channel as stored, for reads: its row, or (id 0) the state of a channel never written.
  ChannelState stored(const std::string& name) {
    if (const ChannelState* st = row(name)) return *st;
    ChannelState st;
    st.epoch = unwritten_epoch(salt_, name);
    return st;
  }

  // A channel about to be written, its row created (with the epoch reads gave out) if it has none. The
  // cache is cleared only between batches and its nodes never move: the reference lasts the batch.
  ChannelState& channel(const std::string& name) override {
    if (ChannelState* st = row(name)) return *st;
    ChannelState st;
    st.epoch = unwritten_epoch(salt_, name);
    run_stmt(insert_channel_, name, st.epoch);
    st.id = sqlite3_last_insert_rowid(db_.get());
    return channels_.emplace(name, std::move(st)).first->second;
  }

  // --- Rows (store_batch.hpp): the writer is the database's only one, so the offsets it assigns need no
  // lock, and a key that no committed or earlier write of the batch recorded is this transaction's ---

  void insert_pub(const ChannelState& ch, const core::Publication& p) override {
    run_stmt(insert_pub_, ch.id, to_i64(p.offset), p.data, p.from, p.ts, p.audience, to_i64(p.tt), p.uuid, p.meta,
             p.ctype, p.prev, p.expires, static_cast<std::int64_t>(p.pn_event));
  }

  void update_channel(const ChannelState& ch) override {
    run_stmt(update_channel_, ch.id, to_i64(ch.last_offset), to_i64(ch.last_tt));
  }

  void trim_pubs(const ChannelState& ch, std::uint64_t upto) override { run_stmt(trim_pubs_, ch.id, to_i64(upto)); }

  std::optional<PubReplay> claim_pub_key(const KeyRef& key, std::int64_t now) override {
    const Use u(select_key_);
    bind_all(u, key.user, key.text, key.live_since(now), key.kind(false));
    if (!step(u)) return std::nullopt;
    PubReplay k;
    k.pub = std::make_shared<core::Publication>();
    k.pub->offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0));
    k.pub->data = column_text(u.get(), 1);
    k.pub->ts = sqlite3_column_int64(u.get(), 2);
    k.epoch = column_text(u.get(), 3);
    k.pub->tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 4));
    return k;
  }

  void fill_pub_key(const KeyRef& key, const ChannelState& ch, const core::Publication& pub,
                    std::int64_t now) override {
    run_stmt(insert_key_, key.user, key.text, ch.id, to_i64(pub.offset), pub.data, pub.ts, now, to_i64(pub.tt),
             key.kind(false));
  }

  std::optional<DocReplay> claim_doc_key(const KeyRef& key, std::int64_t now) override {
    const Use u(select_doc_key_);
    bind_all(u, key.user, key.text, key.live_since(now), key.kind(true));
    if (!step(u)) return std::nullopt;
    return DocReplay{column_text(u.get(), 0), static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 1))};
  }

  void fill_doc_key(const KeyRef& key, const std::string& doc, std::uint64_t v, std::int64_t now) override {
    run_stmt(insert_doc_key_, key.user, key.text, doc, to_i64(v), now, key.kind(true));
  }

  // A claim wrote no row, so there is nothing to give back.
  void release_doc_key(const KeyRef&) override {}

  void sweep_keys(std::int64_t before) override { run_stmt(sweep_keys_, before); }

  bool touch_client(const std::string& user, const std::string& client, std::int64_t now) override {
    run_stmt(touch_client_, user, client, now);
    return sqlite3_changes(db_.get()) == 1;  // 0: the upsert's WHERE found it expired
  }

  void settle_client(const std::string& user, const std::string& client, const std::string& upto) override {
    const std::string from = client + '/';
    run_stmt(settle_client_, user, from, upto);
  }

  void sweep_clients(std::int64_t before) override {
    run_stmt(sweep_client_keys_, before);
    run_stmt(expire_clients_, before);
  }

  std::optional<StoredDoc> find_doc(const std::string& collection, const std::string& id) override {
    const Use u(select_doc_);
    bind_all(u, collection, id);
    if (!step(u)) return std::nullopt;
    StoredDoc d;
    d.owner = column_text(u.get(), 0);
    d.v = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 1));
    d.data = column_text(u.get(), 2);
    return d;
  }

  void insert_doc(const std::string& collection, const std::string& id, const std::string& owner, std::uint64_t v,
                  const std::string& data) override {
    run_stmt(insert_doc_, collection, id, owner, to_i64(v), data);
  }

  void update_doc(const std::string& collection, const std::string& id, std::uint64_t v,
                  const std::string& data) override {
    run_stmt(update_doc_, collection, id, to_i64(v), data);
  }

  void delete_doc(const std::string& collection, const std::string& id) override {
    run_stmt(delete_doc_, collection, id);
  }

  void each_doc(const std::string& collection, const std::function<void(const std::string&)>& each) override {
    const Use u(list_docs_);
    bind(u, 1, collection);
    while (step(u)) each(column_text(u.get(), 0));
  }

  std::optional<std::int64_t> read_total(const std::string& collection) override {
    const Use u(select_total_);
    bind(u, 1, collection);
    if (!step(u)) return std::nullopt;
    return sqlite3_column_int64(u.get(), 0);
  }

  void read_counts(const std::string& collection, TallyCounts& counts) override {
    const Use u(select_counts_);
    bind(u, 1, collection);
    while (step(u)) {
      counts[column_text(u.get(), 0)][sqlite3_column_int64(u.get(), 1)] = sqlite3_column_int64(u.get(), 2);
    }
  }

  void write_total(const std::string& collection, std::int64_t total) override {
    run_stmt(upsert_total_, collection, total);
  }

  void write_count(const std::string& collection, const std::string& field, std::int64_t value,
                   std::int64_t n) override {
    if (n == 0) {
      run_stmt(delete_count_, collection, field, value);
    } else {
      run_stmt(upsert_count_, collection, field, value, n);
    }
  }

  void delete_counts(const std::string& collection) override { run_stmt(delete_counts_, collection); }
  void delete_total(const std::string& collection) override { run_stmt(delete_total_, collection); }
  void delete_groups(const std::string& collection) override {
    run_stmt(delete_group_counts_, collection);
    run_stmt(delete_group_totals_, collection);
  }

  std::optional<std::string> read_info(const std::string& key) override {
    const Use u(select_info_);
    bind(u, 1, key);
    if (!step(u)) return std::nullopt;
    return column_text(u.get(), 0);
  }
  void write_info(const std::string& key, const std::string& value) override { run_stmt(upsert_info_, key, value); }

  std::vector<std::string> texts(const StmtPtr& stmt, const std::string& param = {}, bool bound = false) {
    std::vector<std::string> out;
    const Use u(stmt);
    if (bound) bind(u, 1, param);
    while (step(u)) out.push_back(column_text(u.get(), 0));
    return out;
  }
  std::vector<std::string> group_channels(const std::string& group) override { return texts(select_group_, group, true); }
  std::vector<std::string> group_names() override { return texts(select_group_names_); }
  void add_to_group(const std::string& group, const std::string& channel) override {
    run_stmt(insert_group_, group, channel);
  }
  void remove_from_group(const std::string& group, const std::string& channel) override {
    run_stmt(delete_group_, group, channel);
  }

  static MessageAction action_row(const Use& u) {
    MessageAction a;
    a.message_tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0));
    a.action_tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 1));
    a.type = column_text(u.get(), 2);
    a.value = column_text(u.get(), 3);
    a.uuid = column_text(u.get(), 4);
    return a;
  }
  std::optional<MessageAction> find_action(const std::string& channel, std::uint64_t message_tt,
                                           std::uint64_t action_tt) override {
    const Use u(select_action_);
    bind_all(u, channel, to_i64(message_tt), to_i64(action_tt));
    if (!step(u)) return std::nullopt;
    return action_row(u);
  }
  std::optional<MessageAction> find_same_action(const std::string& channel, const MessageAction& a) override {
    const Use u(select_same_action_);
    bind_all(u, channel, to_i64(a.message_tt), a.type, a.value, a.uuid);
    if (!step(u)) return std::nullopt;
    return action_row(u);
  }
  std::uint64_t last_action_tt(const std::string& channel) override {
    const Use u(last_action_);
    bind(u, 1, channel);
    return step(u) ? static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0)) : 0;  // NULL reads as 0
  }
  void insert_action(const std::string& channel, const MessageAction& a) override {
    run_stmt(insert_action_, channel, to_i64(a.action_tt), to_i64(a.message_tt), a.type, a.value, a.uuid);
  }
  void delete_action(const std::string& channel, std::uint64_t action_tt) override {
    run_stmt(delete_action_, channel, to_i64(action_tt));
  }
  std::uint64_t delete_pubs(const ChannelState& ch, std::uint64_t after, std::uint64_t until) override {
    run_stmt(delete_pubs_, ch.id, to_i64(after), to_i64(until));
    return static_cast<std::uint64_t>(sqlite3_changes(db_.get()));
  }
  void delete_message_actions(const std::string& channel, std::uint64_t after, std::uint64_t until) override {
    run_stmt(delete_message_actions_, channel, to_i64(after), to_i64(until));
  }
  std::vector<MessageAction> find_actions(const ActionQuery& q) override {
    const bool by_messages = q.messages_until > 0;
    const Use u(by_messages ? select_message_actions_ : select_actions_);
    const auto limit = static_cast<std::int64_t>(q.limit) + 1;
    if (by_messages) {
      bind_all(u, q.channel, to_i64(q.messages_from), to_i64(q.messages_until), limit);
    } else {
      bind_all(u, q.channel, to_i64(q.since), to_i64(q.before), limit);
    }
    std::vector<MessageAction> out;
    while (step(u)) out.push_back(action_row(u));
    if (!by_messages) std::reverse(out.begin(), out.end());  // read newest first for the LIMIT
    return out;
  }

  // App Context rows: columns id, data, updated, etag from `col`.
  static AppObject object_row(const Use& u, int col) {
    return AppObject{column_text(u.get(), col), column_text(u.get(), col + 1), column_text(u.get(), col + 2),
                     column_text(u.get(), col + 3)};
  }
  static Membership membership_row(const Use& u) {
    return Membership{column_text(u.get(), 0), column_text(u.get(), 1), column_text(u.get(), 2),
                      column_text(u.get(), 3), column_text(u.get(), 4)};
  }
  std::optional<AppObject> find_object(ObjectKind kind, const std::string& id) override {
    const Use u(select_object_);
    bind_all(u, static_cast<std::int64_t>(kind), id);
    if (!step(u)) return std::nullopt;
    return object_row(u, 0);
  }
  void put_object(ObjectKind kind, const AppObject& o) override {
    run_stmt(put_object_, static_cast<std::int64_t>(kind), o.id, o.data, o.updated, o.etag);
  }
  void delete_object(ObjectKind kind, const std::string& id) override {
    run_stmt(delete_object_, static_cast<std::int64_t>(kind), id);
  }
  void each_object(ObjectKind kind, const std::function<void(AppObject)>& each) override {
    const Use u(each_object_);
    bind(u, 1, static_cast<std::int64_t>(kind));
    while (step(u)) each(object_row(u, 0));
  }
  std::optional<Membership> find_membership(const std::string& uuid, const std::string& channel) override {
    const Use u(select_membership_);
    bind_all(u, uuid, channel);
    if (!step(u)) return std::nullopt;
    return membership_row(u);
  }
  void put_membership(const Membership& m) override {
    run_stmt(put_membership_, m.uuid, m.channel, m.data, m.updated, m.etag);
  }
  void delete_membership(const std::string& uuid, const std::string& channel) override {
    run_stmt(delete_membership_, uuid, channel);
  }
  void each_membership(bool of_uuid, const std::string& id,
                       const std::function<void(Membership, std::optional<AppObject>)>& each) override {
    const Use u(of_uuid ? uuid_memberships_ : channel_members_);
    bind(u, 1, id);
    while (step(u)) {
      std::optional<AppObject> other;
      if (sqlite3_column_type(u.get(), 5) != SQLITE_NULL) other = object_row(u, 5);
      each(membership_row(u), std::move(other));
    }
  }
  void insert_revocation(const TokenRevocation& r) override { run_stmt(insert_revocation_, r.token, r.expires); }
  void sweep_revocations(std::int64_t now) override { run_stmt(sweep_revocations_, now); }
  std::vector<std::string> revocations(std::int64_t now) override {
    std::vector<std::string> out;
    const Use u(select_revocations_);
    bind(u, 1, now);
    while (step(u)) out.push_back(column_text(u.get(), 0));
    return out;
  }

  void insert_webhook(const std::string& hook, const std::string& channel, std::uint64_t offset,
                      const std::string& body, std::int64_t now) override {
    run_stmt(insert_webhook_, hook, channel, static_cast<std::int64_t>(offset), body, now);
  }
  std::string lease_webhook(const std::string& hook, const std::string& node, std::int64_t, std::int64_t until) override {
    run_stmt(lease_webhook_, hook, node, until);
    return node;
  }
  void delete_webhook(std::uint64_t seq) override { run_stmt(delete_webhook_, static_cast<std::int64_t>(seq)); }
  void retry_webhook(const WebhookEntry& e) override {
    run_stmt(retry_webhook_, static_cast<std::int64_t>(e.seq), static_cast<std::int64_t>(e.attempts), e.next);
  }
  void bury_webhook(std::uint64_t seq) override { run_stmt(bury_webhook_, static_cast<std::int64_t>(seq)); }
  std::uint64_t revive_webhooks(const std::string& hook, std::int64_t now) override {
    run_stmt(revive_webhooks_, hook, now);
    return static_cast<std::uint64_t>(sqlite3_changes(db_.get()));
  }
  std::uint64_t discard_webhooks(const std::string& hook) override {
    run_stmt(discard_webhooks_, hook);
    return static_cast<std::uint64_t>(sqlite3_changes(db_.get()));
  }
  std::vector<WebhookEntry> webhook_entries(const std::string& hook, bool dead, std::uint64_t after,
                                            std::size_t limit) override {
    std::vector<WebhookEntry> out;
    const Use u(webhook_entries_);
    bind_all(u, hook, static_cast<std::int64_t>(dead ? 1 : 0), static_cast<std::int64_t>(after),
             static_cast<std::int64_t>(limit));
    while (step(u)) {
      auto* st = u.get();
      out.push_back(WebhookEntry{static_cast<std::uint64_t>(sqlite3_column_int64(st, 0)), column_text(st, 1),
                                 static_cast<std::uint64_t>(sqlite3_column_int64(st, 2)), column_text(st, 3),
                                 sqlite3_column_int64(st, 4), static_cast<std::uint32_t>(sqlite3_column_int64(st, 5)),
                                 sqlite3_column_int64(st, 6)});
    }
    return out;
  }
  std::map<std::string, WebhookCounts> webhook_counts() override {
    std::map<std::string, WebhookCounts> out;
    const Use u(webhook_counts_);
    while (step(u)) {
      auto* st = u.get();
      out[column_text(st, 0)] = WebhookCounts{static_cast<std::uint64_t>(sqlite3_column_int64(st, 1)),
                                              static_cast<std::uint64_t>(sqlite3_column_int64(st, 2)),
                                              column_text(st, 3), sqlite3_column_int64(st, 4)};
    }
    return out;
  }

  // --- Reads (after the batch's commit; a failed batch leaves them to create what they need alone) ---

  core::ChannelSnapshot snapshot(const std::string& name, std::size_t history_size,
                                 std::size_t history_bytes) override {
    const ChannelState ch = stored(name);
    core::ChannelSnapshot snap;
    snap.epoch = ch.epoch;
    snap.offset = ch.last_offset;
    snap.last_tt = ch.last_tt;
    if (history_size > 0 && ch.id != 0) {
      const Use u(select_pubs_);
      bind_all(u, ch.id, to_i64(history_size));
      std::size_t bytes = 0;
      while (step(u)) {
        auto pub = std::make_shared<core::Publication>();
        pub->offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0));
        pub->data = column_text(u.get(), 1);
        pub->from = column_text(u.get(), 2);
        pub->ts = sqlite3_column_int64(u.get(), 3);
        pub->audience = column_text(u.get(), 4);
        pub->tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 5));
        pub->uuid = column_text(u.get(), 6);
        pub->meta = column_text(u.get(), 7);
        pub->ctype = column_text(u.get(), 8);
        pub->prev = column_text(u.get(), 9);
        pub->expires = sqlite3_column_int64(u.get(), 10);
        pub->pn_event = static_cast<std::uint8_t>(sqlite3_column_int(u.get(), 11));
        bytes += core::payload_bytes(*pub);
        if (bytes > history_bytes) break;  // newest first: the rest is older still
        snap.pubs.push_back(std::move(pub));
      }
      std::reverse(snap.pubs.begin(), snap.pubs.end());  // read newest first for the LIMIT; ascending out
    }
    return snap;
  }

  // Autocommit statements, after the channel's position from the cache: this thread is the database's
  // only writer, so nothing commits between them.
  ListResult list_docs(const ListQuery& q) override {
    const ChannelState ch = stored(coll_channel(q.collection));
    ListResult r;
    r.offset = ch.last_offset;
    r.epoch = ch.epoch;
    r.paging = q.query.after ? q.query.after->offset : r.offset;
    std::optional<Changed> changed;
    std::vector<Placed> placed;
    if (q.query.after) {
      changed.emplace(q, r, Changed::needs_feed(*q.query.after, r) ? feed_after(ch.id, r.paging) : std::vector<FeedChange>{});
      if (changed->expired()) {
        r.ok = r.expired = true;
        return r;
      }
      if (!changed->placed_ids().empty()) placed = changed->place(q, docs_in(q.collection, changed->placed_ids()));
    }
    const ListSql sql = list_sql(Dialect::sqlite, q, changed ? changed->excluded() : std::string());
    PageFill fill(q, r, std::move(placed));
    std::int64_t wanted = static_cast<std::int64_t>(q.query.limit) + 1;  // rows, to know of a next page
    bool full = false;
    for (const ListSql::Part& part : sql.parts) {
      if (wanted == 0 || full) break;
      const Use u(query_stmt(part.text));
      for (std::size_t i = 0; i < part.params.size(); ++i) bind_value(u, static_cast<int>(i) + 1, part.params[i]);
      bind(u, static_cast<int>(part.params.size()) + 1, wanted);
      while (step(u)) {
        --wanted;
        if (!fill.offer(column_text(u.get(), 0), row_keys(u, sql.keys))) {
          full = true;
          break;
        }
      }
    }
    if (!full) fill.finish();
    r.ok = true;
    return r;
  }

  // The publications of a channel after `offset`, ascending (a channel never written has none).
  std::vector<FeedChange> feed_after(std::int64_t channel_id, std::uint64_t offset) {
    std::vector<FeedChange> out;
    const Use u(select_feed_);
    bind_all(u, channel_id, to_i64(offset));
    while (step(u)) {
      out.push_back(FeedChange{static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0)), column_text(u.get(), 1),
                               column_text(u.get(), 2)});
    }
    return out;
  }

  // The current texts of a collection's documents among `ids` (a JSON array).
  std::vector<std::string> docs_in(const std::string& collection, const std::string& ids) {
    std::vector<std::string> out;
    const Use u(select_docs_in_);
    bind_all(u, collection, ids);
    while (step(u)) out.push_back(column_text(u.get(), 0));
    return out;
  }

  void bind_value(const Use& u, int n, const SqlValue& v) const {
    std::visit(Overloaded{[&](std::int64_t x) { bind(u, n, x); },
                          [&](double x) {
                            if (sqlite3_bind_double(u.get(), n, x) != SQLITE_OK) fail("bind");
                          },
                          [&](const std::string& x) { bind(u, n, x); }},
               v);
  }

  // A list query's statement, prepared on first use.
  const StmtPtr& query_stmt(const std::string& sql) {
    if (const StmtPtr* s = queries_.find(sql)) return *s;
    queries_.insert(sql, prepare(sql.c_str()));
    return *queries_.find(sql);
  }

  static json::value number_column(sqlite3_stmt* s, int col) {
    if (sqlite3_column_type(s, col) == SQLITE_INTEGER) return sqlite3_column_int64(s, col);
    return sqlite3_column_double(s, col);
  }

  // The sort keys of the current row.
  static query::Keys row_keys(const Use& u, const std::vector<KeyColumns>& keys) {
    return detail::row_keys(
        keys, [&](int c) { return sqlite3_column_int64(u.get(), c); },
        [&](int c) { return number_column(u.get(), c); }, [&](int c) { return column_text(u.get(), c); });
  }

  // The configured query indexes, made when missing (CREATE INDEX reads the whole collection once); the
  // query indexes no longer configured, dropped.
  void ensure_indexes(const QueryIndexes& indexes) {
    const std::vector<IndexSql> wanted = index_sqls(Dialect::sqlite, indexes);
    exec("BEGIN IMMEDIATE");
    try {
      std::vector<std::string> stale;
      {
        const StmtPtr list = prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'docs' AND name LIKE 'rtsync\\_q\\_%' "
            "ESCAPE '\\'");
        const Use u(list);
        while (step(u)) {
          std::string name = column_text(u.get(), 0);
          if (!wanted_index(wanted, name)) stale.push_back(std::move(name));
        }
      }
      for (const auto& name : stale) exec(("DROP INDEX IF EXISTS " + name).c_str());
      for (const auto& i : wanted) exec(i.create.c_str());
      // Without statistics SQLite takes `collection = 'NAME'` for a selective key and would rather sort
      // a collection than walk a query index in order. A bounded ANALYZE (a few hundred rows per index)
      // tells it how many documents a collection has, each time the store opens.
      if (!wanted.empty()) {
        exec("PRAGMA analysis_limit = 400");
        exec("ANALYZE docs");
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  GroupsResult read_group_rows(const std::vector<std::string>& groups) override { return detail::read_groups(*this, groups); }
  ActionsResult read_action_rows(const ActionQuery& q) override { return detail::read_actions(*this, q); }
  ObjectsResult read_object_rows(const ObjectQuery& q) override { return detail::read_objects(*this, q); }
  RevocationsResult read_revocation_rows() override { return detail::read_revocations(*this); }
  WebhookReadResult read_webhook_rows(const WebhookQuery& q) override { return detail::read_webhooks(*this, q); }

  ChannelsResult read_channels(const ChannelsQuery& q) override {
    const Use u(select_channels_);
    bind_all(u, q.after, q.prefix, static_cast<std::int64_t>(q.limit));
    ChannelsResult r;
    while (step(u)) {
      r.channels.push_back({column_text(u.get(), 0), column_text(u.get(), 1),
                            static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 2))});
    }
    r.ok = true;
    return r;
  }

  TallyResult read_tally(const TallyQuery& q) override {
    const TallyKey key = tally_key(q);
    try {
      const ChannelState ch = stored(key.channel());
      TallyResult r;
      r.tally = tally_json(tallies_.counted(key), q.fields);
      r.offset = ch.last_offset;
      r.epoch = ch.epoch;
      r.ok = true;
      return r;
    } catch (const std::exception&) {
      tallies_.forget(key.row());  // a half-made recount must not be served later
      throw;
    }
  }

  const std::string where_;  // "sqlite store FILE": every error names the file
  DbPtr db_;
  StmtPtr begin_, commit_, rollback_;
  StmtPtr select_channel_, insert_channel_, update_channel_;
  StmtPtr insert_pub_, trim_pubs_, select_pubs_, select_feed_;
  StmtPtr select_key_, insert_key_, select_doc_key_, insert_doc_key_, sweep_keys_;
  StmtPtr touch_client_, settle_client_, sweep_client_keys_, expire_clients_;
  StmtPtr select_channels_;
  StmtPtr select_doc_, select_docs_in_, insert_doc_, update_doc_, delete_doc_, list_docs_;
  StatementCache<StmtPtr> queries_;  // list queries, by SQL text
  StmtPtr select_total_, select_counts_, upsert_total_, upsert_count_, delete_count_, delete_counts_,
      delete_total_, delete_group_counts_, delete_group_totals_, select_info_, upsert_info_;
  StmtPtr select_group_, select_group_names_, insert_group_, delete_group_;
  StmtPtr select_action_, select_same_action_, last_action_, insert_action_, delete_action_, select_actions_,
      select_message_actions_, delete_pubs_, delete_message_actions_;
  StmtPtr select_object_, put_object_, delete_object_, each_object_, select_membership_, put_membership_,
      delete_membership_, uuid_memberships_, channel_members_, insert_revocation_, sweep_revocations_,
      select_revocations_;
  StmtPtr insert_webhook_, lease_webhook_, delete_webhook_, retry_webhook_, bury_webhook_, revive_webhooks_,
      discard_webhooks_, webhook_entries_, webhook_counts_;
  const std::vector<WebhookRoute> webhooks_;

  // Writer-thread state. It is the only writer, so the channel cache is the truth as long as no transaction
  // failed (then it is dropped, since it may hold uncommitted offsets).
  std::unordered_map<std::string, ChannelState> channels_;
  // Per collection written or tallied; dropped with the channels when a transaction fails.
  Tallies tallies_{*this};
  SweepSchedule sweeps_;
  std::string salt_;  // of unwritten_epoch
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts) { return std::make_unique<SqliteStore>(opts); }

}  // namespace rtsync::store
