#include "group/group_store.h"

#include <algorithm>

#include "common/pg.h"

namespace chat::group {

namespace {

// Milliseconds since the epoch of a timestamptz column.
#define CHAT_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

constexpr const char* kGroupColumns =
    "id, name, owner_id, " CHAT_MS("created_at") ", member_count, dissolved_at IS NOT NULL, version, "
    "chat_synced_version, all_muted, invite_confirmation";

constexpr const char* kGetGroup = "group_get";
constexpr const char* kGetGroupForUpdate = "group_get_for_update";
constexpr const char* kMemberRole = "group_member_role";
constexpr const char* kInsertGroup = "group_insert";
constexpr const char* kGroupByRequest = "group_by_request";
constexpr const char* kInsertMembers = "group_insert_members";
constexpr const char* kMembersAmong = "group_members_among";
constexpr const char* kDeleteMember = "group_delete_member";
constexpr const char* kSetRole = "group_set_role";
constexpr const char* kCommitChange = "group_commit_change";
constexpr const char* kLogMembership = "group_log_membership";
constexpr const char* kListMembers = "group_list_members";
constexpr const char* kListMemberIds = "group_list_member_ids";
constexpr const char* kRemovedSince = "group_removed_since";
constexpr const char* kLeftSince = "group_left_since";
constexpr const char* kMarkSynced = "group_mark_synced";
constexpr const char* kPruneLog = "group_prune_log";
constexpr const char* kGroupsOfUser = "group_groups_of_user";
constexpr const char* kSetName = "group_set_name";
constexpr const char* kSetFlags = "group_set_flags";
constexpr const char* kSetMuted = "group_set_muted";
constexpr const char* kCountAdmins = "group_count_admins";
constexpr const char* kSendRules = "group_send_rules";
constexpr const char* kDeleteAllMembers = "group_delete_all_members";
constexpr const char* kInsertCode = "group_insert_code";
constexpr const char* kPurgeCodes = "group_purge_codes";
constexpr const char* kLookupCode = "group_lookup_code";
constexpr const char* kPreviewMembers = "group_preview_members";
constexpr const char* kPurgeInvitations = "group_purge_invitations";
constexpr const char* kUpsertInvitation = "group_upsert_invitation";
constexpr const char* kTakeInvitation = "group_take_invitation";
constexpr const char* kSetInvitationState = "group_set_invitation_state";
constexpr const char* kInvitationsOf = "group_invitations_of";
constexpr const char* kJoinRequests = "group_join_requests";
constexpr const char* kAdminIds = "group_admin_ids";
constexpr const char* kDeleteInvitations = "group_delete_invitations";

// Columns of an invitation with its group's name and size, as ReadInvitation reads them.
#define CHAT_INVITATION_COLUMNS \
  "i.group_id, g.name, g.member_count, i.invitee, i.inviter, i.by_code, " CHAT_MS("i.expires_at")

int64_t Db(uint64_t id) { return static_cast<int64_t>(id); }

GroupRow ReadGroup(const pqxx::row& r) {
  GroupRow g;
  g.id = r[0].as<uint64_t>();
  g.name = r[1].as<std::string>();
  g.owner_id = r[2].as<uint64_t>();
  g.created_ms = r[3].as<int64_t>();
  g.member_count = r[4].as<uint32_t>();
  g.dissolved = r[5].as<bool>();
  g.version = r[6].as<int64_t>();
  g.chat_synced_version = r[7].as<int64_t>();
  g.all_muted = r[8].as<bool>();
  g.invite_confirmation = r[9].as<bool>();
  return g;
}

std::vector<uint64_t> ReadIds(const pqxx::result& res) {
  std::vector<uint64_t> out;
  out.reserve(res.size());
  for (const auto& r : res) out.push_back(r[0].as<uint64_t>());
  return out;
}

}  // namespace

void PrepareGroupStatements(pqxx::connection& c) {
  c.prepare(kGetGroup, std::string("SELECT ") + kGroupColumns + " FROM groups WHERE id = $1");
  c.prepare(kGetGroupForUpdate, std::string("SELECT ") + kGroupColumns + " FROM groups WHERE id = $1 FOR UPDATE");
  c.prepare(kMemberRole, "SELECT role FROM group_members WHERE group_id = $1 AND user_id = $2");
  c.prepare(kInsertGroup,
            "INSERT INTO groups (id, name, owner_id, created_by, member_count, version, chat_synced_version, "
            "client_request_id) VALUES ($1, $2, $3, $3, $4, 1, 0, NULLIF($5, '')) "
            "ON CONFLICT DO NOTHING RETURNING " CHAT_MS("created_at"));
  c.prepare(kGroupByRequest,
            std::string("SELECT ") + kGroupColumns + " FROM groups WHERE created_by = $1 AND client_request_id = $2");
  c.prepare(kInsertMembers,
            "INSERT INTO group_members (group_id, user_id, role, invited_by) "
            "SELECT $1, u.id, $3, NULLIF($4::bigint, 0) FROM unnest($2::bigint[]) WITH ORDINALITY AS u(id, ord) "
            "ORDER BY u.ord ON CONFLICT (group_id, user_id) DO NOTHING RETURNING user_id");
  c.prepare(kMembersAmong, "SELECT user_id FROM group_members WHERE group_id = $1 AND user_id = ANY($2::bigint[])");
  c.prepare(kDeleteMember, "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 RETURNING role");
  c.prepare(kSetRole, "UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2");
  c.prepare(kCommitChange,
            "UPDATE groups SET member_count = $2, owner_id = $3, version = version + 1, updated_at = now(), "
            "dissolved_at = CASE WHEN $2 = 0 THEN coalesce(dissolved_at, now()) ELSE dissolved_at END "
            "WHERE id = $1 RETURNING version");
  c.prepare(kLogMembership,
            "INSERT INTO group_membership_log (group_id, version, user_id, added) "
            "SELECT $1, $2, u, $4 FROM unnest($3::bigint[]) AS u ON CONFLICT DO NOTHING");
  c.prepare(kListMembers,
            "SELECT user_id, role, alias, " CHAT_MS("joined_at") ", muted FROM group_members WHERE group_id = $1 "
            "ORDER BY joined_at, join_order");
  c.prepare(kListMemberIds, "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY joined_at, join_order");
  c.prepare(kRemovedSince,
            "SELECT DISTINCT l.user_id FROM group_membership_log l WHERE l.group_id = $1 AND l.version > $2 "
            "AND NOT l.added AND NOT EXISTS (SELECT 1 FROM group_members m "
            "WHERE m.group_id = l.group_id AND m.user_id = l.user_id)");
  c.prepare(kLeftSince,
            "SELECT 1 FROM group_membership_log l WHERE l.group_id = $1 AND l.user_id = $2 AND l.version > $3 "
            "AND NOT l.added AND NOT EXISTS (SELECT 1 FROM group_members m "
            "WHERE m.group_id = l.group_id AND m.user_id = l.user_id) LIMIT 1");
  c.prepare(kMarkSynced, "UPDATE groups SET chat_synced_version = $2 WHERE id = $1 AND chat_synced_version < $2");
  c.prepare(kPruneLog, "DELETE FROM group_membership_log WHERE group_id = $1 AND version <= $2");
  c.prepare(kGroupsOfUser,
            "SELECT g.id, g.name, g.owner_id, (extract(epoch FROM g.created_at) * 1000)::bigint, g.member_count, "
            "g.dissolved_at IS NOT NULL, g.version, g.chat_synced_version, g.all_muted, g.invite_confirmation "
            "FROM group_members m JOIN groups g ON g.id = m.group_id "
            "WHERE m.user_id = $1 AND g.dissolved_at IS NULL ORDER BY g.created_at, g.id");
  c.prepare(kSetName, "UPDATE groups SET name = $2 WHERE id = $1");
  c.prepare(kSetFlags, "UPDATE groups SET all_muted = $2, invite_confirmation = $3 WHERE id = $1");
  c.prepare(kSetMuted, "UPDATE group_members SET muted = $3 WHERE group_id = $1 AND user_id = $2 AND muted <> $3");
  c.prepare(kCountAdmins, "SELECT count(*) FROM group_members WHERE group_id = $1 AND role = 2");
  c.prepare(kSendRules, "SELECT user_id, role, muted FROM group_members WHERE group_id = $1");
  c.prepare(kDeleteAllMembers, "DELETE FROM group_members WHERE group_id = $1 RETURNING user_id");
  c.prepare(kInsertCode,
            "INSERT INTO invite_codes (code, group_id, created_by, expires_at) "
            "VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0))");
  c.prepare(kPurgeCodes,
            "DELETE FROM invite_codes WHERE group_id = $1 AND expires_at < to_timestamp($2::bigint / 1000.0)");
  c.prepare(kLookupCode,
            "SELECT group_id, created_by, " CHAT_MS("expires_at") ", revoked_at IS NOT NULL FROM invite_codes "
            "WHERE code = $1");
  c.prepare(kPurgeInvitations,
            "DELETE FROM group_invitations WHERE group_id = $1 AND expires_at <= to_timestamp($2::bigint / 1000.0)");
  c.prepare(kUpsertInvitation,
            "INSERT INTO group_invitations (group_id, invitee, inviter, by_code, state, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000.0)) "
            "ON CONFLICT (group_id, invitee) DO UPDATE SET inviter = EXCLUDED.inviter, by_code = EXCLUDED.by_code, "
            "state = EXCLUDED.state, created_at = now(), expires_at = EXCLUDED.expires_at");
  c.prepare(kTakeInvitation,
            "DELETE FROM group_invitations WHERE group_id = $1 AND invitee = $2 AND state = $3 "
            "AND expires_at > to_timestamp($4::bigint / 1000.0) RETURNING inviter, by_code");
  c.prepare(kSetInvitationState,
            "UPDATE group_invitations SET state = $3, expires_at = to_timestamp($4::bigint / 1000.0) "
            "WHERE group_id = $1 AND invitee = $2");
  c.prepare(kInvitationsOf, "SELECT " CHAT_INVITATION_COLUMNS
                            " FROM group_invitations i JOIN groups g ON g.id = i.group_id "
                            "WHERE i.invitee = $1 AND i.state = 2 AND i.expires_at > to_timestamp($2::bigint / 1000.0) "
                            "AND g.dissolved_at IS NULL ORDER BY i.created_at");
  c.prepare(kJoinRequests, "SELECT " CHAT_INVITATION_COLUMNS
                           " FROM group_invitations i JOIN groups g ON g.id = i.group_id "
                           "WHERE i.group_id = $1 AND i.state = 1 AND i.expires_at > to_timestamp($2::bigint / 1000.0) "
                           "ORDER BY i.created_at");
  c.prepare(kDeleteInvitations, "DELETE FROM group_invitations WHERE group_id = $1 AND invitee = ANY($2::bigint[])");
  c.prepare(kAdminIds, "SELECT user_id FROM group_members WHERE group_id = $1 AND role >= 2");
  c.prepare(kPreviewMembers,
            "SELECT user_id, COALESCE(alias, '') FROM group_members WHERE group_id = $1 "
            "ORDER BY joined_at, join_order LIMIT $2");
}

#undef CHAT_INVITATION_COLUMNS
#undef CHAT_MS

void GroupRow::ToProto(v1::Group* g) const {
  g->set_group_id(id);
  g->set_conversation_id("g." + std::to_string(id));
  g->set_name(name);
  g->set_owner_id(owner_id);
  g->set_member_count(member_count);
  g->set_created_ms(created_ms);
  g->set_all_muted(all_muted);
  g->set_invite_confirmation(invite_confirmation);
}

std::optional<GroupRow> LoadGroup(pqxx::work& txn, uint64_t group_id, bool for_update) {
  auto res = txn.exec_prepared(for_update ? kGetGroupForUpdate : kGetGroup, Db(group_id));
  if (res.empty()) return std::nullopt;
  return ReadGroup(res[0]);
}

std::optional<GroupRow> GroupByRequest(pqxx::work& txn, uint64_t creator, const std::string& client_request_id) {
  if (client_request_id.empty()) return std::nullopt;
  auto res = txn.exec_prepared(kGroupByRequest, Db(creator), client_request_id);
  if (res.empty()) return std::nullopt;
  return ReadGroup(res[0]);
}

std::optional<v1::GroupRole> MemberRole(pqxx::work& txn, uint64_t group_id, uint64_t user_id) {
  auto res = txn.exec_prepared(kMemberRole, Db(group_id), Db(user_id));
  if (res.empty()) return std::nullopt;
  return static_cast<v1::GroupRole>(res[0][0].as<int>());
}

bool InsertGroup(pqxx::work& txn, uint64_t group_id, const std::string& name, uint64_t owner_id, uint32_t member_count,
                 const std::string& client_request_id, int64_t* created_ms) {
  auto res = txn.exec_prepared(kInsertGroup, Db(group_id), name, Db(owner_id), static_cast<int>(member_count),
                               client_request_id);
  if (res.empty()) return false;
  *created_ms = res[0][0].as<int64_t>();
  return true;
}

std::vector<uint64_t> InsertMembers(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& users,
                                    v1::GroupRole role, uint64_t invited_by) {
  if (users.empty()) return {};
  auto res =
      txn.exec_prepared(kInsertMembers, Db(group_id), BigintArray(users), static_cast<int>(role), Db(invited_by));
  auto inserted = ReadIds(res);
  // RETURNING order is not guaranteed: report in the caller's order.
  std::vector<uint64_t> out;
  out.reserve(inserted.size());
  std::sort(inserted.begin(), inserted.end());
  for (uint64_t u : users)
    if (std::binary_search(inserted.begin(), inserted.end(), u)) out.push_back(u);
  return out;
}

std::vector<uint64_t> MembersAmong(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& users) {
  if (users.empty()) return {};
  return ReadIds(txn.exec_prepared(kMembersAmong, Db(group_id), BigintArray(users)));
}

std::optional<v1::GroupRole> DeleteMember(pqxx::work& txn, uint64_t group_id, uint64_t user_id) {
  auto res = txn.exec_prepared(kDeleteMember, Db(group_id), Db(user_id));
  if (res.empty()) return std::nullopt;
  return static_cast<v1::GroupRole>(res[0][0].as<int>());
}

void SetRole(pqxx::work& txn, uint64_t group_id, uint64_t user_id, v1::GroupRole role) {
  txn.exec_prepared(kSetRole, Db(group_id), Db(user_id), static_cast<int>(role));
}

int64_t CommitMembershipChange(pqxx::work& txn, uint64_t group_id, uint32_t member_count, uint64_t owner_id) {
  auto res = txn.exec_prepared(kCommitChange, Db(group_id), static_cast<int>(member_count), Db(owner_id));
  return res.at(0)[0].as<int64_t>();
}

void LogMembership(pqxx::work& txn, uint64_t group_id, int64_t version, const std::vector<uint64_t>& users,
                   bool added) {
  if (users.empty()) return;
  txn.exec_prepared(kLogMembership, Db(group_id), version, BigintArray(users), added);
}

std::vector<MemberRow> ListMembers(pqxx::work& txn, uint64_t group_id) {
  std::vector<MemberRow> out;
  for (const auto& r : txn.exec_prepared(kListMembers, Db(group_id))) {
    MemberRow m;
    m.user_id = r[0].as<uint64_t>();
    m.role = static_cast<v1::GroupRole>(r[1].as<int>());
    if (!r[2].is_null()) m.alias = r[2].as<std::string>();
    m.joined_ms = r[3].as<int64_t>();
    m.muted = r[4].as<bool>();
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<uint64_t> ListMemberIds(pqxx::work& txn, uint64_t group_id) {
  return ReadIds(txn.exec_prepared(kListMemberIds, Db(group_id)));
}

std::vector<uint64_t> RemovedSince(pqxx::work& txn, uint64_t group_id, int64_t after_version) {
  return ReadIds(txn.exec_prepared(kRemovedSince, Db(group_id), after_version));
}

bool LeftSince(pqxx::work& txn, uint64_t group_id, uint64_t user_id, int64_t after_version) {
  return !txn.exec_prepared(kLeftSince, Db(group_id), Db(user_id), after_version).empty();
}

void MarkChatSynced(pqxx::work& txn, uint64_t group_id, int64_t version) {
  txn.exec_prepared(kMarkSynced, Db(group_id), version);
  txn.exec_prepared(kPruneLog, Db(group_id), version);
}

std::vector<GroupRow> GroupsOfUser(pqxx::work& txn, uint64_t user_id) {
  std::vector<GroupRow> out;
  for (const auto& r : txn.exec_prepared(kGroupsOfUser, Db(user_id))) out.push_back(ReadGroup(r));
  return out;
}

void SetName(pqxx::work& txn, uint64_t group_id, const std::string& name) {
  txn.exec_prepared(kSetName, Db(group_id), name);
}

void SetFlags(pqxx::work& txn, uint64_t group_id, bool all_muted, bool invite_confirmation) {
  txn.exec_prepared(kSetFlags, Db(group_id), all_muted, invite_confirmation);
}

bool SetMuted(pqxx::work& txn, uint64_t group_id, uint64_t user_id, bool muted) {
  return txn.exec_prepared(kSetMuted, Db(group_id), Db(user_id), muted).affected_rows() > 0;
}

uint32_t CountAdmins(pqxx::work& txn, uint64_t group_id) {
  return txn.exec_prepared(kCountAdmins, Db(group_id)).at(0)[0].as<uint32_t>();
}

internal::GroupSendRules SendRules(pqxx::work& txn, uint64_t group_id, bool all_muted) {
  internal::GroupSendRules rules;
  for (const auto& r : txn.exec_prepared(kSendRules, Db(group_id))) {
    const uint64_t user = r[0].as<uint64_t>();
    const bool privileged = r[1].as<int>() >= static_cast<int>(v1::GROUP_ROLE_ADMIN);
    if (privileged) rules.add_privileged_user_ids(user);
    if (!privileged && (all_muted || r[2].as<bool>())) rules.add_silenced_user_ids(user);
  }
  return rules;
}

std::vector<uint64_t> DeleteAllMembers(pqxx::work& txn, uint64_t group_id) {
  return ReadIds(txn.exec_prepared(kDeleteAllMembers, Db(group_id)));
}

void InsertInviteCode(pqxx::work& txn, const std::string& code_hash, uint64_t group_id, uint64_t created_by,
                      int64_t expires_ms, int64_t now_ms) {
  txn.exec_prepared(kPurgeCodes, Db(group_id), now_ms);
  txn.exec_prepared(kInsertCode, code_hash, Db(group_id), Db(created_by), expires_ms);
}

std::optional<InviteCodeRow> LookupInviteCode(pqxx::work& txn, const std::string& code_hash) {
  auto res = txn.exec_prepared(kLookupCode, code_hash);
  if (res.empty()) return std::nullopt;
  InviteCodeRow row;
  row.group_id = res[0][0].as<uint64_t>();
  row.created_by = res[0][1].as<uint64_t>();
  row.expires_ms = res[0][2].as<int64_t>();
  row.revoked = res[0][3].as<bool>();
  return row;
}

std::vector<std::pair<uint64_t, std::string>> PreviewMembers(pqxx::work& txn, uint64_t group_id, uint32_t limit) {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& r : txn.exec_prepared(kPreviewMembers, Db(group_id), static_cast<int>(limit)))
    out.emplace_back(r[0].as<uint64_t>(), r[1].as<std::string>());
  return out;
}

namespace {

v1::GroupInvitation ReadInvitation(const pqxx::row& r) {
  v1::GroupInvitation inv;
  inv.set_group_id(r[0].as<uint64_t>());
  inv.set_group_name(r[1].as<std::string>());
  inv.set_member_count(r[2].as<uint32_t>());
  inv.set_user_id(r[3].as<uint64_t>());
  inv.set_inviter_id(r[4].as<uint64_t>());
  inv.set_by_code(r[5].as<bool>());
  inv.set_expires_ms(r[6].as<int64_t>());
  return inv;
}

std::vector<v1::GroupInvitation> ReadInvitations(const pqxx::result& res) {
  std::vector<v1::GroupInvitation> out;
  for (const auto& r : res) out.push_back(ReadInvitation(r));
  return out;
}

}  // namespace

void UpsertInvitation(pqxx::work& txn, uint64_t group_id, uint64_t invitee, uint64_t inviter, bool by_code,
                      InvitationState state, int64_t expires_ms, int64_t now_ms) {
  txn.exec_prepared(kPurgeInvitations, Db(group_id), now_ms);
  txn.exec_prepared(kUpsertInvitation, Db(group_id), Db(invitee), Db(inviter), by_code, static_cast<int>(state),
                    expires_ms);
}

std::optional<std::pair<uint64_t, bool>> TakeInvitation(pqxx::work& txn, uint64_t group_id, uint64_t invitee,
                                                        InvitationState state, int64_t now_ms) {
  auto res = txn.exec_prepared(kTakeInvitation, Db(group_id), Db(invitee), static_cast<int>(state), now_ms);
  if (res.empty()) return std::nullopt;
  return std::make_pair(res[0][0].as<uint64_t>(), res[0][1].as<bool>());
}

void SetInvitationState(pqxx::work& txn, uint64_t group_id, uint64_t invitee, InvitationState state,
                        int64_t expires_ms) {
  txn.exec_prepared(kSetInvitationState, Db(group_id), Db(invitee), static_cast<int>(state), expires_ms);
}

std::vector<v1::GroupInvitation> InvitationsOf(pqxx::work& txn, uint64_t invitee, int64_t now_ms) {
  return ReadInvitations(txn.exec_prepared(kInvitationsOf, Db(invitee), now_ms));
}

std::vector<v1::GroupInvitation> JoinRequests(pqxx::work& txn, uint64_t group_id, int64_t now_ms) {
  return ReadInvitations(txn.exec_prepared(kJoinRequests, Db(group_id), now_ms));
}

void DeleteInvitations(pqxx::work& txn, uint64_t group_id, const std::vector<uint64_t>& invitees) {
  if (invitees.empty()) return;
  txn.exec_prepared(kDeleteInvitations, Db(group_id), BigintArray(invitees));
}

std::vector<uint64_t> AdminIds(pqxx::work& txn, uint64_t group_id) {
  return ReadIds(txn.exec_prepared(kAdminIds, Db(group_id)));
}

}  // namespace chat::group
