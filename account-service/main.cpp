// account-service --config PATH --shard N [--replica R]
// Serves account shard N on config.account[N].addresses[R], owning database config.account[N].database.
#include <spdlog/spdlog.h>

#include "account/account_service.h"
#include "account/account_store.h"
#include "account/code_sender.h"
#include "account/migrations.h"
#include "common/events.h"
#include "common/fanout.h"
#include "common/outbox.h"
#include "common/service_main.h"

int main(int argc, char** argv) {
  const chat::ServiceSpec spec{
      .name = "account-service", .shards = &chat::ClusterConfig::account, .migrations = chat::account::Migrations};
  return chat::ServiceMain(spec, argc, argv, [](chat::ServiceProcess& p) {
    chat::PgPool pool = p.Pool(chat::account::PrepareAccountStatements);
    chat::account::FileCodeSender sender(p.config.run_dir);  // code_sender "file", the only one
    const chat::Limits& limits = p.config.limits;
    chat::GrpcPresenceDirectory presence(p.config.presence, p.config.internal_tls, limits.common.rpc_deadline_ms);
    chat::RedisDeliveryPublisher publisher(p.config.redis);
    chat::Fanout fanout(presence, publisher);
    chat::Outbox outbox(p.ConnInfo(), chat::OutboxOptionsFrom(limits));
    chat::FanoutPublisher events(fanout, &outbox, limits.common.fanout_workers);
    // Friend events not yet delivered (the process died, Redis was down): publish them again.
    outbox.Handle(chat::kOutboxEventTopic, [&events, &outbox](uint64_t id, const std::string& payload) {
      chat::internal::Delivery d;
      std::vector<chat::FanoutItem> items(1);
      if (!d.ParseFromString(payload) || !chat::FromDelivery(d, &items[0])) {
        spdlog::error("outbox row {} is not an event; dropped", id);
        outbox.Ack({id});
        return true;
      }
      items[0].outbox_id = id;
      events.Publish(std::move(items));
      return true;
    });
    chat::UserQuotas quotas(p.config.redis, chat::account::AccountQuotaSpecs(limits), chat::QuotaOptionsFrom(limits));
    chat::account::AccountServiceImpl service(chat::account::AccountServiceDeps{.config = &p.config,
                                                                                .shard = static_cast<uint32_t>(p.shard),
                                                                                .pool = &pool,
                                                                                .sender = &sender,
                                                                                .events = &events,
                                                                                .outbox = &outbox,
                                                                                .quotas = &quotas});
    chat::Outbox::StopGuard stop_outbox_first(outbox);  // the relay publishes into `events`
    events.Start();
    outbox.Start();
    p.Serve({&service});
    events.Stop();  // delivers what was published
    outbox.Stop();  // deletes what was delivered
  });
}
