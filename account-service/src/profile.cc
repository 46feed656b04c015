// Profiles, privacy settings and finding people by phone number or personal QR code (protocol.md
// 7.1, 8.7, 8.32-8.35).
// A profile change is announced to the user's contacts (the users on their edges) and their other
// sessions as a profile_changed event, through the outbox with the change. A phone lookup runs on the
// number's shard (phones) and asks the account's shard whether it allows being found; every way of
// not finding someone gives the same reply (kNoOneFound), so the reply never tells a number nobody
// has from one whose owner keeps it private.
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "account/account_service.h"
#include "account/secure_random.h"
#include "account/validation.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/text_policy.h"

namespace chat::account {

namespace {

constexpr char kNoOneFound[] = "no user found for this phone number";
// Every QR token that admits nobody (malformed, rotated away, its account deleted) gets this.
constexpr char kNoSuchQrCode[] = "this QR code is not valid (any more)";

}  // namespace

Status AccountServiceImpl::ChangeProfile(uint64_t user, uint64_t skip_session, std::string display_name,
                                         std::optional<std::string> avatar_media_id,
                                         std::optional<std::string> whats_up, v1::Account* res) {
  if (!ValidUserId(user)) return InvalidArgument("user_id is required");
  if (!IsLocal(user)) return InvalidArgument("user_id belongs to another account shard");
  if (auto st = NormalizeDisplayName(&display_name, limits_.account.max_display_name_chars); !st.ok()) return st;
  if (avatar_media_id && !avatar_media_id->empty() && !ValidMediaId(*avatar_media_id))
    return InvalidArgument("avatar_media_id must be a media id: 16-64 characters of A-Z, a-z, 0-9, '_' and '-'");
  if (whats_up) {
    if (auto st = NormalizeText("what's up", {TextKind::kName, 0, limits_.account.max_whats_up_chars}, &*whats_up);
        !st.ok())
      return st;
  }
  if (quotas_) {
    if (const int64_t wait = quotas_->TakeOne({{kProfileChangesQuota, user, 1}}); wait > 0)
      return QuotaExceeded("too many profile changes today (limits.account.user_profile_changes_per_day)", wait);
  }
  std::optional<UserRow> updated;
  std::vector<FanoutItem> items;
  auto st = WithTransaction(
      pool_,
      [&](pqxx::work& t) -> Status {
        updated.reset();
        items.clear();
        const bool ok = avatar_media_id && whats_up
                            ? store::SetProfile(t, user, display_name, *avatar_media_id, *whats_up)
                            : store::SetDisplayName(t, user, display_name);
        if (!ok) return NotFound("no such user");
        updated = store::UserById(t, user);
        FanoutItem& it = items.emplace_back();
        it.user_ids.push_back(user);  // my other sessions
        for (const EdgeRow& e : store::EdgesOf(t, user, static_cast<int>(limits_.account.max_friends)))
          it.user_ids.push_back(e.friend_id);
        it.skip_session_id = skip_session;
        *it.event.mutable_profile_changed()->mutable_profile() = ToProfile(*updated);
        RecordEvents(t, &items);
        return OkStatus();
      },
      "SetProfile");
  if (!st.ok()) return st;
  FillAccount(*updated, res);
  events_.Publish(std::move(items));
  return OkStatus();
}

grpc::Status AccountServiceImpl::SetProfile(grpc::ServerContext*, const internal::SetProfileRequest* req,
                                            v1::Account* res) {
  return Guarded("SetProfile", [&]() -> Status {
    const auto& r = req->request();
    return ChangeProfile(req->origin().user_id(), req->origin().session_id(), r.display_name(), r.avatar_media_id(),
                         r.whats_up(), res);
  });
}

grpc::Status AccountServiceImpl::SetPrivacy(grpc::ServerContext*, const internal::SetPrivacyRequest* req,
                                            v1::Account* res) {
  return Guarded("SetPrivacy", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    if (!IsLocal(req->user_id())) return InvalidArgument("user_id belongs to another account shard");
    std::optional<UserRow> user;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          user.reset();
          if (store::SetPhoneLookup(t, req->user_id(), req->request().allow_phone_lookup()))
            user = store::UserById(t, req->user_id());
          return OkStatus();
        },
        "SetPrivacy");
    if (!st.ok()) return st;
    if (!user) return NotFound("no such user");
    FillAccount(*user, res);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::LookupPhone(grpc::ServerContext*, const internal::LookupPhoneRequest* req,
                                             v1::UserProfile* res) {
  return Guarded("LookupPhone", [&]() -> Status {
    if (!ValidUserId(req->searcher_id())) return InvalidArgument("searcher_id is required");
    if (!ValidPhone(req->phone()))
      return InvalidArgument("phone must be E.164: '+', a digit 1-9, then 6-14 more digits");
    if (auto st = CheckPhoneShard(req->phone()); !st.ok()) return st;
    // Charged before anything is looked up, found or not: the quota is what stops walking numbers.
    if (quotas_) {
      if (const int64_t wait = quotas_->TakeOne({{kPhoneLookupsQuota, req->searcher_id(), 1}}); wait > 0)
        return QuotaExceeded("too many phone number searches today (limits.account.user_phone_lookups_per_day)", wait);
    }
    std::optional<PhoneRow> owner;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          owner = store::PhoneOwner(t, req->phone());
          return OkStatus();
        },
        "LookupPhone");
    if (!st.ok()) return st;
    if (!owner || owner->free_from_ms != 0) return NotFound(kNoOneFound);
    internal::UserIdRequest who;
    who.set_user_id(owner->user_id);
    const uint32_t shard = ShardOfUser(owner->user_id, shard_count());
    if (shard == shard_) {
      auto local = PhoneLookupProfile(nullptr, &who, res);
      return local.ok() ? OkStatus() : FromPeer(local);
    }
    auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
    auto peer = peers_.at(shard).PhoneLookupProfile(ctx.get(), who, res);
    if (peer.ok()) return OkStatus();
    if (peer.error_code() == grpc::StatusCode::NOT_FOUND) return NotFound(kNoOneFound);
    spdlog::warn("PhoneLookupProfile on account shard {} failed: {}", shard, peer.error_message());
    return Unavailable("phone number search is temporarily unavailable; retry");
  });
}

