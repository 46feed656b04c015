#pragma once
// group-service: groups, their members and roles. Sharded by group id: every row of a group lives
// in the database of shard ShardOfGroup(id). CreateGroup may arrive at any shard (the gateway
// picks one); the shard mints an id that maps to itself. Every other call for a group of another
// shard answers NOT_FOUND.
//
// Truth and the chat conversation. PostgreSQL (this shard's database) is the truth for membership.
// chat-service keeps its own copy of the membership of conversation "g.<id>" (UpdateMembers,
// idempotent), so after every committed change this service pushes the delta to chat. Each
// committed change bumps groups.version and is written to group_membership_log; groups.
// chat_synced_version records the newest version chat has applied. A push reads what is pending
// under the group's row lock and commits, calls chat outside any transaction, then advances
// chat_synced_version conditionally (never backwards). Every push carries the version it brings
// the conversation to (UpdateMembersRequest.membership_version) and chat ignores one that is not
// newer than what it applied, so overlapping or delayed pushes of one group are harmless. A push
// that does not directly follow the last applied version (an earlier one failed or is in flight)
// is a full re-sync (every current member added, everyone removed since the last applied version
// removed). No push holds a row lock or a pooled connection while it waits for chat.
//
// Replies. CreateGroup, AddMembers and Leave reply OK once the change committed here, whether or
// not the push to chat succeeded: the group database is the truth, and chat is guaranteed to catch
// up, by the outbox relay (every change has its row until chat has it and it was announced; see
// Events) or sooner by the next operation on the group (AddMembers, Leave, ListMembers, ListMyGroups
// of any member). Until then the conversation may still show the old membership (a leaver may still
// receive its messages for limits.common.outbox_redeliver_after_ms or so).
//
// Events. Each change writes its outbox row (common/outbox.h, topic kOutboxGroupChangeTopic: the
// delta and the group_changed event) in its own transaction. Announce pushes it to chat and then
// publishes the event, so nobody is told about a conversation chat does not know yet; when the push
// fails or the process dies first, the relay pushes and announces it later (at least once). The
// notice in the conversation is posted by the push that carries the delta; a change that reached chat
// through a full re-sync first (a later change's push, or a read path's re-drive) has its event
// announced but no notice.
//
// Retries. AddMembers is idempotent (present members are ignored). Leave retried by a user who
// already left answers OK while the leave is still being pushed, NOT_FOUND after. CreateGroup with a client_request_id
// is idempotent per creator: the key is stored with the group (UNIQUE (created_by, client_request_id)) and a retry with
// the same key returns the group the first attempt created (whatever name and members the retry carries), with no
// second notice or event. The key is looked up on this shard only, so a retry must reach the shard of the first
// attempt: the gateway has to route keyed creates by creator (ShardOfUser(creator, group shards)); with random routing
// and several group shards a retry may still create a second group. Without a key a retried CreateGroup creates a
// second group. CreateGroup replies OK once the group committed, even if the chat push failed.
//
// Privacy: a non-member cannot tell a group that exists from one that does not (NOT_FOUND "group
// not found" for both). Member lists carry profiles from account-service (handle, display name),
// never phone numbers; PERMISSION_DENIED for non-friends names nobody.
//
// Threads: all methods may run concurrently on gRPC server threads. The pool, limits and seams
// are owned by the caller and outlive this object.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/config.h"
#include "common/error.h"
#include "common/events.h"
#include "common/outbox.h"
#include "common/pg.h"
#include "common/user_quota.h"
#include "group/group_seams.h"
#include "group/group_store.h"

