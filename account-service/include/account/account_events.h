#pragma once
// Seam: pushing account events (friend request received, friend added) to users' online sessions.
// Called only after the change is committed; delivery is a doorbell, so failures are logged by the
// implementation and never reported to the caller. Implementations are thread-safe.
#include <memory>
#include <vector>

#include "common/config.h"
#include "common/fanout.h"

namespace chat::account {

class AccountEvents {
 public:
  virtual ~AccountEvents() = default;
  virtual void Deliver(const std::vector<FanoutItem>& items) = 0;
};

// The real one: chat::Fanout over presence-service (gRPC) and Redis pub/sub.
class FanoutAccountEvents : public AccountEvents {
 public:
  explicit FanoutAccountEvents(const ClusterConfig& config);
  void Deliver(const std::vector<FanoutItem>& items) override;

 private:
  GrpcPresenceDirectory presence_;
  RedisDeliveryPublisher publisher_;
  Fanout fanout_;
  bool has_presence_;
};

}  // namespace chat::account
