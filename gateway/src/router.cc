#include "router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "common/log.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::gateway {

namespace {

template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

// Stores the response in the reply's result field `mut` (e.g. &v1::Reply::mutable_session).
template <typename Resp, typename Mut>
auto Put(Mut mut) {
  return [mut](Resp& resp, v1::Reply& reply) -> std::optional<Identity> {
    *(reply.*mut)() = std::move(resp);
    return std::nullopt;
  };
}

// One unary call: `start(ctx, req, resp, callback)` issues it on the right stub; `fill` turns the
// response into the reply (and may return a new identity).
template <typename Req, typename Resp, typename Start, typename Fill>
void Unary(uint32_t deadline_ms, uint64_t request_id, Req req, Start start, Fill fill, ReplyFn done) {
  auto call = std::make_shared<Call<Req, Resp>>();
  call->req = std::move(req);
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  start(&call->ctx, &call->req, &call->resp,
        [call, request_id, fill = std::move(fill), done = std::move(done)](grpc::Status st) mutable {
          v1::Reply reply;
          reply.set_request_id(request_id);
          std::optional<Identity> id;
          if (!st.ok()) {
            SetError(&reply, st);
          } else {
            id = fill(call->resp, reply);
          }
          done(std::move(reply), std::move(id));
        });
}

v1::Reply ErrorReply(uint64_t request_id, v1::StatusCode code, std::string message) {
  v1::Reply r;
  r.set_request_id(request_id);
  SetError(&r, code, std::move(message));
  return r;
}

// Asks every shard the same question in parallel; `finish(results, statuses)` runs once, on the
// thread of the last answer. `call(stub, ctx, req, resp, cb)` issues one shard's call.
template <typename Resp>
struct Gather {
  std::vector<Resp> results;
  std::vector<grpc::Status> statuses;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::atomic<size_t> pending;
  explicit Gather(size_t n) : results(n), statuses(n), ctxs(n), pending(n) {}
};

template <typename Resp, typename Stubs, typename Req, typename Call, typename Finish>
void Scatter(Stubs& stubs, uint32_t deadline_ms, Req req, Call call, Finish finish) {
  const uint32_t n = stubs.size();
  auto g = std::make_shared<Gather<Resp>>(n);
  auto shared_req = std::make_shared<Req>(std::move(req));
  auto done = [g, shared_req, finish = std::move(finish)]() { finish(g->results, g->statuses); };
  for (uint32_t s = 0; s < n; ++s) {
    g->ctxs[s] = MakeContext(deadline_ms);
    call(stubs.at(s), g->ctxs[s].get(), shared_req.get(), &g->results[s], [g, s, done](grpc::Status st) {
      g->statuses[s] = std::move(st);
      if (--g->pending == 0) done();
    });
  }
}

// For a merged list: answers with the first shard's error and returns true when any shard failed
// (a partial list would make a syncing client believe items are gone).
bool ReplyFirstError(const std::vector<grpc::Status>& statuses, uint64_t request_id, const ReplyFn& done);

}  // namespace

void SetError(v1::Reply* reply, v1::StatusCode code, std::string message) {
  reply->clear_result();
  reply->set_status(code);
  reply->set_message(std::move(message));
}

void SetError(v1::Reply* reply, const grpc::Status& st) {
  v1::StatusCode code = FromGrpc(st.error_code());
  std::string msg;
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED:
      msg = "service temporarily unavailable; retry";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      msg = "the service did not answer in time; retry (sends are idempotent by client_msg_id)";
      break;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::DATA_LOSS:
      msg = "internal error";
      break;
    default:
      msg = st.error_message();
  }
  SetError(reply, code, std::move(msg));
}

RequestRouter::RequestRouter(const ClusterConfig& config, std::string gateway_id)
    : config_(config),
      gateway_id_(std::move(gateway_id)),
      signer_(config.secret),
      accounts_(config.account),
      chats_(config.chat),
      groups_(config.group),
      sends_(chats_, config.limits.common.rpc_deadline_ms, config.limits.chat.send_batch_max,
             config.limits.gateway.send_calls_per_shard, config.limits.gateway.send_queue_max_wait_ms) {}

