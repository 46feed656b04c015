#pragma once
// account-service: users, phone verification, tokens, handles, profiles and contacts of ONE account
// shard (implements chat.internal.AccountService). The only process that ever sees phone numbers:
// they appear in Account replies to their owner and in the code sender, nowhere else.
//
// Threads: every method may be called concurrently from gRPC's thread pool. The service's only
// mutable state of its own is the replica's code budget (CodeSendBudget, internally locked) and an
// atomic request_code counter (for purging);
// PostgreSQL serializes conflicting changes (row locks, unique keys).
// Handlers never throw: every failure is a Status whose message is user-facing.
#include <atomic>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "account/account_store.h"
#include "account/code_budget.h"
#include "account/code_sender.h"
#include "chat/internal/services.grpc.pb.h"
#include "common/config.h"
#include "common/error.h"
#include "common/events.h"
#include "common/grpc_util.h"
#include "common/outbox.h"
#include "common/pg.h"
#include "common/token.h"
#include "common/user_quota.h"

namespace chat::account {

// Clients asking a peer shard set this metadata key so the peer answers from its own database only
// (never forwards again, even if the two disagree about the shard map).
inline constexpr char kLocalOnlyMetadata[] = "x-chat-local-only";

// RequestCode, SignUp and LogIn charge the per-address code quotas against the call's
// kClientAddressMetadata (common/grpc_util.h). A call without it comes from inside the cluster
// (tests, tools) and is limited per phone only; mutual TLS keeps everyone else from calling.
inline constexpr size_t kMaxClientAddressChars = 64;  // longer: treated as absent
// At most this many ids per GetProfiles / CheckFriends request.
inline constexpr int kMaxIdsPerRequest = 1000;
// Shown for a deleted account wherever a profile is (its id stays in history); UserProfile.deleted is set.
inline constexpr char kDeletedUserName[] = "Deleted user";
// At most this many pending friend requests are listed.
inline constexpr int kMaxListedFriendRequests = 1000;
// At most this many blocked users in a list_contacts reply (the oldest blocks).
inline constexpr int kMaxListedBlocks = 1000;
// Every kPurgeEveryRequestCodes-th request_code of a replica (refused ones included) first deletes up
// to kPurgeBatchRows dead phone_codes rows (store::PurgeExpiredCodes with now - 24 h): more than
// the at most one row each request can add, so the table stays bounded by the phones of the last day.
inline constexpr uint64_t kPurgeEveryRequestCodes = 64;
inline constexpr int kPurgeBatchRows = 1000;

// What others see of a user (a deleted account: kDeletedUserName, no handle), and what its owner sees.
v1::UserProfile ToProfile(const UserRow& u);
void FillAccount(const UserRow& u, v1::Account* out);
// A stored request as clients see it; `from` carries only the sender's id.
v1::FriendRequest ToFriendRequest(const RequestRow& r);
bool ValidUserId(uint64_t id);
bool ValidCodeSyntax(const std::string& code);

// The seams the service uses; all borrowed, and they must outlive the service.
struct AccountServiceDeps {
  const ClusterConfig* config = nullptr;  // secret, limits, config.account (the peer shards)
  uint32_t shard = 0;                     // this shard's index in config.account
  PgPool* pool = nullptr;                 // created with PrepareAccountStatements
  CodeSender* sender = nullptr;
  EventPublisher* events = nullptr;
  Outbox* outbox = nullptr;         // friend events survive a crash after their commit; null = at most once (tests)
  std::function<int64_t()> now_ms;  // the clock (unix ms); null = the system clock (tests inject one)
  // Per-user quotas made from AccountQuotaSpecs (friend requests per day); null = none (tests).
  UserQuotas* quotas = nullptr;
};

// The quotas of this service (indexes into AccountQuotaSpecs). Per user: friend requests, phone
// lookups and profile changes per day.
// Per client address, and per client address and phone (keyed HMACs, see QuotaSubject): codes
// requested, codes checked (sign_up and log_in).
enum AccountQuota : size_t {
  kFriendRequestsQuota = 0,
  kPhoneLookupsQuota,
  kProfileChangesQuota,
  kAddressCodesQuota,
  kAddressPhoneCodesQuota,
  kAddressChecksQuota,
  kAddressPhoneChecksQuota,
};
std::vector<QuotaSpec> AccountQuotaSpecs(const Limits& limits);

class AccountServiceImpl final : public internal::AccountService::Service {
 public:
  explicit AccountServiceImpl(AccountServiceDeps deps);

