// group-service --config PATH --shard N [--replica R]
// Serves config.group[N].addresses[R] over gRPC and owns database config.group[N].database.
#include <spdlog/spdlog.h>

#include "common/events.h"
#include "common/fanout.h"
#include "common/outbox.h"
#include "common/service_main.h"
#include "group/group_seams.h"
#include "group/group_service.h"
#include "group/group_store.h"
#include "group/migrations.h"

int main(int argc, char** argv) {
  const chat::ServiceSpec spec{
      .name = "group-service", .shards = &chat::ClusterConfig::group, .migrations = chat::group::Migrations};
  return chat::ServiceMain(spec, argc, argv, [](chat::ServiceProcess& p) {
    const chat::ClusterConfig& config = p.config;
    chat::PgPool pool = p.Pool(chat::group::PrepareGroupStatements);
    const uint32_t deadline = config.limits.common.rpc_deadline_ms;
    chat::GrpcFriendChecker friends(config.account, config.internal_tls, deadline);
    chat::group::GrpcProfileSource profiles(config.account, config.internal_tls, deadline);
    chat::group::GrpcConversationMembership chat_members(config.chat, config.internal_tls);
    chat::GrpcPresenceDirectory presence(config.presence, config.internal_tls, deadline);
    chat::RedisDeliveryPublisher publisher(config.redis);
    chat::Fanout fanout(presence, publisher);
    chat::Outbox outbox(p.ConnInfo(), chat::OutboxOptionsFrom(config.limits));
    chat::FanoutPublisher events(fanout, &outbox, config.limits.common.fanout_workers);
    chat::UserQuotas quotas(config.redis, chat::group::GroupQuotaSpecs(config.limits),
                            chat::QuotaOptionsFrom(config.limits));
    chat::group::GroupServiceImpl service({.pool = &pool,
                                           .limits = &config.limits,
                                           .shard = static_cast<uint32_t>(p.shard),
                                           .shard_count = static_cast<uint32_t>(config.group.size()),
                                           .friends = &friends,
                                           .profiles = &profiles,
                                           .chat = &chat_members,
                                           .events = &events,
                                           .outbox = &outbox,
                                           .quotas = &quotas});
    // Changes not yet announced (chat was down, the process died): push and announce them again.
    outbox.Handle(chat::group::kOutboxGroupChangeTopic,
                  [&service](uint64_t id, const std::string& payload) { return service.RelayChange(id, payload); });
    outbox.Handle(chat::group::kOutboxGroupSyncTopic,
                  [&service](uint64_t id, const std::string& payload) { return service.RelaySync(id, payload); });
    // Stop the relay before the service it calls goes, however this scope ends.
    chat::Outbox::StopGuard stop_outbox_first(outbox);
    events.Start();
    outbox.Start();
    p.Serve({&service});
    events.Stop();  // delivers what was published (relays arriving now wait for the next process)
    outbox.Stop();  // deletes what was delivered
  });
}