std::optional<TokenClaims> RequestRouter::VerifyToken(std::string_view token, TokenError* error) const {
  return signer_.Verify(token, NowMs() / 1000, error);
}

internal::Origin RequestRouter::OriginOf(const RequestContext& ctx) const {
  internal::Origin o;
  o.set_user_id(ctx.identity.user_id);
  o.set_device_id(ctx.identity.device_id);
  o.set_gateway_id(ctx.gateway_id);
  o.set_session_id(ctx.session_id);
  return o;
}

void RequestRouter::Handle(const RequestContext& ctx, const v1::ClientFrame& f, ReplyFn done) {
  ++inflight_;
  Route(ctx, f, [this, done = std::move(done)](v1::Reply reply, std::optional<Identity> id) {
    done(std::move(reply), std::move(id));
    --inflight_;
  });
}

void RequestRouter::Route(const RequestContext& ctx, const v1::ClientFrame& f, ReplyFn done) {
  using v1::ClientFrame;
  const uint64_t rid = f.request_id();
  const uint32_t dl = config_.limits.common.rpc_deadline_ms;
  const uint64_t me = ctx.identity.user_id;
  const bool authed = me != 0;
  auto acct = [&](uint32_t shard) -> internal::AccountService::Stub& { return accounts_.at(shard); };
  auto my_acct = [&]() -> internal::AccountService::Stub& { return accounts_.at(ShardOfUser(me, accounts_.size())); };
  auto user_req = [&] {
    internal::UserIdRequest r;
    r.set_user_id(me);
    return r;
  };

  switch (f.request_case()) {
    case ClientFrame::REQUEST_NOT_SET:
      return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "frame carries no known request"), std::nullopt);

    // ---- may be sent before authentication
    case ClientFrame::kRequestCode: {
      auto& stub = acct(ShardOfPhone(f.request_code().phone(), accounts_.size()));
      return Unary<v1::RequestCodeRequest, v1::RequestCodeResult>(
          dl, rid, f.request_code(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->RequestCode(c, q, s, std::move(cb)); },
          Put<v1::RequestCodeResult>(&v1::Reply::mutable_request_code), std::move(done));
    }
    case ClientFrame::kSignUp:
    case ClientFrame::kLogIn: {
      bool sign_up = f.request_case() == ClientFrame::kSignUp;
      const std::string& phone = sign_up ? f.sign_up().phone() : f.log_in().phone();
      std::string device = sign_up ? f.sign_up().device_id() : f.log_in().device_id();
      auto& stub = acct(ShardOfPhone(phone, accounts_.size()));
      auto fill = [device](v1::SessionResult& s, v1::Reply& r) -> std::optional<Identity> {
        Identity id{s.account().profile().user_id(), device};
        *r.mutable_session() = std::move(s);
        return id;
      };
      if (sign_up)
        return Unary<v1::SignUpRequest, v1::SessionResult>(
            dl, rid, f.sign_up(),
            [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->SignUp(c, q, s, std::move(cb)); }, fill,
            std::move(done));
      return Unary<v1::LogInRequest, v1::SessionResult>(
          dl, rid, f.log_in(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->LogIn(c, q, s, std::move(cb)); }, fill,
          std::move(done));
    }
    case ClientFrame::kAuthenticate:
      return Authenticate(f, std::move(done));
    default:
      break;
  }

  if (!authed)
    return done(ErrorReply(rid, v1::UNAUTHENTICATED, "authenticate first (token, sign_up or log_in)"), std::nullopt);

  switch (f.request_case()) {
    case ClientFrame::kRefreshToken: {
      internal::RefreshTokenRequest r;
      r.set_user_id(me);
      r.set_device_id(ctx.identity.device_id);
      auto& stub = my_acct();
      return Unary<internal::RefreshTokenRequest, v1::SessionResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->RefreshToken(c, q, s, std::move(cb)); },
          Put<v1::SessionResult>(&v1::Reply::mutable_session), std::move(done));
    }
    case ClientFrame::kGetMe: {
      auto& stub = my_acct();
      return Unary<internal::UserIdRequest, v1::Account>(
          dl, rid, user_req(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->GetAccount(c, q, s, std::move(cb)); },
          Put<v1::Account>(&v1::Reply::mutable_account), std::move(done));
    }
    case ClientFrame::kSetDisplayName: {
      internal::SetDisplayNameRequest r;
      r.set_user_id(me);
      r.set_display_name(f.set_display_name().display_name());
      auto& stub = my_acct();
      return Unary<internal::SetDisplayNameRequest, v1::Account>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->SetDisplayName(c, q, s, std::move(cb)); },
          Put<v1::Account>(&v1::Reply::mutable_account), std::move(done));
    }
    case ClientFrame::kLookupUser:
      return LookupUser(f, std::move(done));
    case ClientFrame::kGetProfiles: {
      auto& stub = my_acct();
      return Unary<v1::GetProfilesRequest, v1::ProfilesResult>(
          dl, rid, f.get_profiles(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->GetProfiles(c, q, s, std::move(cb)); },
          Put<v1::ProfilesResult>(&v1::Reply::mutable_profiles), std::move(done));
    }
    case ClientFrame::kSendFriendRequest: {
      uint64_t target = f.send_friend_request().user_id();
      if (target == 0) return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "user_id is required"), std::nullopt);
      internal::SendFriendRequestRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      *r.mutable_request() = f.send_friend_request();
      auto& stub = acct(ShardOfUser(target, accounts_.size()));
      return Unary<internal::SendFriendRequestRequest, v1::SendFriendRequestResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->SendFriendRequest(c, q, s, std::move(cb)); },
          Put<v1::SendFriendRequestResult>(&v1::Reply::mutable_send_friend_request), std::move(done));
    }
    case ClientFrame::kAcceptFriendRequest: {
      internal::AcceptFriendRequestRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      r.set_from_user_id(f.accept_friend_request().user_id());
      auto& stub = my_acct();
      return Unary<internal::AcceptFriendRequestRequest, v1::Contact>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->AcceptFriendRequest(c, q, s, std::move(cb)); },
          Put<v1::Contact>(&v1::Reply::mutable_contact), std::move(done));
    }
    case ClientFrame::kListFriendRequests: {
      auto& stub = my_acct();
      return Unary<internal::UserIdRequest, v1::FriendRequestsResult>(
          dl, rid, user_req(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->ListFriendRequests(c, q, s, std::move(cb)); },
          Put<v1::FriendRequestsResult>(&v1::Reply::mutable_friend_requests), std::move(done));
    }
    case ClientFrame::kListContacts: {
      auto& stub = my_acct();
      return Unary<internal::UserIdRequest, v1::ContactsResult>(
          dl, rid, user_req(),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->ListContacts(c, q, s, std::move(cb)); },
          Put<v1::ContactsResult>(&v1::Reply::mutable_contacts), std::move(done));
    }

    case ClientFrame::kSendMessage: {
      const auto& conv = f.send_message().conversation_id();
      if (!ParseConversationId(conv))
        return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "conversation_id is not a valid conversation id"),
                    std::nullopt);
      internal::SendRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      *r.mutable_request() = f.send_message();
      sends_.Submit(ShardOfConversation(conv, chats_.size()), std::move(r),
                    [rid, done = std::move(done)](const grpc::Status& st, v1::SendMessageResult&& res) {
                      v1::Reply reply;
                      reply.set_request_id(rid);
                      if (st.ok())
                        *reply.mutable_send_message() = std::move(res);
                      else
                        SetError(&reply, st);
                      done(std::move(reply), std::nullopt);
                    });
      return;
    }
    case ClientFrame::kGetHistory: {
      const auto& conv = f.get_history().conversation_id();
      if (!ParseConversationId(conv))
        return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "conversation_id is not a valid conversation id"),
                    std::nullopt);
      internal::HistoryRequest r;
      r.set_user_id(me);
      *r.mutable_request() = f.get_history();
      auto& stub = chats_.at(ShardOfConversation(conv, chats_.size()));
      return Unary<internal::HistoryRequest, v1::HistoryResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->GetHistory(c, q, s, std::move(cb)); },
          Put<v1::HistoryResult>(&v1::Reply::mutable_history), std::move(done));
    }
    case ClientFrame::kListConversations:
      return ListConversations(ctx, rid, std::move(done));
    case ClientFrame::kMarkRead: {
      const auto& conv = f.mark_read().conversation_id();
      if (!ParseConversationId(conv))
        return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "conversation_id is not a valid conversation id"),
                    std::nullopt);
      internal::MarkReadRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      *r.mutable_request() = f.mark_read();
      auto& stub = chats_.at(ShardOfConversation(conv, chats_.size()));
      return Unary<internal::MarkReadRequest, v1::MarkReadResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->MarkRead(c, q, s, std::move(cb)); },
          Put<v1::MarkReadResult>(&v1::Reply::mutable_mark_read), std::move(done));
    }

    case ClientFrame::kCreateGroup: {
      internal::CreateGroupRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      *r.mutable_request() = f.create_group();
      // By creator, so a retry with the same client_request_id reaches the shard that holds the key.
      auto& stub = groups_.at(ShardOfUser(me, groups_.size()));
      return Unary<internal::CreateGroupRequest, v1::GroupResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->CreateGroup(c, q, s, std::move(cb)); },
          Put<v1::GroupResult>(&v1::Reply::mutable_group), std::move(done));
    }
    case ClientFrame::kAddGroupMembers: {
      uint64_t gid = f.add_group_members().group_id();
      if (gid == 0) return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "group_id is required"), std::nullopt);
      internal::AddGroupMembersRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      *r.mutable_request() = f.add_group_members();
      auto& stub = groups_.at(ShardOfGroup(gid, groups_.size()));
      return Unary<internal::AddGroupMembersRequest, v1::GroupResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->AddMembers(c, q, s, std::move(cb)); },
          Put<v1::GroupResult>(&v1::Reply::mutable_group), std::move(done));
    }
    case ClientFrame::kLeaveGroup:
    case ClientFrame::kListGroupMembers: {
      bool leave = f.request_case() == ClientFrame::kLeaveGroup;
      uint64_t gid = leave ? f.leave_group().group_id() : f.list_group_members().group_id();
      if (gid == 0) return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "group_id is required"), std::nullopt);
      internal::GroupIdRequest r;
      *r.mutable_origin() = OriginOf(ctx);
      r.set_group_id(gid);
      auto& stub = groups_.at(ShardOfGroup(gid, groups_.size()));
      if (leave)
        return Unary<internal::GroupIdRequest, v1::Empty>(
            dl, rid, std::move(r),
            [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->Leave(c, q, s, std::move(cb)); },
            Put<v1::Empty>(&v1::Reply::mutable_empty), std::move(done));
      return Unary<internal::GroupIdRequest, v1::GroupMembersResult>(
          dl, rid, std::move(r),
          [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->ListMembers(c, q, s, std::move(cb)); },
          Put<v1::GroupMembersResult>(&v1::Reply::mutable_group_members), std::move(done));
    }
    case ClientFrame::kListMyGroups:
      return ListMyGroups(ctx, rid, std::move(done));
    default:
      return done(ErrorReply(rid, v1::INVALID_ARGUMENT, "unknown request"), std::nullopt);
  }
}

