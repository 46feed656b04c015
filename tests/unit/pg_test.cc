// PostgreSQL access layer against the real dev server: transactions commit or roll back as the
// callback says, errors become statuses (never exceptions), migrations apply once.
#include "common/pg.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "common/status.h"
#include "test_env.h"

namespace chat {
namespace {

using chat::testing::FreshDatabase;
using chat::testing::TestPostgres;

void DropDatabase(const std::string& name) {
  pqxx::connection c(TestPostgres().ConnInfo("postgres"));
  pqxx::nontransaction n(c);
  n.exec("DROP DATABASE IF EXISTS " + c.quote_name(name));
}

constexpr char kInsert[] = "unit_insert_kv";
constexpr char kCount[] = "unit_count_kv";

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = FreshDatabase("unit_pg");
    {
      pqxx::connection c(TestPostgres().ConnInfo(db_));
      pqxx::nontransaction n(c);
      n.exec("CREATE TABLE kv (k text PRIMARY KEY, v bigint NOT NULL)");
    }
    pool_ = std::make_unique<PgPool>(TestPostgres().ConnInfo(db_), 2, [](pqxx::connection& c) {
      c.prepare(kInsert, "INSERT INTO kv (k, v) VALUES ($1, $2)");
      c.prepare(kCount, "SELECT count(*) FROM kv WHERE k = $1");
    });
  }
  void TearDown() override {
    pool_.reset();
    DropDatabase(db_);
  }
  int64_t Count(const std::string& key) {
    int64_t n = -1;
    auto st = WithTransaction(
        *pool_,
        [&](pqxx::work& w) {
          n = w.exec_prepared1(kCount, key)[0].as<int64_t>();
          return OkStatus();
        },
        "count");
    EXPECT_TRUE(st.ok()) << st.message();
    return n;
  }

  std::string db_;
  std::unique_ptr<PgPool> pool_;
};

TEST_F(PgTest, CommitsWhenFnReturnsOk) {
  auto st = WithTransaction(
      *pool_,
      [](pqxx::work& w) {
        w.exec_prepared0(kInsert, "a", 1);
        w.exec_prepared0(kInsert, "b", 2);
        return OkStatus();
      },
      "insert");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(Count("a"), 1);
  EXPECT_EQ(Count("b"), 1);
}

TEST_F(PgTest, RollsBackWhenFnReturnsAnError) {
  auto st = WithTransaction(
      *pool_,
      [](pqxx::work& w) {
        w.exec_prepared0(kInsert, "gone", 1);
        return FailedPrecondition("not a member of this group");
      },
      "insert then refuse");
  EXPECT_EQ(st.code(), v1::FAILED_PRECONDITION);
  EXPECT_EQ(st.message(), "not a member of this group");
  EXPECT_EQ(Count("gone"), 0);
}

TEST_F(PgTest, SqlErrorIsInternalAndThePoolStaysUsable) {
  ASSERT_TRUE(WithTransaction(
                  *pool_,
                  [](pqxx::work& w) {
                    w.exec_prepared0(kInsert, "dup", 1);
                    return OkStatus();
                  },
                  "first")
                  .ok());
  Status st;
  EXPECT_NO_THROW(st = WithTransaction(
                      *pool_,
                      [](pqxx::work& w) {
                        w.exec_prepared0(kInsert, "other", 1);
                        w.exec_prepared0(kInsert, "dup", 2);  // unique violation
                        return OkStatus();
                      },
                      "duplicate"));
  EXPECT_EQ(st.code(), v1::INTERNAL);
  EXPECT_EQ(st.message(), "internal error") << "no SQL detail leaks to callers";
  EXPECT_EQ(Count("other"), 0) << "the failed transaction wrote nothing";
  // Every pooled connection still works afterwards.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Count("dup"), 1);
}

