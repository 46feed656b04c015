#pragma once
// PostgreSQL access layer over libpqxx 6.4: a bounded connection pool, transactions with retry and
// error mapping, embedded versioned migrations. The only place that knows libpqxx error types.
//
// Threads: PgPool is thread-safe; a Lease (one connection) belongs to one thread at a time.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"

namespace chat {

struct Migration {
  const char* name;  // "0001_init.sql": applied in name order, once per database
  const char* sql;
};

class PgPool {
 public:
  // prepare runs on every new connection (declare prepared statements there).
  PgPool(std::string conninfo, int size, std::function<void(pqxx::connection&)> prepare);
  ~PgPool();

  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<pqxx::connection> c) : pool_(pool), conn_(std::move(c)) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) {}
    ~Lease();
    pqxx::connection& operator*() { return *conn_; }
    pqxx::connection* operator->() { return conn_.get(); }
    void Discard() { conn_.reset(); }  // broken: do not return it to the pool

   private:
    PgPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
  };

  // Waits up to `wait` for a free connection, (re)connecting as needed. Throws pqxx::broken_connection
  // when the server cannot be reached and std::runtime_error on timeout.
  Lease Acquire(std::chrono::milliseconds wait = std::chrono::milliseconds(2000));
  // Closes every idle connection: one of them was found dead, so the others (opened before the same
  // server restart) most likely are too; the next Acquire connects afresh.
  void DiscardIdle();

 private:
  friend class Lease;
  void Release(std::unique_ptr<pqxx::connection> c);
  std::string conninfo_;
  std::function<void(pqxx::connection&)> prepare_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int size_;
  int out_ = 0;  // leased + connecting
};

// Runs fn(pqxx::work&) -> Status in one transaction and commits if fn returned OK.
// Retries serialization failures and deadlocks (up to 3 attempts). A connection found dead before the
// commit (the server restarted since it was pooled) is discarded with every idle one, and the
// transaction runs once more on a fresh connection, so the first request after a restart succeeds;
// a commit whose outcome is unknown is never retried. Maps a lost connection or an unreachable server
// to UNAVAILABLE, anything else unexpected to INTERNAL (logged, never leaked). When fn returns a
// non-OK status the transaction is rolled back and that status returned. fn may run more than once.
Status WithTransaction(PgPool& pool, const std::function<Status(pqxx::work&)>& fn, const char* what);

// WithTransaction for commits whose order other threads must observe (a chat shard's fan-out must
// follow commit order): `commit_order` is locked just before COMMIT and held while `after_commit`
// runs, so after_commit calls of transactions using one mutex run in their commit order. fn runs
// without the mutex (it may wait on row locks). after_commit runs once, only if the transaction
// committed, and must not throw.
Status WithOrderedCommit(PgPool& pool, std::mutex& commit_order, const std::function<Status(pqxx::work&)>& fn,
                         const std::function<void()>& after_commit, const char* what);

// A bigint[] literal ("{1,2,3}") of `ids` (any range of uint64_t), each as the int64 it is stored as,
// for a `$n::bigint[]` parameter. The one array encoder of the stores.
template <typename Ids>
std::string BigintArray(const Ids& ids) {
  std::string s = "{";
  bool first = true;
  for (uint64_t id : ids) {
    if (!first) s += ',';
    first = false;
    s += std::to_string(static_cast<int64_t>(id));
  }
  return s + "}";
}

// Creates `database` on the server if missing (safe to race with other replicas).
void EnsureDatabase(const PostgresConfig& pg, const std::string& database);
// Applies migrations not yet recorded in schema_migrations, under an advisory lock.
void ApplyMigrations(const std::string& conninfo, const std::vector<Migration>& migrations);

}  // namespace chat