void RequestRouter::Authenticate(const v1::ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  TokenError err{};
  auto claims = VerifyToken(f.authenticate().token(), &err);
  if (!claims) {
    const char* why = err == TokenError::kExpired ? "token expired; log in again" : "invalid token";
    return done(ErrorReply(rid, v1::UNAUTHENTICATED, why), std::nullopt);
  }
  internal::UserIdRequest r;
  r.set_user_id(claims->user_id);
  auto& stub = accounts_.at(ShardOfUser(claims->user_id, accounts_.size()));
  Identity id{claims->user_id, claims->device_id};
  Unary<internal::UserIdRequest, v1::Account>(
      config_.limits.common.rpc_deadline_ms, rid, std::move(r),
      [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->GetAccount(c, q, s, std::move(cb)); },
      [id](v1::Account& a, v1::Reply& reply) -> std::optional<Identity> {
        *reply.mutable_authenticate()->mutable_account() = std::move(a);
        return id;
      },
      std::move(done));
}

void RequestRouter::ListConversations(const RequestContext& ctx, uint64_t rid, ReplyFn done) {
  internal::UserIdRequest req;
  req.set_user_id(ctx.identity.user_id);
  Scatter<v1::ConversationsResult>(
      chats_, config_.limits.common.rpc_deadline_ms, std::move(req),
      [](auto& stub, auto* c, auto* q, auto* r, auto cb) { stub.async()->ListConversations(c, q, r, std::move(cb)); },
      [rid, done](std::vector<v1::ConversationsResult>& results, std::vector<grpc::Status>& statuses) {
        if (ReplyFirstError(statuses, rid, done)) return;
        v1::Reply reply;
        reply.set_request_id(rid);
        auto* out = reply.mutable_conversations();
        for (auto& r : results)
          for (auto& c : *r.mutable_conversations()) *out->add_conversations() = std::move(c);
        std::sort(out->mutable_conversations()->begin(), out->mutable_conversations()->end(),
                  [](const v1::ConversationSummary& a, const v1::ConversationSummary& b) {
                    return a.last_message_time_ms() > b.last_message_time_ms();
                  });
        done(std::move(reply), std::nullopt);
      });
}