namespace chat::group {

struct GroupServiceDeps {
  PgPool* pool = nullptr;
  const Limits* limits = nullptr;
  uint32_t shard = 0;        // this shard's index in config.group
  uint32_t shard_count = 1;  // config.group.size()
  FriendChecker* friends = nullptr;
  ProfileSource* profiles = nullptr;
  ConversationMembership* chat = nullptr;
  EventPublisher* events = nullptr;
  Outbox* outbox = nullptr;         // null: changes are announced at most once (tests of the logic alone)
  UserQuotas* quotas = nullptr;     // made from GroupQuotaSpecs; null = no per-user quotas (tests)
  std::function<int64_t()> now_ms;  // wall clock in ms (invite code expiry); null = the system clock
};

// The per-user quotas of this service, in this order: groups created per day, invitations (members a
// user adds, at creation or later) per day, invite codes made per day, invite code uses (previews and
// joins, found or not) per hour.
std::vector<QuotaSpec> GroupQuotaSpecs(const Limits& limits);

// The one reply to every invite code that admits nobody: malformed, unknown, expired, its group
// dissolved, its maker no longer a member. The gateway gives it for codes it cannot route.
inline constexpr char kInvalidInviteCode[] = "this invite code is not valid";

// Outbox topics: a committed membership change (internal::OutboxGroupChange), and a full re-sync of
// one group's chat copy (the group id in decimal; migration 0004 writes one per group that lagged
// when the outbox arrived).
inline constexpr const char* kOutboxGroupChangeTopic = "group.change";
inline constexpr const char* kOutboxGroupSyncTopic = "group.sync";

// CreateGroupRequest.client_request_id: empty (no key) or 1..64 printable ASCII characters.
constexpr size_t kMaxClientRequestIdChars = 64;
Status ValidateClientRequestId(const std::string& id);

// A group name: a name (common/text_policy.h, TextKind::kName) of 0..max_chars code points after
// NFC (empty: an unnamed group). On success *name holds the NFC form (what is stored); on failure it
// is unchanged and the status is INVALID_ARGUMENT naming the rule.
Status NormalizeGroupName(std::string* name, uint32_t max_chars);

class GroupServiceImpl final : public internal::GroupService::Service {
 public:
  explicit GroupServiceImpl(GroupServiceDeps deps);

  grpc::Status CreateGroup(grpc::ServerContext* ctx, const internal::CreateGroupRequest* req,
                           v1::GroupResult* res) override;
  grpc::Status AddMembers(grpc::ServerContext* ctx, const internal::AddGroupMembersRequest* req,
                          v1::GroupResult* res) override;
  grpc::Status Leave(grpc::ServerContext* ctx, const internal::GroupIdRequest* req, v1::Empty* res) override;
  grpc::Status ListMembers(grpc::ServerContext* ctx, const internal::GroupIdRequest* req,
                           v1::GroupMembersResult* res) override;
  grpc::Status ListMyGroups(grpc::ServerContext* ctx, const internal::UserIdRequest* req,
                            v1::GroupsResult* res) override;
  grpc::Status Manage(grpc::ServerContext* ctx, const internal::ManageGroupRequest* req, v1::GroupResult* res) override;
  grpc::Status MakeInviteCode(grpc::ServerContext* ctx, const internal::MakeInviteCodeRequest* req,
                              v1::GroupInviteCode* res) override;
  grpc::Status PreviewInviteCode(grpc::ServerContext* ctx, const internal::InviteCodeRequest* req,
                                 v1::GroupPreview* res) override;
  grpc::Status JoinByCode(grpc::ServerContext* ctx, const internal::InviteCodeRequest* req,
                          v1::GroupResult* res) override;
  grpc::Status RespondInvitation(grpc::ServerContext* ctx, const internal::RespondInvitationRequest* req,
                                 v1::GroupResult* res) override;
  grpc::Status ListMyInvitations(grpc::ServerContext* ctx, const internal::UserIdRequest* req,
                                 v1::GroupInvitationsResult* res) override;
  grpc::Status ListJoinRequests(grpc::ServerContext* ctx, const internal::GroupIdRequest* req,
                                v1::GroupInvitationsResult* res) override;
  grpc::Status ReviewJoinRequest(grpc::ServerContext* ctx, const internal::JoinReviewRequest* req,
                                 v1::GroupResult* res) override;

  // A committed change, right after its commit and again from the outbox relay (`relayed`: with the
  // short deadline) until it is acknowledged: pushes it to chat (SyncChat, idempotent by version),
  // then announces it with the outbox id, which the event path acknowledges once delivered. Returns
  // false when chat could not be brought up to date (the relay tries again at the row's next relay
  // time). Any thread.
  bool Announce(const internal::OutboxGroupChange& change, uint64_t outbox_id, bool relayed = false);
  // The relay handler of topic kOutboxGroupChangeTopic: Announce(change, id, relayed); a row that
  // does not parse is dropped (acknowledged) with an error. Any thread.
  bool RelayChange(uint64_t outbox_id, const std::string& payload);
  // The relay handler of topic kOutboxGroupSyncTopic (payload: the group id in decimal): a full
  // re-sync of the group's chat copy, no event; acknowledges the row itself. Any thread.
  bool RelaySync(uint64_t outbox_id, const std::string& payload);

