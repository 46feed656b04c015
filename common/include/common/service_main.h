#pragma once
// The start-up every sharded service process shares: `<name> --config PATH --shard N [--replica R]`.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "common/config.h"

namespace chat {

struct ServiceProcess {
  ClusterConfig config;
  int shard = 0;
  int replica = 0;
  ShardConfig shard_config;  // config.<service>[shard]
  std::string listen;        // shard_config.addresses[replica]
};

// Parses the flags, loads and validates the config, selects the shard and replica from
// `config.*shards` (e.g. &ClusterConfig::chat) and starts logging as "<name>.<shard>". On a usage or
// config error it prints the reason and a usage line to stderr and exits with status 2.
ServiceProcess StartServiceProcess(const char* name, int argc, char** argv,
                                   std::vector<ShardConfig> ClusterConfig::*shards);

// Graceful stop: in-flight calls get limits.drain_timeout_ms to finish.
void StopServer(grpc::Server& server, const Limits& limits);

}  // namespace chat
