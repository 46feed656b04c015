#pragma once
// ChatServiceImpl: the gRPC chat.internal.ChatService of one chat shard.
//
// Threads: Send and SendBatch are callback (reactor) methods: it validates on gRPC's callback thread, hands the
// send to the SendBatcher and returns; the batcher's committer thread finishes the call after the
// group commit (or when the call's deadline passed before its batch was taken). No thread waits per
// send, so the number of sends in flight is bounded by the batcher's queue, not by a thread pool.
// The other methods are synchronous, on gRPC's pool. Exceptions never escape a handler: every
// failure is a Status whose message is user-facing.
#include <chrono>
#include <functional>

#include "chat/internal/services.grpc.pb.h"
#include "chat_service/chat_store.h"
#include "chat_service/fanout_queue.h"
#include "chat_service/send_batcher.h"
#include "common/config.h"
#include "common/error.h"
#include "common/friends.h"
#include "common/shard.h"

namespace chat::chat_service {

// The seams the service uses; all borrowed. The caller keeps them alive and stops the batcher and
// the fan-out queue after the server has shut down.
struct ChatServiceDeps {
  uint32_t shard = 0;        // this shard's index in config.chat
  uint32_t shard_count = 1;  // config.chat.size()
  const Limits* limits = nullptr;
  PgChatStore* store = nullptr;
  SendBatcher* batcher = nullptr;
  FanoutQueue* fanout = nullptr;
  FriendChecker* friends = nullptr;
};

class ChatServiceImpl final : public internal::ChatService::WithCallbackMethod_Send<
                                  internal::ChatService::WithCallbackMethod_SendBatch<internal::ChatService::Service>> {
 public:
  explicit ChatServiceImpl(ChatServiceDeps deps);

  using SendDoneFn = std::function<void(const Status&, v1::SendMessageResult&&)>;

  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* ctx, const internal::SendRequest* req,
                                 v1::SendMessageResult* res) override;
  // Each send as Send would do it; finishes when the last one is answered.
  grpc::ServerUnaryReactor* SendBatch(grpc::CallbackServerContext* ctx, const internal::SendBatchRequest* req,
                                      internal::SendBatchResult* res) override;
  // What Send does, without gRPC: `done` runs exactly once, possibly before SendAsync returns,
  // otherwise on the batcher's committer thread or (a refusal by account-service) a gRPC completion
  // thread. A direct send whose friendship is not cached waits for account-service without a thread
  // (InboundAsync, on the recipient's shard) before it reaches the batcher, so no committer ever waits on another
  // service. `deadline` is the caller's.
  void SendAsync(const internal::SendRequest& req, std::chrono::system_clock::time_point deadline, SendDoneFn done);
  grpc::Status GetHistory(grpc::ServerContext* ctx, const internal::HistoryRequest* req,
                          v1::HistoryResult* res) override;
  grpc::Status ListConversations(grpc::ServerContext* ctx, const internal::UserIdRequest* req,
                                 v1::ConversationsResult* res) override;
  grpc::Status MarkRead(grpc::ServerContext* ctx, const internal::MarkReadRequest* req,
                        v1::MarkReadResult* res) override;
  grpc::Status UpdateMembers(grpc::ServerContext* ctx, const internal::UpdateMembersRequest* req,
                             internal::UpdateMembersResult* res) override;
  grpc::Status ForgetContacts(grpc::ServerContext* ctx, const internal::ContactChange* req, v1::Empty* res) override;

 private:
  // Validates and authorizes what can be decided at once; fills *send, and *ask_friend with the peer
  // of a direct send whose "may message" answer must still be asked (0 = none).
  Status PrepareSend(const internal::SendRequest& req, PendingSend* send, uint64_t* ask_friend);
  Status DoUpdateMembers(const internal::UpdateMembersRequest& req, internal::UpdateMembersResult* res);
  Status DoMarkRead(const internal::MarkReadRequest& req, v1::MarkReadResult* res);
  // A canonical conversation id owned by this shard; fills *parsed.
  Status CheckConversation(const std::string& id, ParsedConversation* parsed) const;

  const uint32_t shard_;
  const uint32_t shard_count_;
  const Limits& limits_;
  PgChatStore& store_;
  SendBatcher& batcher_;
  FanoutQueue& fanout_;
  FriendChecker& friends_;
};

}  // namespace chat::chat_service