void RequestRouter::ListMyGroups(const RequestContext& ctx, uint64_t rid, ReplyFn done) {
  internal::UserIdRequest req;
  req.set_user_id(ctx.identity.user_id);
  Scatter<v1::GroupsResult>(
      groups_, config_.limits.common.rpc_deadline_ms, std::move(req),
      [](auto& stub, auto* c, auto* q, auto* r, auto cb) { stub.async()->ListMyGroups(c, q, r, std::move(cb)); },
      [rid, done](std::vector<v1::GroupsResult>& results, std::vector<grpc::Status>& statuses) {
        if (ReplyFirstError(statuses, rid, done)) return;
        v1::Reply reply;
        reply.set_request_id(rid);
        auto* out = reply.mutable_groups();
        for (auto& r : results)
          for (auto& x : *r.mutable_groups()) *out->add_groups() = std::move(x);
        done(std::move(reply), std::nullopt);
      });
}

void RequestRouter::LookupUser(const v1::ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::UserProfile>(
      accounts_, config_.limits.common.rpc_deadline_ms, f.lookup_user(),
      [](auto& stub, auto* c, auto* q, auto* r, auto cb) { stub.async()->LookupHandle(c, q, r, std::move(cb)); },
      [rid, done](std::vector<v1::UserProfile>& results, std::vector<grpc::Status>& statuses) {
        v1::Reply reply;
        reply.set_request_id(rid);
        // Found on any shard wins; otherwise the most telling error (anything but NOT_FOUND).
        const grpc::Status* worst = nullptr;
        for (size_t s = 0; s < statuses.size(); ++s) {
          if (statuses[s].ok()) {
            *reply.mutable_profile() = std::move(results[s]);
            return done(std::move(reply), std::nullopt);
          }
          if (!worst || statuses[s].error_code() != grpc::StatusCode::NOT_FOUND) worst = &statuses[s];
        }
        SetError(&reply, *worst);
        done(std::move(reply), std::nullopt);
      });
}

namespace {
bool ReplyFirstError(const std::vector<grpc::Status>& statuses, uint64_t request_id, const ReplyFn& done) {
  for (const auto& st : statuses) {
    if (st.ok()) continue;
    v1::Reply reply;
    reply.set_request_id(request_id);
    SetError(&reply, st);
    done(std::move(reply), std::nullopt);
    return true;
  }
  return false;
}
}  // namespace

}  // namespace chat::gateway
