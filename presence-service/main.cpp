// presence-service --config PATH --shard N [--replica R]
// Serves config.presence[N].addresses[R] over gRPC. No database: state lives in Redis (config.redis).
#include "common/redis.h"
#include "common/service_main.h"
#include "presence/presence_service.h"

int main(int argc, char** argv) {
  const chat::ServiceSpec spec{.name = "presence-service", .shards = &chat::ClusterConfig::presence};
  return chat::ServiceMain(spec, argc, argv, [](chat::ServiceProcess& p) {
    chat::RedisClient redis(p.config.redis);
    chat::presence::PresenceServiceImpl service({.redis = &redis, .limits = &p.config.limits});
    p.Serve({&service});
  });
}
