// The SQLite store: durable channel history (offsets, epochs, kept publications) and idempotency keys in
// one WAL-mode database file. One writer thread owns the connection; append() and load() only queue, so
// I/O threads never wait on the disk. The writer takes everything queued at once and commits all of its
// appends in one transaction (group commit): concurrent publishers share one fsync, which is what makes
// synchronous=full affordable. Loads of the batch run after that commit, so a load reflects exactly the
// appends whose callbacks ran before its own.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/random.hpp"
#include "store/store.hpp"

namespace rtsync::store {
namespace {

constexpr int kSchemaVersion = 1;

// Another process (a backup, the sqlite3 shell) may hold the write lock for a moment. Waiting longer than
// this would stall every publisher behind one batch; failing the batch lets clients retry instead.
constexpr int kBusyTimeoutMs = 5000;

// PROTOCOL §5: a retry with the same key by the same user within 24 h returns the first result.
constexpr std::int64_t kIdempotencyWindowMs = 24LL * 60 * 60 * 1000;
// Expired keys are harmless until then (lookups filter by age), so sweep rarely instead of every batch.
constexpr auto kIdempotencySweepEvery = std::chrono::minutes(1);

// The channel cache saves a SELECT per append; past this many entries it is dropped and refilled on
// demand, so a flood of distinct channel names cannot grow memory without bound.
constexpr std::size_t kMaxCachedChannels = 100000;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS channels(
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL,
  epoch TEXT NOT NULL,
  last_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pubs(
  channel_id INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  data TEXT NOT NULL,
  sender TEXT NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY(channel_id, offset)) WITHOUT ROWID;
-- data and pub_ts are copies of the publication: a replay must answer even after trimming removed it.
-- ts is when the key was recorded (the store's clock) and decides expiry.
CREATE TABLE IF NOT EXISTS idempotency(
  user TEXT NOT NULL,
  key TEXT NOT NULL,
  channel_id INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  data TEXT NOT NULL,
  pub_ts INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY(user, key)) WITHOUT ROWID;
-- Lets the periodic sweep delete expired keys without scanning a day's worth of them.
CREATE INDEX IF NOT EXISTS idempotency_ts ON idempotency(ts);
)sql";

std::int64_t to_i64(std::uint64_t v) {
  return v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(v);
}

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
    select_channel_ = prepare("SELECT id, epoch, last_offset FROM channels WHERE name = ?1");
    insert_channel_ = prepare("INSERT INTO channels(name, epoch, last_offset) VALUES(?1, ?2, 0)");
    update_channel_ = prepare("UPDATE channels SET last_offset = ?2 WHERE id = ?1");
    insert_pub_ = prepare("INSERT INTO pubs(channel_id, offset, data, sender, ts) VALUES(?1, ?2, ?3, ?4, ?5)");
    trim_pubs_ = prepare("DELETE FROM pubs WHERE channel_id = ?1 AND offset <= ?2");
    select_pubs_ = prepare(
        "SELECT offset, data, sender, ts FROM pubs WHERE channel_id = ?1 ORDER BY offset DESC LIMIT ?2");
    select_key_ = prepare(
        "SELECT i.offset, i.data, i.pub_ts, c.epoch FROM idempotency i JOIN channels c ON c.id = i.channel_id "
        "WHERE i.user = ?1 AND i.key = ?2 AND i.ts >= ?3");
    // REPLACE: an expired row for the same (user, key) may still be there until the next sweep.
    insert_key_ = prepare(
        "INSERT OR REPLACE INTO idempotency(user, key, channel_id, offset, data, pub_ts, ts) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    sweep_keys_ = prepare("DELETE FROM idempotency WHERE ts < ?1");

    writer_ = std::thread([this] { run(); });
    writer_id_ = writer_.get_id();
  }

  ~SqliteStore() override { close(); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void append(AppendRequest req, std::function<void(AppendResult)> done) override {
    {
      std::unique_lock lk(mu_);
      if (!stopping_) {
        const bool was_idle = appends_q_.empty() && loads_q_.empty();
        appends_q_.push_back({std::move(req), std::move(done)});
        lk.unlock();
        // A non-empty queue means the writer is awake or already woken: no need to signal again.
        if (was_idle) cv_.notify_one();
        return;
      }
    }
    AppendResult r;
    r.error = "store is closed";
    done(std::move(r));
  }

  void load(std::string channel, std::size_t history_size,
            std::function<void(core::ChannelSnapshot)> done) override {
    {
      std::unique_lock lk(mu_);
      if (!stopping_) {
        const bool was_idle = appends_q_.empty() && loads_q_.empty();
        loads_q_.push_back({std::move(channel), history_size, std::move(done)});
        lk.unlock();
        if (was_idle) cv_.notify_one();
        return;
      }
    }
    done(core::ChannelSnapshot{});  // an empty epoch tells the caller the load failed
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
  struct PendingLoad {
    std::string channel;
    std::size_t history_size = 0;
    std::function<void(core::ChannelSnapshot)> done;
  };
  // What the writer knows of a channel. It is the only writer, so the cache is the truth as long as no
  // transaction failed (then it is dropped, since it may hold uncommitted offsets).
  struct ChannelState {
    std::int64_t id = 0;
    std::string epoch;
    std::uint64_t last_offset = 0;
    bool dirty = false;            // appended to in the current batch
    std::size_t history_size = 0;  // of the latest append in the batch: what to trim to
  };

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
                       &insert_pub_, &trim_pubs_, &select_pubs_, &select_key_, &insert_key_, &sweep_keys_}) {
      s->reset();
    }
    db_.reset();
  }

