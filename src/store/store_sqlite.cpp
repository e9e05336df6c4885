// The SQLite store: durable channel history (offsets, epochs, kept publications), collection documents,
// their tallies and idempotency keys in one WAL-mode database file. One writer thread owns the connection;
// every public method only queues, so I/O threads never wait on the disk. The writer takes everything
// queued at once and applies all of its appends and document writes, in queue order, in one transaction
// (group commit): concurrent writers share one fsync, which is what makes synchronous=full affordable.
// Reads (load, list, get, tally) keep their place in the queue: the queue is cut into runs of writes
// followed by runs of reads; each run of writes is one transaction, and the reads after it run once it
// committed. A read therefore reflects exactly the writes queued before it, and its callback runs after
// theirs and before those of the writes queued after it.
#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <type_traits>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/random.hpp"
#include "store/store.hpp"
#include "store/store_detail.hpp"

namespace rtsync::store {
namespace {

namespace json = boost::json;
using namespace detail;

constexpr int kSchemaVersion = 1;

// Another process (a backup, the sqlite3 shell) may hold the write lock for a moment. Waiting longer than
// this would stall every publisher behind one batch; failing the batch lets clients retry instead.
constexpr int kBusyTimeoutMs = 5000;

// The channel cache saves a SELECT per append; past this many entries it is dropped and refilled on
// demand, so a flood of distinct channel names cannot grow memory without bound.
constexpr std::size_t kMaxCachedChannels = 100000;

// Key spaces of the idempotency table: a publication's key and a document write's key never meet.
constexpr std::int64_t kKeyPub = 0;
constexpr std::int64_t kKeyDoc = 1;

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
-- and ctype: what a PubNub publish adds ('' when none).
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
  PRIMARY KEY(channel_id, offset)) WITHOUT ROWID;
-- kind 0, a publication: channel_id, offset, data, pub_ts and pub_tt copy it, since a replay must answer even
-- after trimming removed it. kind 1, a document write: result is the document ('' for a delete) and v its
-- version. ts is when the key was recorded (the store's clock) and decides expiry.
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

std::string column_text(sqlite3_stmt* s, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col))) : std::string();
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;

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

