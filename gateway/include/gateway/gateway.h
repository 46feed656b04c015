#pragma once
// The WebSocket gateway process: accepts clients, authenticates them, routes their requests to
// the owning shards over gRPC, and pushes the deliveries it receives on its Redis channel.
//
// Threads: Start/Stop from one controlling thread (main). Internally: `threads` io_context threads
// (every session on its own strand), one Redis subscriber thread, one presence registrar thread,
// and gRPC's callback threads (which only post to session strands).
#include <cstdint>
#include <memory>
#include <string>

#include "common/config.h"

namespace chat::gateway {

// Which gateway of the config this process is, and how it runs.
struct GatewayOptions {
  int index = 0;       // config.gateways[index]
  int threads = 1;     // io threads (>= 1)
  std::string listen;  // host:port replacing config.gateways[index].listen; empty = keep it
};

class Gateway {
 public:
  // config must outlive the gateway.
  Gateway(const ClusterConfig& config, GatewayOptions options);
  ~Gateway();
  // Binds, takes the presence lease, subscribes, starts serving. Throws on failure to bind.
  void Start();
  // Graceful: stop accepting, close every session with 1012, drain up to limits.common.drain_timeout_ms.
  void Stop();
  uint16_t port() const;
  const std::string& instance_id() const;
  size_t sessions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chat::gateway
