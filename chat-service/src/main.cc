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

namespace {

struct Args {
  std::string config;
  int shard = -1;
  int replica = 0;
};

// Like chat::StartServer, plus a cap on the sync server's threads. Each Send handler blocks on its
// batch, so the cap leaves room for a full batch (send_batch_max) and the other calls; beyond it gRPC
// answers RESOURCE_EXHAUSTED itself instead of the process growing a thread per waiting call.
std::unique_ptr<grpc::Server> StartCappedServer(const std::string& listen, grpc::Service* service,
                                                const chat::Limits& limits) {
  const int max_threads = static_cast<int>(std::max<uint32_t>(64, limits.send_batch_max + 32));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ResourceQuota quota("chat-service");
  quota.SetMaxThreads(max_threads);
  grpc::ServerBuilder builder;
  builder.SetResourceQuota(quota);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot listen on " + listen);
  return server;
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&](std::string* v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    std::string v;
    if (k == "--config" && next(&v)) {
      a->config = v;
    } else if (k == "--shard" && next(&v)) {
      a->shard = std::stoi(v);
    } else if (k == "--replica" && next(&v)) {
      a->replica = std::stoi(v);
    } else {
      return false;
    }
  }
  return !a->config.empty() && a->shard >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  Args args;
  try {
    if (!ParseArgs(argc, argv, &args)) {
      std::cerr << "usage: chat-service --config PATH --shard N [--replica R]\n";
      return 2;
    }
  } catch (const std::exception&) {
    std::cerr << "usage: chat-service --config PATH --shard N [--replica R]\n";
    return 2;
  }
  try {
    const chat::ClusterConfig cfg = chat::LoadConfig(args.config);
    chat::InitLogging("chat-service." + std::to_string(args.shard) + "." + std::to_string(args.replica),
                      cfg.log_level);
    if (args.shard >= static_cast<int>(cfg.chat.size())) throw std::runtime_error("--shard out of range");
    const chat::ShardConfig& shard = cfg.chat[args.shard];
    if (args.replica < 0 || args.replica >= static_cast<int>(shard.addresses.size()))
      throw std::runtime_error("--replica out of range");

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
    chat::chatsvc::SendBatcher batcher(store, fanout_queue, cfg.limits.send_batch_max, cfg.limits.send_queue_max,
                                       cfg.limits.send_committers);

    chat::chatsvc::GrpcFriendChecker account_friends(cfg.account, cfg.limits.rpc_deadline_ms);
    chat::chatsvc::CachingFriendChecker friends(account_friends, std::chrono::seconds(5));

    chat::chatsvc::ChatServiceOptions options;
    options.shard = static_cast<uint32_t>(args.shard);
    options.shard_count = static_cast<uint32_t>(cfg.chat.size());
    options.limits = cfg.limits;
    chat::chatsvc::ChatServiceImpl service(options, store, batcher, fanout_queue, friends);

    fanout_queue.Start();
    batcher.Start();
    const std::string& listen = shard.addresses[args.replica];
    auto server = StartCappedServer(listen, &service, cfg.limits);
    spdlog::info("ready: chat shard {} replica {} on {} (database {})", args.shard, args.replica, listen,
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