TEST_F(PgTest, OrderedCommitRunsAfterCommitOnlyOnceCommittedAndUnderTheMutex) {
  std::mutex order;
  int after = 0;
  bool held = false;
  auto fn_ok = [](pqxx::work& w) {
    w.exec_prepared0(kInsert, "ordered", 1);
    return OkStatus();
  };
  auto st = WithOrderedCommit(
      *pool_, order, fn_ok,
      [&] {
        ++after;
        held = !order.try_lock();  // the committing thread holds the mutex while after_commit runs
        if (!held) order.unlock();
      },
      "ordered");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(after, 1);
  EXPECT_TRUE(held);
  EXPECT_EQ(Count("ordered"), 1);
  ASSERT_TRUE(order.try_lock()) << "the mutex is still held after the commit";
  order.unlock();

  // A body that refuses rolls back and publishes nothing.
  st = WithOrderedCommit(
      *pool_, order,
      [](pqxx::work& w) {
        w.exec_prepared0(kInsert, "refused", 1);
        return FailedPrecondition("no");
      },
      [&] { ++after; }, "ordered");
  EXPECT_EQ(st.code(), v1::FAILED_PRECONDITION);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(Count("refused"), 0);
  // So does a body whose SQL fails.
  st = WithOrderedCommit(
      *pool_, order,
      [](pqxx::work& w) {
        w.exec("SELECT * FROM no_such_table");
        return OkStatus();
      },
      [&] { ++after; }, "ordered");
  EXPECT_EQ(st.code(), v1::INTERNAL);
  EXPECT_EQ(after, 1);
  ASSERT_TRUE(order.try_lock());
  order.unlock();
}

