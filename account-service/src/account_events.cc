#include "account/account_events.h"

#include <spdlog/spdlog.h>

namespace chat::account {

FanoutAccountEvents::FanoutAccountEvents(const ClusterConfig& config)
    : presence_(config.presence, config.limits.rpc_deadline_ms),
      publisher_(config.redis),
      fanout_(presence_, publisher_) {}

void FanoutAccountEvents::Deliver(const std::vector<FanoutItem>& items) {
  try {
    fanout_.Deliver(items);
  } catch (const std::exception& e) {
    spdlog::warn("account event fan-out failed: {}", e.what());
  }
}

}  // namespace chat::account
