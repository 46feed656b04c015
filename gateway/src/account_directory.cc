#include <spdlog/spdlog.h>

#include <atomic>

#include "authenticator.h"
#include "chat/internal/services.grpc.pb.h"
#include "common/grpc_util.h"
#include "common/shard.h"

// The gRPC half of the account check, apart from authenticator.cc so that the token and cache logic
// builds (and is fuzzed) without gRPC.
namespace chat::gateway {

namespace {

class GrpcAccountDirectory : public AccountDirectory {
 public:
  explicit GrpcAccountDirectory(const ClusterConfig& c)
      : deadline_ms_(c.limits.common.rpc_deadline_ms), accounts_(c.account, c.internal_tls) {}

  void Check(const TokenRef& token, std::function<void(Answer)> done) override {
    const uint64_t user_id = token.user_id;
    struct Call {
      std::unique_ptr<grpc::ClientContext> ctx;
      internal::SessionKey req;
      internal::AccountCheckResult res;
    };
    auto call = std::make_shared<Call>();
    call->ctx = MakeContext(deadline_ms_);
    call->req.set_user_id(user_id);
    call->req.set_session_id(token.session_id);
    call->req.set_token_gen(token.token_gen);
    ++inflight_;
    auto& stub = accounts_.at(ShardOfUser(user_id, accounts_.size()));
    stub.async()->CheckAccount(call->ctx.get(), &call->req, &call->res,
                               [this, call, user_id, done = std::move(done)](grpc::Status st) {
                                 Answer a = Answer::kUnreachable;
                                 if (st.ok())
                                   a = call->res.active() ? Answer::kActive : Answer::kNotActive;
                                 else
                                   spdlog::warn("account check of user {} failed: {} {}", user_id,
                                                static_cast<int>(st.error_code()), st.error_message());
                                 done(a);
                                 --inflight_;
                               });
  }
  int64_t inflight() const override { return inflight_.load(); }

 private:
  const uint32_t deadline_ms_;
  ShardedStubs<internal::AccountService> accounts_;
  std::atomic<int64_t> inflight_{0};
};

}  // namespace

std::unique_ptr<AccountDirectory> MakeGrpcAccountDirectory(const ClusterConfig& config) {
  return std::make_unique<GrpcAccountDirectory>(config);
}

}  // namespace chat::gateway
