// group-service --config PATH --shard N [--replica R]
// Serves config.group[N].addresses[R] over gRPC and owns database config.group[N].database.
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

#include "chat_reconciler.h"
#include "common/config.h"
#include "common/fanout.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/service_main.h"
#include "group_seams.h"
#include "group_service.h"
#include "group_store.h"

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  const chat::ServiceProcess proc = chat::StartServiceProcess("group-service", argc, argv, &chat::ClusterConfig::group);
  try {
    const chat::ClusterConfig& config = proc.config;
    const chat::ShardConfig& shard = proc.shard_config;

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
    deps.shard = static_cast<uint32_t>(proc.shard);
    deps.shard_count = static_cast<uint32_t>(config.group.size());
    deps.friends = &friends;
    deps.profiles = &profiles;
    deps.chat = &chat_members;
    deps.events = &events;
    chat::group::GroupServiceImpl service(deps);

    // Re-drives chat pushes that failed (see group_service.h, "Replies"); stopped before the pool goes.
    chat::group::ChatReconciler reconciler(service, chat::group::ChatReconcilerOptions{});
    reconciler.Start();

    auto server = chat::StartServer(proc.listen, {&service});
    spdlog::info("ready: shard {} replica {} on {}", proc.shard, proc.replica, proc.listen);

    chat::WaitForTerminationSignal();
    chat::StopServer(*server, config.limits);
    reconciler.Stop();
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("group-service: {}", e.what());
    std::cerr << "group-service: " << e.what() << "\n";
    return 1;
  }
}