  grpc::Status RequestCode(grpc::ServerContext*, const v1::RequestCodeRequest*, v1::RequestCodeResult*) override;
  grpc::Status SignUp(grpc::ServerContext*, const v1::SignUpRequest*, v1::SessionResult*) override;
  grpc::Status LogIn(grpc::ServerContext*, const v1::LogInRequest*, v1::SessionResult*) override;
  grpc::Status RefreshToken(grpc::ServerContext*, const internal::RefreshTokenRequest*, v1::SessionResult*) override;
  grpc::Status GetAccount(grpc::ServerContext*, const internal::UserIdRequest*, v1::Account*) override;
  grpc::Status CheckAccount(grpc::ServerContext*, const internal::SessionKey*, internal::AccountCheckResult*) override;
  grpc::Status ListDevices(grpc::ServerContext*, const internal::SessionKey*, v1::DevicesResult*) override;
  grpc::Status LogOut(grpc::ServerContext*, const internal::LogOutRequest*, v1::Empty*) override;
  grpc::Status DeleteAccount(grpc::ServerContext*, const internal::DeleteAccountRequest*, v1::Empty*) override;
  grpc::Status ChangePhone(grpc::ServerContext*, const internal::ChangePhoneRequest*, v1::Account*) override;
  grpc::Status PhoneOp(grpc::ServerContext*, const internal::PhoneOpRequest*, v1::Empty*) override;
  grpc::Status OpenSession(grpc::ServerContext*, const internal::OpenSessionRequest*, v1::SessionResult*) override;
  grpc::Status SetDisplayName(grpc::ServerContext*, const internal::SetDisplayNameRequest*, v1::Account*) override;
  grpc::Status SetHandle(grpc::ServerContext*, const internal::SetHandleRequest*, v1::Account*) override;
  grpc::Status ClaimHandle(grpc::ServerContext*, const internal::HandleClaim*, v1::Empty*) override;
  grpc::Status ReleaseHandle(grpc::ServerContext*, const internal::HandleClaim*, v1::Empty*) override;
  grpc::Status LookupHandle(grpc::ServerContext*, const v1::LookupUserRequest*, v1::UserProfile*) override;
  grpc::Status GetProfiles(grpc::ServerContext*, const v1::GetProfilesRequest*, v1::ProfilesResult*) override;
  grpc::Status SendFriendRequest(grpc::ServerContext*, const internal::SendFriendRequestRequest*,
                                 v1::SendFriendRequestResult*) override;
  grpc::Status AcceptFriendRequest(grpc::ServerContext*, const internal::AcceptFriendRequestRequest*,
                                   v1::Contact*) override;
  grpc::Status ListFriendRequests(grpc::ServerContext*, const internal::UserIdRequest*,
                                  v1::FriendRequestsResult*) override;
  grpc::Status ListContacts(grpc::ServerContext*, const internal::UserIdRequest*, v1::ContactsResult*) override;
  grpc::Status CheckFriends(grpc::ServerContext*, const internal::CheckFriendsRequest*,
                            internal::CheckFriendsResult*) override;
  grpc::Status PutFriendEdge(grpc::ServerContext*, const internal::FriendEdge*, v1::Empty*) override;
  // ---- contacts (contacts.cc): remarks, blocks, one-way delete, profiles as a viewer sees them
  grpc::Status PeerRemoved(grpc::ServerContext*, const internal::FriendEdge*, v1::Empty*) override;
  grpc::Status SetLabel(grpc::ServerContext*, const internal::SetLabelRequest*, v1::Label*) override;
  grpc::Status DeleteLabel(grpc::ServerContext*, const internal::DeleteLabelRequest*, v1::Empty*) override;
  grpc::Status ListLabels(grpc::ServerContext*, const internal::UserIdRequest*, v1::LabelsResult*) override;
  grpc::Status ListSentFriendRequests(grpc::ServerContext*, const internal::UserIdRequest*,
                                      v1::FriendRequestsResult*) override;
  grpc::Status IgnoreFriendRequest(grpc::ServerContext*, const internal::AcceptFriendRequestRequest*,
                                   v1::Empty*) override;
  grpc::Status SetRemark(grpc::ServerContext*, const internal::ContactRequest*, v1::Contact*) override;
  grpc::Status SetBlocked(grpc::ServerContext*, const internal::ContactRequest*, v1::Empty*) override;
  grpc::Status DeleteContact(grpc::ServerContext*, const internal::ContactRequest*, v1::Empty*) override;
  grpc::Status GetProfilesFor(grpc::ServerContext*, const internal::ProfilesForRequest*, v1::ProfilesResult*) override;
  // ---- profile, privacy and finding people by phone (profile.cc)
  grpc::Status SetProfile(grpc::ServerContext*, const internal::SetProfileRequest*, v1::Account*) override;
  grpc::Status SetPrivacy(grpc::ServerContext*, const internal::SetPrivacyRequest*, v1::Account*) override;
  grpc::Status LookupPhone(grpc::ServerContext*, const internal::LookupPhoneRequest*, v1::UserProfile*) override;
  grpc::Status PhoneLookupProfile(grpc::ServerContext*, const internal::UserIdRequest*, v1::UserProfile*) override;
  grpc::Status MyQrCode(grpc::ServerContext*, const internal::QrCodeRequest*, v1::QrCodeResult*) override;
  grpc::Status ResolveQrCode(grpc::ServerContext*, const v1::ResolveQrCodeRequest*, v1::UserProfile*) override;

