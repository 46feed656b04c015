#pragma once
// Registers this gateway's sessions with presence and keeps the gateway's lease alive.
//
// Registrations and unregistrations are queued and flushed in batches (one RPC per presence shard
// per flush) by one background thread, which also heartbeats the lease every ttl/3. Register's
// `done` runs on that thread once the batch holding it was answered (success or not): the session
// replies to its client only then, so a client that syncs after that reply cannot miss a push.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/config.h"
#include "common/grpc_util.h"

namespace chat::gateway {

class PresenceRegistrar {
 public:
  // `sessions(since_ms)` lists the registered sessions whose last request is at or after since_ms
  // (SteadyMs; 0 = every session). The registrar thread calls it after each heartbeat with the time
  // of the previous one, and registers those sessions again: presence then knows which sessions are
  // idle longest (its session cap closes those first). It calls it with 0 when the lease may have
  // lapsed (a failed or late heartbeat), because presence then drops this gateway's sessions and they
  // must all be registered again.
  PresenceRegistrar(const ClusterConfig& config, std::string gateway_id,
                    std::function<std::vector<internal::SessionRef>(int64_t since_ms)> sessions);
  ~PresenceRegistrar();
  // Takes the lease (retrying until `wait_ms` passes) and starts the flush thread.
  // Returns false if no presence shard answered in time.
  bool Start(uint32_t wait_ms);
  // Flushes what is queued, unregisters `remaining`, stops the thread.
  void Stop(const std::vector<internal::SessionRef>& remaining);

  void Register(internal::SessionRef ref, std::function<void()> done);
  void Unregister(internal::SessionRef ref);

 private:
  void Run();
  bool Heartbeat();
  void Flush(std::vector<internal::SessionRef> reg, std::vector<std::function<void()>> dones,
             std::vector<internal::SessionRef> unreg);

  const ClusterConfig& config_;
  std::string gateway_id_;
  std::function<std::vector<internal::SessionRef>(int64_t since_ms)> sessions_;
  std::chrono::steady_clock::time_point last_good_beat_{};
  int64_t last_touch_ms_ = 0;  // SteadyMs() when the last good heartbeat started (registrar thread)
  ShardedStubs<internal::PresenceService> stubs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<internal::SessionRef> reg_, unreg_;
  std::vector<std::function<void()>> dones_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace chat::gateway
