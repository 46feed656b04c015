#pragma once
// PostgreSQL access for group-service: named prepared statements (declared in group_store.cc next
// to these helpers) and thin typed wrappers that run inside a caller's transaction. The caller
// decides the transaction boundaries and the locking (LoadGroup(..., for_update=true) locks the
// group row: every membership change and every chat re-sync of a group takes that lock first, so
// they are serialized per group and the member-count check is race-free).
//
// Errors: pqxx exceptions propagate to chat::WithTransaction, which maps them to statuses.
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "chat/internal/services.pb.h"
#include "chat/v1/client.pb.h"

namespace chat::group {

// Declares every statement below on a new connection (PgPool's prepare hook).
void PrepareGroupStatements(pqxx::connection& c);

struct GroupRow {
  uint64_t id = 0;
  std::string name;
  uint64_t owner_id = 0;
  int64_t created_ms = 0;
  uint32_t member_count = 0;
  bool dissolved = false;
  int64_t version = 0;              // membership version
  int64_t chat_synced_version = 0;  // newest version chat-service applied
  bool all_muted = false;
  bool invite_confirmation = false;
  void ToProto(v1::Group* g) const;
};

struct MemberRow {
  uint64_t user_id = 0;
  v1::GroupRole role = v1::GROUP_ROLE_MEMBER;
  std::string alias;
  int64_t joined_ms = 0;
  bool muted = false;
};

struct InviteCodeRow {
  uint64_t group_id = 0;
  uint64_t created_by = 0;
  int64_t expires_ms = 0;
  bool revoked = false;
};

std::optional<GroupRow> LoadGroup(pqxx::work& txn, uint64_t group_id, bool for_update);
// nullopt when user_id is not a member.
std::optional<v1::GroupRole> MemberRole(pqxx::work& txn, uint64_t group_id, uint64_t user_id);
// Returns false if the id is taken or (client_request_id non-empty) the creator already has a group
// with that key: the caller looks the key up (GroupByRequest), else mints another id. An insert
// racing a concurrent one with the same key waits for it, then returns false. Sets *created_ms.
bool InsertGroup(pqxx::work& txn, uint64_t group_id, const std::string& name, uint64_t owner_id, uint32_t member_count,
                 const std::string& client_request_id, int64_t* created_ms);
// The group `creator` created with this idempotency key; nullopt if none (or the key is empty).
std::optional<GroupRow> GroupByRequest(pqxx::work& txn, uint64_t creator, const std::string& client_request_id);
// Inserts in the given order (that order breaks ties of "who joined first"); users already
// members are skipped. Returns the users actually inserted, in the given order.
std::vector<uint64_t> InsertMembers(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& users,
                                    v1::GroupRole role, uint64_t invited_by);
// Which of `users` are members.
std::vector<uint64_t> MembersAmong(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& users);
// Returns the removed member's role, nullopt if they were not a member.
std::optional<v1::GroupRole> DeleteMember(pqxx::work& txn, uint64_t group_id, uint64_t user_id);
void SetRole(pqxx::work& txn, uint64_t group_id, uint64_t user_id, v1::GroupRole role);
// Records a committed membership change: sets member_count and owner, marks the group dissolved
// when it has no members left, bumps and returns the new version.
int64_t CommitMembershipChange(pqxx::work& txn, uint64_t group_id, uint32_t member_count, uint64_t owner_id);
void LogMembership(pqxx::work& txn, uint64_t group_id, int64_t version, const std::vector<uint64_t>& users, bool added);
// Ordered by joined_at, then join order (the owner of a new group first).
std::vector<MemberRow> ListMembers(pqxx::work& txn, uint64_t group_id);
std::vector<uint64_t> ListMemberIds(pqxx::work& txn, uint64_t group_id);
// Users removed at a version after `after_version` who are not members now.
std::vector<uint64_t> RemovedSince(pqxx::work& txn, uint64_t group_id, int64_t after_version);
// True if user_id left at a version after `after_version` and is not a member now.
bool LeftSince(pqxx::work& txn, uint64_t group_id, uint64_t user_id, int64_t after_version);
// Advances chat_synced_version (never backwards) and prunes the log up to it.
void MarkChatSynced(pqxx::work& txn, uint64_t group_id, int64_t version);
// Non-dissolved groups of this shard where user_id is a member, oldest first.
std::vector<GroupRow> GroupsOfUser(pqxx::work& txn, uint64_t user_id);
void SetName(pqxx::work& txn, uint64_t group_id, const std::string& name);
void SetFlags(pqxx::work& txn, uint64_t group_id, bool all_muted, bool invite_confirmation);
// False when the member's flag already had that value (or they are not a member).
bool SetMuted(pqxx::work& txn, uint64_t group_id, uint64_t user_id, bool muted);
uint32_t CountAdmins(pqxx::work& txn, uint64_t group_id);
// The complete send rules of the group's current members (see internal.GroupSendRules).
internal::GroupSendRules SendRules(pqxx::work& txn, uint64_t group_id, bool all_muted);
// Removes every member (a dissolve); returns who they were.
std::vector<uint64_t> DeleteAllMembers(pqxx::work& txn, uint64_t group_id);
// Stores a new code (by its hash) and drops the group's expired ones.
void InsertInviteCode(pqxx::work& txn, const std::string& code_hash, uint64_t group_id, uint64_t created_by,
                      int64_t expires_ms, int64_t now_ms);
std::optional<InviteCodeRow> LookupInviteCode(pqxx::work& txn, const std::string& code_hash);
enum class InvitationState { kAwaitingApproval = 1, kAwaitingInvitee = 2 };
// Writes (or replaces) the invitation of `invitee` and drops the group's lapsed ones.
void UpsertInvitation(pqxx::work& txn, uint64_t group_id, uint64_t invitee, uint64_t inviter, bool by_code,
                      InvitationState state, int64_t expires_ms, int64_t now_ms);
// Deletes and returns (inviter, by_code) of a live invitation in `state`; nullopt if there is none.
std::optional<std::pair<uint64_t, bool>> TakeInvitation(pqxx::work& txn, uint64_t group_id, uint64_t invitee,
                                                        InvitationState state, int64_t now_ms);
void SetInvitationState(pqxx::work& txn, uint64_t group_id, uint64_t invitee, InvitationState state,
                        int64_t expires_ms);
// Live invitations awaiting `invitee` in groups of this shard, oldest first.
std::vector<v1::GroupInvitation> InvitationsOf(pqxx::work& txn, uint64_t invitee, int64_t now_ms);
// Live requests awaiting approval in the group, oldest first.
std::vector<v1::GroupInvitation> JoinRequests(pqxx::work& txn, uint64_t group_id, int64_t now_ms);
void DeleteInvitations(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& invitees);
// The owner and the admins.
std::vector<uint64_t> AdminIds(pqxx::work& txn, uint64_t group_id);
// The first `limit` members (oldest first) with their aliases ("" = none).
std::vector<std::pair<uint64_t, std::string>> PreviewMembers(pqxx::work& txn, uint64_t group_id, uint32_t limit);

}  // namespace chat::group
