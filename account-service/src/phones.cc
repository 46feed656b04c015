// Phone numbers on their own shard (migration 0009): the phone steps of change_phone and
// delete_account, and log-ins whose number lives on another shard than its account. A number's row
// and its codes are on ShardOfPhone(number); its account may be on any shard once it changed number.
//
// Multi-shard changes are sequences of single-shard transactions, ordered so that a failure half-way
// never lets a number sign in to an account that does not hold it:
//   change_phone:   VERIFY old code -> CLAIM new number (with its code) -> users.phone -> RELEASE old
//   delete_account: VERIFY_AND_RELEASE the number (free after the cooling-off) -> delete the account
// A change cut short before users.phone keeps the old number working (retry with fresh codes); one
// cut short before RELEASE leaves the old number claimed by the account (logged; a later log-in with
// the new number heals users.phone, and the old one cannot sign up a new account).
#include <spdlog/spdlog.h>

#include "account/account_service.h"
#include "account/validation.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::account {

using Op = internal::PhoneOpRequest;

Status AccountServiceImpl::PhoneStep(Op::Op op, const std::string& phone, const std::string& code, uint64_t user,
                                     int64_t free_from_ms) {
  internal::PhoneOpRequest req;
  req.set_op(op);
  req.set_phone(phone);
  req.set_code(code);
  req.set_user_id(user);
  req.set_free_from_ms(free_from_ms);
  const uint32_t owner = ShardOfPhone(phone, shard_count());
  if (owner == shard_) return PhoneStepLocal(req);
  auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
  v1::Empty empty;
  auto st = peers_.at(owner).PhoneOp(ctx.get(), req, &empty);
  switch (st.error_code()) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::INVALID_ARGUMENT:
      return FromPeer(st);  // the verdict on the code or the number, for the user
    default:
      return PeerFailure("PhoneOp", st);
  }
}

Status AccountServiceImpl::PhoneStepLocal(const internal::PhoneOpRequest& req) {
  const std::string& phone = req.phone();
  if (!ValidPhone(phone)) return InvalidArgument("phone must be in international format, e.g. +8613800138000");
  if (!ValidUserId(req.user_id())) return InvalidArgument("user_id is required");
  const bool needs_code = req.op() != Op::RELEASE;
  if (needs_code && !ValidCodeSyntax(req.code())) return InvalidArgument("code must be 6 digits");
  if (req.op() == Op::OP_UNSPECIFIED || !Op::Op_IsValid(req.op())) return InvalidArgument("unknown phone step");
  if (auto st = CheckPhoneShard(phone); !st.ok()) return st;
  const int64_t now = now_ms_();
  Status verdict;
  auto st = WithTransaction(
      pool_,
      [&](pqxx::work& t) -> Status {
        verdict = OkStatus();
        if (req.op() == Op::RELEASE) {
          store::ReleasePhone(t, phone, req.user_id(), req.free_from_ms());
          return OkStatus();
        }
        verdict = CheckCode(t, phone, req.code(), now);
        if (!verdict.ok()) return OkStatus();  // commit the try counter
        auto owner = store::LockPhone(t, phone);
        if (req.op() == Op::CLAIM) {
          if (!store::ClaimPhone(t, phone, req.user_id(), now)) {
            if (owner && owner->free_from_ms > now && owner->user_id != req.user_id())
              return DeletedNumberWait(owner->free_from_ms - now);
            return AlreadyExists("this phone number belongs to another account");
          }
          return OkStatus();
        }
        // VERIFY, VERIFY_AND_RELEASE: the number must be the account's (released by it counts: a
        // deletion retried after its release went through).
        if (!owner || owner->user_id != req.user_id())
          return FailedPrecondition("this phone number is not the account's; log in again");
        if (req.op() == Op::VERIFY_AND_RELEASE) store::ReleasePhone(t, phone, req.user_id(), req.free_from_ms());
        return OkStatus();
      },
      "PhoneOp");
  if (!st.ok()) return st;
  return verdict;
}

grpc::Status AccountServiceImpl::PhoneOp(grpc::ServerContext*, const internal::PhoneOpRequest* req, v1::Empty*) {
  return Guarded("PhoneOp", [&]() -> Status { return PhoneStepLocal(*req); });
}

Status AccountServiceImpl::LogInLocal(pqxx::work& t, uint64_t user_id, const std::string& phone,
                                      const DeviceInfo& device, int64_t now_ms, std::optional<UserRow>* user,
                                      SessionRow* session, std::vector<FanoutItem>* events) {
  *user = store::LockUser(t, user_id);
  if (!*user || (*user)->deleted_ms != 0) {
    user->reset();
    return NotFound("no account for this phone number; sign up first");
  }
  if ((*user)->phone != phone && store::SetPhone(t, user_id, phone))
    (*user)->phone = phone;  // heals a cut-short change
  if (auto s = OpenSessionIn(t, user_id, device, now_ms, session, events); !s.ok()) return s;
  RecordEvents(t, events);
  return OkStatus();
}