 private:
  // Charges `user` for `groups` created and `invitations` (members added); the refusal when over quota.
  Status TakeQuota(uint64_t user, uint64_t groups, uint64_t invitations);
  // Charges `user` one unit of quota `spec` (GroupQuotaSpecs order); `what` names the limit.
  Status ChargeOne(uint64_t user, size_t spec, const std::string& what);
  // What one committed change tells chat-service.
  struct ChatDelta {
    std::vector<uint64_t> add;
    std::vector<uint64_t> remove;
    uint64_t actor_id = 0;
    std::string notice;
    std::optional<internal::GroupSendRules> rules;  // the complete send rules at the change's version
  };
  // One change to an existing group, decided under its row lock by an ActionFn, which reads and
  // writes the rows it changes and fills the plan. CommitAction then bumps the version (with the
  // plan's member count and owner in `group`), logs the membership delta, records the outbox row with
  // the send rules and announces it after the commit.
  struct ActionPlan {
    bool nothing = false;  // the action changes nothing (a repeat): no version, no notice, no event
    v1::GroupChangeKind kind = v1::GROUP_CHANGE_KIND_UNSPECIFIED;
    std::vector<uint64_t> user_ids;  // the event's user_ids
    std::vector<uint64_t> add, remove;
    std::string notice;
    std::vector<uint64_t> also_tell;  // told besides the members after the change (the removed)
    uint64_t invited_by = 0;
    bool by_code = false;
  };
  // actor_role: the actor's role before the action, nullopt for a non-member (an ActionFn that
  // admits non-members, a join, checks it itself).
  static Status Unchanged(ActionPlan* plan);
  using ActionFn = std::function<Status(pqxx::work& txn, GroupRow& group, std::optional<v1::GroupRole> actor_role,
                                        ActionPlan* plan)>;
  // NOT_FOUND for a group of another shard, a missing or dissolved one, and (require_member) an actor
  // who is not a member. *out: the group after the change (or as it is, when nothing changed).
  Status CommitAction(uint64_t group_id, uint64_t actor, uint64_t skip_session_id, bool require_member,
                      const ActionFn& fn, GroupRow* out, const char* what);
  // The invite code's row if it admits anyone now (known, unexpired, its group alive, its maker a member).
  std::optional<InviteCodeRow> LiveCode(pqxx::work& txn, const std::string& code, int64_t now_ms);
  int64_t NowMs() const;
  // Publishes a group_invitation event about `user`'s invitation (or approval request) to `to`, at
  // most once (a doorbell: ListMyInvitations and ListJoinRequests are the truth).
  void TellInvitation(const GroupRow& group, uint64_t user, uint64_t inviter, bool by_code, int64_t expires_ms,
                      const std::vector<uint64_t>& to, bool needs_approval);
  // Brings chat-service up to the group's committed membership (see the header comment).
  // `version` is the version the caller committed (0 for a plain re-drive) and `delta` its change.
  // Changes push with the full RPC deadline; re-drives from read paths (ListMembers, ListMyGroups)
  // use a short one so a hung chat-service cannot stall reads.
  Status SyncChat(uint64_t group_id, int64_t version, const ChatDelta* delta, bool short_deadline = false);
  // The reply to a CreateGroup retried with the key of an earlier, committed create: that group,
  // with no notice and no event (re-drives a lagging chat push, best effort).
  Status Existing(const GroupRow& group, v1::GroupResult* res);
  uint64_t MintGroupId();
  bool OwnsGroup(uint64_t group_id) const;
  Status CheckFriends(uint64_t user_id, const std::vector<uint64_t>& others);
  // Display names for notices (display name, else handle); UNAVAILABLE if profiles are unreachable.
  Status Names(const std::vector<uint64_t>& users, std::vector<std::string>* names);
  // The committed change as its outbox row: what chat must apply and the event announcing it to `to`.
  static internal::OutboxGroupChange Change(const GroupRow& group, v1::GroupChangeKind kind, uint64_t actor,
                                            const std::vector<uint64_t>& user_ids, const std::vector<uint64_t>& to,
                                            uint64_t skip_session_id, const ChatDelta& delta, uint64_t invited_by = 0,
                                            bool by_code = false);
  // Inside the change's transaction: appends its outbox row; 0 without an outbox.
  uint64_t Record(pqxx::work& txn, const internal::OutboxGroupChange& change);

  GroupServiceDeps deps_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace chat::group
