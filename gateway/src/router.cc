#include "router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "common/log.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::gateway {

namespace {

template <typename Req, typename Resp>
struct UnaryCall {
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
  auto call = std::make_shared<UnaryCall<Req, Resp>>();
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

}  // namespace

struct RequestRouter::Backends {
  Backends(const ClusterConfig& c, std::string gateway)
      : deadline_ms(c.limits.common.rpc_deadline_ms),
        gateway_id(std::move(gateway)),
        accounts(c.account, c.internal_tls),
        chats(c.chat, c.internal_tls),
        groups(c.group, c.internal_tls),
        sends(chats, c.limits.common.rpc_deadline_ms, c.limits.chat.send_batch_max,
              c.limits.gateway.send_calls_per_shard, c.limits.gateway.send_queue_max_wait_ms) {}

  internal::AccountService::Stub& AccountOf(uint64_t user) { return accounts.at(ShardOfUser(user, accounts.size())); }
  internal::AccountService::Stub& AccountOfPhone(const std::string& phone) {
    return accounts.at(ShardOfPhone(phone, accounts.size()));
  }
  internal::ChatService::Stub& ChatOf(const std::string& conversation) {
    return chats.at(ShardOfConversation(conversation, chats.size()));
  }
  internal::GroupService::Stub& GroupOf(uint64_t group) { return groups.at(ShardOfGroup(group, groups.size())); }
  // The shard of an invite code's group (by its route id). A malformed code goes to the asker's
  // shard, which counts the try and gives the one "not valid" reply.
  internal::GroupService::Stub& InviteCodeShard(const RequestContext& ctx, const std::string& code) {
    if (auto route = ParseGroupInviteToken(code)) return GroupOf(*route);
    return groups.at(ShardOfUser(ctx.identity.user_id, groups.size()));
  }
  internal::InviteCodeRequest InviteCode(const RequestContext& ctx, const std::string& code) const {
    internal::InviteCodeRequest r;
    *r.mutable_origin() = OriginOf(ctx);
    r.set_code(code);
    return r;
  }
  internal::Origin OriginOf(const RequestContext& ctx) const {
    internal::Origin o;
    o.set_user_id(ctx.identity.user_id);
    o.set_device_id(ctx.identity.device_id);
    o.set_gateway_id(ctx.gateway_id);
    o.set_session_id(ctx.session_id);
    return o;
  }