grpc::Status AccountServiceImpl::OpenSession(grpc::ServerContext*, const internal::OpenSessionRequest* req,
                                             v1::SessionResult* res) {
  return Guarded("OpenSession", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    if (!IsLocal(req->user_id())) return Internal("request reached the wrong account shard");
    if (!ValidPhone(req->phone())) return InvalidArgument("phone must be in international format");
    DeviceInfo device{req->device().device_id(), req->device().device_name(), req->device().platform()};
    if (auto st = NormalizeDevice(&device); !st.ok()) return st;
    const int64_t now = now_ms_();
    std::optional<UserRow> user;
    SessionRow session;
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          return LogInLocal(t, req->user_id(), req->phone(), device, now, &user, &session, &items);
        },
        "OpenSession");
    if (!st.ok()) return st;
    FillSession(*user, session, res);
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ChangePhone(grpc::ServerContext* ctx, const internal::ChangePhoneRequest* req,
                                             v1::Account* res) {
  return Guarded("ChangePhone", [&]() -> Status {
    const auto& r = req->request();
    if (auto st = CheckSessionKey(req->session()); !st.ok()) return st;
    if (!ValidPhone(r.new_phone()))
      return InvalidArgument("new_phone must be in international format, e.g. +8613800138000");
    if (!ValidCodeSyntax(r.code()) || !ValidCodeSyntax(r.new_code()))
      return InvalidArgument("code and new_code must be 6 digits");
    if (auto st = ChargeCodeCheck(ctx, r.new_phone()); !st.ok()) return st;
    const uint64_t me = req->session().user_id();
    const int64_t now = now_ms_();
    UserRow user;
    auto st = WithTransaction(
        pool_, [&](pqxx::work& t) { return RequireLiveSession(t, req->session(), now, &user); }, "ChangePhone.session");
    if (!st.ok()) return st;
    const std::string old_phone = user.phone;
    if (old_phone == r.new_phone()) return InvalidArgument("new_phone is already this account's number");
    if (auto s = PhoneStep(Op::VERIFY, old_phone, r.code(), me, 0); !s.ok()) return s;
    if (auto s = PhoneStep(Op::CLAIM, r.new_phone(), r.new_code(), me, 0); !s.ok()) return s;
    std::optional<UserRow> updated;
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          if (store::SetPhone(t, me, r.new_phone())) updated = store::UserById(t, me);
          return OkStatus();
        },
        "ChangePhone");
    if (!st.ok()) return st;
    if (!updated) return Unauthenticated("session ended; log in again");
    if (auto s = PhoneStep(Op::RELEASE, old_phone, "", me, now); !s.ok())
      spdlog::warn("ChangePhone: user {}'s old number {} could not be released: {}", me, MaskPhone(old_phone),
                   s.message());
    spdlog::info("user {} changed phone number", me);
    FillAccount(*updated, res);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::DeleteAccount(grpc::ServerContext* ctx, const internal::DeleteAccountRequest* req,
                                               v1::Empty*) {
  return Guarded("DeleteAccount", [&]() -> Status {
    if (auto st = CheckSessionKey(req->session()); !st.ok()) return st;
    if (!ValidCodeSyntax(req->code())) return InvalidArgument("code must be 6 digits");
    const uint64_t me = req->session().user_id();
    const int64_t now = now_ms_();
    UserRow user;
    auto st = WithTransaction(
        pool_, [&](pqxx::work& t) { return RequireLiveSession(t, req->session(), now, &user); },
        "DeleteAccount.session");
    if (!st.ok()) return st;
    if (auto s = ChargeCodeCheck(ctx, user.phone); !s.ok()) return s;
    const int64_t free_from = now + int64_t{limits_.account.deleted_phone_reuse_after_s} * 1000;
    if (auto s = PhoneStep(Op::VERIFY_AND_RELEASE, user.phone, req->code(), me, free_from); !s.ok()) return s;
    std::vector<FanoutItem> items;
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          const std::vector<uint64_t> ended = store::DeleteUser(t, me, now);
          items.push_back(RevocationItem(me, ended, true, 0, &req->origin(), kCloseSessionEnded, "account deleted"));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "DeleteAccount");
    if (!st.ok()) return st;
    events_.Publish(std::move(items));
    if (user.handle_changed_ms != 0) {
      // A handle the user set is held from others for handle_hold_s, like a changed one.
      const int64_t hold_until = now + int64_t{limits_.account.handle_hold_s} * 1000;
      if (auto s = ClaimOrReleaseHandle(false, LowerAscii(user.handle), me, hold_until); !s.ok())
        spdlog::warn("DeleteAccount: the handle of user {} stays claimed: {}", me, s.message());
    }
    spdlog::info("deleted user {} on shard {}", me, shard_);
    return OkStatus();
  });
}

}  // namespace chat::account
