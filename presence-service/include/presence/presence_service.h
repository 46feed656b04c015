#pragma once
// presence-service: who is online on which gateway and device. Sharded by user id (the caller
// routes with chat::ShardOfUser); every shard may point at the same Redis. The process keeps no
// state of its own: everything lives in Redis under these keys.
//
//   pres:<user_id>         hash, one field per live session:
//                              field "<gateway_id>|<session_id>"  ->  value "<device_id>"
//                          EXPIREs kSessionHashTtlSeconds (2 days) after the user's last Register,
//                          so a user who vanished without Unregister is eventually forgotten.
//   presz:<user_id>        sorted set of the same fields, scored by the unix ms of the session's last
//                          activity: its first Register, then the last_active_ms its gateway sends
//                          when it registers active sessions again (after each heartbeat), so the
//                          lowest score is the session idle longest; same expiry as pres:.
//   gwlease:<gateway_id>   string "1" with a PX TTL: the gateway's lease. Refreshed by
//                          GatewayHeartbeat (ttl_ms, 0 = limits.presence.presence_ttl_ms); Register also
//                          creates it if missing (SET NX, never shortening or extending a live one),
//                          since a gateway that registers a session is alive at that moment.
//
// Contract:
//   * A session counts as online only while its gateway's lease lives. A gateway that dies stops
//     heartbeating, its lease expires, and all of its sessions drop out of Lookup by themselves
//     (within one TTL). Lookup lazily HDELs the entries of gateways without a lease.
//   * With several presence shards on different Redis servers a gateway must heartbeat every shard;
//     with one shared Redis (the default config) heartbeating any one shard is enough.
//   * What can be lost: everything. Losing Redis (or a key) only means recipients look offline
//     until their gateways register them again and heartbeat; the state is rebuilt as gateways
//     re-register. Delivery is a doorbell and clients repair any gap by sync, so nothing
//     acknowledged is lost.
//   * Lookup is a snapshot: a session registered or dropped concurrently may or may not appear.
//   * Sessions per user are capped (limits.presence.max_sessions_per_user): when a Register takes a
//     user over the cap, sessions of gateways without a lease are forgotten first, then the live
//     sessions idle longest (never the one registering) are removed and kicked: a Delivery with
//     kick_session_id and a KickedEvent (close code 4010) is published on their gateway's channel.
//     Concurrent registrations may each evict one, leaving the user below the cap; never above it
//     for longer than one Register.
//   * Register/Unregister are idempotent; all commands of one call go in one Redis pipeline
//     (one round trip); they are not atomic across keys.
//
// Errors: Redis unreachable -> UNAVAILABLE; more than kMaxIdsPerCall users or sessions, an empty
// gateway id, user id 0 -> INVALID_ARGUMENT.
//
// Threads: every method may be called concurrently (gRPC sync server threads); the RedisClient is
// thread-safe and owned by the caller, who keeps it alive longer than this service.
#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/config.h"
#include "common/error.h"
#include "common/redis.h"

namespace chat::presence {

inline constexpr size_t kMaxIdsPerCall = 10000;
inline constexpr int64_t kSessionHashTtlSeconds = 2 * 24 * 3600;
inline constexpr uint32_t kMaxLeaseTtlMs = 3600 * 1000;
inline constexpr size_t kMaxGatewayIdChars = 200;
inline constexpr size_t kMaxDeviceIdChars = 200;

std::string SessionsKey(uint64_t user_id);
std::string SessionOrderKey(uint64_t user_id);
std::string LeaseKey(const std::string& gateway_id);
std::string SessionField(const std::string& gateway_id, uint64_t session_id);

// The seams the service uses; borrowed, and they must outlive the service.
struct PresenceServiceDeps {
  RedisClient* redis = nullptr;
  const Limits* limits = nullptr;
};

class PresenceServiceImpl final : public internal::PresenceService::Service {
 public:
  explicit PresenceServiceImpl(PresenceServiceDeps deps) : redis_(*deps.redis), limits_(*deps.limits) {}

  grpc::Status Register(grpc::ServerContext* ctx, const internal::RegisterRequest* req, v1::Empty* res) override;
  grpc::Status Unregister(grpc::ServerContext* ctx, const internal::RegisterRequest* req, v1::Empty* res) override;
  grpc::Status GatewayHeartbeat(grpc::ServerContext* ctx, const internal::GatewayHeartbeatRequest* req,
                                v1::Empty* res) override;
  grpc::Status Lookup(grpc::ServerContext* ctx, const internal::LookupRequest* req,
                      internal::LookupResult* res) override;

 private:
  // Brings every user in `over` (whose Register found more than the cap) back to the cap.
  void EvictOverCap(const std::vector<std::pair<uint64_t, std::vector<std::string>>>& over,
                    const std::unordered_set<std::string>& registering);
  RedisClient& redis_;
  const Limits& limits_;
};

}  // namespace chat::presence
