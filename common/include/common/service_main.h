#pragma once
// The skeleton every process's main.cpp calls: ServiceMain parses the flags, loads and validates the
// config, picks this process's shard (or gateway) entry, starts logging, applies the service's own
// migrations, then runs the service's wiring function, which builds its objects on its own stack and
// calls Serve() (or WaitForStop()) to run until SIGTERM/SIGINT.
//
//   int main(int argc, char** argv) {
//     return chat::ServiceMain({.name = "group-service", .shards = &chat::ClusterConfig::group,
//                               .migrations = chat::group::Migrations},
//                              argc, argv, [](chat::ServiceProcess& p) {
//       chat::PgPool pool = p.Pool(chat::group::PrepareGroupStatements);
//       ... build the Deps, the service and its background threads ...
//       p.Serve({&service});  // until SIGTERM, then drains in-flight calls
//       ... stop the background threads ...
//     });
//   }
//
// Exit status: 0 after a graceful stop, 2 for a usage or config error (the reason on stderr), 1 when
// start-up or the wiring threw (the reason logged as critical).
#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/flags.h"
#include "common/pg.h"

namespace chat {

using MigrationsFn = std::vector<Migration> (*)();

struct ServiceSpec {
  const char* name = "";  // the executable's name, also the logger's ("<name>.<shard>")
  // The config's shard list this process serves one entry of (--shard N, --replica R); null for a
  // process that is not a sharded gRPC service (the gateway), which selects its entry itself.
  std::vector<ShardConfig> ClusterConfig::*shards = nullptr;
  // The service's embedded migrations (chat_embed_migrations in CMake), applied to its shard's
  // database before wiring; null when the service owns no database.
  MigrationsFn migrations = nullptr;
  // Declares the process's own flags beyond --config, --shard and --replica.
  std::function<void(Flags&)> add_flags;
  // For a process without `shards`: checks its own flags against the config (calling Flags::Fail on
  // a mismatch) and returns the logger's name.
  std::function<std::string(const ClusterConfig&, Flags&)> select;
};

// What ServiceMain hands the wiring function. Lives for the whole run.
class ServiceProcess {
 public:
  ClusterConfig config;
  int shard = 0;
  int replica = 0;
  ShardConfig shard_config;  // config.<service>[shard] (empty for a process without `shards`)
  std::string listen;        // shard_config.addresses[replica]

  // A pool over this shard's database; `prepare` runs on every new connection.
  PgPool Pool(std::function<void(pqxx::connection&)> prepare) const;
  // The connection string of this shard's database (for a component with its own connection).
  std::string ConnInfo() const;
  // Starts a gRPC server on `listen` with `services`, logs "ready", blocks until SIGTERM/SIGINT, then
  // stops accepting and gives in-flight calls limits.common.drain_timeout_ms. max_threads > 0 caps the sync
  // pool (see StartServer). Throws if the port cannot be bound.
  void Serve(std::vector<grpc::Service*> services, int max_threads = 0);
  // Serve's waiting step alone, for processes that serve something else (the gateway).
  void WaitForStop();

 private:
  friend int ServiceMain(const ServiceSpec&, int, char**, const std::function<void(ServiceProcess&)>&);
  std::string name_;
};

int ServiceMain(const ServiceSpec& spec, int argc, char** argv, const std::function<void(ServiceProcess&)>& wire);

}  // namespace chat
