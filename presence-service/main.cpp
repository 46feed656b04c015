// presence-service --config PATH --shard N [--replica R]
// Serves config.presence[N].addresses[R] over gRPC. No database: state lives in Redis (config.redis).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "common/config.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/redis.h"
#include "presence_service.h"

namespace {

struct Args {
  std::string config;
  int shard = -1;
  int replica = 0;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (k == "--config") a->config = v;
    else if (k == "--shard") a->shard = std::stoi(v);
    else if (k == "--replica") a->replica = std::stoi(v);
    else return false;
  }
  return !a->config.empty() && a->shard >= 0 && a->replica >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  Args args;
  try {
    if (!ParseArgs(argc, argv, &args)) {
      std::cerr << "usage: presence-service --config PATH --shard N [--replica R]\n";
      return 2;
    }
  } catch (const std::exception&) {
    std::cerr << "usage: presence-service --config PATH --shard N [--replica R]\n";
    return 2;
  }
  try {
    chat::ClusterConfig config = chat::LoadConfig(args.config);
    chat::InitLogging("presence-service." + std::to_string(args.shard), config.log_level);
    if (static_cast<size_t>(args.shard) >= config.presence.size())
      throw std::runtime_error("--shard " + std::to_string(args.shard) + " is not in config.presence");
    const auto& shard = config.presence[args.shard];
    if (static_cast<size_t>(args.replica) >= shard.addresses.size())
      throw std::runtime_error("--replica " + std::to_string(args.replica) + " is not in config.presence[" +
                               std::to_string(args.shard) + "].addresses");

    chat::RedisClient redis(config.redis);
    chat::presence::PresenceServiceImpl service(redis, config.limits);
    auto server = chat::StartServer(shard.addresses[args.replica], {&service});
    spdlog::info("ready: shard {} replica {} on {}", args.shard, args.replica, shard.addresses[args.replica]);

    chat::WaitForTerminationSignal();
    spdlog::info("shutting down");
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(config.limits.drain_timeout_ms));
    server->Wait();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("presence-service: {}", e.what());
    std::cerr << "presence-service: " << e.what() << "\n";
    return 1;
  }
}
