// Sessions and devices of account-service: opening a session at sign-up and log-in, refreshing its
// token, the gateway's check of a token's session, listing devices and logging out. A session is a
// row of `sessions` (migration 0008) on the user's shard; a token names (session id, generation).
// Every change that kills tokens announces a Revocation through the outbox in its own transaction,
// so each gateway closes the matching connections and forgets its cached checks even if this
// process dies right after the commit.
#include <spdlog/spdlog.h>

#include <climits>

#include "account/account_service.h"
#include "account/secure_random.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/text_policy.h"

namespace chat::account {

namespace {

// A session's last_active is written at most once per this (CheckAccount is mostly a read).
constexpr int64_t kActivityResolutionMs = 3600 * 1000;
// Attempts to draw a free session id (collisions of 63-bit random ids are astronomically rare).
constexpr int kInsertSessionAttempts = 4;

v1::Device ToDevice(const SessionRow& s, uint64_t current_session) {
  v1::Device d;
  d.set_session_id(s.session_id);
  d.set_device_id(s.device_id);
  d.set_device_name(s.device_name);
  d.set_platform(s.platform);
  d.set_created_ms(s.created_ms);
  d.set_last_active_ms(s.last_active_ms);
  d.set_current(s.session_id == current_session);
  return d;
}

}  // namespace

Status AccountServiceImpl::NormalizeDevice(DeviceInfo* d) const {
  if (!ValidDeviceId(d->device_id))
    return InvalidArgument("device_id must be 1-64 characters of letters, digits, '.', '_' or '-'");
  const TextRule rule{TextKind::kName, 0, limits_.account.max_device_name_chars};
  if (auto st = NormalizeText("device_name", rule, &d->device_name); !st.ok()) return st;
  return NormalizeText("platform", rule, &d->platform);
}

FanoutItem AccountServiceImpl::RevocationItem(uint64_t user, const std::vector<uint64_t>& session_ids, bool all,
                                              uint32_t below_gen, const internal::Origin* keep, uint32_t close_code,
                                              const std::string& reason) const {
  FanoutItem item;
  item.user_ids = {user};
  auto* kicked = item.event.mutable_kicked();
  kicked->set_close_code(close_code);
  kicked->set_reason(reason);
  internal::Revocation r;
  for (uint64_t s : session_ids) r.add_session_ids(s);
  r.set_all_sessions(all);
  r.set_below_gen(below_gen);
  if (keep) {
    r.set_skip_gateway_id(keep->gateway_id());
    r.set_skip_session_id(keep->session_id());
  }
  item.revocation = std::move(r);
  return item;
}

Status AccountServiceImpl::OpenSessionIn(pqxx::work& t, uint64_t user, const DeviceInfo& device, int64_t now_ms,
                                         SessionRow* out, std::vector<FanoutItem>* events) {
  SessionRow s;
  s.user_id = user;
  s.device_id = device.device_id;
  s.device_name = device.device_name;
  s.platform = device.platform;
  s.created_ms = now_ms;
  s.last_active_ms = now_ms;
  s.expires_ms = now_ms + static_cast<int64_t>(limits_.account.token_ttl_s) * 1000;
  uint64_t replaced = 0;
  bool inserted = false;
  for (int attempt = 0; attempt < kInsertSessionAttempts && !inserted; ++attempt) {
    s.session_id = RandomU64() & static_cast<uint64_t>(INT64_MAX);
    if (s.session_id == 0) continue;
    const uint64_t old = store::PutSession(t, s, &inserted);
    if (old != 0) replaced = old;
  }
  // Not inserted: a concurrent log-in on the same device committed first; this one fails whole.
  if (!inserted) return Unavailable("could not open the session; try again");
  std::vector<uint64_t> ended = store::TrimSessions(t, user, now_ms, limits_.account.max_devices_per_user);
  if (replaced != 0) ended.push_back(replaced);
  if (!ended.empty())
    events->push_back(RevocationItem(user, ended, false, 0, nullptr, kCloseSessionEnded,
                                     replaced != 0 && ended.size() == 1
                                         ? "this device logged in again"
                                         : "signed out: too many devices (limits.account.max_devices_per_user)"));
  if (replaced == 0 && store::LiveSessionsOf(t, user, now_ms).size() > 1) {
    // A device this account had no session on: its other devices are told.
    FanoutItem notice;
    notice.user_ids = {user};
    *notice.event.mutable_new_device()->mutable_device() = ToDevice(s, 0);
    events->push_back(std::move(notice));
  }
  *out = std::move(s);
  return OkStatus();
}

void AccountServiceImpl::FillSession(const UserRow& user, const SessionRow& s, v1::SessionResult* out) const {
  FillAccount(user, out->mutable_account());
  TokenClaims claims;
  claims.user_id = user.id;
  claims.device_id = s.device_id;
  claims.expires_s = s.expires_ms / 1000;
  claims.session_id = s.session_id;
  claims.token_gen = s.token_gen;
  out->set_token(signer_.Issue(claims));
  out->set_token_expires_ms(claims.expires_s * 1000);
  out->set_session_id(s.session_id);
}

Status AccountServiceImpl::CheckSessionKey(const internal::SessionKey& k) const {
  if (!ValidUserId(k.user_id())) return InvalidArgument("user_id is required");
  if (!ValidUserId(k.session_id()) || k.token_gen() == 0) return Unauthenticated("session ended; log in again");
  if (!IsLocal(k.user_id())) return Internal("request reached the wrong account shard");
  return OkStatus();
}

Status AccountServiceImpl::RequireLiveSession(pqxx::work& t, const internal::SessionKey& k, int64_t now_ms,
                                              UserRow* user) {
  auto u = store::UserById(t, k.user_id());
  if (!u || u->deleted_ms != 0) return Unauthenticated("session ended; log in again");
  auto s = store::SessionOf(t, k.user_id(), k.session_id());
  if (!s || s->token_gen != k.token_gen() || s->expires_ms <= now_ms)
    return Unauthenticated("session ended; log in again");
  *user = std::move(*u);
  return OkStatus();
}

grpc::Status AccountServiceImpl::RefreshToken(grpc::ServerContext*, const internal::RefreshTokenRequest* req,
                                              v1::SessionResult* res) {
  return Guarded("RefreshToken", [&]() -> Status {
    internal::SessionKey key;
    key.set_user_id(req->user_id());
    key.set_session_id(req->session_id());
    key.set_token_gen(req->token_gen());
    if (auto st = CheckSessionKey(key); !st.ok()) return st;
    const int64_t now = now_ms_();
    const int64_t expires = now + static_cast<int64_t>(limits_.account.token_ttl_s) * 1000;
    std::optional<UserRow> user;
    std::optional<SessionRow> session;
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          user = store::UserById(t, key.user_id());
          if (!user || user->deleted_ms != 0) return Unauthenticated("session ended; log in again");
          const uint32_t gen = store::RefreshSession(t, key.user_id(), key.session_id(), key.token_gen(), expires, now);
          if (gen == 0) return Unauthenticated("session ended; log in again");
          session = store::SessionOf(t, key.user_id(), key.session_id());
          // Connections still on an older token of this session end; the refreshing one stays.
          items.push_back(RevocationItem(key.user_id(), {key.session_id()}, false, gen, &req->origin(),
                                         kCloseSessionEnded, "this session's token was refreshed elsewhere"));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "RefreshToken");
    if (!st.ok()) return st;
    FillSession(*user, *session, res);
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::CheckAccount(grpc::ServerContext*, const internal::SessionKey* req,
                                              internal::AccountCheckResult* res) {
  return Guarded("CheckAccount", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    // A misrouted check must not tell a gateway that a real account does not exist.
    if (!IsLocal(req->user_id())) return Internal("request reached the wrong account shard");
    // A token without a session (from before sessions) is refused: nothing could ever revoke it.
    if (!ValidUserId(req->session_id()) || req->token_gen() == 0) {
      res->set_active(false);
      return OkStatus();
    }
    const int64_t now = now_ms_();
    bool active = false;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          active = false;
          auto user = store::UserById(t, req->user_id());
          if (!user || user->deleted_ms != 0) return OkStatus();
          auto s = store::SessionOf(t, req->user_id(), req->session_id());
          if (!s || s->token_gen != req->token_gen() || s->expires_ms <= now) return OkStatus();
          active = true;
          if (s->last_active_ms < now - kActivityResolutionMs)
            store::TouchSession(t, req->user_id(), req->session_id(), now, now - kActivityResolutionMs);
          return OkStatus();
        },
        "CheckAccount");
    if (!st.ok()) return st;
    res->set_active(active);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ListDevices(grpc::ServerContext*, const internal::SessionKey* req,
                                             v1::DevicesResult* res) {
  return Guarded("ListDevices", [&]() -> Status {
    if (auto st = CheckSessionKey(*req); !st.ok()) return st;
    const int64_t now = now_ms_();
    std::vector<SessionRow> rows;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          UserRow user;
          if (auto s = RequireLiveSession(t, *req, now, &user); !s.ok()) return s;
          rows = store::LiveSessionsOf(t, req->user_id(), now);
          return OkStatus();
        },
        "ListDevices");
    if (!st.ok()) return st;
    for (const SessionRow& s : rows) *res->add_devices() = ToDevice(s, req->session_id());
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::LogOut(grpc::ServerContext*, const internal::LogOutRequest* req, v1::Empty*) {
  return Guarded("LogOut", [&]() -> Status {
    const internal::SessionKey& me = req->session();
    if (auto st = CheckSessionKey(me); !st.ok()) return st;
    const bool all = req->request().all_devices();
    const uint64_t target = all ? 0 : req->request().session_id() != 0 ? req->request().session_id() : me.session_id();
    if (!all && !ValidUserId(target)) return InvalidArgument("session_id is not a session");
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          // Only a live session may end sessions: a token refused at the gateway must not log
          // anyone out through a connection it authenticated before.
          auto s = store::SessionOf(t, me.user_id(), me.session_id());
          if (!s || s->token_gen != me.token_gen()) return Unauthenticated("session ended; log in again");
          const std::vector<uint64_t> ended = store::DeleteSessions(t, me.user_id(), target);
          if (ended.empty()) return NotFound("no such session");
          // The asking connection closes itself after its reply (a reply must never be lost to the close).
          items.push_back(
              RevocationItem(me.user_id(), ended, all, 0, &req->origin(), kCloseSessionEnded, "signed out"));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "LogOut");
    if (!st.ok()) return st;
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

}  // namespace chat::account
