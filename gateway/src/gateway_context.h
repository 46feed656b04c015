#pragma once
// The one narrow object that the three connection phases share: the listener (listener.h), the
// HTTP upgrade (http_upgrade.h) and the WebSocket session (ws_session.h).
// Owned by Gateway; outlives every session (Gateway drains sessions before destroying it).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "authenticator.h"
#include "common/config.h"
#include "common/ip_range.h"
#include "common/shard.h"
#include "hub.h"
#include "ip_limiter.h"
#include "presence_registrar.h"
#include "router.h"

namespace boost::asio::ip {
class tcp;
}

namespace chat::gateway {

// Session ids must be unique across the cluster, not just this process: a delivery's
// skip_session_id reaches every target gateway. Ids mix a random boot seed with a counter through
// a bijection, so they never repeat within a process and collide across processes with p ~ 2^-64.
// Thread-safe.
class SessionIdGenerator {
 public:
  explicit SessionIdGenerator(uint64_t seed) : seed_(seed) {}
  void Reseed(uint64_t seed) { seed_ = seed; }  // before first use only
  uint64_t Next() {
    for (;;) {
      uint64_t id = Mix64(seed_ ^ Mix64(counter_.fetch_add(1, std::memory_order_relaxed)));
      if (id != 0) return id;  // 0 means "no session"
    }
  }

 private:
  uint64_t seed_;
  std::atomic<uint64_t> counter_{0};
};

struct GatewayCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> slow_consumer_kicks{0};
  std::atomic<uint64_t> rejected_full{0};
  std::atomic<uint64_t> bad_frames{0};
  std::atomic<uint64_t> rate_limited{0};
  std::atomic<uint64_t> rejected_ip{0};
  std::atomic<uint64_t> bad_proxy_headers{0};  // from trusted balancers: missing, malformed or late
};

struct GatewayContext {
  const ClusterConfig& config;
  const Limits& limits;
  std::string instance_id;
  Authenticator& auth;
  RequestRouter& router;
  SessionHub& hub;
  PresenceRegistrar& registrar;
  IpLimiter& ip_limiter;
  std::atomic<int64_t> open_sessions{0};  // WebSocket sessions accepted and not yet finished
  SessionIdGenerator session_ids{0};
  std::atomic<bool> shutting_down{false};
  GatewayCounters counters{};
  std::vector<IpRange> trusted_proxies{};  // this gateway's gateways[].trusted_proxies; set before Start
};

}  // namespace chat::gateway