TEST_F(PgTest, ConcurrentTransactionsThroughASmallPool) {
  ASSERT_TRUE(WithTransaction(
                  *pool_,
                  [](pqxx::work& w) {
                    w.exec_prepared0(kInsert, "counter", 0);
                    return OkStatus();
                  },
                  "init")
                  .ok());
  constexpr int kThreads = 6, kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto st = WithTransaction(
            *pool_,
            [](pqxx::work& w) {
              w.exec("UPDATE kv SET v = v + 1 WHERE k = 'counter'");
              return OkStatus();
            },
            "increment");
        if (!st.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t v = -1;
  ASSERT_TRUE(WithTransaction(
                  *pool_,
                  [&](pqxx::work& w) {
                    v = w.exec1("SELECT v FROM kv WHERE k = 'counter'")[0].as<int64_t>();
                    return OkStatus();
                  },
                  "read")
                  .ok());
  EXPECT_EQ(v, kThreads * kEach);
}

TEST_F(PgTest, ExhaustedPoolIsUnavailableNotAHang) {
  auto a = pool_->Acquire();
  auto b = pool_->Acquire();  // pool size 2: both leased
  auto start = std::chrono::steady_clock::now();
  Status st;
  EXPECT_NO_THROW(st = WithTransaction(
                      *pool_, [](pqxx::work&) { return OkStatus(); }, "starved"));
  EXPECT_EQ(st.code(), v1::UNAVAILABLE);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(PgUnreachable, WithTransactionIsUnavailable) {
  chat::testing::ReservedPort closed(chat::testing::ReservedPort::Use::kClosed);  // nobody answers while held
  PostgresConfig pg = TestPostgres();
  pg.port = closed.port();
  PgPool pool(pg.ConnInfo("postgres"), 2, {});
  for (int i = 0; i < 2; ++i) {  // and again: a failed connect does not leak a pool slot
    Status st;
    bool called = false;
    EXPECT_NO_THROW(st = WithTransaction(
                        pool,
                        [&](pqxx::work&) {
                          called = true;
                          return OkStatus();
                        },
                        "unreachable"));
    EXPECT_EQ(st.code(), v1::UNAVAILABLE) << st.message();
    EXPECT_FALSE(called);
  }
  for (int i = 0; i < 3; ++i) EXPECT_THROW(pool.Acquire(std::chrono::milliseconds(100)), pqxx::broken_connection);
}

std::vector<std::string> AppliedMigrations(const std::string& db) {
  pqxx::connection c(TestPostgres().ConnInfo(db));
  pqxx::nontransaction n(c);
  std::vector<std::string> names;
  for (const auto& row : n.exec("SELECT name FROM schema_migrations ORDER BY name")) names.push_back(row[0].c_str());
  return names;
}

TEST(PgMigrations, ApplyEachOnceInNameOrder) {
  const std::string db = FreshDatabase("unit_mig");
  const std::string conninfo = TestPostgres().ConnInfo(db);
  // Given out of order; 0002 depends on 0001, and neither is idempotent by itself.
  std::vector<Migration> migrations = {
      {"0002_add_column.sql", "ALTER TABLE things ADD COLUMN label text NOT NULL DEFAULT 'x';"},
      {"0001_init.sql", "CREATE TABLE things (id bigint PRIMARY KEY);\nINSERT INTO things (id) VALUES (1);"},
  };
  ASSERT_NO_THROW(ApplyMigrations(conninfo, migrations));
  ASSERT_NO_THROW(ApplyMigrations(conninfo, migrations));  // second run: nothing re-applied
  EXPECT_EQ(AppliedMigrations(db), (std::vector<std::string>{"0001_init.sql", "0002_add_column.sql"}));
  {
    pqxx::connection c(conninfo);
    pqxx::nontransaction n(c);
    EXPECT_EQ(n.exec1("SELECT count(*) FROM things")[0].as<int>(), 1) << "0001's insert ran once";
    EXPECT_EQ(n.exec1("SELECT label FROM things")[0].as<std::string>(), "x");
  }
  // A later release adds a migration: only that one runs.
  migrations.push_back({"0003_more.sql", "INSERT INTO things (id) VALUES (2);"});
  ASSERT_NO_THROW(ApplyMigrations(conninfo, migrations));
  ASSERT_NO_THROW(ApplyMigrations(conninfo, migrations));
  EXPECT_EQ(AppliedMigrations(db).size(), 3u);
  {
    pqxx::connection c(conninfo);
    pqxx::nontransaction n(c);
    EXPECT_EQ(n.exec1("SELECT count(*) FROM things")[0].as<int>(), 2);
  }
  DropDatabase(db);
}

TEST(PgMigrations, FailedMigrationIsNotRecordedAndLeavesNothingBehind) {
  const std::string db = FreshDatabase("unit_mig");
  const std::string conninfo = TestPostgres().ConnInfo(db);
  std::vector<Migration> bad = {
      {"0001_init.sql", "CREATE TABLE a (id int);"},
      {"0002_half.sql", "CREATE TABLE b (id int); THIS IS NOT SQL;"},
  };
  EXPECT_ANY_THROW(ApplyMigrations(conninfo, bad));
  EXPECT_EQ(AppliedMigrations(db), (std::vector<std::string>{"0001_init.sql"}));
  {
    pqxx::connection c(conninfo);
    pqxx::nontransaction n(c);
    EXPECT_TRUE(n.exec("SELECT 1 FROM pg_tables WHERE tablename = 'b'").empty()) << "half a migration was kept";
  }
  // Fixed in the next release: applies, and the advisory lock was not left held by the failure.
  std::vector<Migration> fixed = {bad[0], {"0002_half.sql", "CREATE TABLE b (id int);"}};
  ASSERT_NO_THROW(ApplyMigrations(conninfo, fixed));
  EXPECT_EQ(AppliedMigrations(db).size(), 2u);
  DropDatabase(db);
}

TEST(PgMigrations, ConcurrentReplicasApplyOnce) {
  const std::string db = FreshDatabase("unit_mig");
  const std::string conninfo = TestPostgres().ConnInfo(db);
  std::vector<Migration> migrations = {{"0001_init.sql", "CREATE TABLE once (id int); INSERT INTO once VALUES (1);"}};
  std::atomic<int> errors{0};
  std::vector<std::thread> replicas;
  for (int i = 0; i < 3; ++i)
    replicas.emplace_back([&] {
      try {
        ApplyMigrations(conninfo, migrations);
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& t : replicas) t.join();
  EXPECT_EQ(errors.load(), 0);
  pqxx::connection c(conninfo);
  pqxx::nontransaction n(c);
  EXPECT_EQ(n.exec1("SELECT count(*) FROM once")[0].as<int>(), 1);
  c.disconnect();
  DropDatabase(db);
}

TEST(PgDatabase, EnsureDatabaseIsIdempotent) {
  std::mt19937 rng(std::random_device{}());
  const std::string name = "t_unit_ensure_" + std::to_string(getpid()) + "_" + std::to_string(rng() % 1000000);
  const PostgresConfig pg = TestPostgres();
  ASSERT_NO_THROW(EnsureDatabase(pg, name));
  ASSERT_NO_THROW(EnsureDatabase(pg, name));
  {
    pqxx::connection admin(pg.ConnInfo("postgres"));
    pqxx::nontransaction n(admin);
    EXPECT_EQ(n.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1", name)[0].as<int>(), 1);
  }
  {
    pqxx::connection c(pg.ConnInfo(name));  // and it is usable
    EXPECT_TRUE(c.is_open());
  }
  // Replicas starting together race to create it: all succeed.
  const std::string raced = name + "_r";
  std::atomic<int> errors{0};
  std::vector<std::thread> replicas;
  for (int i = 0; i < 3; ++i)
    replicas.emplace_back([&] {
      try {
        EnsureDatabase(pg, raced);
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& t : replicas) t.join();
  EXPECT_EQ(errors.load(), 0);
  DropDatabase(name);
  DropDatabase(raced);
}

}  // namespace
}  // namespace chat

namespace chat {
namespace {

// The test PostgreSQL authenticates as every cluster's does (deploy/lib/datastores.sh): scram on
// loopback for every role, and each service's role may connect only to the databases it owns.
bool Connects(const PostgresConfig& pg, const std::string& database, std::string* error) {
  try {
    pqxx::connection c(pg.ConnInfo(database));
    pqxx::nontransaction n(c);
    n.exec("SELECT 1");
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

TEST(PgRoles, AServiceRoleReachesOnlyItsOwnDatabaseAndNobodyLogsInWithoutAPassword) {
  const std::string db = testing::FreshDatabase("roles");
  testing::OwnDatabase(db, "chat-service");
  std::string error;
  EXPECT_TRUE(Connects(testing::TestPostgresAs("chat-service"), db, &error)) << error;
  EXPECT_FALSE(Connects(testing::TestPostgresAs("account-service"), db, &error)) << "another service's role";
  EXPECT_NE(error.find("CONNECT"), std::string::npos) << error;

  PostgresConfig no_password = testing::TestPostgresAs("chat-service");
  no_password.password.clear();
  EXPECT_FALSE(Connects(no_password, db, &error)) << "no password";
  PostgresConfig wrong = testing::TestPostgresAs("chat-service");
  wrong.password += "x";
  EXPECT_FALSE(Connects(wrong, db, &error)) << "a wrong password";
  EXPECT_NE(error.find("password authentication failed"), std::string::npos) << error;
  PostgresConfig superuser = testing::TestPostgres();
  superuser.password.clear();
  EXPECT_FALSE(Connects(superuser, db, &error)) << "the superuser over TCP without its password";

  // A service role cannot make itself another database either (each database is made for it).
  try {
    pqxx::connection c(testing::TestPostgresAs("chat-service").ConnInfo(db));
    pqxx::nontransaction n(c);
    n.exec("CREATE DATABASE " + c.quote_name(db + "_mine"));
    ADD_FAILURE() << "a service role created a database";
  } catch (const pqxx::sql_error& e) {
    EXPECT_NE(std::string(e.what()).find("permission denied"), std::string::npos) << e.what();
  }
  pqxx::connection admin(testing::TestPostgres().ConnInfo("postgres"));
  pqxx::nontransaction(admin).exec("DROP DATABASE IF EXISTS " + admin.quote_name(db) + " WITH (FORCE)");
}

}  // namespace
}  // namespace chat