  // --- The writer ---

  void run() {
    std::vector<PendingAppend> appends;
    std::vector<PendingLoad> loads;
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !appends_q_.empty() || !loads_q_.empty(); });
        if (appends_q_.empty() && loads_q_.empty()) return;  // stopping, and everything queued is done
        appends.swap(appends_q_);
        loads.swap(loads_q_);
      }
      run_batch(appends, loads);
      appends.clear();
      loads.clear();
    }
  }

  void run_batch(std::vector<PendingAppend>& appends, std::vector<PendingLoad>& loads) {
    if (channels_.size() > kMaxCachedChannels) channels_.clear();

    // A load of a channel not yet known may create its row: do that in the batch's transaction too, so
    // a first subscribe costs no fsync of its own.
    const bool new_channel_loads = std::any_of(loads.begin(), loads.end(), [&](const PendingLoad& l) {
      return channels_.find(l.channel) == channels_.end();
    });

    std::vector<AppendResult> results(appends.size());
    if (!appends.empty() || new_channel_loads) {
      std::vector<ChannelState*> dirty;
      try {
        run_stmt(begin_);
        const std::int64_t now = common::now_ms();
        for (const PendingLoad& l : loads) channel(l.channel);
        std::uint64_t appended = 0;
        for (std::size_t i = 0; i < appends.size(); ++i) {
          results[i] = append_one(appends[i].req, now, dirty, appended);
        }
        for (ChannelState* ch : dirty) finish_channel(*ch);
        const auto steady = std::chrono::steady_clock::now();
        const bool sweep = steady - last_sweep_ >= kIdempotencySweepEvery;
        if (sweep) {
          const Use u(sweep_keys_);
          bind(u, 1, now - kIdempotencyWindowMs);
          step(u);
        }
        run_stmt(commit_);
        if (sweep) last_sweep_ = steady;
        commits_.fetch_add(1, std::memory_order_relaxed);
        appends_.fetch_add(appended, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        // Some errors (SQLITE_FULL, IOERR) roll the transaction back by themselves; only an open one needs it.
        if (!sqlite3_get_autocommit(db_.get())) {
          const Use u(rollback_);
          sqlite3_step(u.get());
        }
        // The cache may hold offsets and channels of the rolled-back transaction.
        channels_.clear();
        for (AppendResult& r : results) r = AppendResult{false, e.what(), {}, {}, false};
      }
    }

    for (std::size_t i = 0; i < appends.size(); ++i) appends[i].done(std::move(results[i]));
    for (PendingLoad& l : loads) l.done(snapshot(l.channel, l.history_size));
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

  AppendResult append_one(const AppendRequest& req, std::int64_t now, std::vector<ChannelState*>& dirty,
                          std::uint64_t& appended) {
    AppendResult r;
    r.ok = true;
    if (!req.key.empty()) {
      // Earlier appends of this batch are already in the transaction, so a duplicate in the same batch is
      // found here too.
      const Use u(select_key_);
      bind(u, 1, req.from);
      bind(u, 2, req.key);
      bind(u, 3, now - kIdempotencyWindowMs);
      if (step(u)) {
        auto pub = std::make_shared<core::Publication>();
        pub->offset = static_cast<std::uint64_t>(sqlite3_column_int64(u.get(), 0));
        pub->data = column_text(u.get(), 1);
        pub->from = req.from;
        pub->ts = sqlite3_column_int64(u.get(), 2);
        r.epoch = column_text(u.get(), 3);
        r.pub = std::move(pub);
        r.replayed = true;
        return r;
      }
    }

    ChannelState& ch = channel(req.channel);
    auto pub = std::make_shared<core::Publication>();
    pub->offset = ch.last_offset + 1;
    pub->data = req.data;
    pub->from = req.from;
    pub->ts = req.ts;
    // With no history kept the row would be trimmed in this same transaction: skip writing it.
    if (req.history_size > 0) {
      const Use u(insert_pub_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(pub->offset));
      bind(u, 3, pub->data);
      bind(u, 4, pub->from);
      bind(u, 5, pub->ts);
      step(u);
    }
    if (!req.key.empty()) {
      const Use u(insert_key_);
      bind(u, 1, req.from);
      bind(u, 2, req.key);
      bind(u, 3, ch.id);
      bind(u, 4, to_i64(pub->offset));
      bind(u, 5, pub->data);
      bind(u, 6, pub->ts);
      bind(u, 7, now);
      step(u);
    }
    ch.last_offset = pub->offset;
    ch.history_size = req.history_size;
    if (!ch.dirty) {
      ch.dirty = true;
      dirty.push_back(&ch);  // unordered_map nodes never move, so the pointer stays valid
    }
    ++appended;
    r.epoch = ch.epoch;
    r.pub = std::move(pub);
    return r;
  }

  // Once per channel per batch: persist the last offset and trim, instead of once per append.
  void finish_channel(ChannelState& ch) {
    ch.dirty = false;
    {
      const Use u(update_channel_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(ch.last_offset));
      step(u);
    }
    if (ch.last_offset > ch.history_size) {
      const Use u(trim_pubs_);
      bind(u, 1, ch.id);
      bind(u, 2, to_i64(ch.last_offset - ch.history_size));
      step(u);
    }
  }

  core::ChannelSnapshot snapshot(const std::string& name, std::size_t history_size) {
    try {
      // Normally cached by the batch transaction; after a failed one this creates the row on its own.
      const ChannelState& ch = channel(name);
      core::ChannelSnapshot snap;
      snap.epoch = ch.epoch;
      snap.offset = ch.last_offset;
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
          snap.pubs.push_back(std::move(pub));
        }
        std::reverse(snap.pubs.begin(), snap.pubs.end());  // read newest first for the LIMIT; ascending out
      }
      return snap;
    } catch (const std::exception&) {
      return core::ChannelSnapshot{};  // empty epoch: failed
    }
  }

  DbPtr db_;
  StmtPtr begin_, commit_, rollback_;
  StmtPtr select_channel_, insert_channel_, update_channel_;
  StmtPtr insert_pub_, trim_pubs_, select_pubs_;
  StmtPtr select_key_, insert_key_, sweep_keys_;

  // Writer-thread state.
  std::unordered_map<std::string, ChannelState> channels_;
  std::chrono::steady_clock::time_point last_sweep_{};  // the epoch: the first batch sweeps

  std::mutex mu_;  // guards the queues and stopping_
  std::condition_variable cv_;
  std::vector<PendingAppend> appends_q_;
  std::vector<PendingLoad> loads_q_;
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
