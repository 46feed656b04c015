#include "common/pg.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace chat {

PgPool::PgPool(std::string conninfo, int size, std::function<void(pqxx::connection&)> prepare)
    : conninfo_(std::move(conninfo)), prepare_(std::move(prepare)), size_(std::max(1, size)) {}

PgPool::~PgPool() = default;

PgPool::Lease::~Lease() {
  if (pool_) pool_->Release(std::move(conn_));
}

void PgPool::Release(std::unique_ptr<pqxx::connection> c) {
  std::lock_guard lk(mu_);
  --out_;
  if (c && c->is_open()) idle_.push_back(std::move(c));
  cv_.notify_one();
}

PgPool::Lease PgPool::Acquire(std::chrono::milliseconds wait) {
  std::unique_lock lk(mu_);
  if (!cv_.wait_for(lk, wait, [&] { return !idle_.empty() || out_ < size_; }))
    throw std::runtime_error("no database connection free");
  ++out_;
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(c));
  }
  lk.unlock();
  try {
    auto c = std::make_unique<pqxx::connection>(conninfo_);
    if (prepare_) prepare_(*c);
    return Lease(this, std::move(c));
  } catch (...) {
    std::lock_guard lk2(mu_);
    --out_;
    cv_.notify_one();
    throw;
  }
}

void PgPool::DiscardIdle() {
  std::vector<std::unique_ptr<pqxx::connection>> dead;
  {
    std::lock_guard lk(mu_);
    dead.swap(idle_);
  }
  // Closed outside the lock.
}

namespace {
// The one transaction loop; `commit_order` and `after_commit` are null for a plain transaction.
Status Transact(PgPool& pool, const std::function<Status(pqxx::work&)>& fn, const char* what, std::mutex* commit_order,
                const std::function<void()>* after_commit) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto lease = pool.Acquire();
      try {
        pqxx::work txn(*lease);
        Status st = fn(txn);
        if (!st.ok()) {
          txn.abort();
          return st;
        }
        std::unique_lock<std::mutex> order;
        if (commit_order) order = std::unique_lock<std::mutex>(*commit_order);
        txn.commit();
        if (after_commit && *after_commit) (*after_commit)();
        return OkStatus();
      } catch (const pqxx::in_doubt_error&) {
        lease.Discard();
        throw;
      } catch (const pqxx::sql_error&) {
        throw;  // the server answered: the connection is fine
      } catch (...) {
        if (!lease->is_open()) {
          lease.Discard();
          pool.DiscardIdle();
          if (attempt < 3) {
            spdlog::info("{}: a pooled database connection was dead; retrying on a fresh one", what);
            continue;
          }
        }
        throw;
      }
    } catch (const pqxx::serialization_failure& e) {
      if (attempt < 2) continue;
      spdlog::warn("{}: serialization failure after retries: {}", what, e.what());
      return Unavailable("conflict, retry");
    } catch (const pqxx::deadlock_detected& e) {
      if (attempt < 2) continue;
      spdlog::warn("{}: deadlock after retries: {}", what, e.what());
      return Unavailable("conflict, retry");
    } catch (const pqxx::broken_connection& e) {
      spdlog::warn("{}: database unavailable: {}", what, e.what());
      return Unavailable("database unavailable");
    } catch (const pqxx::in_doubt_error& e) {
      spdlog::error("{}: commit in doubt: {}", what, e.what());
      return Unavailable("database unavailable, outcome unknown; retry");
    } catch (const pqxx::sql_error& e) {
      spdlog::error("{}: sql error: {} [{}]", what, e.what(), e.query().substr(0, 200));
      return Internal("internal error");
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", what, e.what());
      return Unavailable("database unavailable");
    }
  }
}
}  // namespace

Status WithTransaction(PgPool& pool, const std::function<Status(pqxx::work&)>& fn, const char* what) {
  return Transact(pool, fn, what, nullptr, nullptr);
}

Status WithOrderedCommit(PgPool& pool, std::mutex& commit_order, const std::function<Status(pqxx::work&)>& fn,
                         const std::function<void()>& after_commit, const char* what) {
  return Transact(pool, fn, what, &commit_order, &after_commit);
}

void EnsureDatabase(const PostgresConfig& pg, const std::string& database) {
  for (int attempt = 0;; ++attempt) {
    try {
      pqxx::connection c(pg.ConnInfo("postgres"));
      pqxx::nontransaction n(c);
      auto r = n.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", database);
      if (!r.empty()) return;
      n.exec("CREATE DATABASE " + c.quote_name(database));
      spdlog::info("created database {}", database);
      return;
    } catch (const pqxx::sql_error& e) {
      // duplicate_database from a racing replica: re-check on the next loop.
      if (attempt >= 5) throw;
    } catch (const pqxx::broken_connection& e) {
      if (attempt >= 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));  // server still starting
    }
  }
}

void ApplyMigrations(const std::string& conninfo, const std::vector<Migration>& migrations) {
  pqxx::connection c(conninfo);
  {
    pqxx::nontransaction n(c);
    n.exec("SELECT pg_advisory_lock(7262019)");
    n.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  }
  std::vector<Migration> sorted = migrations;
  std::sort(sorted.begin(), sorted.end(),
            [](const Migration& a, const Migration& b) { return std::string(a.name) < b.name; });
  for (const auto& m : sorted) {
    pqxx::work w(c);
    auto r = w.exec_params("SELECT 1 FROM schema_migrations WHERE name = $1", std::string(m.name));
    if (!r.empty()) continue;
    w.exec(m.sql);
    w.exec_params("INSERT INTO schema_migrations(name) VALUES ($1)", std::string(m.name));
    w.commit();
    spdlog::info("applied migration {}", m.name);
  }
  pqxx::nontransaction n(c);
  n.exec("SELECT pg_advisory_unlock(7262019)");
}

}  // namespace chat
