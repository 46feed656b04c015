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

class Gateway {
 public:
  // `index` selects config.gateways[index]; `listen_override` (host:port) replaces its address.
  Gateway(const ClusterConfig& config, int index, int threads, std::string listen_override = "");
  ~Gateway();
  // Binds, takes the presence lease, subscribes, starts serving. Throws on failure to bind.
  void Start();
  // Graceful: stop accepting, close every session with 1012, drain up to limits.drain_timeout_ms.
  void Stop();
  uint16_t port() const;
  const std::string& instance_id() const;
  size_t sessions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chat::gateway
