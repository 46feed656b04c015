#pragma once
// Routes one client request to the shard that owns it, over gRPC with a deadline, and turns the
// answer into a Reply. No Beast here: sessions hand frames in and get replies back.
//
// The routes are one table keyed by request kind (router.cc, Routes()): each entry says whether the
// request needs an authenticated connection and names its handler. Adding a request kind is one
// entry plus its handler; a unary call to one shard is a one-line handler (Call).
//
// Threads: Handle() may be called from any thread. `done` is called exactly once per request,
// either inline (validation errors, local answers) or from a gRPC callback thread; the caller
// must post back to its own strand.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "authenticator.h"
#include "chat/internal/services.grpc.pb.h"
#include "chat/v1/client.pb.h"
#include "common/config.h"
#include "common/grpc_util.h"
#include "send_coalescer.h"

namespace chat::gateway {

struct RequestContext {
  Identity identity;  // user_id 0 = not authenticated
  // For an authenticate request: the identity its token names, already verified by the session's
  // authentication step (Authenticator). Unused otherwise.
  Identity claimed;
  uint64_t session_id = 0;
  std::string gateway_id;      // this gateway's instance id
  std::string client_address;  // the connection's per-address limit key (ClientKey)
};

// reply, plus the identity the connection takes on when the request authenticated it
// (sign_up, log_in, authenticate), nullopt otherwise.
using ReplyFn = std::function<void(v1::Reply, std::optional<Identity>)>;

class RequestRouter {
 public:
  RequestRouter(const ClusterConfig& config, std::string gateway_id);
  ~RequestRouter();
  void Handle(const RequestContext& ctx, const v1::ClientFrame& frame, ReplyFn done);
  // Requests whose `done` has not returned yet. Every one ends within the RPC deadline; the
  // gateway waits for zero before destroying what `done` callbacks post to.
  int64_t inflight() const { return inflight_.load(); }

  // Whether the table has a route for this kind (tests check that every kind of the schema has one).
  static bool Routed(v1::ClientFrame::RequestCase kind);

  // The stubs and settings the route handlers use (router.cc).
  struct Backends;

 private:
  std::atomic<int64_t> inflight_{0};
  std::unique_ptr<Backends> backends_;
};

// The one way a gateway reply carries an error: status and message, no result.
v1::Reply ErrorReply(uint64_t request_id, v1::StatusCode code, std::string message);
// Fills status and message from a gRPC status, replacing transport detail with a plain message.
void SetError(v1::Reply* reply, const grpc::Status& status);
void SetError(v1::Reply* reply, v1::StatusCode code, std::string message);

}  // namespace chat::gateway
