#pragma once
// The one narrow object that the listener, the HTTP upgrade phase and the WebSocket sessions share.
// Owned by Gateway; outlives every session (Gateway drains sessions before destroying it).
#include <atomic>
#include <cstdint>
#include <string>

#include "common/config.h"
#include "hub.h"
#include "presence_registrar.h"
#include "router.h"

namespace boost::asio::ip {
class tcp;
}

namespace chat::gateway {

struct GatewayCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> slow_consumer_kicks{0};
  std::atomic<uint64_t> rejected_full{0};
  std::atomic<uint64_t> bad_frames{0};
  std::atomic<uint64_t> rate_limited{0};
};

struct GatewayContext {
  const ClusterConfig& config;
  const Limits& limits;
  std::string instance_id;
  RequestRouter& router;
  SessionHub& hub;
  PresenceRegistrar& registrar;
  std::atomic<int64_t> open_sessions{0};      // WebSocket sessions accepted and not yet finished
  std::atomic<uint64_t> next_session_id{1};
  std::atomic<bool> shutting_down{false};
  GatewayCounters counters;
};

}  // namespace chat::gateway
