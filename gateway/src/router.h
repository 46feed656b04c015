#pragma once
// Routes one client request to the shard that owns it, over gRPC with a deadline, and turns the
// answer into a Reply. No Beast here: sessions hand frames in and get replies back.
//
// Threads: Handle() may be called from any thread. `done` is called exactly once per request,
// either inline (validation errors, local answers) or from a gRPC callback thread; the caller
// must post back to its own strand.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "chat/internal/services.grpc.pb.h"
#include "chat/v1/client.pb.h"
#include "common/config.h"
#include "common/grpc_util.h"
#include "common/token.h"
#include "send_coalescer.h"

namespace chat::gateway {

struct Identity {
  uint64_t user_id = 0;
  std::string device_id;
};

struct RequestContext {
  Identity identity;  // user_id 0 = not authenticated
  uint64_t session_id = 0;
  std::string gateway_id;  // this gateway's instance id
};

// reply, plus the identity the connection takes on when the request authenticated it
// (sign_up, log_in, authenticate), nullopt otherwise.
using ReplyFn = std::function<void(v1::Reply, std::optional<Identity>)>;

class RequestRouter {
 public:
  RequestRouter(const ClusterConfig& config, std::string gateway_id);
  void Handle(const RequestContext& ctx, const v1::ClientFrame& frame, ReplyFn done);
  // Requests whose `done` has not returned yet. Every one ends within the RPC deadline; the
  // gateway waits for zero before destroying what `done` callbacks post to.
  int64_t inflight() const { return inflight_.load(); }

  // Verifies a token locally (used for the upgrade header and the authenticate request).
  std::optional<TokenClaims> VerifyToken(std::string_view token, TokenError* error) const;

 private:
  internal::Origin OriginOf(const RequestContext& ctx) const;
  void Authenticate(const v1::ClientFrame& frame, ReplyFn done);
  void ListConversations(const RequestContext& ctx, uint64_t request_id, ReplyFn done);
  void ListMyGroups(const RequestContext& ctx, uint64_t request_id, ReplyFn done);
  void LookupUser(const v1::ClientFrame& frame, ReplyFn done);

  void Route(const RequestContext& ctx, const v1::ClientFrame& frame, ReplyFn done);

  const ClusterConfig& config_;
  std::atomic<int64_t> inflight_{0};
  std::string gateway_id_;
  TokenSigner signer_;
  ShardedStubs<internal::AccountService> accounts_;
  ShardedStubs<internal::ChatService> chats_;
  ShardedStubs<internal::GroupService> groups_;
  SendCoalescer sends_;  // after chats_, which it uses
};

// Fills status and message from a gRPC status, replacing transport detail with a plain message.
void SetError(v1::Reply* reply, const grpc::Status& status);
void SetError(v1::Reply* reply, v1::StatusCode code, std::string message);

}  // namespace chat::gateway
