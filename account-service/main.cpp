// account-service --config PATH --shard N [--replica R]
// Serves account shard N on config.account[N].addresses[R], owning database config.account[N].database.
#include "account/account_events.h"
#include "account/account_service.h"
#include "account/account_store.h"
#include "account/code_sender.h"
#include "account/migrations.h"
#include "common/service_main.h"

int main(int argc, char** argv) {
  const chat::ServiceSpec spec{
      .name = "account-service", .shards = &chat::ClusterConfig::account, .migrations = chat::account::Migrations};
  return chat::ServiceMain(spec, argc, argv, [](chat::ServiceProcess& p) {
    chat::PgPool pool = p.Pool(chat::account::PrepareAccountStatements);
    chat::account::FileCodeSender sender(p.config.run_dir);  // code_sender "file", the only one
    chat::account::FanoutAccountEvents events(p.config);
    chat::account::AccountServiceImpl service(chat::account::AccountServiceDeps{.config = &p.config,
                                                                                .shard = static_cast<uint32_t>(p.shard),
                                                                                .pool = &pool,
                                                                                .sender = &sender,
                                                                                .events = &events});
    p.Serve({&service});
  });
}
