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
#include "common/service_main.h"
#include "presence_service.h"

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  const chat::ServiceProcess proc =
      chat::StartServiceProcess("presence-service", argc, argv, &chat::ClusterConfig::presence);
  try {
    const chat::ClusterConfig& config = proc.config;

    chat::RedisClient redis(config.redis);
    chat::presence::PresenceServiceImpl service(redis, config.limits);
    auto server = chat::StartServer(proc.listen, {&service});
    spdlog::info("ready: shard {} replica {} on {}", proc.shard, proc.replica, proc.listen);

    chat::WaitForTerminationSignal();
    chat::StopServer(*server, config.limits);
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("presence-service: {}", e.what());
    std::cerr << "presence-service: " << e.what() << "\n";
    return 1;
  }
}