  const uint32_t deadline_ms;
  const std::string gateway_id;
  ShardedStubs<internal::AccountService> accounts;
  ShardedStubs<internal::ChatService> chats;
  ShardedStubs<internal::GroupService> groups;
  SendCoalescer sends;  // after chats, which it uses
};

namespace {

using v1::ClientFrame;
using Backends = RequestRouter::Backends;

// Issues the unary method `Method` on a stub: RPC(GetAccount).
#define RPC(Method) [](auto& stub, auto* c, auto* q, auto* s, auto cb) { stub.async()->Method(c, q, s, std::move(cb)); }

// RPC(Method) with the client's address as kClientAddressMetadata (limits per address in the service).
#define RPC_FROM(Method, client_key)                                         \
  [address = (client_key)](auto& stub, auto* c, auto* q, auto* s, auto cb) { \
    if (!address.empty()) c->AddMetadata(kClientAddressMetadata, address);   \
    stub.async()->Method(c, q, s, std::move(cb));                            \
  }

// One unary call on `stub` with the router's deadline, its answer put in the reply field `result`
// (e.g. &v1::Reply::mutable_account).
template <typename Stub, typename Rpc, typename Req, typename Resp>
void Call(Backends& b, Stub& stub, Rpc rpc, Req req, Resp* (v1::Reply::*result)(), uint64_t rid, ReplyFn done) {
  Unary<Req, Resp>(
      b.deadline_ms, rid, std::move(req),
      [&stub, rpc](auto* c, auto* q, auto* s, auto cb) { rpc(stub, c, q, s, std::move(cb)); }, Put<Resp>(result),
      std::move(done));
}

internal::UserIdRequest UserRequest(const RequestContext& ctx) {
  internal::UserIdRequest r;
  r.set_user_id(ctx.identity.user_id);
  return r;
}

// The connection's token, for requests that act on its session.
internal::SessionKey SessionOf(const RequestContext& ctx) {
  internal::SessionKey k;
  k.set_user_id(ctx.identity.user_id);
  k.set_session_id(ctx.identity.session_id);
  k.set_token_gen(ctx.identity.token_gen);
  return k;
}

// A request naming a conversation: refused here when the id cannot be routed.
bool BadConversation(const std::string& id, uint64_t rid, ReplyFn& done) {
  if (ParseConversationId(id)) return false;
  done(ErrorReply(rid, v1::INVALID_ARGUMENT, "conversation_id is not a valid conversation id"), std::nullopt);
  return true;
}

bool MissingId(uint64_t id, const char* field, uint64_t rid, ReplyFn& done) {
  if (id != 0) return false;
  done(ErrorReply(rid, v1::INVALID_ARGUMENT, std::string(field) + " is required"), std::nullopt);
  return true;
}

// For a merged list: answers with the first shard's error and returns true when any shard failed
// (a partial list would make a syncing client believe items are gone).
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

// The caller's setting for another user (set_remark, block_user, delete_contact).
internal::ContactRequest ContactRequestOf(Backends& b, const RequestContext& ctx, uint64_t other,
                                          const std::string& remark, bool blocked) {
  internal::ContactRequest r;
  *r.mutable_origin() = b.OriginOf(ctx);
  r.set_user_id(other);
  r.set_remark(remark);
  r.set_blocked(blocked);
  return r;
}

// ---- handlers that are more than one call

// sign_up and log_in: the connection becomes the account the answer names, on the device it gave.
template <typename Req, typename Rpc>
void OpenSession(Backends& b, const Req& req, Rpc rpc, uint64_t rid, ReplyFn done) {
  auto& stub = b.AccountOfPhone(req.phone());
  auto fill = [device = req.device_id()](v1::SessionResult& s, v1::Reply& r) -> std::optional<Identity> {
    Identity id{s.account().profile().user_id(), device, s.session_id(), 1};  // a new session's first token
    *r.mutable_session() = std::move(s);
    return id;
  };
  Unary<Req, v1::SessionResult>(
      b.deadline_ms, rid, req, [&stub, rpc](auto* c, auto* q, auto* s, auto cb) { rpc(stub, c, q, s, std::move(cb)); },
      fill, std::move(done));
}

// The token was verified, and its session found live, by the session's authentication step
// (ctx.claimed); this fetches the account for the reply.
void Authenticate(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  internal::UserIdRequest r;
  r.set_user_id(ctx.claimed.user_id);
  auto& stub = b.AccountOf(ctx.claimed.user_id);
  Unary<internal::UserIdRequest, v1::Account>(
      b.deadline_ms, f.request_id(), std::move(r),
      [&stub](auto* c, auto* q, auto* s, auto cb) { stub.async()->GetAccount(c, q, s, std::move(cb)); },
      [id = ctx.claimed](v1::Account& a, v1::Reply& reply) -> std::optional<Identity> {
        *reply.mutable_authenticate()->mutable_account() = std::move(a);
        return id;
      },
      std::move(done));
}

void SendMessage(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  const auto& conv = f.send_message().conversation_id();
  if (BadConversation(conv, rid, done)) return;
  internal::SendRequest r;
  *r.mutable_origin() = b.OriginOf(ctx);
  *r.mutable_request() = f.send_message();
  b.sends.Submit(ShardOfConversation(conv, b.chats.size()), std::move(r),
                 [rid, done = std::move(done)](const grpc::Status& st, v1::SendMessageResult&& res) {
                   v1::Reply reply;
                   reply.set_request_id(rid);
                   if (st.ok())
                     *reply.mutable_send_message() = std::move(res);
                   else
                     SetError(&reply, st);
                   done(std::move(reply), std::nullopt);
                 });
}

void ListConversations(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::ConversationsResult>(
      b.chats, b.deadline_ms, UserRequest(ctx), RPC(ListConversations),
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

void ListMyGroups(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::GroupsResult>(b.groups, b.deadline_ms, UserRequest(ctx), RPC(ListMyGroups),
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

// Invitations live on their groups' shards: every group shard is asked, any error fails the list.
void ListGroupInvitations(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::GroupInvitationsResult>(
      b.groups, b.deadline_ms, UserRequest(ctx), RPC(ListMyInvitations),
      [rid, done](std::vector<v1::GroupInvitationsResult>& results, std::vector<grpc::Status>& statuses) {
        if (ReplyFirstError(statuses, rid, done)) return;
        v1::Reply reply;
        reply.set_request_id(rid);
        auto* out = reply.mutable_group_invitations();
        for (auto& r : results)
          for (auto& x : *r.mutable_invitations()) *out->add_invitations() = std::move(x);
        done(std::move(reply), std::nullopt);
      });
}

// A user's outgoing requests live on their targets' shards: every account shard is asked, newest
// first, at most kMaxListedRequests (account-service's cap for one shard's list).
constexpr int kMaxListedRequests = 1000;
void ListSentFriendRequests(Backends& b, const RequestContext& ctx, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::FriendRequestsResult>(
      b.accounts, b.deadline_ms, UserRequest(ctx), RPC(ListSentFriendRequests),
      [rid, done](std::vector<v1::FriendRequestsResult>& results, std::vector<grpc::Status>& statuses) {
        if (ReplyFirstError(statuses, rid, done)) return;
        v1::Reply reply;
        reply.set_request_id(rid);
        auto* out = reply.mutable_friend_requests()->mutable_requests();
        for (auto& r : results)
          for (auto& q : *r.mutable_requests()) *out->Add() = std::move(q);
        std::sort(out->begin(), out->end(), [](const v1::FriendRequest& a, const v1::FriendRequest& b) {
          return a.created_ms() > b.created_ms();
        });
        if (out->size() > kMaxListedRequests) out->DeleteSubrange(kMaxListedRequests, out->size() - kMaxListedRequests);
        done(std::move(reply), std::nullopt);
      });
}

// Handles live on an unknown shard: every account shard is asked.
void LookupUser(Backends& b, const RequestContext&, const ClientFrame& f, ReplyFn done) {
  const uint64_t rid = f.request_id();
  Scatter<v1::UserProfile>(b.accounts, b.deadline_ms, f.lookup_user(), RPC(LookupHandle),
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
                               if (!worst || statuses[s].error_code() != grpc::StatusCode::NOT_FOUND)
                                 worst = &statuses[s];
                             }
                             SetError(&reply, *worst);
                             done(std::move(reply), std::nullopt);
                           });
}

// ---- the table

using Handler = void (*)(Backends&, const RequestContext&, const ClientFrame&, ReplyFn);
struct Route {
  bool needs_auth;  // refused with UNAUTHENTICATED on a connection that has not authenticated
  Handler handle;
};

// clang-format off
const std::unordered_map<int, Route>& Routes() {
  using C = RequestContext;
  using F = ClientFrame;
  static const std::unordered_map<int, Route> routes = {
    // ---- may be sent before authentication
    {F::kRequestCode, {false, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOfPhone(f.request_code().phone()), RPC_FROM(RequestCode, ctx.client_address),
            f.request_code(), &v1::Reply::mutable_request_code, f.request_id(), std::move(done)); }}},
    {F::kSignUp, {false, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       OpenSession(b, f.sign_up(), RPC_FROM(SignUp, ctx.client_address), f.request_id(), std::move(done)); }}},
    {F::kLogIn, {false, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       OpenSession(b, f.log_in(), RPC_FROM(LogIn, ctx.client_address), f.request_id(), std::move(done)); }}},
    {F::kAuthenticate, {false, Authenticate}},

