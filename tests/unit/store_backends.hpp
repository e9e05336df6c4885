// The store backends the store test-suites run against (value-parameterized by backend name): SQLite on
// a file in a fresh directory, PostgreSQL in a fresh schema of the test server. The PostgreSQL server is
// real: ctest starts one under the build directory (tests/cluster/pg.sh, fixture `pg`) and names that
// directory in RTSYNC_TEST_PG_DIR (the script leaves the connection string in DIR/conninfo); run by hand
// without it, the suite starts its own and stops it at exit. It is never skipped: a missing server is a
// failure.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/random.hpp"
#include "store/store.hpp"

namespace rtsync::store::backends {

namespace fs = std::filesystem;

// Each test gets its own database: a file, or a schema. Opening twice reaches the same data (a restart).
class Backend {
 public:
  virtual ~Backend() = default;
  std::unique_ptr<Store> open() { return open(QueryIndexes{}); }
  // Opens with these query indexes (SqliteOptions/PostgresOptions::indexes).
  virtual std::unique_ptr<Store> open(const QueryIndexes& indexes) = 0;
  // Runs SQL directly on the database (portable statements only), to inspect or tamper with it.
  virtual void sql(const std::string& text) = 0;
  // The integer that a query of one row and one column answers (e.g. a count).
  virtual std::int64_t scalar(const std::string& query) = 0;
  // Makes any INSERT into `table` whose `column` equals `value` (an SQL literal) fail with "boom trigger".
  virtual void fail_inserts(const std::string& table, const std::string& column, const std::string& value) = 0;
  // Marks the database as written by a newer build.
  virtual void set_schema_version(int v) = 0;
  // The plan of a query, one line per node (SQLite: EXPLAIN QUERY PLAN's details; PostgreSQL: EXPLAIN
  // with the parameters bound, as text).
  virtual std::string explain(const std::string& query, const std::vector<std::string>& params) = 0;

