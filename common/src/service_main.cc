#include "common/service_main.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>
#include <iostream>

#include "common/log.h"

namespace chat {

namespace {
[[noreturn]] void Usage(const char* name, const std::string& why) {
  std::cerr << name << ": " << why << "\nusage: " << name << " --config PATH --shard N [--replica R]\n";
  std::exit(2);
}

int ParseIndex(const char* name, const std::string& flag, const std::string& v) {
  int n = -1;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0) Usage(name, "bad value for " + flag + ": " + v);
  return n;
}
}  // namespace

ServiceProcess StartServiceProcess(const char* name, int argc, char** argv,
                                   std::vector<ShardConfig> ClusterConfig::*shards) {
  std::string config_path;
  int shard = -1, replica = 0;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") Usage(name, "help");
    if (i + 1 >= argc) Usage(name, "missing value for " + flag);
    std::string v = argv[++i];
    if (flag == "--config")
      config_path = v;
    else if (flag == "--shard")
      shard = ParseIndex(name, flag, v);
    else if (flag == "--replica")
      replica = ParseIndex(name, flag, v);
    else
      Usage(name, "unknown flag " + flag);
  }
  if (config_path.empty()) Usage(name, "--config is required");
  if (shard < 0) Usage(name, "--shard is required");

  ServiceProcess p;
  try {
    p.config = LoadConfig(config_path);
  } catch (const std::exception& e) {
    Usage(name, e.what());
  }
  const auto& list = p.config.*shards;
  if (static_cast<size_t>(shard) >= list.size())
    Usage(name,
          "--shard " + std::to_string(shard) + " but the config has " + std::to_string(list.size()) + " shard(s)");
  p.shard_config = list[shard];
  if (static_cast<size_t>(replica) >= p.shard_config.addresses.size())
    Usage(name, "--replica " + std::to_string(replica) + " but shard " + std::to_string(shard) + " has " +
                    std::to_string(p.shard_config.addresses.size()) + " address(es)");
  p.shard = shard;
  p.replica = replica;
  p.listen = p.shard_config.addresses[replica];
  InitLogging(std::string(name) + "." + std::to_string(shard), p.config.log_level);
  return p;
}

void StopServer(grpc::Server& server, const Limits& limits) {
  spdlog::info("shutting down");
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(limits.drain_timeout_ms));
  server.Wait();
  spdlog::info("stopped");
}

}  // namespace chat
