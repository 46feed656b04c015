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
#include "common/service_main.h"

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  const chat::ServiceProcess proc =
      chat::StartServiceProcess("account-service", argc, argv, &chat::ClusterConfig::account);
  const chat::ClusterConfig& config = proc.config;
  const chat::ShardConfig& shard = proc.shard_config;
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
    chat::account::AccountServiceImpl service(config, static_cast<uint32_t>(proc.shard), pool, sender, events,
                                              chat::NowMs);
    const std::string& listen = proc.listen;
    auto server = chat::StartServer(listen, {&service});
    spdlog::info("ready: account shard {} replica {} on {}", proc.shard, proc.replica, listen);

    chat::WaitForTerminationSignal();
    chat::StopServer(*server, config.limits);
  } catch (const std::exception& e) {
    spdlog::critical("account-service: {}", e.what());
    spdlog::default_logger()->flush();
    return 1;
  }
  spdlog::default_logger()->flush();
  return 0;
}
