// chat-service --config PATH --shard N [--replica R]
// Serves chat shard N on config.chat[N].addresses[R] over its own database.
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "chat_service/chat_service.h"
#include "chat_service/event_sink.h"
#include "common/config.h"
#include "common/fanout.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/service_main.h"

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  const chat::ServiceProcess proc = chat::StartServiceProcess("chat-service", argc, argv, &chat::ClusterConfig::chat);
  try {
    const chat::ClusterConfig& cfg = proc.config;
    const chat::ShardConfig& shard = proc.shard_config;

    chat::EnsureDatabase(cfg.postgres, shard.database);
    chat::ApplyMigrations(cfg.postgres.ConnInfo(shard.database), chat::EmbeddedMigrations());

    chat::PgPool pool(cfg.postgres.ConnInfo(shard.database), cfg.postgres.pool_size,
                      &chat::chatsvc::PgChatStore::Prepare);
    chat::chatsvc::PgChatStore store(pool);

    chat::GrpcPresenceDirectory presence(cfg.presence, cfg.limits.rpc_deadline_ms);
    chat::RedisDeliveryPublisher publisher(cfg.redis);
    chat::Fanout fanout(presence, publisher);
    chat::chatsvc::FanoutEventSink sink(fanout);
    chat::chatsvc::FanoutQueue fanout_queue(store, sink);
    chat::chatsvc::GrpcFriendChecker account_friends(cfg.account, cfg.limits.rpc_deadline_ms);
    chat::chatsvc::CachingFriendChecker friends(account_friends,
                                                std::chrono::milliseconds(cfg.limits.friend_cache_ttl_ms));
    chat::chatsvc::SendBatcher batcher(store, fanout_queue, cfg.limits.send_batch_max, cfg.limits.send_queue_max,
                                       cfg.limits.send_committers, &friends);

    chat::chatsvc::ChatServiceOptions options;
    options.shard = static_cast<uint32_t>(proc.shard);
    options.shard_count = static_cast<uint32_t>(cfg.chat.size());
    options.limits = cfg.limits;
    chat::chatsvc::ChatServiceImpl service(options, store, batcher, fanout_queue, friends);

    fanout_queue.Start();
    batcher.Start();
    const std::string& listen = proc.listen;
    // Sends wait on the batcher without a thread (callback method); the sync pool serves the rest.
    auto server = chat::StartServer(listen, {&service}, 64);
    spdlog::info("ready: chat shard {} replica {} on {} (database {})", proc.shard, proc.replica, listen,
                 shard.database);

    chat::WaitForTerminationSignal();
    spdlog::info("shutting down");
    // Stop accepting, let in-flight calls finish (they wait on the batcher, which keeps running).
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(cfg.limits.drain_timeout_ms));
    batcher.Stop();       // commits what is queued
    fanout_queue.Stop();  // delivers what was committed
    spdlog::info("stopped");
    spdlog::default_logger()->flush();
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("chat-service failed: {}", e.what());
    std::cerr << "chat-service: " << e.what() << "\n";
    return 1;
  }
}
