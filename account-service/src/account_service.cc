#include "account/account_service.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <unordered_set>

#include "account/secure_random.h"
#include "account/validation.h"
#include "common/friends.h"
#include "common/log.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::account {

namespace {

constexpr int kCodeDigits = 6;
// Length of a phone's window for the daily code and failure caps.
constexpr int64_t kCodeWindowMs = 24ll * 3600 * 1000;
// Attempts to find a free (id, handle) pair before giving up; collisions are astronomically rare.
constexpr int kInsertUserAttempts = 8;

}  // namespace

bool ValidUserId(uint64_t id) { return id > 0 && id <= static_cast<uint64_t>(INT64_MAX); }

bool ValidCodeSyntax(const std::string& code) {
  if (code.size() != kCodeDigits) return false;
  return std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; });
}

v1::UserProfile ToProfile(const UserRow& u) {
  v1::UserProfile p;
  p.set_user_id(u.id);
  if (u.deleted_ms != 0) {
    p.set_display_name(kDeletedUserName);
    p.set_deleted(true);
    return p;
  }
  p.set_handle(u.handle);
  p.set_display_name(u.display_name);
  p.set_avatar_media_id(u.avatar_media_id);
  p.set_whats_up(u.whats_up);
  return p;
}

v1::FriendRequest ToFriendRequest(const RequestRow& r) {
  v1::FriendRequest out;
  out.mutable_from()->set_user_id(r.from_user);
  out.set_to_user_id(r.to_user);
  out.set_greeting(r.greeting);
  out.set_source(v1::FriendRequestSource_IsValid(r.source) ? static_cast<v1::FriendRequestSource>(r.source)
                                                           : v1::FRIEND_REQUEST_SOURCE_UNSPECIFIED);
  out.set_created_ms(r.created_ms);
  return out;
}

void FillAccount(const UserRow& u, v1::Account* out) {
  *out->mutable_profile() = ToProfile(u);
  out->set_phone(u.phone);
  out->set_allow_phone_lookup(u.allow_phone_lookup);
}

namespace {

// Every replica of every shard as a shard of its own, in shard order (stubs per replica).
std::vector<ShardConfig> OneShardPerReplica(const std::vector<ShardConfig>& shards) {
  std::vector<ShardConfig> out;
  for (const ShardConfig& s : shards)
    for (const std::string& address : s.addresses) out.push_back(ShardConfig{{address}, s.database});
  return out;
}

Status FriendLimitReached(uint32_t max_friends) {
  return FailedPrecondition("friend limit of " + std::to_string(max_friends) + " reached");
}

// Deduplicated ids, first occurrence order kept.
std::vector<uint64_t> Dedup(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::vector<uint64_t> out;
  std::unordered_set<uint64_t> seen;
  for (uint64_t id : ids)
    if (seen.insert(id).second) out.push_back(id);
  return out;
}

}  // namespace

std::vector<QuotaSpec> AccountQuotaSpecs(const Limits& limits) {
  constexpr int64_t kHour = 3600 * 1000, kDay = 24 * kHour;
  const AccountLimits& a = limits.account;
  // In the order of AccountQuota.
  return {{"friend_req_d", a.user_friend_requests_per_day, kDay},
          {"phone_lookup_d", a.user_phone_lookups_per_day, kDay},
          {"profile_d", a.user_profile_changes_per_day, kDay},
          {"addr_code_h", a.address_codes_per_hour, kHour},
          {"addr_phone_code_d", a.address_phone_codes_per_day, kDay},
          {"addr_check_h", a.address_code_checks_per_hour, kHour},
          {"addr_phone_check_d", a.address_phone_code_checks_per_day, kDay}};
}

AccountServiceImpl::AccountServiceImpl(AccountServiceDeps deps)
    : config_(*deps.config),
      limits_(config_.limits),
      shard_(deps.shard),
      pool_(*deps.pool),
      sender_(*deps.sender),
      events_(*deps.events),
      outbox_(deps.outbox),
      quotas_(deps.quotas),
      now_ms_(deps.now_ms ? std::move(deps.now_ms) : std::function<int64_t()>(NowMs)),
      code_budget_(config_.limits.account.max_codes_per_shard_per_minute),
      signer_(config_.token_keys),
      peers_(config_.account, config_.internal_tls),
      chat_replicas_(OneShardPerReplica(config_.chat), config_.internal_tls) {
  uint32_t begin = 0;
  for (const ShardConfig& s : config_.chat) {
    chat_replica_begin_.push_back(begin);
    begin += static_cast<uint32_t>(s.addresses.size());
  }
  chat_replica_begin_.push_back(begin);
}

uint32_t AccountServiceImpl::shard_count() const {
  return std::max<uint32_t>(1, static_cast<uint32_t>(config_.account.size()));
}

bool AccountServiceImpl::IsLocal(uint64_t user_id) const { return ShardOfUser(user_id, shard_count()) == shard_; }

Status AccountServiceImpl::CheckPhoneShard(const std::string& phone) const {
  // Phone uniqueness across the cluster rests on every phone having exactly one shard: never serve
  // a phone that belongs elsewhere (a caller with a different shard map).
  if (ShardOfPhone(phone, shard_count()) == shard_) return OkStatus();
  spdlog::error("phone-keyed request for shard {} reached shard {}: caller's shard map differs",
                ShardOfPhone(phone, shard_count()), shard_);
  return Internal("request reached the wrong account shard");
}