 private:
  using ProfileMap = std::unordered_map<uint64_t, v1::UserProfile>;

  uint32_t shard_count() const;
  // Requests created at or after this are live (friend_request_ttl_s before now_ms).
  int64_t LiveRequestsSince(int64_t now_ms) const {
    return now_ms - int64_t{limits_.account.friend_request_ttl_s} * 1000;
  }
  bool IsLocal(uint64_t user_id) const;
  // INTERNAL unless ShardOfPhone(phone) is this shard.
  Status CheckPhoneShard(const std::string& phone) const;
  // A phone code's stored hash: HMAC of phone and code under a token key.
  static std::string HashCode(const TokenKey& key, const std::string& phone, const std::string& code);
  // Whether `code` hashes to `stored_hash` under any token key (constant time per key).
  bool CodeMatches(const std::string& phone, const std::string& code, const std::string& stored_hash) const;
  // The quota subject of an address or an (address, phone) pair: an HMAC under the signing key with
  // the top bit set (never a user id).
  uint64_t QuotaSubject(const std::string& what) const;
  // The kClientAddressMetadata of the call ("" when absent or malformed, or ctx is null).
  static std::string ClientAddress(const grpc::ServerContext* ctx);
  // One token of per_address for `address` and of per_phone for (address, phone), all or nothing;
  // RESOURCE_EXHAUSTED with `refusal` and the wait when either is empty. OK without an address.
  Status ChargeAddress(const std::string& address, const std::string& phone, AccountQuota per_address,
                       AccountQuota per_phone, const std::string& refusal);
  // ChargeAddress for a sign_up or log_in (every attempt counts, right or wrong).
  Status ChargeCodeCheck(const grpc::ServerContext* ctx, const std::string& phone);
  // Verifies and consumes the phone's code inside t. Returns the verdict for the caller; a wrong
  // code increments the code's try counter, which the caller must commit even though the verdict is
  // an error. FAILED_PRECONDITION once the code had code_max_tries wrong guesses.
  Status CheckCode(pqxx::work& t, const std::string& phone, const std::string& code, int64_t now_ms);
  // Milliseconds until `user` may set a handle again (0: now).
  int64_t HandleChangeWaitMs(const UserRow& user, int64_t now_ms) const;
  Status HandleChangeTooSoon(int64_t wait_ms) const;
  // Claims (or releases, others may claim it from hold_until_ms) a handle on its claim shard,
  // ShardOfHandle: here or over gRPC. ALREADY_EXISTS when another user holds it.
  Status ClaimOrReleaseHandle(bool claim, const std::string& handle_lower, uint64_t user, int64_t hold_until_ms);
  Status HandleClaimLocal(bool claim, const internal::HandleClaim& c);
  // ---- sessions (sessions.cc)
  struct DeviceInfo {
    std::string device_id, device_name, platform;
  };
  // Checks the device id and normalizes name and platform (text policy, max_device_name_chars).
  Status NormalizeDevice(DeviceInfo* d) const;
  // Inside t: a new session of `user` on `device` (replacing that device's session, ending the idlest
  // beyond max_devices_per_user). Appends its events (revocations, a new-device notice) to *events;
  // the caller records and publishes them with its commit.
  Status OpenSessionIn(pqxx::work& t, uint64_t user, const DeviceInfo& device, int64_t now_ms, SessionRow* out,
                       std::vector<FanoutItem>* events);
  // A session's token and the account, for the session's owner.
  void FillSession(const UserRow& user, const SessionRow& s, v1::SessionResult* out) const;
  // The revocation of `session_ids` (or all) of `user`, below_gen 0 = every generation, sparing the
  // connection `keep` (may be null). Published on kRevocationChannel.
  FanoutItem RevocationItem(uint64_t user, const std::vector<uint64_t>& session_ids, bool all, uint32_t below_gen,
                            const internal::Origin* keep, uint32_t close_code, const std::string& reason) const;
  // INVALID_ARGUMENT / UNAUTHENTICATED unless the key names a session of a local user.
  Status CheckSessionKey(const internal::SessionKey& k) const;
  // The local user's live session `k` (right generation, account not deleted), inside t.
  Status RequireLiveSession(pqxx::work& t, const internal::SessionKey& k, int64_t now_ms, UserRow* user);

