#include "common/service_main.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <iostream>

#include "common/grpc_util.h"
#include "common/log.h"
#include "common/text_policy.h"

namespace chat {

PgPool ServiceProcess::Pool(std::function<void(pqxx::connection&)> prepare) const {
  return PgPool(ConnInfo(), config.postgres.pool_size, std::move(prepare));
}

std::string ServiceProcess::ConnInfo() const { return config.postgres.ConnInfo(shard_config.database); }

void ServiceProcess::Serve(std::vector<grpc::Service*> services, int max_threads) {
  auto server = StartServer(listen, std::move(services), config.internal_tls, max_threads);
  spdlog::info("ready: {} shard {} replica {} on {}{}", name_, shard, replica, listen,
               shard_config.database.empty() ? "" : " (database " + shard_config.database + ")");
  WaitForStop();
  spdlog::info("shutting down");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(config.limits.common.drain_timeout_ms));
  server->Wait();
}

void ServiceProcess::WaitForStop() { WaitForTerminationSignal(); }

int ServiceMain(const ServiceSpec& spec, int argc, char** argv, const std::function<void(ServiceProcess&)>& wire) {
  BlockTerminationSignals();
  std::string config_path;
  int shard = -1, replica = 0;
  Flags flags(spec.name, std::string(spec.name) + ": one process of the chat cluster");
  flags.Add("config", &config_path, "the cluster config JSON (deploy/README.md)", true);
  if (spec.shards) {
    flags.Add("shard", &shard, "which shard of the config's list this process serves", true);
    flags.Add("replica", &replica, "which of the shard's addresses it listens on (default 0)");
  }
  if (spec.add_flags) spec.add_flags(flags);
  flags.Parse(argc, argv);

  ServiceProcess p;
  p.name_ = spec.name;
  try {
    p.config = LoadConfig(config_path);
    LoadInternalTls(p.config.internal_tls, spec.name);
    LoadRedisAuth(p.config.redis, spec.name);
    if (spec.migrations) LoadPostgresAuth(p.config.postgres, spec.name);  // only kinds with a database
  } catch (const std::exception& e) {
    flags.Fail(e.what());
  }
  std::string logger = spec.name;
  if (spec.shards) {
    const auto& list = p.config.*spec.shards;
    if (shard < 0 || static_cast<size_t>(shard) >= list.size())
      flags.Fail("--shard " + std::to_string(shard) + " but the config has " + std::to_string(list.size()) +
                 " shard(s)");
    p.shard_config = list[shard];
    if (replica < 0 || static_cast<size_t>(replica) >= p.shard_config.addresses.size())
      flags.Fail("--replica " + std::to_string(replica) + " but shard " + std::to_string(shard) + " has " +
                 std::to_string(p.shard_config.addresses.size()) + " address(es)");
    p.shard = shard;
    p.replica = replica;
    p.listen = p.shard_config.addresses[replica];
    logger += "." + std::to_string(shard);
  } else if (spec.select) {
    logger = spec.select(p.config, flags);
  }
  InitLogging(logger, p.config.log_level);
  if (p.config.internal_tls.insecure_plaintext)
    spdlog::warn(
        "internal_tls.insecure_plaintext: gRPC between processes is PLAIN TEXT and UNAUTHENTICATED; any process "
        "that reaches a service port can call it (read phone numbers, send as anyone). Development only");
  else
    spdlog::info("internal TLS: mutual, CA {}, certificate {}", p.config.internal_tls.ca_file,
                 ExpandKind(p.config.internal_tls.cert_file, spec.name));

  try {
    PrepareTextPolicy();  // so the first request with non-ASCII text does not pay for the table
    if (spec.migrations) {
      EnsureDatabase(p.config.postgres, p.shard_config.database);
      ApplyMigrations(p.config.postgres.ConnInfo(p.shard_config.database), spec.migrations());
    }
    wire(p);
  } catch (const std::exception& e) {
    spdlog::critical("{}: {}", spec.name, e.what());
    spdlog::default_logger()->flush();
    std::cerr << spec.name << ": " << e.what() << "\n";
    return 1;
  }
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace chat