std::string AccountServiceImpl::HashCode(const TokenKey& key, const std::string& phone, const std::string& code) {
  const std::string mac = HmacSha256(key.secret, "code:" + phone + ":" + code);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(mac.size() * 2);
  for (unsigned char c : mac) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool AccountServiceImpl::CodeMatches(const std::string& phone, const std::string& code,
                                     const std::string& stored_hash) const {
  // Hashed under the signing key when it was sent; any key matches, so a code sent just before the
  // signer changed still works.
  bool match = false;
  for (const TokenKey& key : config_.token_keys.keys) {
    const std::string hash = HashCode(key, phone, code);
    match |= hash.size() == stored_hash.size() && CRYPTO_memcmp(hash.data(), stored_hash.data(), hash.size()) == 0;
  }
  return match;
}

uint64_t AccountServiceImpl::QuotaSubject(const std::string& what) const {
  // Keyed, so the Redis keys reveal neither the address nor the phone; the top bit set, so a subject
  // never meets a user id's buckets (user ids are below 2^63).
  const std::string mac =
      HmacSha256(config_.token_keys.Find(config_.token_keys.signing_key_id)->secret, "quota:" + what);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(mac[i]);
  return v | (uint64_t{1} << 63);
}

std::string AccountServiceImpl::ClientAddress(const grpc::ServerContext* ctx) {
  if (!ctx) return {};
  const auto& md = ctx->client_metadata();
  auto it = md.find(kClientAddressMetadata);
  if (it == md.end() || it->second.size() > kMaxClientAddressChars) return {};
  return std::string(it->second.data(), it->second.size());
}

Status AccountServiceImpl::ChargeAddress(const std::string& address, const std::string& phone, AccountQuota per_address,
                                         AccountQuota per_phone, const std::string& refusal) {
  if (!quotas_ || address.empty()) return OkStatus();
  const int64_t wait = quotas_->TakeOne(
      {{per_address, QuotaSubject("a:" + address), 1}, {per_phone, QuotaSubject("ap:" + address + " " + phone), 1}});
  return wait > 0 ? QuotaExceeded(refusal, wait) : OkStatus();
}

Status AccountServiceImpl::ChargeCodeCheck(const grpc::ServerContext* ctx, const std::string& phone) {
  return ChargeAddress(ClientAddress(ctx), phone, kAddressChecksQuota, kAddressPhoneChecksQuota,
                       "too many code checks from your network (limits.account.address_code_checks_per_hour, "
                       "address_phone_code_checks_per_day)");
}

Status AccountServiceImpl::CheckCode(pqxx::work& t, const std::string& phone, const std::string& code, int64_t now_ms) {
  // Wrong codes lock only the code (code_max_tries), never the phone: a stranger must not be able to
  // lock an owner out. Guessing is bounded per client address (ChargeAddress) and per phone by the
  // codes it may be sent in a day times code_max_tries.
  auto row = store::LockCode(t, phone);
  if (!row || row->expires_ms <= now_ms) return PermissionDenied("wrong or expired code");
  if (row->tries >= static_cast<int>(limits_.account.code_max_tries))
    return FailedPrecondition("too many attempts; request a new code");
  if (!CodeMatches(phone, code, row->code_hash)) {
    store::AddCodeTry(t, phone);
    return PermissionDenied("wrong or expired code");
  }
  store::ConsumeCode(t, phone);
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Phone verification and sessions

grpc::Status AccountServiceImpl::RequestCode(grpc::ServerContext* ctx, const v1::RequestCodeRequest* req,
                                             v1::RequestCodeResult* res) {
  return Guarded("RequestCode", [&]() -> Status {
    const std::string& phone = req->phone();
    if (!ValidPhone(phone)) return InvalidArgument("phone must be in international format, e.g. +8613800138000");
    if (auto st = CheckPhoneShard(phone); !st.ok()) return st;
    // The address's quotas before the phone's: one network can neither drain the SMS budget nor use
    // up a stranger's daily codes.
    if (auto st = ChargeAddress(ClientAddress(ctx), phone, kAddressCodesQuota, kAddressPhoneCodesQuota,
                                "too many codes requested from your network (limits.account.address_codes_per_hour, "
                                "address_phone_codes_per_day)");
        !st.ok())
      return st;
    const int64_t now = now_ms_();
    if (++request_codes_ % kPurgeEveryRequestCodes == 0) {
      // Housekeeping only: a failure is logged and the request goes on.
      int purged = 0;
      auto pst = WithTransaction(
          pool_,
          [&](pqxx::work& t) {
            purged = store::PurgeExpiredCodes(t, now - kCodeWindowMs, kPurgeBatchRows);
            purged += store::PurgeFreePhones(t, now, kPurgeBatchRows);
            return OkStatus();
          },
          "RequestCode.purge");
      if (!pst.ok())
        spdlog::warn("purging expired phone codes failed: {}", pst.message());
      else if (purged > 0)
        spdlog::debug("purged {} expired phone codes and free numbers", purged);
    }
    const std::string code = RandomDigits(kCodeDigits);
    const std::string code_hash = HashCode(*config_.token_keys.Find(config_.token_keys.signing_key_id), phone, code);
    // The replica's budget is taken before the database is asked (so an exhausted budget costs no
    // write) and given back whenever no code goes out.
    if (!code_budget_.TryTake(now)) return Unavailable("verification temporarily unavailable; retry later");
    bool sent = false;
    struct RefundUnlessSent {
      CodeSendBudget& budget;
      const bool& sent;
      ~RefundUnlessSent() {
        if (!sent) budget.Refund();
      }
    } refund{code_budget_, sent};
    const int64_t interval_ms = int64_t{limits_.account.code_resend_interval_s} * 1000;
    const int64_t day_cutoff = now - kCodeWindowMs;
    int64_t wait_ms = 0;
    bool daily_cap = false;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          wait_ms = 0;
          daily_cap = false;
          if (store::PutCode(t, phone, code_hash, now + int64_t{limits_.account.code_ttl_s} * 1000, now,
                             now - interval_ms, day_cutoff, limits_.account.max_codes_per_phone_per_day))
            return OkStatus();
          auto existing = store::GetCode(t, phone);
          // The daily cap first: waiting out the resend interval would not help.
          if (existing && existing->day_start_ms > day_cutoff &&
              existing->day_count >= static_cast<int>(limits_.account.max_codes_per_phone_per_day)) {
            daily_cap = true;
            wait_ms = std::max<int64_t>(1, existing->day_start_ms + kCodeWindowMs - now);
            return OkStatus();
          }
          wait_ms = std::max<int64_t>(1, existing ? existing->sent_ms + interval_ms - now : interval_ms);
          return OkStatus();
        },
        "RequestCode");
    if (!st.ok()) return st;
    // Same answers whether or not the phone has an account.
    // The wait in retry_after_ms (and for the interval in the text); the same for every phone.
    if (daily_cap)
      return ResourceExhausted("too many codes requested for this number today; try again tomorrow")
          .WithRetryAfter(wait_ms);
    if (wait_ms > 0)
      return ResourceExhausted("wait " + std::to_string((wait_ms + 999) / 1000) + " s before requesting another code")
          .WithRetryAfter(wait_ms);
    if (!sender_.Send(phone, code)) {
      // Do not leave a code nobody received blocking the resend interval or counting as sent.
      (void)WithTransaction(  // best effort: a failure is logged by WithTransaction
          pool_,
          [&](pqxx::work& t) {
            store::WithdrawCode(t, phone, code_hash);
            return OkStatus();
          },
          "RequestCode.undo");
      return Unavailable("could not send the code; try again");
    }
    sent = true;
    res->set_expires_in_s(static_cast<int32_t>(limits_.account.code_ttl_s));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::SignUp(grpc::ServerContext* ctx, const v1::SignUpRequest* req,
                                        v1::SessionResult* res) {
  return Guarded("SignUp", [&]() -> Status {
    const std::string& phone = req->phone();
    if (!ValidPhone(phone)) return InvalidArgument("phone must be in international format, e.g. +8613800138000");
    if (!ValidCodeSyntax(req->code())) return InvalidArgument("code must be 6 digits");
    if (auto st = CheckPhoneShard(phone); !st.ok()) return st;
    if (auto st = ChargeCodeCheck(ctx, phone); !st.ok()) return st;
    std::string display_name = req->display_name();
    if (auto st = NormalizeDisplayName(&display_name, limits_.account.max_display_name_chars); !st.ok()) return st;
    DeviceInfo device{req->device_id(), req->device_name(), req->platform()};
    if (auto st = NormalizeDevice(&device); !st.ok()) return st;
    const int64_t now = now_ms_();
    Status verdict;
    UserRow user;
    SessionRow session;
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          verdict = CheckCode(t, phone, req->code(), now);
          if (!verdict.ok()) return OkStatus();  // commit the try counter
          // From here on an error rolls back, so the code stays usable (e.g. to log in instead).
          const Status taken = AlreadyExists("an account with this phone number already exists; log in instead");
          if (auto owner = store::LockPhone(t, phone)) {
            if (owner->free_from_ms == 0) return taken;
            if (owner->free_from_ms > now) return DeletedNumberWait(owner->free_from_ms - now);
          }
          bool inserted = false;
          for (int attempt = 0; attempt < kInsertUserAttempts && !inserted; ++attempt) {
            user.id = RandomUserIdOnShard(shard_, shard_count());
            user.phone = phone;
            user.handle = RandomHandle();
            user.display_name = display_name;
            user.created_ms = now;
            inserted = store::InsertUser(t, user);
            // A concurrent sign-up of the same phone committed first, or the id/handle is taken.
            if (!inserted && store::UserByPhone(t, phone)) return taken;
          }
          if (!inserted) {
            spdlog::error("SignUp: no free user id/handle after {} attempts", kInsertUserAttempts);
            return Unavailable("could not create the account; try again");
          }
          if (!store::ClaimPhone(t, phone, user.id, now)) return taken;
          if (auto s = OpenSessionIn(t, user.id, device, now, &session, &items); !s.ok()) return s;
          RecordEvents(t, &items);
          return OkStatus();
        },
        "SignUp");
    if (!st.ok()) return st;
    if (!verdict.ok()) return verdict;
    FillSession(user, session, res);
    events_.Publish(std::move(items));
    spdlog::info("signed up user {} on shard {}", user.id, shard_);
    return OkStatus();
  });
}

Status AccountServiceImpl::DeletedNumberWait(int64_t wait_ms) const {
  return FailedPrecondition("the account of this phone number was deleted; the number can sign up again after " +
                            std::to_string(limits_.account.deleted_phone_reuse_after_s / 86400) +
                            " days (limits.account.deleted_phone_reuse_after_s)")
      .WithRetryAfter(wait_ms);
}

grpc::Status AccountServiceImpl::LogIn(grpc::ServerContext* ctx, const v1::LogInRequest* req, v1::SessionResult* res) {
  return Guarded("LogIn", [&]() -> Status {
    const std::string& phone = req->phone();
    if (!ValidPhone(phone)) return InvalidArgument("phone must be in international format, e.g. +8613800138000");
    if (!ValidCodeSyntax(req->code())) return InvalidArgument("code must be 6 digits");
    if (auto st = CheckPhoneShard(phone); !st.ok()) return st;
    if (auto st = ChargeCodeCheck(ctx, phone); !st.ok()) return st;
    DeviceInfo device{req->device_id(), req->device_name(), req->platform()};
    if (auto st = NormalizeDevice(&device); !st.ok()) return st;
    const int64_t now = now_ms_();
    Status verdict;
    std::optional<UserRow> user;
    SessionRow session;
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          user.reset();
          verdict = CheckCode(t, phone, req->code(), now);
          if (!verdict.ok()) return OkStatus();  // commit the try counter
          // Only now, with the code verified, may the caller learn that the phone is unregistered.
          // An error rolls back, so the same code can still be used to sign up.
          const Status none = NotFound("no account for this phone number; sign up first");
          auto owner = store::LockPhone(t, phone);
          if (!owner || (owner->free_from_ms != 0 && owner->free_from_ms <= now)) return none;
          if (owner->free_from_ms != 0) return DeletedNumberWait(owner->free_from_ms - now);
          if (!IsLocal(owner->user_id)) {
            // The number moved here from an account of another shard (change_phone): that shard opens
            // the session. Inside this transaction, so a failure leaves the code unused.
            internal::OpenSessionRequest open;
            open.set_user_id(owner->user_id);
            open.set_phone(phone);
            open.mutable_device()->set_device_id(device.device_id);
            open.mutable_device()->set_device_name(device.device_name);
            open.mutable_device()->set_platform(device.platform);
            auto rpc = MakeContext(limits_.common.rpc_deadline_ms);
            auto pst = peers_.at(ShardOfUser(owner->user_id, shard_count())).OpenSession(rpc.get(), open, res);
            if (pst.ok()) return OkStatus();
            if (pst.error_code() == grpc::StatusCode::NOT_FOUND) return none;
            return PeerFailure("OpenSession", pst);
          }
          return LogInLocal(t, owner->user_id, phone, device, now, &user, &session, &items);
        },
        "LogIn");
    if (!st.ok()) return st;
    if (!verdict.ok()) return verdict;
    if (user) {
      FillSession(*user, session, res);
      events_.Publish(std::move(items));
    }
    return OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// Accounts and profiles

grpc::Status AccountServiceImpl::GetAccount(grpc::ServerContext*, const internal::UserIdRequest* req,
                                            v1::Account* res) {
  return Guarded("GetAccount", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    std::optional<UserRow> user;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          user = store::UserById(t, req->user_id());
          return OkStatus();
        },
        "GetAccount");
    if (!st.ok()) return st;
    if (!user || user->deleted_ms != 0) return NotFound("no such user");
    FillAccount(*user, res);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::SetDisplayName(grpc::ServerContext*, const internal::SetDisplayNameRequest* req,
                                                v1::Account* res) {
  return Guarded("SetDisplayName", [&]() -> Status {
    return ChangeProfile(req->user_id(), 0, req->display_name(), std::nullopt, std::nullopt, res);
  });
}

int64_t AccountServiceImpl::HandleChangeWaitMs(const UserRow& user, int64_t now_ms) const {
  if (user.handle_changed_ms == 0) return 0;  // a random handle, never set
  const int64_t next = user.handle_changed_ms + int64_t{limits_.account.handle_change_interval_s} * 1000;
  return next > now_ms ? next - now_ms : 0;
}

Status AccountServiceImpl::HandleChangeTooSoon(int64_t wait_ms) const {
  return FailedPrecondition("a handle can be changed once every " +
                            std::to_string(limits_.account.handle_change_interval_s / 86400) +
                            " days (limits.account.handle_change_interval_s)")
      .WithRetryAfter(wait_ms);
}

Status AccountServiceImpl::ClaimOrReleaseHandle(bool claim, const std::string& handle_lower, uint64_t user,
                                                int64_t hold_until_ms) {
  internal::HandleClaim c;
  c.set_handle_lower(handle_lower);
  c.set_user_id(user);
  c.set_hold_until_ms(hold_until_ms);
  const uint32_t owner = ShardOfHandle(handle_lower, shard_count());
  if (owner == shard_) return HandleClaimLocal(claim, c);
  auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
  v1::Empty empty;
  auto st =
      claim ? peers_.at(owner).ClaimHandle(ctx.get(), c, &empty) : peers_.at(owner).ReleaseHandle(ctx.get(), c, &empty);
  if (st.ok() || st.error_code() == grpc::StatusCode::ALREADY_EXISTS) return FromPeer(st);
  return PeerFailure(claim ? "ClaimHandle" : "ReleaseHandle", st);
}

Status AccountServiceImpl::HandleClaimLocal(bool claim, const internal::HandleClaim& c) {
  if (!ValidHandle(c.handle_lower()) || LowerAscii(c.handle_lower()) != c.handle_lower())
    return InvalidArgument("handle_lower must be a handle in lower case");
  if (!ValidUserId(c.user_id())) return InvalidArgument("user_id is required");
  // Uniqueness rests on every handle having exactly one claim shard.
  if (ShardOfHandle(c.handle_lower(), shard_count()) != shard_)
    return Internal("handle claim reached the wrong account shard");
  const int64_t now = now_ms_();
  return WithTransaction(
      pool_,
      [&](pqxx::work& t) -> Status {
        if (!claim) {
          store::ReleaseHandle(t, c.handle_lower(), c.user_id(), c.hold_until_ms());
          return OkStatus();
        }
        if (!store::ClaimHandle(t, c.handle_lower(), c.user_id(), now)) return AlreadyExists("this handle is taken");
        return OkStatus();
      },
      claim ? "ClaimHandle" : "ReleaseHandle");
}

grpc::Status AccountServiceImpl::ClaimHandle(grpc::ServerContext*, const internal::HandleClaim* req, v1::Empty*) {
  return Guarded("ClaimHandle", [&]() -> Status { return HandleClaimLocal(true, *req); });
}

grpc::Status AccountServiceImpl::ReleaseHandle(grpc::ServerContext*, const internal::HandleClaim* req, v1::Empty*) {
  return Guarded("ReleaseHandle", [&]() -> Status { return HandleClaimLocal(false, *req); });
}

grpc::Status AccountServiceImpl::SetHandle(grpc::ServerContext*, const internal::SetHandleRequest* req,
                                           v1::Account* res) {
  return Guarded("SetHandle", [&]() -> Status {
    const uint64_t me = req->user_id();
    if (!ValidUserId(me)) return InvalidArgument("user_id is required");
    if (!IsLocal(me)) return InvalidArgument("user_id belongs to another account shard");
    const std::string& handle = req->handle();
    if (!ValidHandle(handle))
      return InvalidArgument("a handle is 6-20 characters: a letter, then letters, digits, '_' or '-'");
    const std::string lower = LowerAscii(handle);
    if (ReservedHandle(lower)) return InvalidArgument("this handle is reserved");
    const int64_t now = now_ms_();
    std::optional<UserRow> user;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          user = store::UserById(t, me);
          if (user && LowerAscii(user->handle) == lower && store::SetHandleCase(t, me, handle))
            user = store::UserById(t, me);  // the same handle in other letter case: no claim, no interval
          return OkStatus();
        },
        "SetHandle.case");
    if (!st.ok()) return st;
    if (!user || user->deleted_ms != 0) return NotFound("your account was not found");
    if (LowerAscii(user->handle) == lower) {
      FillAccount(*user, res);
      return OkStatus();
    }
    if (const int64_t wait = HandleChangeWaitMs(*user, now); wait > 0) return HandleChangeTooSoon(wait);

    // 1. The claim, on the handle's shard: of concurrent claims from any shards one wins.
    if (auto cst = ClaimOrReleaseHandle(true, lower, me, 0); !cst.ok()) return cst;
    // 2. The user's row, locked, the interval checked again (a concurrent change of this user).
    std::string released;  // the handle the user had until now
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          auto u = store::LockUser(t, me);
          if (!u) return NotFound("your account was not found");
          if (const int64_t wait = HandleChangeWaitMs(*u, now); wait > 0) return HandleChangeTooSoon(wait);
          released = LowerAscii(u->handle);
          store::SetHandle(t, me, handle, now);
          user = store::UserById(t, me);
          return OkStatus();
        },
        "SetHandle");
    if (!st.ok()) {
      // Best effort: an unreleased claim only keeps the handle this user's until they set it again.
      (void)ClaimOrReleaseHandle(false, lower, me, now);
      return st;
    }
    // 3. The old handle stopped resolving with the commit; others may claim it after the hold.
    // Best effort: if this fails the old handle stays held for this user, which harms no one else.
    if (released.rfind("u_", 0) != 0 && released != lower) {
      if (auto rst = ClaimOrReleaseHandle(false, released, me, now + int64_t{limits_.account.handle_hold_s} * 1000);
          !rst.ok())
        spdlog::warn("SetHandle: releasing user {}'s old handle failed: {}", me, rst.message());
    }
    FillAccount(*user, res);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::LookupHandle(grpc::ServerContext*, const v1::LookupUserRequest* req,
                                              v1::UserProfile* res) {
  return Guarded("LookupHandle", [&]() -> Status {
    if (!ValidHandle(req->handle()))
      return InvalidArgument("a handle is 6-20 characters: a letter, then letters, digits, '_' or '-'");
    std::optional<UserRow> user;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          user = store::UserByHandleLower(t, LowerAscii(req->handle()));
          return OkStatus();
        },
        "LookupHandle");
    if (!st.ok()) return st;
    if (!user) return NotFound("no user with this handle");
    *res = ToProfile(*user);
    return OkStatus();
  });
}

