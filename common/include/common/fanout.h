#pragma once
// Fan-out after commit: find where recipients are online (presence) and publish one Delivery per
// target gateway on Redis channel "gw.<gateway id>". Never one publish per recipient, never to
// every gateway. Pub/sub is a doorbell: a lost delivery is repaired by client sync, so failures
// here are logged and counted, never returned to the sender.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "chat/v1/client.pb.h"
#include "common/config.h"
#include "common/grpc_util.h"
#include "common/redis.h"

namespace chat {

// Seam: where users are online. Thread-safe.
class PresenceDirectory {
 public:
  virtual ~PresenceDirectory() = default;
  // Appends the live sessions of `user_ids` to *out. Returns false if presence is unreachable.
  virtual bool Lookup(const std::vector<uint64_t>& user_ids, std::vector<internal::SessionRef>* out) = 0;
};

// Seam: the pub/sub transport. Thread-safe.
class DeliveryPublisher {
 public:
  virtual ~DeliveryPublisher() = default;
  // Publishes every (channel, payload) pair in order. Returns false if the transport failed.
  virtual bool Publish(const std::vector<std::pair<std::string, std::string>>& messages) = 0;
};

// Real presence over gRPC, split by ShardOfUser, and each shard's ids into requests of at most
// kMaxIdsPerLookup (presence-service refuses more than 10000 ids in one Lookup). Every request is in
// flight at once (callback API); the calling thread waits for the last answer, bounded by the
// deadline. A failed call loses only its own chunk (Lookup then returns false).
class GrpcPresenceDirectory : public PresenceDirectory {
 public:
  static constexpr size_t kMaxIdsPerLookup = 5000;
  GrpcPresenceDirectory(const std::vector<ShardConfig>& shards, const InternalTlsConfig& tls, uint32_t deadline_ms);
  bool Lookup(const std::vector<uint64_t>& user_ids, std::vector<internal::SessionRef>* out) override;

 private:
  ShardedStubs<internal::PresenceService> stubs_;
  uint32_t deadline_ms_;
};

class RedisDeliveryPublisher : public DeliveryPublisher {
 public:
  explicit RedisDeliveryPublisher(const RedisConfig& cfg) : redis_(cfg) {}
  bool Publish(const std::vector<std::pair<std::string, std::string>>& messages) override;

 private:
  RedisClient redis_;
};

// One event for a set of users.
struct FanoutItem {
  std::vector<uint64_t> user_ids;
  v1::Event event;
  uint64_t skip_session_id = 0;
  std::string conversation_id;
  uint64_t outbox_id = 0;  // the outbox row this item came from (common/outbox.h), 0 = none
  // Set: a revocation of user_ids[0]'s tokens (event: the KickedEvent), published once on
  // kRevocationChannel to every gateway instead of to the gateways presence names.
  std::optional<internal::Revocation> revocation;
};

// Seam: where delivered outbox items are acknowledged (common/outbox.h implements it). Thread-safe.
class OutboxAcks {
 public:
  virtual ~OutboxAcks() = default;
  virtual void Ack(const std::vector<uint64_t>& outbox_ids) = 0;
};

// Seam: deliver resolved items now, on the calling (worker) thread of the event path
// (common/events.h). Returns false when a transport failed (presence or Redis), so an outbox item is
// not acknowledged and is relayed again later. Tests record the items.
class EventDelivery {
 public:
  virtual ~EventDelivery() = default;
  virtual bool DeliverNow(const std::vector<FanoutItem>& items) = 0;
};

// The real EventDelivery. Thread-safe when its seams are.
class Fanout : public EventDelivery {
 public:
  Fanout(PresenceDirectory& presence, DeliveryPublisher& publisher) : presence_(presence), publisher_(publisher) {}
  // One presence lookup for the union of all items' users, then one publish per (item, gateway),
  // all in one pipeline, in item order (so per-conversation order is kept on each channel).
  // Returns the number of deliveries published; *ok (when given) is false when presence could not
  // be asked at all or the publish failed.
  size_t Deliver(const std::vector<FanoutItem>& items, bool* ok = nullptr);
  bool DeliverNow(const std::vector<FanoutItem>& items) override {
    bool ok = true;
    Deliver(items, &ok);
    return ok;
  }

 private:
  PresenceDirectory& presence_;
  DeliveryPublisher& publisher_;
};

}  // namespace chat
