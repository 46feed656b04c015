#pragma once
// ChatServiceImpl: the sync gRPC chat.internal.ChatService of one chat shard.
//
// Threads: handlers run on gRPC's pool; they validate and authorize on their own thread, hand sends
// to the SendBatcher and wait for the group commit (bounded by the call deadline). Exceptions never
// escape a handler: every failure is a grpc::Status whose message is user-facing.
#include <chrono>

#include "chat/internal/services.grpc.pb.h"
#include "chat_service/chat_store.h"
#include "chat_service/fanout_queue.h"
#include "chat_service/friend_checker.h"
#include "chat_service/send_batcher.h"
#include "common/config.h"
#include "common/shard.h"

namespace chat::chatsvc {

struct ChatServiceOptions {
  uint32_t shard = 0;
  uint32_t shard_count = 1;
  Limits limits;
};

class ChatServiceImpl final : public internal::ChatService::Service {
 public:
  // Borrows everything; the caller keeps them alive and stops the batcher and the fan-out queue
  // after the server has shut down.
  ChatServiceImpl(ChatServiceOptions options, PgChatStore& store, SendBatcher& batcher, FanoutQueue& fanout,
                  FriendChecker& friends);

  grpc::Status Send(grpc::ServerContext* ctx, const internal::SendRequest* req, v1::SendMessageResult* res) override;
  grpc::Status GetHistory(grpc::ServerContext* ctx, const internal::HistoryRequest* req,
                          v1::HistoryResult* res) override;
  grpc::Status ListConversations(grpc::ServerContext* ctx, const internal::UserIdRequest* req,
                                 v1::ConversationsResult* res) override;
  grpc::Status MarkRead(grpc::ServerContext* ctx, const internal::MarkReadRequest* req,
                        v1::MarkReadResult* res) override;
  grpc::Status UpdateMembers(grpc::ServerContext* ctx, const internal::UpdateMembersRequest* req,
                             internal::UpdateMembersResult* res) override;

 private:
  grpc::Status DoSend(grpc::ServerContext* ctx, const internal::SendRequest& req, v1::SendMessageResult* res);
  grpc::Status DoUpdateMembers(const internal::UpdateMembersRequest& req, internal::UpdateMembersResult* res);
  grpc::Status DoMarkRead(const internal::MarkReadRequest& req, v1::MarkReadResult* res);
  // A canonical conversation id owned by this shard; fills *parsed.
  grpc::Status CheckConversation(const std::string& id, ParsedConversation* parsed) const;

  const ChatServiceOptions options_;
  PgChatStore& store_;
  SendBatcher& batcher_;
  FanoutQueue& fanout_;
  FriendChecker& friends_;
};

}  // namespace chat::chatsvc