Status AccountServiceImpl::LocalProfiles(const std::vector<uint64_t>& ids, ProfileMap* out) {
  std::vector<uint64_t> valid;
  for (uint64_t id : ids)
    if (ValidUserId(id)) valid.push_back(id);
  if (valid.empty()) return OkStatus();
  std::vector<UserRow> rows;
  auto st = WithTransaction(
      pool_,
      [&](pqxx::work& t) {
        rows = store::UsersByIds(t, valid);
        return OkStatus();
      },
      "Profiles");
  if (!st.ok()) return st;
  for (const auto& u : rows) (*out)[u.id] = ToProfile(u);
  return OkStatus();
}

Status AccountServiceImpl::FetchProfiles(const std::vector<uint64_t>& ids, ProfileMap* out) {
  std::vector<std::vector<uint64_t>> by_shard(shard_count());
  for (uint64_t id : ids)
    if (ValidUserId(id)) by_shard[ShardOfUser(id, shard_count())].push_back(id);
  for (uint32_t s = 0; s < by_shard.size(); ++s) {
    const auto& part = by_shard[s];
    if (part.empty()) continue;
    if (s == shard_) {
      auto st = LocalProfiles(part, out);
      if (!st.ok()) return st;
      continue;
    }
    for (size_t off = 0; off < part.size(); off += kMaxIdsPerRequest) {
      v1::GetProfilesRequest preq;
      for (size_t i = off; i < std::min(part.size(), off + kMaxIdsPerRequest); ++i) preq.add_user_ids(part[i]);
      auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
      ctx->AddMetadata(kLocalOnlyMetadata, "1");
      v1::ProfilesResult pres;
      auto st = peers_.at(s).GetProfiles(ctx.get(), preq, &pres);
      if (!st.ok()) {
        spdlog::warn("GetProfiles on account shard {} failed: {}", s, st.error_message());
        return Unavailable("user profiles are temporarily unavailable; retry");
      }
      for (auto& p : *pres.mutable_profiles()) (*out)[p.user_id()] = std::move(p);
    }
  }
  return OkStatus();
}