    // ---- accounts and contacts
    {F::kRefreshToken, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::RefreshTokenRequest r;
       r.set_user_id(ctx.identity.user_id);
       r.set_device_id(ctx.identity.device_id);
       r.set_session_id(ctx.identity.session_id);
       r.set_token_gen(ctx.identity.token_gen);
       *r.mutable_origin() = b.OriginOf(ctx);
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(RefreshToken), std::move(r), &v1::Reply::mutable_session,
            f.request_id(), std::move(done)); }}},
    {F::kListDevices, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(ListDevices), SessionOf(ctx), &v1::Reply::mutable_devices,
            f.request_id(), std::move(done)); }}},
    {F::kLogOut, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::LogOutRequest r;
       *r.mutable_session() = SessionOf(ctx);
       *r.mutable_request() = f.log_out();
       *r.mutable_origin() = b.OriginOf(ctx);
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(LogOut), std::move(r), &v1::Reply::mutable_empty,
            f.request_id(), std::move(done)); }}},
    {F::kDeleteAccount, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::DeleteAccountRequest r;
       *r.mutable_session() = SessionOf(ctx);
       r.set_code(f.delete_account().code());
       *r.mutable_origin() = b.OriginOf(ctx);
       Call(b, b.AccountOf(ctx.identity.user_id), RPC_FROM(DeleteAccount, ctx.client_address), std::move(r),
            &v1::Reply::mutable_empty, f.request_id(), std::move(done)); }}},
    {F::kChangePhone, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::ChangePhoneRequest r;
       *r.mutable_session() = SessionOf(ctx);
       *r.mutable_request() = f.change_phone();
       Call(b, b.AccountOf(ctx.identity.user_id), RPC_FROM(ChangePhone, ctx.client_address), std::move(r),
            &v1::Reply::mutable_account, f.request_id(), std::move(done)); }}},
    {F::kGetMe, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(GetAccount), UserRequest(ctx), &v1::Reply::mutable_account,
            f.request_id(), std::move(done)); }}},
    {F::kSetDisplayName, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::SetDisplayNameRequest r;
       r.set_user_id(ctx.identity.user_id);
       r.set_display_name(f.set_display_name().display_name());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetDisplayName), std::move(r), &v1::Reply::mutable_account,
            f.request_id(), std::move(done)); }}},
    {F::kSetHandle, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::SetHandleRequest r;
       r.set_user_id(ctx.identity.user_id);
       r.set_handle(f.set_handle().handle());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetHandle), std::move(r), &v1::Reply::mutable_account,
            f.request_id(), std::move(done)); }}},
    {F::kSetProfile, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::SetProfileRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.set_profile();
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetProfile), std::move(r), &v1::Reply::mutable_account,
            f.request_id(), std::move(done)); }}},
    {F::kSetPrivacy, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::SetPrivacyRequest r;
       r.set_user_id(ctx.identity.user_id);
       *r.mutable_request() = f.set_privacy();
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetPrivacy), std::move(r), &v1::Reply::mutable_account,
            f.request_id(), std::move(done)); }}},
    {F::kLookupPhone, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::LookupPhoneRequest r;
       r.set_searcher_id(ctx.identity.user_id);
       r.set_phone(f.lookup_phone().phone());
       Call(b, b.AccountOfPhone(f.lookup_phone().phone()), RPC(LookupPhone), std::move(r),
            &v1::Reply::mutable_profile, f.request_id(), std::move(done)); }}},
    {F::kSetLabel, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::SetLabelRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.set_label();
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetLabel), std::move(r), &v1::Reply::mutable_label,
            f.request_id(), std::move(done)); }}},
    {F::kDeleteLabel, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::DeleteLabelRequest r;
       r.set_user_id(ctx.identity.user_id);
       r.set_label_id(f.delete_label().label_id());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(DeleteLabel), std::move(r), &v1::Reply::mutable_empty,
            f.request_id(), std::move(done)); }}},
    {F::kListLabels, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(ListLabels), UserRequest(ctx), &v1::Reply::mutable_labels,
            f.request_id(), std::move(done)); }}},
    {F::kMyQrCode, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::QrCodeRequest r;
       r.set_user_id(ctx.identity.user_id);
       r.set_rotate(f.my_qr_code().rotate());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(MyQrCode), std::move(r), &v1::Reply::mutable_qr_code,
            f.request_id(), std::move(done)); }}},
    {F::kResolveQrCode, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       // A malformed token still gets the one "not valid" reply, from the asker's own shard.
       const uint64_t owner = ParseQrToken(f.resolve_qr_code().token()).value_or(ctx.identity.user_id);
       Call(b, b.AccountOf(owner), RPC(ResolveQrCode), f.resolve_qr_code(), &v1::Reply::mutable_profile,
            f.request_id(), std::move(done)); }}},
    {F::kLookupUser, {true, LookupUser}},
    {F::kGetProfiles, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::ProfilesForRequest r;
       r.set_viewer_id(ctx.identity.user_id);
       *r.mutable_request() = f.get_profiles();
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(GetProfilesFor), std::move(r), &v1::Reply::mutable_profiles,
            f.request_id(), std::move(done)); }}},
    {F::kSendFriendRequest, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t target = f.send_friend_request().user_id();
       if (MissingId(target, "user_id", f.request_id(), done)) return;
       internal::SendFriendRequestRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.send_friend_request();
       Call(b, b.AccountOf(target), RPC(SendFriendRequest), std::move(r), &v1::Reply::mutable_send_friend_request,
            f.request_id(), std::move(done)); }}},
    {F::kAcceptFriendRequest, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::AcceptFriendRequestRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       r.set_from_user_id(f.accept_friend_request().user_id());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(AcceptFriendRequest), std::move(r), &v1::Reply::mutable_contact,
            f.request_id(), std::move(done)); }}},
    {F::kListFriendRequests, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       if (f.list_friend_requests().outgoing()) return ListSentFriendRequests(b, ctx, f, std::move(done));
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(ListFriendRequests), UserRequest(ctx),
            &v1::Reply::mutable_friend_requests, f.request_id(), std::move(done)); }}},
    {F::kIgnoreFriendRequest, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::AcceptFriendRequestRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       r.set_from_user_id(f.ignore_friend_request().user_id());
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(IgnoreFriendRequest), std::move(r), &v1::Reply::mutable_empty,
            f.request_id(), std::move(done)); }}},
    {F::kListContacts, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(ListContacts), UserRequest(ctx), &v1::Reply::mutable_contacts,
            f.request_id(), std::move(done)); }}},
    {F::kSetRemark, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetRemark),
            ContactRequestOf(b, ctx, f.set_remark().user_id(), f.set_remark().remark(), false),
            &v1::Reply::mutable_contact, f.request_id(), std::move(done)); }}},
    {F::kBlockUser, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(SetBlocked),
            ContactRequestOf(b, ctx, f.block_user().user_id(), "", f.block_user().blocked()),
            &v1::Reply::mutable_empty, f.request_id(), std::move(done)); }}},
    {F::kDeleteContact, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.AccountOf(ctx.identity.user_id), RPC(DeleteContact),
            ContactRequestOf(b, ctx, f.delete_contact().user_id(), "", false), &v1::Reply::mutable_empty,
            f.request_id(), std::move(done)); }}},

    // ---- conversations and messages
    {F::kSendMessage, {true, SendMessage}},
    {F::kGetHistory, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const auto& conv = f.get_history().conversation_id();
       if (BadConversation(conv, f.request_id(), done)) return;
       internal::HistoryRequest r;
       r.set_user_id(ctx.identity.user_id);
       *r.mutable_request() = f.get_history();
       Call(b, b.ChatOf(conv), RPC(GetHistory), std::move(r), &v1::Reply::mutable_history, f.request_id(),
            std::move(done)); }}},
    {F::kListConversations, {true, ListConversations}},
    {F::kMarkRead, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const auto& conv = f.mark_read().conversation_id();
       if (BadConversation(conv, f.request_id(), done)) return;
       internal::MarkReadRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.mark_read();
       Call(b, b.ChatOf(conv), RPC(MarkRead), std::move(r), &v1::Reply::mutable_mark_read, f.request_id(),
            std::move(done)); }}},

    // ---- groups
    {F::kCreateGroup, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       internal::CreateGroupRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.create_group();
       // By creator, so a retry with the same client_request_id reaches the shard that holds the key.
       Call(b, b.groups.at(ShardOfUser(ctx.identity.user_id, b.groups.size())), RPC(CreateGroup), std::move(r),
            &v1::Reply::mutable_group, f.request_id(), std::move(done)); }}},
    {F::kAddGroupMembers, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.add_group_members().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::AddGroupMembersRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.add_group_members();
       Call(b, b.GroupOf(gid), RPC(AddMembers), std::move(r), &v1::Reply::mutable_group, f.request_id(),
            std::move(done)); }}},
    {F::kLeaveGroup, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.leave_group().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::GroupIdRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       r.set_group_id(gid);
       Call(b, b.GroupOf(gid), RPC(Leave), std::move(r), &v1::Reply::mutable_empty, f.request_id(), std::move(done)); }}},
    {F::kListGroupMembers, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.list_group_members().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::GroupIdRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       r.set_group_id(gid);
       Call(b, b.GroupOf(gid), RPC(ListMembers), std::move(r), &v1::Reply::mutable_group_members, f.request_id(),
            std::move(done)); }}},
    {F::kListMyGroups, {true, ListMyGroups}},
    {F::kManageGroup, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.manage_group().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::ManageGroupRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.manage_group();
       Call(b, b.GroupOf(gid), RPC(Manage), std::move(r), &v1::Reply::mutable_group, f.request_id(),
            std::move(done)); }}},
    {F::kMakeGroupInviteCode, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.make_group_invite_code().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::MakeInviteCodeRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.make_group_invite_code();
       Call(b, b.GroupOf(gid), RPC(MakeInviteCode), std::move(r), &v1::Reply::mutable_group_invite_code,
            f.request_id(), std::move(done)); }}},
    {F::kPreviewGroupInviteCode, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.InviteCodeShard(ctx, f.preview_group_invite_code().code()), RPC(PreviewInviteCode),
            b.InviteCode(ctx, f.preview_group_invite_code().code()), &v1::Reply::mutable_group_preview,
            f.request_id(), std::move(done)); }}},
    {F::kRespondGroupInvitation, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.respond_group_invitation().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::RespondInvitationRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.respond_group_invitation();
       Call(b, b.GroupOf(gid), RPC(RespondInvitation), std::move(r), &v1::Reply::mutable_group, f.request_id(),
            std::move(done)); }}},
    {F::kListGroupInvitations, {true, ListGroupInvitations}},
    {F::kListGroupJoinRequests, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.list_group_join_requests().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::GroupIdRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       r.set_group_id(gid);
       Call(b, b.GroupOf(gid), RPC(ListJoinRequests), std::move(r), &v1::Reply::mutable_group_invitations,
            f.request_id(), std::move(done)); }}},
    {F::kReviewGroupJoinRequest, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       const uint64_t gid = f.review_group_join_request().group_id();
       if (MissingId(gid, "group_id", f.request_id(), done)) return;
       internal::JoinReviewRequest r;
       *r.mutable_origin() = b.OriginOf(ctx);
       *r.mutable_request() = f.review_group_join_request();
       Call(b, b.GroupOf(gid), RPC(ReviewJoinRequest), std::move(r), &v1::Reply::mutable_group, f.request_id(),
            std::move(done)); }}},
    {F::kJoinGroupByCode, {true, [](Backends& b, const C& ctx, const F& f, ReplyFn done) {
       Call(b, b.InviteCodeShard(ctx, f.join_group_by_code().code()), RPC(JoinByCode),
            b.InviteCode(ctx, f.join_group_by_code().code()), &v1::Reply::mutable_group, f.request_id(),
            std::move(done)); }}},
  };
  return routes;
}
// clang-format on

}  // namespace

