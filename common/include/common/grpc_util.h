#pragma once
// gRPC plumbing shared by every process: channels, deadlines, per-shard stubs, server setup.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common/config.h"

namespace chat {

// A channel to all replicas of one shard, round-robin, with keepalive and bounded message size.
std::shared_ptr<grpc::Channel> MakeChannel(const ShardConfig& shard);

// A client context whose deadline is now + deadline_ms.
inline std::unique_ptr<grpc::ClientContext> MakeContext(uint32_t deadline_ms) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  return ctx;
}

// One stub per shard, indexed by shard number. Stubs are thread-safe.
template <typename Service>
class ShardedStubs {
 public:
  explicit ShardedStubs(const std::vector<ShardConfig>& shards) {
    for (const auto& s : shards) stubs_.push_back(Service::NewStub(MakeChannel(s)));
  }
  typename Service::Stub& at(uint32_t shard) { return *stubs_.at(shard); }
  uint32_t size() const { return static_cast<uint32_t>(stubs_.size()); }

 private:
  std::vector<std::unique_ptr<typename Service::Stub>> stubs_;
};

// Builds and starts a server on `listen` with health checking. max_threads > 0 caps the sync
// server's threads (beyond it gRPC answers RESOURCE_EXHAUSTED itself). Throws if the port cannot be bound.
std::unique_ptr<grpc::Server> StartServer(const std::string& listen, std::vector<grpc::Service*> services,
                                          int max_threads = 0);

// Blocks until SIGINT/SIGTERM, then returns (used by service mains for graceful shutdown).
void WaitForTerminationSignal();

}  // namespace chat
