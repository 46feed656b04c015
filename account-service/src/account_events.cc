#include "account/account_events.h"

#include <spdlog/spdlog.h>

namespace chat::account {

FanoutAccountEvents::FanoutAccountEvents(const ClusterConfig& config)
    : presence_(config.presence, config.limits.common.rpc_deadline_ms),
      publisher_(config.redis),
      fanout_(presence_, publisher_),
      has_presence_(!config.presence.empty()) {}

void FanoutAccountEvents::Deliver(const std::vector<FanoutItem>& items) {
  if (!has_presence_) return;  // nowhere to look up sessions (config without presence shards)
  try {
    fanout_.Deliver(items);
  } catch (const std::exception& e) {
    spdlog::warn("account event fan-out failed: {}", e.what());
  }
}

}  // namespace chat::account
