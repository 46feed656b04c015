// chat-service --config PATH --shard N [--replica R]
// Serves chat shard N on config.chat[N].addresses[R] over its own database.
#include <spdlog/spdlog.h>

#include "chat_service/chat_service.h"
#include "chat_service/migrations.h"
#include "common/fanout.h"
#include "common/outbox.h"
#include "common/service_main.h"

int main(int argc, char** argv) {
  const chat::ServiceSpec spec{
      .name = "chat-service", .shards = &chat::ClusterConfig::chat, .migrations = chat::chat_service::Migrations};
  return chat::ServiceMain(spec, argc, argv, [](chat::ServiceProcess& p) {
    namespace cs = chat::chat_service;
    const chat::ClusterConfig& cfg = p.config;
    const chat::Limits& limits = cfg.limits;
    chat::Outbox outbox(p.ConnInfo(), chat::OutboxOptionsFrom(limits));
    chat::PgPool pool = p.Pool(&cs::PgChatStore::Prepare);
    cs::PgChatStore store(pool, &outbox);

    chat::GrpcPresenceDirectory presence(cfg.presence, cfg.internal_tls, limits.common.rpc_deadline_ms);
    chat::RedisDeliveryPublisher publisher(cfg.redis);
    chat::Fanout fanout(presence, publisher);
    cs::FanoutQueue fanout_queue(store, fanout, std::chrono::seconds(60), 10000, 100000, limits.common.fanout_workers,
                                 &outbox);
    // The relay hands rows to fanout_queue: stop it before fanout_queue goes, however this scope ends.
    chat::Outbox::StopGuard stop_outbox_first(outbox);
    outbox.Handle(cs::kOutboxMessageTopic, [&fanout_queue, &outbox](uint64_t id, const std::string& payload) {
      cs::CommittedMessage m;
      if (!cs::FromOutbox(payload, id, &m)) {
        spdlog::error("outbox row {} is not a message; dropped", id);
        outbox.Ack({id});
        return true;
      }
      std::vector<cs::CommittedMessage> one;
      one.push_back(std::move(m));
      fanout_queue.PushMessages(std::move(one));
      return true;
    });
    chat::GrpcFriendChecker account_friends(cfg.account, cfg.internal_tls, limits.common.rpc_deadline_ms);
    chat::CachingFriendChecker friends(account_friends, std::chrono::milliseconds(limits.chat.friend_cache_ttl_ms));
    chat::UserQuotas quotas(cfg.redis, cs::SendQuotaSpecs(limits), chat::QuotaOptionsFrom(limits));
    cs::SendBatcher batcher(store, fanout_queue, limits.chat.send_batch_max, limits.chat.send_queue_max,
                            limits.chat.send_committers, &quotas);
    cs::ChatServiceImpl service({.shard = static_cast<uint32_t>(p.shard),
                                 .shard_count = static_cast<uint32_t>(cfg.chat.size()),
                                 .limits = &limits,
                                 .store = &store,
                                 .batcher = &batcher,
                                 .fanout = &fanout_queue,
                                 .friends = &friends});
    fanout_queue.Start();
    outbox.Start();
    batcher.Start();
    // Sends wait on the batcher without a thread (callback method); the sync pool serves the rest.
    // In-flight sends finish during the drain: the batcher keeps committing until it is stopped.
    p.Serve({&service}, 64);
    batcher.Stop();       // commits what is queued
    fanout_queue.Stop();  // delivers what was committed
    outbox.Stop();        // deletes what was delivered; the rest waits for the next relay
  });
}