// Callbacks run on the writer thread and must not throw (the writer has no one to report to). close() may
// be called from a callback; destroying the store from one may not, since the writer cannot join itself.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& opts) {
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

    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(opts.file.string().c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(raw);  // even a failed open allocates a handle that must be closed
    if (rc != SQLITE_OK) {
      throw std::runtime_error("sqlite store: cannot open " + opts.file.string() + ": " +
                               (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db_.get(), 1);
    sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);

    {
      // WAL: readers (backups, the shell) never block the writer, and a commit is one sequential write.
      const StmtPtr wal = prepare("PRAGMA journal_mode=WAL");
      const Use u(wal);
      if (!step(u) || column_text(u.get(), 0) != "wal") {
        throw std::runtime_error("sqlite store: cannot enable WAL on " + opts.file.string());
      }
    }
    exec(sync_pragma.c_str());
    migrate();

    begin_ = prepare("BEGIN IMMEDIATE");
    commit_ = prepare("COMMIT");
    rollback_ = prepare("ROLLBACK");
    select_channel_ = prepare("SELECT id, epoch, last_offset, last_tt FROM channels WHERE name = ?1");
    insert_channel_ = prepare("INSERT INTO channels(name, epoch, last_offset, last_tt) VALUES(?1, ?2, 0, 0)");
    update_channel_ = prepare("UPDATE channels SET last_offset = ?2, last_tt = ?3 WHERE id = ?1");
    insert_pub_ = prepare(
        "INSERT INTO pubs(channel_id, offset, data, sender, ts, audience, tt, uuid, meta, ctype) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    trim_pubs_ = prepare("DELETE FROM pubs WHERE channel_id = ?1 AND offset <= ?2");
    select_pubs_ = prepare(
        "SELECT offset, data, sender, ts, audience, tt, uuid, meta, ctype FROM pubs WHERE channel_id = ?1 "
        "ORDER BY offset DESC LIMIT ?2");
    select_key_ = prepare(
        "SELECT i.offset, i.data, i.pub_ts, c.epoch, i.pub_tt FROM idempotency i "
        "JOIN channels c ON c.id = i.channel_id WHERE i.user = ?1 AND i.kind = 0 AND i.key = ?2 AND i.ts >= ?3");
    // REPLACE: an expired row for the same (user, key) may still be there until the next sweep.
    insert_key_ = prepare(
        "INSERT OR REPLACE INTO idempotency(user, kind, key, channel_id, offset, data, pub_ts, pub_tt, ts) "
        "VALUES(?1, 0, ?2, ?3, ?4, ?5, ?6, ?8, ?7)");
    select_doc_key_ = prepare(
        "SELECT result, v FROM idempotency WHERE user = ?1 AND kind = 1 AND key = ?2 AND ts >= ?3");
    insert_doc_key_ = prepare(
        "INSERT OR REPLACE INTO idempotency(user, kind, key, result, v, ts) VALUES(?1, 1, ?2, ?3, ?4, ?5)");
    sweep_keys_ = prepare("DELETE FROM idempotency WHERE ts < ?1");
    select_doc_ = prepare("SELECT owner, v, data FROM docs WHERE collection = ?1 AND id = ?2");
    insert_doc_ = prepare("INSERT INTO docs(collection, id, owner, v, data) VALUES(?1, ?2, ?3, ?4, ?5)");
    update_doc_ = prepare("UPDATE docs SET v = ?3, data = ?4 WHERE collection = ?1 AND id = ?2");
    delete_doc_ = prepare("DELETE FROM docs WHERE collection = ?1 AND id = ?2");
    list_docs_ = prepare("SELECT data FROM docs WHERE collection = ?1 ORDER BY id");
    list_owner_docs_ = prepare("SELECT data FROM docs WHERE collection = ?1 AND owner = ?2 ORDER BY id");
    select_total_ = prepare("SELECT total FROM tally_totals WHERE collection = ?1");
    select_counts_ = prepare("SELECT field, value, count FROM tallies WHERE collection = ?1");
    upsert_total_ = prepare("INSERT OR REPLACE INTO tally_totals(collection, total) VALUES(?1, ?2)");
    upsert_count_ = prepare(
        "INSERT OR REPLACE INTO tallies(collection, field, value, count) VALUES(?1, ?2, ?3, ?4)");
    delete_count_ = prepare("DELETE FROM tallies WHERE collection = ?1 AND field = ?2 AND value = ?3");
    delete_counts_ = prepare("DELETE FROM tallies WHERE collection = ?1");
    delete_total_ = prepare("DELETE FROM tally_totals WHERE collection = ?1");

    writer_ = std::thread([this] { run(); });
    writer_id_ = writer_.get_id();
  }

  ~SqliteStore() override { close(); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void append(AppendRequest req, std::function<void(AppendResult)> done) override {
    PendingAppend p{std::move(req), std::move(done)};
    if (enqueue(mutations_q_, p)) return;
    AppendResult r;
    r.error = "store is closed";
    p.done(std::move(r));
  }

  void load(std::string channel, std::size_t history_size,
            std::function<void(core::ChannelSnapshot)> done) override {
    PendingLoad p{std::move(channel), history_size, std::move(done)};
    if (enqueue(reads_q_, p)) return;
    p.done(core::ChannelSnapshot{});  // an empty epoch tells the caller the load failed
  }

  void write(DocWrite w, std::function<void(DocResult)> done) override {
    PendingWrite p{std::move(w), std::move(done)};
    if (enqueue(mutations_q_, p)) return;
    DocResult r;
    r.error = "store is closed";
    p.done(std::move(r));
  }

  void list(std::string collection, std::string owner, std::function<void(ListResult)> done) override {
    PendingList p{std::move(collection), std::move(owner), std::move(done)};
    if (enqueue(reads_q_, p)) return;
    p.done(ListResult{});
  }

  void get(std::string collection, std::string id, std::function<void(GetResult)> done) override {
    PendingGet p{std::move(collection), std::move(id), std::move(done)};
    if (enqueue(reads_q_, p)) return;
    p.done(GetResult{});
  }

  void tally(std::string collection, TallyFields fields, std::function<void(TallyResult)> done) override {
    PendingTally p{std::move(collection), std::move(fields), std::move(done)};
    if (enqueue(reads_q_, p)) return;
    p.done(TallyResult{});
  }

  void close() override {
    {
      const std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    // From a callback (the writer itself) we cannot join; the loop drains the queue and exits on its own,
    // and the destructor joins later.
    if (std::this_thread::get_id() == writer_id_) return;
    const std::lock_guard lk(close_mu_);
    if (writer_.joinable()) writer_.join();
    release();
  }

  StoreStats stats() const override {
    return StoreStats{commits_.load(std::memory_order_relaxed), appends_.load(std::memory_order_relaxed)};
  }

 private:
  struct PendingAppend {
    AppendRequest req;
    std::function<void(AppendResult)> done;
  };
  struct PendingWrite {
    DocWrite w;
    std::function<void(DocResult)> done;
  };
  struct PendingLoad {
    std::string channel;
    std::size_t history_size = 0;
    std::function<void(core::ChannelSnapshot)> done;
  };
  struct PendingList {
    std::string collection;
    std::string owner;
    std::function<void(ListResult)> done;
  };
  struct PendingGet {
    std::string collection;
    std::string id;
    std::function<void(GetResult)> done;
  };
  struct PendingTally {
    std::string collection;
    TallyFields fields;
    std::function<void(TallyResult)> done;
  };
  // Appends and document writes share one queue: they are applied (and answered) in the order queued.
  using Mutation = std::variant<PendingAppend, PendingWrite>;
  using Outcome = std::variant<AppendResult, DocResult>;
  using Read = std::variant<PendingLoad, PendingList, PendingGet, PendingTally>;

  // What the writer knows of a channel. It is the only writer, so the cache is the truth as long as no
  // transaction failed (then it is dropped, since it may hold uncommitted offsets).
  struct ChannelState {
    std::int64_t id = 0;
    std::string epoch;
    std::uint64_t last_offset = 0;
    std::uint64_t last_tt = 0;     // timetoken of last_offset
    bool dirty = false;            // appended to in the current batch
    std::size_t history_size = 0;  // of the latest append in the batch: what to trim to
  };

  // A collection's tally as the writer knows it; dropped with the channels when a transaction fails.
  struct TallyState {
    bool present = false;  // the counts exist in the database (else: not a tally collection, so far)
    std::int64_t total = 0;
    TallyCounts counts;
  };
  // What a batch changed in one collection's tally.
  struct TallyTouch {
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> deltas;  // net change per (field, value)
    std::int64_t total_delta = 0;
    std::size_t last = 0;              // index (in the batch) of the collection's last applied tally write
    const DocWrite* last_write = nullptr;
  };
  struct Batch {
    std::int64_t now = 0;
    std::vector<ChannelState*> dirty;
    std::uint64_t appended = 0;
    std::map<std::string, TallyTouch> tallies;
  };
  struct StoredDoc {
    std::string owner;
    std::uint64_t v = 0;
    std::string data;
  };

  // Queues `item` (moving from it) unless the store is closing; false: closed, `item` untouched.
  template <class Q, class T>
  bool enqueue(std::vector<Q>& q, T& item) {
    std::unique_lock lk(mu_);
    if (stopping_) return false;
    const bool was_idle = mutations_q_.empty() && reads_q_.empty();
    q.emplace_back(std::move(item));
    order_q_.push_back(std::is_same_v<std::vector<Q>, decltype(reads_q_)>);
    lk.unlock();
    // A non-empty queue means the writer is awake or already woken: no need to signal again.
    if (was_idle) cv_.notify_one();
    return true;
  }

  // --- SQLite helpers (writer thread, or the constructor before the writer starts) ---

  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error("sqlite store: " + std::string(what) + ": " + sqlite3_errmsg(db_.get()));
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

  void run_stmt(const StmtPtr& s) const {
    const Use u(s);
    step(u);
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
        throw std::runtime_error("sqlite store: database schema version " + std::to_string(v) +
                                 " is newer than this build's (" + std::to_string(kSchemaVersion) + ")");
      }
      if (v == 0) {
        exec(std::string(kSchema).c_str());
        exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void release() {
    // Statements first: closing a connection with live statements would leave it a zombie.
    for (StmtPtr* s : {&begin_, &commit_, &rollback_, &select_channel_, &insert_channel_, &update_channel_,
                       &insert_pub_, &trim_pubs_, &select_pubs_, &select_key_, &insert_key_, &select_doc_key_,
                       &insert_doc_key_, &sweep_keys_, &select_doc_, &insert_doc_, &update_doc_, &delete_doc_,
                       &list_docs_, &list_owner_docs_, &select_total_, &select_counts_, &upsert_total_,
                       &upsert_count_, &delete_count_, &delete_counts_, &delete_total_}) {
      s->reset();
    }
    db_.reset();
  }

  // --- The writer ---

  void run() {
    std::vector<Mutation> mutations, run_mutations;
    std::vector<Read> reads, run_reads;
    std::vector<bool> order;
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !mutations_q_.empty() || !reads_q_.empty(); });
        if (mutations_q_.empty() && reads_q_.empty()) return;  // stopping, and everything queued is done
        mutations.swap(mutations_q_);
        reads.swap(reads_q_);
        order.swap(order_q_);
      }
      // Runs of writes, each followed by the reads queued after it (see the top of this file).
      std::size_t m = 0, r = 0, k = 0;
      while (k < order.size()) {
        for (; k < order.size() && !order[k]; ++k) run_mutations.push_back(std::move(mutations[m++]));
        for (; k < order.size() && order[k]; ++k) run_reads.push_back(std::move(reads[r++]));
        run_batch(run_mutations, run_reads);
        run_mutations.clear();
        run_reads.clear();
      }
      mutations.clear();
      reads.clear();
      order.clear();
    }
  }

  // Whether a read can run without writing (a channel row or a tally to create): those writes are done
  // in the batch's transaction, so a first subscribe or list costs no fsync of its own.
  bool read_ready(const Read& r) const {
    return std::visit(Overloaded{
                          [&](const PendingLoad& l) { return channels_.contains(l.channel); },
                          [&](const PendingList& l) { return channels_.contains(coll_channel(l.collection)); },
                          [&](const PendingGet&) { return true; },
                          [&](const PendingTally& t) {
                            const auto it = tallies_.find(t.collection);
                            return channels_.contains(tally_channel(t.collection)) && it != tallies_.end() &&
                                   it->second.present;
                          },
                      },
                      r);
  }

  void prepare_read(const Read& r) {
    std::visit(Overloaded{
                   [&](const PendingLoad& l) { channel(l.channel); },
                   [&](const PendingList& l) { channel(coll_channel(l.collection)); },
                   [&](const PendingGet&) {},
                   [&](const PendingTally& t) {
                     channel(tally_channel(t.collection));
                     tally_state(t.collection, true);
                   },
               },
               r);
  }

  void run_batch(std::vector<Mutation>& mutations, std::vector<Read>& reads) {
    if (channels_.size() > kMaxCachedChannels) channels_.clear();

    const bool reads_write =
        std::any_of(reads.begin(), reads.end(), [&](const Read& r) { return !read_ready(r); });

    std::vector<Outcome> results;
    results.reserve(mutations.size());
    if (!mutations.empty() || reads_write) {
      Batch b;
      try {
        run_stmt(begin_);
        b.now = common::now_ms();
        for (const Read& r : reads) prepare_read(r);
        for (std::size_t i = 0; i < mutations.size(); ++i) {
          if (auto* a = std::get_if<PendingAppend>(&mutations[i])) {
            results.emplace_back(append_one(a->req, b));
          } else {
            results.emplace_back(write_one(std::get<PendingWrite>(mutations[i]).w, i, b));
          }
        }
        finish_tallies(b, results);
        for (ChannelState* ch : b.dirty) finish_channel(*ch);
        const auto steady = std::chrono::steady_clock::now();
        const bool sweep = steady - last_sweep_ >= kIdempotencySweepEvery;
        if (sweep) {
          const Use u(sweep_keys_);
          bind(u, 1, b.now - kIdempotencyWindowMs);
          step(u);
        }
        run_stmt(commit_);
        if (sweep) last_sweep_ = steady;
        commits_.fetch_add(1, std::memory_order_relaxed);
        appends_.fetch_add(b.appended, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        // Some errors (SQLITE_FULL, IOERR) roll the transaction back by themselves; only an open one needs it.
        if (!sqlite3_get_autocommit(db_.get())) {
          const Use u(rollback_);
          sqlite3_step(u.get());
        }
        // The caches may hold offsets, channels and counts of the rolled-back transaction.
        channels_.clear();
        tallies_.clear();
        results.clear();
        for (const Mutation& m : mutations) {
          if (std::holds_alternative<PendingAppend>(m)) {
            results.emplace_back(AppendResult{false, e.what(), {}, {}, false});
          } else {
            DocResult r;
            r.status = DocResult::Status::failed;
            r.error = e.what();
            results.emplace_back(std::move(r));
          }
        }
      }
    }

    for (std::size_t i = 0; i < mutations.size(); ++i) {
      if (auto* a = std::get_if<PendingAppend>(&mutations[i])) {
        a->done(std::get<AppendResult>(std::move(results[i])));
      } else {
        std::get<PendingWrite>(mutations[i]).done(std::get<DocResult>(std::move(results[i])));
      }
    }
    for (Read& r : reads) {
      std::visit(Overloaded{
                     [&](PendingLoad& l) { l.done(snapshot(l.channel, l.history_size)); },
                     [&](PendingList& l) { l.done(list_docs(l.collection, l.owner)); },
                     [&](PendingGet& g) { g.done(get_doc(g.collection, g.id)); },
                     [&](PendingTally& t) { t.done(read_tally(t.collection, t.fields)); },
                 },
                 r);
    }
  }

  // The cached state of a channel, created (with its epoch) if the database has never seen it.
  ChannelState& channel(const std::string& name) {
    if (auto it = channels_.find(name); it != channels_.end()) return it->second;
    ChannelState st;
    {
      const Use u(select_channel_);
      bind(u, 1, name);
      if (step(u)) {
        st.id = sqlite3_column_int64(u.get(), 0);
        st.epoch = column_text(u.get(), 1);
        st.last_offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 2));
        st.last_tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 3));
      }
    }
    if (st.epoch.empty()) {
      st.epoch = common::random_hex(8);
      const Use u(insert_channel_);
      bind(u, 1, name);
      bind(u, 2, st.epoch);
      step(u);
      st.id = sqlite3_last_insert_rowid(db_.get());
    }
    return channels_.emplace(name, std::move(st)).first->second;
  }

  // Adds the next publication of a channel in the current transaction. `pub` carries everything but the
  // offset and timetoken, which are assigned here: the writer is the only one that assigns them for durable
  // channels, in queue order.
  core::PublicationPtr add_pub(Batch& b, ChannelState& ch, std::shared_ptr<core::Publication> pub,
                               std::size_t history_size) {
    pub->offset = ch.last_offset + 1;
    pub->tt = core::next_timetoken(ch.last_tt);
    // With no history kept the row would be trimmed in this same transaction: skip writing it.
    if (history_size > 0) {
      const Use u(insert_pub_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(pub->offset));
      bind(u, 3, pub->data);
      bind(u, 4, pub->from);
      bind(u, 5, pub->ts);
      bind(u, 6, pub->audience);
      bind(u, 7, to_i64(pub->tt));
      bind(u, 8, pub->uuid);
      bind(u, 9, pub->meta);
      bind(u, 10, pub->ctype);
      step(u);
    }
    ch.last_offset = pub->offset;
    ch.last_tt = pub->tt;
    ch.history_size = history_size;
    if (!ch.dirty) {
      ch.dirty = true;
      b.dirty.push_back(&ch);  // unordered_map nodes never move, so the pointer stays valid
    }
    return pub;
  }

  AppendResult append_one(const AppendRequest& req, Batch& b) {
    AppendResult r;
    r.ok = true;
    if (!req.key.empty()) {
      // Earlier appends of this batch are already in the transaction, so a duplicate in the same batch is
      // found here too.
      const Use u(select_key_);
      bind(u, 1, req.from);
      bind(u, 2, req.key);
      bind(u, 3, b.now - kIdempotencyWindowMs);
      if (step(u)) {
        auto pub = std::make_shared<core::Publication>();
        pub->offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0));
        pub->data = column_text(u.get(), 1);
        pub->from = req.from;
        pub->ts = sqlite3_column_int64(u.get(), 2);
        r.epoch = column_text(u.get(), 3);
        pub->tt = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 4));
        r.pub = std::move(pub);
        r.replayed = true;
        return r;
      }
    }

    ChannelState& ch = channel(req.channel);
    auto pub = std::make_shared<core::Publication>();
    pub->data = req.data;
    pub->from = req.from;
    pub->ts = req.ts;
    pub->uuid = req.uuid;
    pub->meta = req.meta;
    pub->ctype = req.ctype;
    r.pub = add_pub(b, ch, std::move(pub), req.history_size);
    if (!req.key.empty()) {
      const Use u(insert_key_);
      bind(u, 1, req.from);
      bind(u, 2, req.key);
      bind(u, 3, ch.id);
      bind(u, 4, to_i64(r.pub->offset));
      bind(u, 5, r.pub->data);
      bind(u, 6, r.pub->ts);
      bind(u, 7, b.now);
      bind(u, 8, to_i64(r.pub->tt));
      step(u);
    }
    ++b.appended;
    r.epoch = ch.epoch;
    return r;
  }

  std::optional<StoredDoc> find_doc(const std::string& collection, const std::string& id) {
    const Use u(select_doc_);
    bind(u, 1, collection);
    bind(u, 2, id);
    if (!step(u)) return std::nullopt;
    StoredDoc d;
    d.owner = column_text(u.get(), 0);
    d.v = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 1));
    d.data = column_text(u.get(), 2);
    return d;
  }

  // Logical failures (not_found, conflict, permission_denied) change nothing and leave the batch alone;
  // an exception (SQLite, a corrupt stored document) fails the whole batch.
  DocResult write_one(const DocWrite& w, std::size_t index, Batch& b) {
    using Op = DocWrite::Op;
    using Status = DocResult::Status;
    DocResult r;
    if (!w.key.empty()) {
      // Earlier writes of this batch are in the transaction: a duplicate in the same batch is found too.
      const Use u(select_doc_key_);
      bind(u, 1, w.user);
      bind(u, 2, w.key);
      bind(u, 3, b.now - kIdempotencyWindowMs);
      if (step(u)) {
        r.status = Status::ok;
        r.doc = column_text(u.get(), 0);
        r.v = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 1));
        r.replayed = true;
        return r;
      }
    }

    std::string id = w.id;
    std::optional<StoredDoc> cur;
    if (w.op == Op::create && id.empty()) {
      // 64 random bits: a collision is next to impossible, but costs only another draw.
      for (int attempt = 0; attempt < 8; ++attempt) {
        id = common::random_hex(8);
        cur = find_doc(w.collection, id);
        if (!cur) break;
      }
    } else {
      cur = find_doc(w.collection, id);
    }

    json::object old_attrs;
    json::object new_attrs;
    std::string owner;
    std::uint64_t v = 0;
    if (w.op == Op::create) {
      if (cur) {
        r.status = Status::conflict;
        r.doc = std::move(cur->data);
        return r;
      }
      new_attrs = attributes(w.data);
      owner = w.user;
      v = 1;
    } else {
      if (!cur) {
        // A client that names the version it saw learns that the document is gone (PROTOCOL §5).
        if (w.expected_v) {
          r.status = Status::conflict;
          r.doc = "null";
        } else {
          r.status = Status::not_found;
        }
        return r;
      }
      if (w.owner_only && cur->owner != w.user) {
        r.status = Status::permission_denied;
        return r;
      }
      if (w.expected_v && *w.expected_v != cur->v) {
        r.status = Status::conflict;
        r.doc = std::move(cur->data);
        return r;
      }
      old_attrs = attributes(parse_object(cur->data));
      owner = cur->owner;
      if (w.op == Op::update) {
        new_attrs = attributes(w.data);
      } else if (w.op == Op::patch) {
        new_attrs = old_attrs;
        for (const auto& kv : w.data) {
          if (reserved(kv.key())) continue;
          if (kv.value().is_null()) {
            new_attrs.stable_erase(kv.key());  // keeps the other attributes in their order
          } else {
            new_attrs[kv.key()] = kv.value();
          }
        }
      }
      v = w.op == Op::remove ? cur->v : cur->v + 1;
    }
    // A patch can grow a document past the limit the service checked on the data alone.
    if (w.op == Op::patch && json::serialize(new_attrs).size() > kMaxDocument) {
      r.status = Status::too_large;
      return r;
    }

    // Before the document changes: a first tally write recounts the documents as they were.
    TallyState* st = nullptr;
    if (!w.tally.empty()) {
      st = &tally_state(w.collection, true);
    } else {
      drop_tally(w.collection, b);
    }

    std::string change;
    if (w.op == Op::remove) {
      const Use u(delete_doc_);
      bind(u, 1, w.collection);
      bind(u, 2, id);
      step(u);
      json::object c;
      c["type"] = "delete";
      c["id"] = id;
      c["_v"] = v;
      change = json::serialize(c);
    } else {
      r.doc = doc_text(new_attrs, id, v, owner);
      const Use u(w.op == Op::create ? insert_doc_ : update_doc_);
      bind(u, 1, w.collection);
      bind(u, 2, id);
      if (w.op == Op::create) {
        bind(u, 3, owner);
        bind(u, 4, to_i64(v));
        bind(u, 5, r.doc);
      } else {
        bind(u, 3, to_i64(v));
        bind(u, 4, r.doc);
      }
      step(u);
      change = R"({"type":"upsert","doc":)" + r.doc + "}";
    }

    if (st) {
      TallyTouch& touch = b.tallies[w.collection];
      if (w.op != Op::create) count(*st, touch, old_attrs, -1);
      if (w.op != Op::remove) count(*st, touch, new_attrs, +1);
      touch.last = index;
      touch.last_write = &w;
    }

    ChannelState& ch = channel(coll_channel(w.collection));
    auto pub = std::make_shared<core::Publication>();
    pub->data = std::move(change);
    pub->from = w.user;
    pub->ts = b.now;
    if (w.owner_audience) pub->audience = owner;
    r.change = add_pub(b, ch, std::move(pub), w.history_size);

    if (!w.key.empty()) {
      const Use u(insert_doc_key_);
      bind(u, 1, w.user);
      bind(u, 2, w.key);
      bind(u, 3, r.doc);
      bind(u, 4, to_i64(v));
      bind(u, 5, b.now);
      step(u);
    }
    r.status = Status::ok;
    r.v = v;
    return r;
  }

  // --- Tallies ---

  // Adds (sign +1) or removes (-1) one document's attributes to/from a tally.
  static void count(TallyState& st, TallyTouch& touch, const json::object& attrs, int sign) {
    for (const auto& kv : attrs) {
      const auto value = tally_value(kv.value());
      if (!value) continue;
      const std::string field(kv.key());
      st.counts[field][*value] += sign;
      touch.deltas[{field, *value}] += sign;
    }
    st.total += sign;
    touch.total_delta += sign;
  }

  // A collection's tally, loaded from the database if not cached. With `materialize`, a collection
  // without counts gets them now, recounted from its documents (its first tally write, or a tally
  // collection written before it was declared one).
  TallyState& tally_state(const std::string& collection, bool materialize) {
    auto it = tallies_.find(collection);
    if (it != tallies_.end() && (it->second.present || !materialize)) return it->second;
    TallyState st;
    {
      const Use u(select_total_);
      bind(u, 1, collection);
      if (step(u)) {
        st.present = true;
        st.total = sqlite3_column_int64(u.get(), 0);
      }
    }
    if (st.present) {
      const Use u(select_counts_);
      bind(u, 1, collection);
      while (step(u)) {
        st.counts[column_text(u.get(), 0)][sqlite3_column_int64(u.get(), 1)] = sqlite3_column_int64(u.get(), 2);
      }
    } else if (materialize) {
      TallyTouch scratch;
      {
        const Use u(list_docs_);
        bind(u, 1, collection);
        while (step(u)) count(st, scratch, attributes(parse_object(column_text(u.get(), 0))), +1);
      }
      // Stale rows first (an interrupted earlier attempt outside a transaction), the total last: only a
      // complete set of counts ever has a total.
      {
        const Use u(delete_counts_);
        bind(u, 1, collection);
        step(u);
      }
      for (const auto& [field, values] : st.counts) {
        for (const auto& [value, n] : values) {
          if (n != 0) write_count(collection, field, value, n);
        }
      }
      {
        const Use u(upsert_total_);
        bind(u, 1, collection);
        bind(u, 2, st.total);
        step(u);
      }
      st.present = true;
    }
    if (it != tallies_.end()) {
      it->second = std::move(st);
      return it->second;
    }
    return tallies_.emplace(collection, std::move(st)).first->second;
  }

  void write_count(const std::string& collection, const std::string& field, std::int64_t value, std::int64_t n) {
    if (n == 0) {
      const Use u(delete_count_);
      bind(u, 1, collection);
      bind(u, 2, field);
      bind(u, 3, value);
      step(u);
    } else {
      const Use u(upsert_count_);
      bind(u, 1, collection);
      bind(u, 2, field);
      bind(u, 3, value);
      bind(u, 4, n);
      step(u);
    }
  }

  // A write without tally fields to a collection that has counts: it is no longer a tally collection
  // (the configuration changed), and counts not kept up to date must not survive. They are recounted if
  // it becomes one again.
  void drop_tally(const std::string& collection, Batch& b) {
    TallyState& st = tally_state(collection, false);
    if (!st.present) return;
    {
      const Use u(delete_counts_);
      bind(u, 1, collection);
      step(u);
    }
    {
      const Use u(delete_total_);
      bind(u, 1, collection);
      step(u);
    }
    st = TallyState{};
    b.tallies.erase(collection);
  }

  // Once per tally collection per batch: persist the changed counts and publish the tally once, on the
  // batch's last write of the collection.
  void finish_tallies(Batch& b, std::vector<Outcome>& results) {
    for (auto& [collection, touch] : b.tallies) {
      const TallyState& st = tallies_.at(collection);
      const TallyFields& fields = touch.last_write->tally;
      bool visible = touch.total_delta != 0;
      for (const auto& [fv, delta] : touch.deltas) {
        if (delta == 0) continue;
        const auto& [field, value] = fv;
        const auto fit = st.counts.find(field);
        write_count(collection, field, value, fit == st.counts.end() ? 0 : fit->second.at(value));
        if (const auto dit = fields.find(field);
            dit != fields.end() && std::find(dit->second.begin(), dit->second.end(), value) != dit->second.end()) {
          visible = true;
        }
      }
      if (touch.total_delta != 0) {
        const Use u(upsert_total_);
        bind(u, 1, collection);
        bind(u, 2, st.total);
        step(u);
      }
      // Writes that left the published tally as it was (an update to the same values) publish nothing.
      if (!visible) continue;
      ChannelState& ch = channel(tally_channel(collection));
      auto pub = std::make_shared<core::Publication>();
      pub->data = tally_json(st, fields);
      pub->ts = b.now;
      std::get<DocResult>(results[touch.last]).tally = add_pub(b, ch, std::move(pub), touch.last_write->history_size);
    }
  }

  static std::string tally_json(const TallyState& st, const TallyFields& fields) {
    return detail::tally_json(st.total, st.counts, fields);
  }

  // Once per channel per batch: persist the last offset and trim, instead of once per append.
  void finish_channel(ChannelState& ch) {
    ch.dirty = false;
    {
      const Use u(update_channel_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(ch.last_offset));
      bind(u, 3, to_i64(ch.last_tt));
      step(u);
    }
    if (ch.last_offset > ch.history_size) {
      const Use u(trim_pubs_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(ch.last_offset - ch.history_size));
      step(u);
    }
  }

  // --- Reads (after the batch's commit; a failed batch leaves them to create what they need alone) ---

  core::ChannelSnapshot snapshot(const std::string& name, std::size_t history_size) {
    try {
      // Normally cached by the batch transaction; after a failed one this creates the row on its own.
      const ChannelState& ch = channel(name);
      core::ChannelSnapshot snap;
      snap.epoch = ch.epoch;
      snap.offset = ch.last_offset;
      snap.last_tt = ch.last_tt;
      if (history_size > 0) {
        const Use u(select_pubs_);
        bind(u, 1, ch.id);
        bind(u, 2, to_i64(history_size));
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
          snap.pubs.push_back(std::move(pub));
        }
        std::reverse(snap.pubs.begin(), snap.pubs.end());  // read newest first for the LIMIT; ascending out
      }
      return snap;
    } catch (const std::exception&) {
      return core::ChannelSnapshot{};  // empty epoch: failed
    }
  }

  ListResult list_docs(const std::string& collection, const std::string& owner) {
    try {
      const ChannelState& ch = channel(coll_channel(collection));
      ListResult r;
      r.offset = ch.last_offset;
      r.epoch = ch.epoch;
      const Use u(owner.empty() ? list_docs_ : list_owner_docs_);
      bind(u, 1, collection);
      if (!owner.empty()) bind(u, 2, owner);
      while (step(u)) r.docs.push_back(column_text(u.get(), 0));
      r.ok = true;
      return r;
    } catch (const std::exception&) {
      return ListResult{};
    }
  }

  GetResult get_doc(const std::string& collection, const std::string& id) {
    try {
      GetResult r;
      if (auto d = find_doc(collection, id)) {
        r.found = true;
        r.doc = std::move(d->data);
        r.owner = std::move(d->owner);
      }
      r.ok = true;
      return r;
    } catch (const std::exception&) {
      return GetResult{};
    }
  }

  TallyResult read_tally(const std::string& collection, const TallyFields& fields) {
    try {
      const ChannelState& ch = channel(tally_channel(collection));
      TallyResult r;
      r.tally = tally_json(tally_state(collection, true), fields);
      r.offset = ch.last_offset;
      r.epoch = ch.epoch;
      r.ok = true;
      return r;
    } catch (const std::exception&) {
      tallies_.erase(collection);  // a half-made recount must not be served later
      return TallyResult{};
    }
  }

  DbPtr db_;
  StmtPtr begin_, commit_, rollback_;
  StmtPtr select_channel_, insert_channel_, update_channel_;
  StmtPtr insert_pub_, trim_pubs_, select_pubs_;
  StmtPtr select_key_, insert_key_, select_doc_key_, insert_doc_key_, sweep_keys_;
  StmtPtr select_doc_, insert_doc_, update_doc_, delete_doc_, list_docs_, list_owner_docs_;
  StmtPtr select_total_, select_counts_, upsert_total_, upsert_count_, delete_count_, delete_counts_,
      delete_total_;

  // Writer-thread state.
  std::unordered_map<std::string, ChannelState> channels_;
  std::unordered_map<std::string, TallyState> tallies_;  // per collection written or tallied
  std::chrono::steady_clock::time_point last_sweep_{};  // the epoch: the first batch sweeps

  std::mutex mu_;  // guards the queues and stopping_
  std::condition_variable cv_;
  std::vector<Mutation> mutations_q_;
  std::vector<Read> reads_q_;
  std::vector<bool> order_q_;  // queue order across both queues: true = the next item is a read
  bool stopping_ = false;

  std::mutex close_mu_;  // serializes concurrent close() calls around the join
  std::thread writer_;
  std::thread::id writer_id_;  // set once; reading writer_ while another close() joins would race

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> appends_{0};
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts) { return std::make_unique<SqliteStore>(opts); }

}  // namespace rtsync::store