grpc::Status AccountServiceImpl::PhoneLookupProfile(grpc::ServerContext*, const internal::UserIdRequest* req,
                                                    v1::UserProfile* res) {
  return Guarded("PhoneLookupProfile", [&]() -> Status {
    if (!ValidUserId(req->user_id()) || !IsLocal(req->user_id())) return NotFound(kNoOneFound);
    std::optional<UserRow> user;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          user = store::UserById(t, req->user_id());
          return OkStatus();
        },
        "PhoneLookupProfile");
    if (!st.ok()) return st;
    if (!user || user->deleted_ms != 0 || !user->allow_phone_lookup) return NotFound(kNoOneFound);
    *res = ToProfile(*user);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::MyQrCode(grpc::ServerContext*, const internal::QrCodeRequest* req,
                                          v1::QrCodeResult* res) {
  return Guarded("MyQrCode", [&]() -> Status {
    const uint64_t me = req->user_id();
    if (!ValidUserId(me)) return InvalidArgument("user_id is required");
    if (!IsLocal(me)) return InvalidArgument("user_id belongs to another account shard");
    std::string secret;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          const auto current = store::QrSecret(t, me);
          if (!current) return NotFound("no such user");
          secret = *current;
          if (!secret.empty() && !req->rotate()) return OkStatus();
          const std::string fresh = RandomHex(kQrSecretHexChars);
          // A concurrent first use or rotation may have won: then its secret is the one.
          if (!store::SetQrSecret(t, me, fresh, secret)) return Unavailable("your QR code changed meanwhile; retry");
          secret = fresh;
          return OkStatus();
        },
        "MyQrCode");
    if (!st.ok()) return st;
    res->set_token(QrToken(me, secret));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ResolveQrCode(grpc::ServerContext*, const v1::ResolveQrCodeRequest* req,
                                               v1::UserProfile* res) {
  return Guarded("ResolveQrCode", [&]() -> Status {
    std::string secret;
    const auto user = ParseQrToken(req->token(), &secret);
    if (!user || !IsLocal(*user)) return NotFound(kNoSuchQrCode);
    std::optional<UserRow> row;
    std::optional<std::string> stored;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          stored = store::QrSecret(t, *user);
          row = stored ? store::UserById(t, *user) : std::nullopt;
          return OkStatus();
        },
        "ResolveQrCode");
    if (!st.ok()) return st;
    // Constant time in the secret: a guess learns nothing from how long the refusal took.
    if (!stored || !row || stored->size() != secret.size() || stored->empty() ||
        CRYPTO_memcmp(stored->data(), secret.data(), secret.size()) != 0)
      return NotFound(kNoSuchQrCode);
    *res = ToProfile(*row);
    return OkStatus();
  });
}

}  // namespace chat::account
