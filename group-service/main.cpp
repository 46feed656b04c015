// group-service --config PATH --shard N [--replica R]
// Serves config.group[N].addresses[R] over gRPC and owns database config.group[N].database.
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

#include "common/config.h"
#include "common/fanout.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/pg.h"
#include "chat_reconciler.h"
#include "group_seams.h"
#include "group_service.h"
#include "group_store.h"

namespace {

struct Args {
  std::string config;
  int shard = -1;
  int replica = 0;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  try {
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (i + 1 >= argc) return false;
      std::string v = argv[++i];
      if (k == "--config") a->config = v;
      else if (k == "--shard") a->shard = std::stoi(v);
      else if (k == "--replica") a->replica = std::stoi(v);
      else return false;
    }
  } catch (const std::exception&) {
    return false;
  }
  return !a->config.empty() && a->shard >= 0 && a->replica >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::cerr << "usage: group-service --config PATH --shard N [--replica R]\n";
    return 2;
  }
  try {
    chat::ClusterConfig config = chat::LoadConfig(args.config);
    chat::InitLogging("group-service." + std::to_string(args.shard), config.log_level);
    if (static_cast<size_t>(args.shard) >= config.group.size())
      throw std::runtime_error("--shard " + std::to_string(args.shard) + " is not in config.group");
    const auto& shard = config.group[args.shard];
    if (static_cast<size_t>(args.replica) >= shard.addresses.size())
      throw std::runtime_error("--replica " + std::to_string(args.replica) + " is not in config.group[" +
                               std::to_string(args.shard) + "].addresses");

    chat::EnsureDatabase(config.postgres, shard.database);
    chat::ApplyMigrations(config.postgres.ConnInfo(shard.database), chat::EmbeddedMigrations());
    chat::PgPool pool(config.postgres.ConnInfo(shard.database), config.postgres.pool_size,
                      chat::group::PrepareGroupStatements);

    const uint32_t deadline = config.limits.rpc_deadline_ms;
    chat::group::GrpcFriendChecker friends(config.account, deadline);
    chat::group::GrpcProfileSource profiles(config.account, deadline);
    chat::group::GrpcConversationMembership chat_members(config.chat);
    chat::GrpcPresenceDirectory presence(config.presence, deadline);
    chat::RedisDeliveryPublisher publisher(config.redis);
    chat::Fanout fanout(presence, publisher);
    chat::group::FanoutEventSink events(fanout);

    chat::group::GroupServiceDeps deps;
    deps.pool = &pool;
    deps.limits = &config.limits;
    deps.shard = static_cast<uint32_t>(args.shard);
    deps.shard_count = static_cast<uint32_t>(config.group.size());
    deps.friends = &friends;
    deps.profiles = &profiles;
    deps.chat = &chat_members;
    deps.events = &events;
    chat::group::GroupServiceImpl service(deps);

    // Re-drives chat pushes that failed (see group_service.h, "Replies"); stopped before the pool goes.
    chat::group::ChatReconciler reconciler(service, chat::group::ChatReconcilerOptions{});
    reconciler.Start();

    auto server = chat::StartServer(shard.addresses[args.replica], {&service});
    spdlog::info("ready: shard {} replica {} on {}", args.shard, args.replica, shard.addresses[args.replica]);

    chat::WaitForTerminationSignal();
    spdlog::info("shutting down");
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(config.limits.drain_timeout_ms));
    server->Wait();
    reconciler.Stop();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("group-service: {}", e.what());
    std::cerr << "group-service: " << e.what() << "\n";
    return 1;
  }
}
