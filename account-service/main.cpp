// account-service --config PATH --shard N [--replica R]
// Serves account shard N on config.account[N].addresses[R], owning database config.account[N].database.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "account/account_events.h"
#include "account/account_service.h"
#include "account/account_store.h"
#include "account/code_sender.h"
#include "common/config.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/pg.h"

namespace {

struct Args {
  std::string config;
  int shard = -1;
  int replica = 0;
};

[[noreturn]] void Usage(const char* why) {
  std::cerr << "account-service: " << why << "\nusage: account-service --config PATH --shard N [--replica R]\n";
  std::exit(2);
}

int ParseIndex(const char* flag, const char* v) {
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (!*v || *end || n < 0 || n > 100000) Usage((std::string("bad value for ") + flag).c_str());
  return static_cast<int>(n);
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    const char* v = argv[++i];
    if (flag == "--config") a.config = v;
    else if (flag == "--shard") a.shard = ParseIndex("--shard", v);
    else if (flag == "--replica") a.replica = ParseIndex("--replica", v);
    else Usage(("unknown flag " + flag).c_str());
  }
  if (a.config.empty()) Usage("--config is required");
  if (a.shard < 0) Usage("--shard is required");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  Args args = ParseArgs(argc, argv);
  chat::ClusterConfig config;
  try {
    config = chat::LoadConfig(args.config);
  } catch (const std::exception& e) {
    std::cerr << "account-service: " << e.what() << "\n";
    return 2;
  }
  chat::InitLogging("account-service", config.log_level);
  if (static_cast<size_t>(args.shard) >= config.account.size()) {
    spdlog::critical("--shard {} but the config has {} account shards", args.shard, config.account.size());
    return 2;
  }
  const chat::ShardConfig& shard = config.account[args.shard];
  if (static_cast<size_t>(args.replica) >= shard.addresses.size()) {
    spdlog::critical("--replica {} but account shard {} has {} addresses", args.replica, args.shard,
                     shard.addresses.size());
    return 2;
  }
  if (config.code_sender != "file") {
    spdlog::critical("unsupported code_sender \"{}\" (supported: file)", config.code_sender);
    return 2;
  }

  try {
    chat::EnsureDatabase(config.postgres, shard.database);
    chat::ApplyMigrations(config.postgres.ConnInfo(shard.database), chat::EmbeddedMigrations());

    chat::PgPool pool(config.postgres.ConnInfo(shard.database), config.postgres.pool_size,
                      chat::account::PrepareAccountStatements);
    chat::account::FileCodeSender sender(config.run_dir);
    chat::account::FanoutAccountEvents events(config);
    chat::account::AccountServiceImpl service(config, static_cast<uint32_t>(args.shard), pool, sender, events,
                                              chat::NowMs);
    const std::string& listen = shard.addresses[args.replica];
    auto server = chat::StartServer(listen, {&service});
    spdlog::info("ready: account shard {} replica {} on {}", args.shard, args.replica, listen);

    chat::WaitForTerminationSignal();
    spdlog::info("shutting down");
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(config.limits.drain_timeout_ms));
    server->Wait();
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    spdlog::critical("account-service: {}", e.what());
    spdlog::default_logger()->flush();
    return 1;
  }
  spdlog::default_logger()->flush();
  return 0;
}
