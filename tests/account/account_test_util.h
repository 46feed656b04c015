#pragma once
// Shared helpers of the account-service store tests: a fake event sink, a settable clock, reading
// codes from the file sender's log, and one in-process account shard over a fresh database.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "account/account_service.h"
#include "account/account_store.h"
#include "account/code_sender.h"
#include "account/migrations.h"
#include "common/events.h"
#include "common/log.h"
#include "common/pg.h"
#include "test_env.h"

namespace chat::account::testing {

// Records every published item. Thread-safe.
class FakeAccountEvents : public EventPublisher {
 public:
  void Publish(std::vector<FanoutItem> items) override {
    std::lock_guard lk(mu_);
    for (auto& it : items) items_.push_back(std::move(it));
  }
  std::vector<FanoutItem> Take() {
    std::lock_guard lk(mu_);
    return std::exchange(items_, {});
  }

 private:
  std::mutex mu_;
  std::vector<FanoutItem> items_;
};

// A fresh temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "acct-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The newest code written for `phone` by FileCodeSender into <run_dir>/codes.log ("" if none).
inline std::string NewestCode(const std::string& run_dir, const std::string& phone) {
  std::ifstream in(run_dir + "/codes.log");
  std::string line, code;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string ms, p, c;
    if (ls >> ms >> p >> c && p == phone) code = c;
  }
  return code;
}

inline int CodeLines(const std::string& run_dir, const std::string& phone) {
  std::ifstream in(run_dir + "/codes.log");
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(" " + phone + " ") != std::string::npos) ++n;
  return n;
}

// A code that is certainly not `code` (same shape).
inline std::string OtherCode(const std::string& code) {
  std::string c = code;
  c[0] = c[0] == '9' ? '0' : static_cast<char>(c[0] + 1);
  return c;
}

// One account shard running in-process on its own fresh database: shard `index` of `config`.
// The service's clock is `now_ms`, which tests move forward.
struct Shard {
  Shard(const ClusterConfig& config, uint32_t index, std::atomic<int64_t>& now_ms, const std::string& run_dir)
      : db(config.account.at(index).database),
        pool(chat::testing::TestPostgres().ConnInfo(db), 4, PrepareAccountStatements),
        sender(run_dir),
        service(AccountServiceDeps{.config = &config,
                                   .shard = index,
                                   .pool = &pool,
                                   .sender = &sender,
                                   .events = &events,
                                   .now_ms = [&now_ms] { return now_ms.load(); }}) {}
  std::string db;
  PgPool pool;
  FileCodeSender sender;
  FakeAccountEvents events;
  AccountServiceImpl service;
};

inline std::string NewAccountDatabase() {
  std::string db = chat::testing::FreshDatabase("acct");
  ApplyMigrations(chat::testing::TestPostgres().ConnInfo(db), Migrations());
  return db;
}

inline void DropDatabase(const std::string& db) {
  try {
    auto pg = chat::testing::TestPostgres();
    pqxx::connection c(pg.ConnInfo("postgres"));
    pqxx::nontransaction n(c);
    n.exec("DROP DATABASE IF EXISTS " + c.quote_name(db) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Leftover test databases are harmless.
  }
}

inline ClusterConfig BaseConfig(const std::string& run_dir) {
  ClusterConfig config;
  config.token_keys = TokenKeys::Single("test", "account-test-secret-0123456789");
  config.run_dir = run_dir;
  // Presence is never called: the tests use FakeAccountEvents.
  config.presence = {ShardConfig{{"127.0.0.1:1"}, ""}};
  config.internal_tls = chat::testing::InProcessPlaintext();  // in-process servers and channels
  return config;
}

}  // namespace chat::account::testing