  // What open() gives the store as its webhooks (SqliteOptions/PostgresOptions::webhooks).
  std::vector<WebhookRoute> webhooks;
};

class SqliteBackend final : public Backend {
 public:
  explicit SqliteBackend(std::string synchronous) : synchronous_(std::move(synchronous)) {
    dir_ = fs::temp_directory_path() / ("rtsync-store-test-" + common::random_hex(8));
    fs::create_directories(dir_);
    file_ = dir_ / "rtsync.db";
  }
  ~SqliteBackend() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  using Backend::open;
  std::unique_ptr<Store> open(const QueryIndexes& indexes) override {
    SqliteOptions o;
    o.file = file_;
    o.synchronous = synchronous_;
    o.indexes = indexes;
    o.webhooks = webhooks;
    return open_sqlite(o);
  }
  // Unbound parameters are NULL: the plan is the same.
  std::string explain(const std::string& query, const std::vector<std::string>&) override {
    sqlite3* db = nullptr;
    sqlite3_stmt* st = nullptr;
    std::string out;
    EXPECT_EQ(sqlite3_open(file_.string().c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + query).c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      out += '\n';
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  void sql(const std::string& text) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file_.string().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }
  std::int64_t scalar(const std::string& query) override {
    sqlite3* db = nullptr;
    sqlite3_stmt* st = nullptr;
    std::int64_t v = -1;
    if (sqlite3_open(file_.string().c_str(), &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    EXPECT_NE(v, -1) << query << ": " << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  void fail_inserts(const std::string& table, const std::string& column, const std::string& value) override {
    sql("CREATE TRIGGER boom BEFORE INSERT ON " + table + " WHEN NEW." + column + " = " + value +
        " BEGIN SELECT RAISE(ABORT, 'boom trigger'); END");
  }
  void set_schema_version(int v) override { sql("PRAGMA user_version = " + std::to_string(v)); }

  const fs::path& dir() const { return dir_; }
  fs::path& file() { return file_; }

 private:
  std::string synchronous_;
  fs::path dir_;
  fs::path file_;
};

// The test server: from RTSYNC_TEST_PG, or started here (once per process) and stopped at exit.
inline const std::string& pg_conninfo() {
  struct Server {
    std::string conninfo;
    fs::path dir;
    Server() {
      if (const char* env = std::getenv("RTSYNC_TEST_PG_DIR"); env && *env) {
        std::ifstream in(fs::path(env) / "conninfo");
        if (!std::getline(in, conninfo) || conninfo.empty()) {
          throw std::runtime_error(std::string("no PostgreSQL test server in ") + env + " (ctest fixture pg)");
        }
        return;
      }
      const char* script = std::getenv("RTSYNC_PG_SCRIPT");
      const std::string pg_sh = script ? script : RTSYNC_SOURCE_DIR "/tests/cluster/pg.sh";
      dir = fs::temp_directory_path() / ("rtsync-pg-" + common::random_hex(4));
      const std::string cmd = "bash '" + pg_sh + "' start '" + dir.string() + "' 2>&1";
      std::string out;
      if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[512];
        while (fgets(buf, sizeof buf, p)) out += buf;
        if (pclose(p) != 0) throw std::runtime_error("cannot start PostgreSQL for the tests:\n" + out);
      }
      // The script's last line is the connection string.
      while (!out.empty() && out.back() == '\n') out.pop_back();
      conninfo = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    }
    ~Server() {
      if (dir.empty()) return;
      const std::string pg_sh = RTSYNC_SOURCE_DIR "/tests/cluster/pg.sh";
      const std::string cmd = "bash '" + pg_sh + "' stop '" + dir.string() + "' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop the test PostgreSQL\n");
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  };
  static Server server;
  return server.conninfo;
}

class PostgresBackend final : public Backend {
 public:
  PostgresBackend() : schema_("t_" + common::random_hex(6)) {
    admin("CREATE SCHEMA " + schema_);
  }
  ~PostgresBackend() override { admin("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"); }

  using Backend::open;
  std::unique_ptr<Store> open(const QueryIndexes& indexes) override {
    return open_postgres(PostgresOptions{conninfo(), indexes, webhooks});
  }
  std::string explain(const std::string& query, const std::vector<std::string>& params) override {
    PGconn* c = PQconnectdb(conninfo().c_str());
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(c, ("EXPLAIN " + query).c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    std::string out;
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    for (int i = 0; i < PQntuples(r); ++i) {
      out += PQgetvalue(r, i, 0);
      out += '\n';
    }
    PQclear(r);
    PQfinish(c);
    return out;
  }
  void sql(const std::string& text) override { run(conninfo(), text); }
  std::int64_t scalar(const std::string& query) override {
    PGconn* c = PQconnectdb(conninfo().c_str());
    PGresult* r = PQexec(c, query.c_str());
    std::int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) v = std::strtoll(PQgetvalue(r, 0, 0), nullptr, 10);
    EXPECT_NE(v, -1) << query << ": " << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    return v;
  }
  void fail_inserts(const std::string& table, const std::string& column, const std::string& value) override {
    sql("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW." + column + " = " + value +
        " THEN RAISE EXCEPTION 'boom trigger'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
    sql("CREATE TRIGGER boom BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION boom()");
  }
  void set_schema_version(int v) override {
    sql("INSERT INTO rtsync_schema(version) VALUES(" + std::to_string(v) + ")");
  }

  // The connection string that puts this test's schema first on the search path.
  std::string conninfo() const { return pg_conninfo() + " options='-csearch_path=" + schema_ + "'"; }

 private:
  static void run(const std::string& conninfo, const std::string& text) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, text.c_str());
    const auto st = PQresultStatus(r);
    const std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    ASSERT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << text << ": " << msg;
  }
  void admin(const std::string& text) { run(pg_conninfo(), text); }

  std::string schema_;
};

inline std::unique_ptr<Backend> make_backend(const std::string& name, const std::string& synchronous = "full") {
  if (name == "postgres") return std::make_unique<PostgresBackend>();
  return std::make_unique<SqliteBackend>(synchronous);
}

inline const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names{"sqlite", "postgres"};
  return names;
}

}  // namespace rtsync::store::backends