  // ---- phone numbers (phones.cc): each number on its shard ShardOfPhone
  // One step on the number's shard: here, or over gRPC.
  Status PhoneStep(internal::PhoneOpRequest::Op op, const std::string& phone, const std::string& code, uint64_t user,
                   int64_t free_from_ms);
  Status PhoneStepLocal(const internal::PhoneOpRequest& req);
  // Inside t: the session of a log-in with `phone` (already verified) to the local account user_id,
  // its events recorded. NOT_FOUND when the account is gone or deleted (*user reset).
  Status LogInLocal(pqxx::work& t, uint64_t user_id, const std::string& phone, const DeviceInfo& device, int64_t now_ms,
                    std::optional<UserRow>* user, SessionRow* session, std::vector<FanoutItem>* events);
  // FAILED_PRECONDITION: the number belonged to an account deleted less than deleted_phone_reuse_after_s ago.
  Status DeletedNumberWait(int64_t wait_ms) const;
  // Profiles of `ids` from whichever shard owns each (this one from its database, others over
  // gRPC). Unknown ids are omitted. UNAVAILABLE if a needed shard cannot be asked.
  Status FetchProfiles(const std::vector<uint64_t>& ids, ProfileMap* out);
  Status LocalProfiles(const std::vector<uint64_t>& ids, ProfileMap* out);
  // Stores user -> friend on this shard (cap-checked, idempotent). Sets *since_ms to the stored time.
  Status PutEdgeLocal(uint64_t user, uint64_t friend_id, int64_t since_ms, int64_t* stored_since_ms);
  // PutEdgeLocal on the shard that owns `user` (directly if that is this shard).
  Status PutEdgeOnOwner(uint64_t user, uint64_t friend_id, int64_t since_ms);
  // ---- profile (profile.cc)
  // Validates and stores user's whole public profile (charged to user_profile_changes_per_day) and
  // announces it to the user's contacts and other sessions (all but skip_session).
  // avatar and whats_up nullopt: kept as they are (set_display_name).
  Status ChangeProfile(uint64_t user, uint64_t skip_session, std::string display_name,
                       std::optional<std::string> avatar_media_id, std::optional<std::string> whats_up,
                       v1::Account* res);
  // ---- contacts (contacts.cc)
  // INVALID_ARGUMENT unless origin is a local user and other another valid id.
  Status CheckContactPair(uint64_t me, uint64_t other) const;
  // The Contact of me's edge to `profile`'s user, as me sees it (remark, blocked).
  v1::Contact ContactOf(uint64_t me, const EdgeRow& edge, v1::UserProfile profile, bool blocked) const;
  // `origin` re-adds `to`, who still lists them (origin had deleted `to`): both edges restored, no
  // approval needed (WeChat); origin's devices get friend_added, the reply says already_friends.
  Status Reconnect(const internal::Origin& origin, uint64_t to, v1::SendFriendRequestResult* res);
  // After a committed block, unblock or delete of the pair: every replica of the chat shard of their
  // direct conversation forgets its cached "may message" answers (chat-service ForgetContacts), so
  // the change holds for every send after the reply. A replica that cannot be told keeps them for at
  // most limits.chat.friend_cache_ttl_ms (logged).
  void ForgetOnChatReplicas(uint64_t me, uint64_t other);
  // A contact_updated event to me's other devices (all but the origin session).
  static FanoutItem ContactUpdatedItem(const internal::Origin& origin, v1::Contact contact, bool removed);
  // Inside the change's transaction: each item into the outbox (topic kOutboxEventTopic), its
  // outbox_id set, so the event is announced even if this process dies before publishing it.
  void RecordEvents(pqxx::work& t, std::vector<FanoutItem>* items) const;

  const ClusterConfig& config_;
  const Limits& limits_;
  uint32_t shard_;
  PgPool& pool_;
  CodeSender& sender_;
  EventPublisher& events_;
  Outbox* const outbox_;
  UserQuotas* const quotas_;
  std::function<int64_t()> now_ms_;
  CodeSendBudget code_budget_;              // codes this replica may still send (max_codes_per_shard_per_minute)
  std::atomic<uint64_t> request_codes_{0};  // request_code calls so far, for the purge cadence
  TokenSigner signer_;
  ShardedStubs<internal::AccountService> peers_;
  // One stub per chat-service replica (not per shard: each replica has its own cache), and where
  // each chat shard's replicas start in it.
  ShardedStubs<internal::ChatService> chat_replicas_;
  std::vector<uint32_t> chat_replica_begin_;
};

}  // namespace chat::account
