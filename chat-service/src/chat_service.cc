#include "chat_service/chat_service.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <unordered_set>

#include "chat_service/validation.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/utf8.h"

namespace chat::chat_service {

namespace {

constexpr uint64_t kMaxId = static_cast<uint64_t>(INT64_MAX);
// Code points of text kept in ConversationSummary.last_message (the full text is in history).
constexpr size_t kPreviewChars = 200;

}  // namespace

ChatServiceImpl::ChatServiceImpl(ChatServiceDeps deps)
    : shard_(deps.shard),
      shard_count_(deps.shard_count),
      limits_(*deps.limits),
      store_(*deps.store),
      batcher_(*deps.batcher),
      fanout_(*deps.fanout),
      friends_(*deps.friends) {}

Status ChatServiceImpl::CheckConversation(const std::string& id, ParsedConversation* parsed) const {
  auto p = ParseConversationId(id);
  if (!p) return InvalidArgument("conversation_id is not a valid conversation id");
  if ((p->kind == ParsedConversation::kDirect && p->b > kMaxId) || p->a > kMaxId)
    return InvalidArgument("conversation_id is not a valid conversation id");
  if (ShardOfConversation(id, shard_count_) != shard_) return FailedPrecondition("wrong shard");
  *parsed = *p;
  return OkStatus();
}

grpc::ServerUnaryReactor* ChatServiceImpl::Send(grpc::CallbackServerContext* ctx, const internal::SendRequest* req,
                                                v1::SendMessageResult* res) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // gRPC keeps *req, *res and the reactor alive until Finish.
  SendAsync(*req, ctx->deadline(), [reactor, res](const Status& st, v1::SendMessageResult&& r) {
    if (st.ok()) *res = std::move(r);
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::SendBatch(grpc::CallbackServerContext* ctx,
                                                     const internal::SendBatchRequest* req,
                                                     internal::SendBatchResult* res) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const int n = req->sends_size();
  if (n == 0) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  if (static_cast<uint32_t>(n) > limits_.chat.send_batch_max) {
    reactor->Finish(ToGrpcStatus(InvalidArgument("at most " + std::to_string(limits_.chat.send_batch_max) +
                                                 " sends per batch (limits.chat.send_batch_max)")));
    return reactor;
  }
  for (int i = 0; i < n; ++i) res->add_results();
  // Callbacks run on different threads (inline refusals, the committer); the last one finishes.
  auto pending = std::make_shared<std::atomic<int>>(n);
  for (int i = 0; i < n; ++i) {
    SendAsync(req->sends(i), ctx->deadline(), [reactor, res, pending, i](const Status& st, v1::SendMessageResult&& r) {
      internal::SendBatchItem* item = res->mutable_results(i);
      item->set_code(static_cast<int32_t>(ToGrpc(st.code())));
      if (st.ok())
        *item->mutable_result() = std::move(r);
      else {
        item->set_message(st.message());
        item->set_retry_after_ms(st.retry_after_ms());
      }
      if (pending->fetch_sub(1, std::memory_order_acq_rel) == 1) reactor->Finish(grpc::Status::OK);
    });
  }
  return reactor;
}

void ChatServiceImpl::SendAsync(const internal::SendRequest& req, std::chrono::system_clock::time_point deadline,
                                SendDoneFn done) {
  PendingSend send;
  uint64_t ask_friend = 0;
  Status st = Guard("Send", [&] { return PrepareSend(req, &send, &ask_friend); });
  if (!st.ok()) return done(st, {});
  const auto limit = std::chrono::system_clock::now() + std::chrono::milliseconds(limits_.common.rpc_deadline_ms);
  if (limit < deadline) deadline = limit;
  auto submit = [this, deadline, done](PendingSend&& send) {
    batcher_.Submit(std::move(send), deadline, [done](SendOutcome&& o) {
      if (!o.status.ok()) return done(o.status, {});
      done(OkStatus(), std::move(o.result));
    });
  };
  if (ask_friend == 0) return submit(std::move(send));
  friends_.InboundAsync(ask_friend, send.sender_id,
                        [submit, done, send = std::move(send)](Result<Inbound> verdict) mutable {
                          if (!verdict.ok()) return done(verdict.status(), {});
                          if (*verdict == Inbound::kRejected) return done(PermissionDenied(kRejectedByReceiver), {});
                          if (*verdict == Inbound::kNotFriend)
                            return done(PermissionDenied("you can only message friends"), {});
                          submit(std::move(send));
                        });
}

Status ChatServiceImpl::PrepareSend(const internal::SendRequest& req, PendingSend* send, uint64_t* ask_friend) {
  const uint64_t sender = req.origin().user_id();
  if (sender == 0 || sender > kMaxId) return InvalidArgument("sender is required");
  const v1::SendMessageRequest& m = req.request();
  ParsedConversation conv{};
  if (auto st = CheckConversation(m.conversation_id(), &conv); !st.ok()) return st;
  if (auto st = ValidateClientMsgId(m.client_msg_id(), limits_); !st.ok()) return st;
  send->content = m.content();
  if (auto st = ValidateUserContent(&send->content, limits_); !st.ok()) return st;  // stores the NFC form

  send->conversation_id = m.conversation_id();
  send->sender_id = sender;
  send->client_msg_id = m.client_msg_id();
  send->skip_session_id = req.origin().session_id();
  if (conv.kind == ParsedConversation::kDirect) {
    if (sender != conv.a && sender != conv.b) return PermissionDenied("you are not part of this conversation");
    const uint64_t peer = sender == conv.a ? conv.b : conv.a;
    // A cached answer is decided here; otherwise SendAsync asks the peer's shard before submitting.
    if (!friends_.KnownAccepted(peer, sender)) *ask_friend = peer;
    send->direct = true;
    send->user_a = conv.a;
    send->user_b = conv.b;
  } else {
    send->direct = false;
    send->require_member = true;  // checked in the send statement itself
  }
  return OkStatus();
}

grpc::Status ChatServiceImpl::GetHistory(grpc::ServerContext*, const internal::HistoryRequest* req,
                                         v1::HistoryResult* res) {
  return Guarded("GetHistory", [&] {
    const uint64_t user = req->user_id();
    if (user == 0 || user > kMaxId) return InvalidArgument("user is required");
    ParsedConversation conv{};
    if (auto st = CheckConversation(req->request().conversation_id(), &conv); !st.ok()) return st;
    uint32_t limit = req->request().limit();
    if (limit == 0) limit = limits_.chat.history_page_default;
    limit = std::min(limit, limits_.chat.history_page_max);
    return store_.GetHistory(user, req->request(), limit, res);
  });
}

grpc::Status ChatServiceImpl::ListConversations(grpc::ServerContext*, const internal::UserIdRequest* req,
                                                v1::ConversationsResult* res) {
  return Guarded("ListConversations", [&] {
    if (req->user_id() == 0 || req->user_id() > kMaxId) return InvalidArgument("user is required");
    if (auto st = store_.ListConversations(req->user_id(), res); !st.ok()) return st;
    // last_message is a preview, so the whole list stays far below the gRPC and session send-queue
    // limits: long text is cut (media, location and cards are small already).
    for (v1::ConversationSummary& c : *res->mutable_conversations()) {
      if (!c.has_last_message() || !c.last_message().content().has_text()) continue;
      TruncateUtf8(c.mutable_last_message()->mutable_content()->mutable_text()->mutable_text(), kPreviewChars);
    }
    return OkStatus();
  });
}

grpc::Status ChatServiceImpl::MarkRead(grpc::ServerContext*, const internal::MarkReadRequest* req,
                                       v1::MarkReadResult* res) {
  return Guarded("MarkRead", [&] { return DoMarkRead(*req, res); });
}

Status ChatServiceImpl::DoMarkRead(const internal::MarkReadRequest& req, v1::MarkReadResult* res) {
  const uint64_t user = req.origin().user_id();
  if (user == 0 || user > kMaxId) return InvalidArgument("user is required");
  ParsedConversation conv{};
  if (auto st = CheckConversation(req.request().conversation_id(), &conv); !st.ok()) return st;
  uint64_t read_seq = 0;
  bool moved = false;
  if (auto st = store_.MarkRead(user, req.request().conversation_id(), req.request().seq(), &read_seq, &moved);
      !st.ok())
    return st;
  res->set_read_seq(read_seq);
  if (moved) {
    FanoutItem item;
    item.user_ids = {user};
    item.skip_session_id = req.origin().session_id();
    auto* ev = item.event.mutable_read_position();
    ev->set_conversation_id(req.request().conversation_id());
    ev->set_read_seq(read_seq);
    fanout_.PushItem(std::move(item));
  }
  return OkStatus();
}

grpc::Status ChatServiceImpl::UpdateMembers(grpc::ServerContext*, const internal::UpdateMembersRequest* req,
                                            internal::UpdateMembersResult* res) {
  return Guarded("UpdateMembers", [&] { return DoUpdateMembers(*req, res); });
}

grpc::Status ChatServiceImpl::ForgetContacts(grpc::ServerContext*, const internal::ContactChange* req, v1::Empty*) {
  return Guarded("ForgetContacts", [&]() -> Status {
    if (req->user_id() == 0 || req->user_id() > kMaxId || req->other_id() == 0 || req->other_id() > kMaxId)
      return InvalidArgument("user_id and other_id are required");
    friends_.Forget(req->user_id(), req->other_id());
    return OkStatus();
  });
}

Status ChatServiceImpl::DoUpdateMembers(const internal::UpdateMembersRequest& req, internal::UpdateMembersResult* res) {
  if (req.group_id() == 0 || req.group_id() > kMaxId) return InvalidArgument("group_id is required");
  if (req.conversation_id() != GroupConversationId(req.group_id()))
    return InvalidArgument("conversation_id does not match group_id");
  ParsedConversation conv{};
  if (auto st = CheckConversation(req.conversation_id(), &conv); !st.ok()) return st;
  const size_t max_ids = static_cast<size_t>(limits_.group.max_group_members) * 2;
  if (static_cast<size_t>(req.add_user_ids_size() + req.remove_user_ids_size()) > max_ids)
    return InvalidArgument("too many members in one change");
  std::unordered_set<uint64_t> adds;
  for (uint64_t u : req.add_user_ids()) {
    if (u == 0 || u > kMaxId) return InvalidArgument("member ids must be valid user ids");
    adds.insert(u);
  }
  for (uint64_t u : req.remove_user_ids()) {
    if (u == 0 || u > kMaxId) return InvalidArgument("member ids must be valid user ids");
    if (adds.count(u)) return InvalidArgument("a user cannot be added and removed in one change");
  }
  if (req.has_rules()) {
    const auto& r = req.rules();
    if (static_cast<size_t>(r.silenced_user_ids_size() + r.privileged_user_ids_size()) > max_ids)
      return InvalidArgument("too many members in the send rules");
    for (const auto* ids : {&r.silenced_user_ids(), &r.privileged_user_ids()})
      for (uint64_t u : *ids)
        if (u == 0 || u > kMaxId) return InvalidArgument("send rules must name valid user ids");
  }
  if (const auto cps = Utf8CodePoints(req.notice()); !cps || *cps > limits_.chat.max_text_chars)
    return InvalidArgument("notice must be valid UTF-8 of at most " + std::to_string(limits_.chat.max_text_chars) +
                           " characters");
  uint64_t seq = 0;
  if (auto st = store_.UpdateMembers(req, &seq,
                                     [this](std::vector<CommittedMessage>&& m) { fanout_.PushMessages(std::move(m)); });
      !st.ok())
    return st;
  res->set_seq(seq);
  return OkStatus();
}

}  // namespace chat::chat_service