grpc::Status AccountServiceImpl::GetProfiles(grpc::ServerContext* ctx, const v1::GetProfilesRequest* req,
                                             v1::ProfilesResult* res) {
  return Guarded("GetProfiles", [&]() -> Status {
    if (req->user_ids_size() > kMaxIdsPerRequest)
      return InvalidArgument("at most " + std::to_string(kMaxIdsPerRequest) + " user ids per request");
    const std::vector<uint64_t> ids = Dedup(req->user_ids());
    bool local_only = false;
    if (ctx) {
      const auto& md = ctx->client_metadata();
      local_only = md.find(kLocalOnlyMetadata) != md.end();
    }
    ProfileMap found;
    auto st = local_only ? LocalProfiles(ids, &found) : FetchProfiles(ids, &found);
    if (!st.ok()) return st;
    for (uint64_t id : ids) {
      auto it = found.find(id);
      if (it != found.end()) *res->add_profiles() = it->second;
    }
    return OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// Friends

grpc::Status AccountServiceImpl::SendFriendRequest(grpc::ServerContext*, const internal::SendFriendRequestRequest* req,
                                                   v1::SendFriendRequestResult* res) {
  return Guarded("SendFriendRequest", [&]() -> Status {
    const uint64_t from = req->origin().user_id();
    const uint64_t to = req->request().user_id();
    const auto& r = req->request();
    if (!ValidUserId(from)) return InvalidArgument("origin user_id is required");
    if (!ValidUserId(to)) return InvalidArgument("user_id is required");
    if (from == to) return InvalidArgument("you cannot send a friend request to yourself");
    std::string greeting = r.greeting();
    if (auto st = NormalizeGreeting(&greeting, limits_.account.max_greeting_chars); !st.ok()) return st;
    if (!v1::FriendRequestSource_IsValid(r.source())) return InvalidArgument("unknown friend request source");
    if (!IsLocal(to)) return NotFound("no such user");
    if (quotas_) {
      if (const int64_t wait = quotas_->TakeOne({{kFriendRequestsQuota, from, 1}}); wait > 0)
        return QuotaExceeded("too many friend requests today (limits.account.user_friend_requests_per_day)", wait);
    }

    // The sender may live on another shard: fetch the profile before opening the transaction.
    ProfileMap senders;
    auto st = FetchProfiles({from}, &senders);
    if (!st.ok()) return st;
    if (!senders.count(from) || senders[from].deleted()) return NotFound("your account was not found");

    const int64_t now = now_ms_();
    std::vector<FanoutItem> items(1);
    items[0].user_ids = {to};
    auto* fr = items[0].event.mutable_friend_request()->mutable_request();
    *fr->mutable_from() = senders[from];
    fr->set_to_user_id(to);
    fr->set_greeting(greeting);
    fr->set_source(r.source());
    fr->set_created_ms(now);
    bool already = false;
    bool reconnect = false;  // `to` still lists `from`, who had deleted them: no approval needed
    bool notify = false;
    const int64_t renotify_before = now - int64_t{limits_.account.friend_request_renotify_s} * 1000;
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          already = reconnect = false;
          if (auto target = store::UserById(t, to); !target || target->deleted_ms != 0) return NotFound("no such user");
          if (!store::BlockedAmong(t, to, {from}).empty()) return PermissionDenied(kRejectedByReceiver);
          if (const auto edge = store::EdgesAmong(t, to, {from}); !edge.empty()) {
            already = !edge[0].peer_removed;
            reconnect = edge[0].peer_removed;
            return OkStatus();
          }
          notify = store::UpsertRequest(t, RequestRow{to, from, greeting, r.source(), now}, renotify_before);
          if (notify) RecordEvents(t, &items);
          return OkStatus();
        },
        "SendFriendRequest");
    if (!st.ok()) return st;
    if (reconnect) return Reconnect(req->origin(), to, res);
    res->set_already_friends(already);
    if (already || !notify) return OkStatus();
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

Status AccountServiceImpl::Reconnect(const internal::Origin& origin, uint64_t to, v1::SendFriendRequestResult* res) {
  const uint64_t from = origin.user_id();
  ProfileMap profiles;
  if (auto st = FetchProfiles({to}, &profiles); !st.ok()) return st;
  if (!profiles.count(to) || profiles[to].deleted()) return NotFound("no such user");
  const int64_t now = now_ms_();
  // 1. The re-adder's edge on their shard (cap-checked), then 2. ours loses peer_removed: until 2,
  //    messages stay refused both ways, and a repeated request completes it.
  if (auto st = PutEdgeOnOwner(from, to, now); !st.ok()) {
    if (st.code() == v1::FAILED_PRECONDITION) return FriendLimitReached(limits_.account.max_friends);
    return Unavailable("could not complete the friendship right now; retry");
  }
  std::vector<FanoutItem> items(1);
  items[0].user_ids = {from};
  auto* c = items[0].event.mutable_friend_added()->mutable_contact();
  *c->mutable_profile() = profiles[to];
  c->set_conversation_id(DirectConversationId(from, to));
  c->set_since_ms(now);
  auto st = WithTransaction(
      pool_,
      [&](pqxx::work& t) {
        store::PutEdge(t, to, from, now);
        RecordEvents(t, &items);
        return OkStatus();
      },
      "SendFriendRequest.reconnect");
  if (!st.ok()) return st;
  events_.Publish(std::move(items));
  res->set_already_friends(true);
  return OkStatus();
}

Status AccountServiceImpl::PutEdgeLocal(uint64_t user, uint64_t friend_id, int64_t since_ms, int64_t* stored_since_ms) {
  return WithTransaction(
      pool_,
      [&](pqxx::work& t) -> Status {
        if (!store::LockUser(t, user)) return NotFound("no such user");
        if (!store::HasEdge(t, user, friend_id) && store::EdgeCount(t, user) >= int64_t{limits_.account.max_friends})
          return FriendLimitReached(limits_.account.max_friends);
        *stored_since_ms = store::PutEdge(t, user, friend_id, since_ms);
        return OkStatus();
      },
      "PutFriendEdge");
}

void AccountServiceImpl::RecordEvents(pqxx::work& t, std::vector<FanoutItem>* items) const {
  if (!outbox_) return;
  for (FanoutItem& it : *items)
    it.outbox_id = outbox_->Append(t, kOutboxEventTopic, ToDelivery(it).SerializeAsString());
}

Status AccountServiceImpl::PutEdgeOnOwner(uint64_t user, uint64_t friend_id, int64_t since_ms) {
  const uint32_t owner = ShardOfUser(user, shard_count());
  if (owner == shard_) {
    int64_t stored = 0;
    return PutEdgeLocal(user, friend_id, since_ms, &stored);
  }
  internal::FriendEdge edge;
  edge.set_user_id(user);
  edge.set_friend_id(friend_id);
  edge.set_since_ms(since_ms);
  auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
  v1::Empty empty;
  auto st = peers_.at(owner).PutFriendEdge(ctx.get(), edge, &empty);
  if (!st.ok()) spdlog::warn("PutFriendEdge on account shard {} failed: {}", owner, st.error_message());
  return FromPeer(st);  // the caller tells the owner's friend cap (FAILED_PRECONDITION) from a failure
}

grpc::Status AccountServiceImpl::PutFriendEdge(grpc::ServerContext*, const internal::FriendEdge* req, v1::Empty*) {
  return Guarded("PutFriendEdge", [&]() -> Status {
    if (!ValidUserId(req->user_id()) || !ValidUserId(req->friend_id()))
      return InvalidArgument("user_id and friend_id are required");
    if (req->user_id() == req->friend_id()) return InvalidArgument("a user cannot befriend themselves");
    if (!IsLocal(req->user_id())) return InvalidArgument("user_id belongs to another account shard");
    int64_t stored = 0;
    return PutEdgeLocal(req->user_id(), req->friend_id(), req->since_ms() > 0 ? req->since_ms() : now_ms_(), &stored);
  });
}

grpc::Status AccountServiceImpl::AcceptFriendRequest(grpc::ServerContext*,
                                                     const internal::AcceptFriendRequestRequest* req,
                                                     v1::Contact* res) {
  return Guarded("AcceptFriendRequest", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const uint64_t from = req->from_user_id();
    if (!ValidUserId(me)) return InvalidArgument("origin user_id is required");
    if (!ValidUserId(from)) return InvalidArgument("user_id is required");
    if (me == from) return InvalidArgument("you cannot befriend yourself");
    if (!IsLocal(me)) return InvalidArgument("user_id belongs to another account shard");

    ProfileMap profiles;
    auto st = FetchProfiles({me, from}, &profiles);
    if (!st.ok()) return st;
    if (!profiles.count(from) || profiles[from].deleted()) return NotFound("no pending friend request from this user");
    if (!profiles.count(me)) return NotFound("your account was not found");

    // 1. My edge, here, while the request is live (the request row is locked, so concurrent
    //    accepts of the same request serialize).
    const int64_t now = now_ms_();
    const int64_t min_created = LiveRequestsSince(now);
    int64_t since = now;
    bool created_edge = false;
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          if (!store::LockUser(t, me)) return NotFound("your account was not found");
          if (!store::LockLiveRequest(t, me, from, min_created))
            return NotFound("no pending friend request from this user");
          created_edge = !store::HasEdge(t, me, from);
          if (created_edge && store::EdgeCount(t, me) >= int64_t{limits_.account.max_friends})
            return FriendLimitReached(limits_.account.max_friends);
          since = store::PutEdge(t, me, from, now);
          return OkStatus();
        },
        "AcceptFriendRequest");
    if (!st.ok()) return st;

    // 2. The requester's edge on their shard. The request is kept until this succeeded, so a
    //    retry of the accept completes a half-done friendship.
    st = PutEdgeOnOwner(from, me, since);
    if (!st.ok()) {
      if (st.code() == v1::FAILED_PRECONDITION) {
        // The requester is at the friend cap: undo my edge so neither side holds half a friendship.
        if (created_edge) {
          // Best effort: a failed undo leaves my edge, which a repeated accept completes.
          (void)WithTransaction(
              pool_,
              [&](pqxx::work& t) {
                store::DeleteEdge(t, me, from);
                return OkStatus();
              },
              "AcceptFriendRequest.undo");
        }
        return FriendLimitReached(limits_.account.max_friends);
      }
      return Unavailable("could not complete the friendship right now; retry");
    }

    const std::string conversation = DirectConversationId(me, from);
    *res->mutable_profile() = profiles[from];
    res->set_conversation_id(conversation);
    res->set_since_ms(since);

    std::vector<FanoutItem> items(2);
    items[0].user_ids = {me};
    *items[0].event.mutable_friend_added()->mutable_contact() = *res;
    items[0].skip_session_id = req->origin().session_id();  // that session has the reply
    items[1].user_ids = {from};
    auto* theirs = items[1].event.mutable_friend_added()->mutable_contact();
    *theirs->mutable_profile() = profiles[me];
    theirs->set_conversation_id(conversation);
    theirs->set_since_ms(since);

    // 3. The request is done, and the friendship announced: the events are in the outbox with the
    //    delete (until then the request stays, and accepting again completes and announces it).
    auto del = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          store::DeleteRequest(t, me, from);
          RecordEvents(t, &items);
          return OkStatus();
        },
        "AcceptFriendRequest.delete");
    if (!del.ok()) {
      spdlog::warn("AcceptFriendRequest: could not delete the accepted request (accepting again is harmless)");
      for (FanoutItem& it : items) it.outbox_id = 0;  // rolled back: announced at most once
    }
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ListFriendRequests(grpc::ServerContext*, const internal::UserIdRequest* req,
                                                    v1::FriendRequestsResult* res) {
  return Guarded("ListFriendRequests", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    const int64_t min_created = LiveRequestsSince(now_ms_());
    std::vector<RequestRow> rows;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          rows = store::LiveRequestsTo(t, req->user_id(), min_created, kMaxListedFriendRequests);
          return OkStatus();
        },
        "ListFriendRequests");
    if (!st.ok()) return st;
    std::vector<uint64_t> senders;
    for (const auto& r : rows) senders.push_back(r.from_user);
    ProfileMap profiles;
    st = FetchProfiles(senders, &profiles);
    if (!st.ok()) return st;
    for (const auto& r : rows) {
      auto it = profiles.find(r.from_user);
      if (it == profiles.end() || it->second.deleted()) continue;  // the sender's account is gone
      auto* out = res->add_requests();
      *out = ToFriendRequest(r);
      *out->mutable_from() = it->second;
    }
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ListContacts(grpc::ServerContext*, const internal::UserIdRequest* req,
                                              v1::ContactsResult* res) {
  return Guarded("ListContacts", [&]() -> Status {
    const uint64_t me = req->user_id();
    if (!ValidUserId(me)) return InvalidArgument("user_id is required");
    std::vector<EdgeRow> edges;
    std::vector<uint64_t> blocked;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          edges = store::EdgesOf(t, me, static_cast<int>(limits_.account.max_friends));
          blocked = store::BlockedBy(t, me, static_cast<int>(kMaxListedBlocks));
          return OkStatus();
        },
        "ListContacts");
    if (!st.ok()) return st;
    std::vector<uint64_t> ids = blocked;
    for (const auto& e : edges) ids.push_back(e.friend_id);
    ProfileMap profiles;
    st = FetchProfiles(ids, &profiles);
    if (!st.ok()) return st;
    const std::unordered_set<uint64_t> blocked_set(blocked.begin(), blocked.end());
    for (const auto& e : edges) {
      auto it = profiles.find(e.friend_id);
      if (it == profiles.end() || it->second.deleted()) continue;  // the friend's account is gone
      *res->add_contacts() = ContactOf(me, e, it->second, blocked_set.count(e.friend_id) > 0);
    }
    for (uint64_t id : blocked) {
      auto it = profiles.find(id);
      if (it != profiles.end()) *res->add_blocked() = it->second;
    }
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::CheckFriends(grpc::ServerContext*, const internal::CheckFriendsRequest* req,
                                              internal::CheckFriendsResult* res) {
  return Guarded("CheckFriends", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    if (req->other_ids_size() > kMaxIdsPerRequest)
      return InvalidArgument("at most " + std::to_string(kMaxIdsPerRequest) + " user ids per request");
    std::vector<uint64_t> ids;
    for (uint64_t id : Dedup(req->other_ids()))
      if (ValidUserId(id)) ids.push_back(id);
    std::vector<uint64_t> friends, blocked;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          friends = store::FriendsAmong(t, req->user_id(), ids);
          blocked.clear();
          if (req->inbound()) blocked = store::BlockedAmong(t, req->user_id(), ids);
          return OkStatus();
        },
        "CheckFriends");
    if (!st.ok()) return st;
    // Answer in request order; a blocked user is rejected, friend or not.
    std::unordered_set<uint64_t> set(friends.begin(), friends.end());
    std::unordered_set<uint64_t> rejected(blocked.begin(), blocked.end());
    for (uint64_t id : ids) {
      if (rejected.count(id))
        res->add_rejected_ids(id);
      else if (set.count(id))
        res->add_friend_ids(id);
    }
    return OkStatus();
  });
}

}  // namespace chat::account