v1::Reply ErrorReply(uint64_t request_id, v1::StatusCode code, std::string message) {
  v1::Reply r;
  r.set_request_id(request_id);
  SetError(&r, code, std::move(message));
  return r;
}

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
  // A quota's wait (RESOURCE_EXHAUSTED) or a rule's (set_handle's FAILED_PRECONDITION).
  if (code == v1::RESOURCE_EXHAUSTED || code == v1::FAILED_PRECONDITION)
    reply->set_retry_after_ms(static_cast<uint64_t>(RetryAfterMs(st)));
}

RequestRouter::RequestRouter(const ClusterConfig& config, std::string gateway_id)
    : backends_(std::make_unique<Backends>(config, std::move(gateway_id))) {}

RequestRouter::~RequestRouter() = default;

bool RequestRouter::Routed(v1::ClientFrame::RequestCase kind) { return Routes().count(kind) > 0; }

void RequestRouter::Handle(const RequestContext& ctx, const v1::ClientFrame& f, ReplyFn done) {
  ++inflight_;
  ReplyFn finish = [this, done = std::move(done)](v1::Reply reply, std::optional<Identity> id) {
    done(std::move(reply), std::move(id));
    --inflight_;
  };
  const uint64_t rid = f.request_id();
  if (f.request_case() == ClientFrame::REQUEST_NOT_SET)
    return finish(ErrorReply(rid, v1::INVALID_ARGUMENT, "frame carries no known request"), std::nullopt);
  const auto& routes = Routes();
  auto it = routes.find(f.request_case());
  if (it == routes.end()) return finish(ErrorReply(rid, v1::INVALID_ARGUMENT, "unknown request"), std::nullopt);
  if (it->second.needs_auth && ctx.identity.user_id == 0)
    return finish(ErrorReply(rid, v1::UNAUTHENTICATED, "authenticate first (token, sign_up or log_in)"), std::nullopt);
  it->second.handle(*backends_, ctx, f, std::move(finish));
}

}  // namespace chat::gateway
