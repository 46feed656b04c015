#pragma once
// gRPC plumbing shared by every process: channels, deadlines, per-shard stubs, server setup.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"

namespace chat {

// The name a server of `Service` presents in its certificate and its callers check: the service's
// proto name in lower case with "-service", e.g. "chat.internal.ChatService" -> "chat-service" (the
// process kind, as deploy/make-certs names its certificates).
std::string ServerNameOf(std::string_view service_full_name);

// A channel to all replicas of one shard, round-robin, with keepalive and bounded message size.
// With TLS (tls loaded by LoadInternalTls, not insecure_plaintext) it presents this process's
// certificate and accepts only a server whose certificate chains to tls.ca_pem and names
// `server_name` (ServerNameOf). Throws when tls is neither loaded nor insecure_plaintext.
std::shared_ptr<grpc::Channel> MakeChannel(const ShardConfig& shard, const InternalTlsConfig& tls,
                                           const std::string& server_name);

// The metadata key in which a gateway passes the end user's address (its per-address limit key: an
// IPv4 address or an IPv6 prefix, gateway/src/admission.h ClientKey) on the requests that are limited
// per address inside a service (account-service's code requests and checks).
inline constexpr char kClientAddressMetadata[] = "x-chat-client-address";

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
  ShardedStubs(const std::vector<ShardConfig>& shards, const InternalTlsConfig& tls) {
    const std::string name = ServerNameOf(Service::service_full_name());
    for (const auto& s : shards) stubs_.push_back(Service::NewStub(MakeChannel(s, tls, name)));
  }
  typename Service::Stub& at(uint32_t shard) { return *stubs_.at(shard); }
  uint32_t size() const { return static_cast<uint32_t>(stubs_.size()); }

 private:
  std::vector<std::unique_ptr<typename Service::Stub>> stubs_;
};

// Builds and starts a server on `listen` with health checking. max_threads > 0 caps the sync
// server's threads (beyond it gRPC answers RESOURCE_EXHAUSTED itself). With TLS (see MakeChannel) it
// presents this process's certificate and refuses every client without a certificate that chains to
// tls.ca_pem: such a client's handshake fails before any call. Throws if the port cannot be bound or
// tls is neither loaded nor insecure_plaintext.
std::unique_ptr<grpc::Server> StartServer(const std::string& listen, std::vector<grpc::Service*> services,
                                          const InternalTlsConfig& tls, int max_threads = 0);

// Blocks until SIGINT/SIGTERM, then returns (used by service mains for graceful shutdown).
void WaitForTerminationSignal();

}  // namespace chat
