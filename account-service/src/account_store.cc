#include "account/account_store.h"

#include "account/validation.h"
#include "common/pg.h"

namespace chat::account {

namespace {

// Timestamps are timestamptz in the schema and unix ms in C++.
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
#define TS(param) "to_timestamp(" param "::bigint / 1000.0)"
#define CODE_COLUMNS "code_hash, " MS("expires_at") ", " MS("sent_at") ", tries, " MS("day_start") ", day_count"

constexpr const char* kPutCode = "acct_put_code";
// $1 phone, $2 hash, $3 expires, $4 now, $5 resend cutoff, $6 day cutoff (a window that started at or
// before it is over), $7 codes per window. One statement: the resend interval and the daily cap are
// checked and the counters moved under the row lock of the upsert.
#define NEW_WINDOW "phone_codes.day_start <= " TS("$6")
constexpr const char* kPutCodeSql =
    "INSERT INTO phone_codes (phone, code_hash, expires_at, tries, sent_at, day_start, day_count) "
    "VALUES ($1, $2, " TS("$3") ", 0, " TS("$4") ", " TS("$4") ", 1) "
    "ON CONFLICT (phone) DO UPDATE SET code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, "
    "tries = 0, sent_at = EXCLUDED.sent_at, "
    "day_start = CASE WHEN " NEW_WINDOW " THEN EXCLUDED.sent_at ELSE phone_codes.day_start END, "
    "day_count = CASE WHEN " NEW_WINDOW " THEN 1 ELSE phone_codes.day_count + 1 END "
    "WHERE phone_codes.sent_at <= " TS("$5") " AND (" NEW_WINDOW " OR phone_codes.day_count < $7) RETURNING 1";
#undef NEW_WINDOW

constexpr const char* kGetCode = "acct_get_code";
constexpr const char* kGetCodeSql = "SELECT " CODE_COLUMNS " FROM phone_codes WHERE phone = $1";

constexpr const char* kLockCode = "acct_lock_code";
constexpr const char* kLockCodeSql = "SELECT " CODE_COLUMNS " FROM phone_codes WHERE phone = $1 FOR UPDATE";

constexpr const char* kAddCodeTry = "acct_add_code_try";
constexpr const char* kAddCodeTrySql = "UPDATE phone_codes SET tries = tries + 1 WHERE phone = $1";

// Blanks the code but keeps the row (its daily counters). sent_at goes to the epoch so the resend
// interval no longer applies.
constexpr const char* kConsumeCode = "acct_consume_code";
constexpr const char* kConsumeCodeSql =
    "UPDATE phone_codes SET code_hash = '', expires_at = to_timestamp(0), sent_at = to_timestamp(0) "
    "WHERE phone = $1";

// Like consume, only if the code is still $2, and it does not count towards the daily cap.
constexpr const char* kWithdrawCode = "acct_withdraw_code";
constexpr const char* kWithdrawCodeSql =
    "UPDATE phone_codes SET code_hash = '', expires_at = to_timestamp(0), sent_at = to_timestamp(0), "
    "day_count = GREATEST(day_count - 1, 0) WHERE phone = $1 AND code_hash = $2";

// $1 cutoff, $2 batch size. SKIP LOCKED: a row being renewed right now is left for a later purge.
constexpr const char* kPurgeCodes = "acct_purge_codes";
constexpr const char* kPurgeCodesSql =
    "DELETE FROM phone_codes WHERE phone IN (SELECT phone FROM phone_codes WHERE expires_at < " TS(
        "$1") " AND day_start <= " TS("$1") " LIMIT $2 FOR UPDATE SKIP LOCKED)";

constexpr const char* kInsertUser = "acct_insert_user";
constexpr const char* kInsertUserSql =
    "INSERT INTO users (id, phone, handle, handle_lower, display_name, created_at) "
    "VALUES ($1, $2, $3, $4, $5, " TS("$6") ") ON CONFLICT DO NOTHING RETURNING id";

#define USER_COLUMNS                                                                   \
  "id, COALESCE(phone, ''), handle, display_name, " MS("created_at") ", COALESCE(" MS( \
      "handle_changed_at") ", 0), COALESCE(" MS("deleted_at") ", 0), avatar_media_id, whats_up, allow_phone_lookup"

constexpr const char* kUserById = "acct_user_by_id";
constexpr const char* kUserByIdSql = "SELECT " USER_COLUMNS " FROM users WHERE id = $1";

constexpr const char* kLockUser = "acct_lock_user";
constexpr const char* kLockUserSql = "SELECT " USER_COLUMNS " FROM users WHERE id = $1 FOR UPDATE";

constexpr const char* kUserByPhone = "acct_user_by_phone";
constexpr const char* kUserByPhoneSql = "SELECT " USER_COLUMNS " FROM users WHERE phone = $1";

constexpr const char* kUserByHandle = "acct_user_by_handle";
constexpr const char* kUserByHandleSql = "SELECT " USER_COLUMNS " FROM users WHERE handle_lower = $1";

constexpr const char* kUsersByIds = "acct_users_by_ids";
constexpr const char* kUsersByIdsSql = "SELECT " USER_COLUMNS " FROM users WHERE id = ANY($1::bigint[])";

constexpr const char* kSetDisplayName = "acct_set_display_name";
constexpr const char* kSetDisplayNameSql =
    "UPDATE users SET display_name = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING 1";

constexpr const char* kSetProfile = "acct_set_profile";
constexpr const char* kSetProfileSql =
    "UPDATE users SET display_name = $2, avatar_media_id = $3, whats_up = $4 WHERE id = $1 AND deleted_at IS NULL "
    "RETURNING 1";

constexpr const char* kQrSecret = "acct_qr_secret";
constexpr const char* kQrSecretSql = "SELECT COALESCE(qr_secret, '') FROM users WHERE id = $1 AND deleted_at IS NULL";
// $3: only when the current secret is $3 ('' = none yet), so concurrent first uses agree on one.
constexpr const char* kSetQrSecret = "acct_set_qr_secret";
constexpr const char* kSetQrSecretSql =
    "UPDATE users SET qr_secret = $2 WHERE id = $1 AND deleted_at IS NULL AND COALESCE(qr_secret, '') = $3 "
    "RETURNING 1";

constexpr const char* kSetPhoneLookup = "acct_set_phone_lookup";
constexpr const char* kSetPhoneLookupSql =
    "UPDATE users SET allow_phone_lookup = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING 1";

constexpr const char* kSetHandle = "acct_set_handle";
constexpr const char* kSetHandleSql =
    "UPDATE users SET handle = $2, handle_lower = $3, handle_changed_at = " TS("$4") " WHERE id = $1 RETURNING 1";
// Case only: the same handle, so neither its claim nor the change interval moves.
constexpr const char* kSetHandleCase = "acct_set_handle_case";
constexpr const char* kSetHandleCaseSql =
    "UPDATE users SET handle = $2 WHERE id = $1 AND handle_lower = $3 RETURNING 1";

// $1 handle_lower, $2 user, $3 now. Taken when free, already this user's, or released and past its hold.
constexpr const char* kClaimHandle = "acct_claim_handle";
constexpr const char* kClaimHandleSql =
    "INSERT INTO handle_claims (handle_lower, user_id, claimed_at, hold_until) VALUES ($1, $2, " TS("$3") ", NULL) "
    "ON CONFLICT (handle_lower) DO UPDATE SET user_id = EXCLUDED.user_id, claimed_at = EXCLUDED.claimed_at, "
    "hold_until = NULL WHERE handle_claims.user_id = EXCLUDED.user_id OR handle_claims.hold_until <= " TS("$3") " "
    "RETURNING 1";
// $1 handle_lower, $2 user, $3 hold until. Only the holder's live claim.
constexpr const char* kReleaseHandle = "acct_release_handle";
constexpr const char* kReleaseHandleSql = "UPDATE handle_claims SET hold_until = " TS(
    "$3") " WHERE handle_lower = $1 AND user_id = $2 AND hold_until IS NULL";

constexpr const char* kUpsertRequest = "acct_upsert_request";
constexpr const char* kUpsertRequestSql =
    "INSERT INTO friend_requests AS r (to_user, from_user, greeting, source, created_at, notified_at) "
    "VALUES ($1, $2, $3, $4, " TS("$5") ", " TS("$5") ") "
    "ON CONFLICT (to_user, from_user) DO UPDATE SET greeting = EXCLUDED.greeting, source = EXCLUDED.source, "
    "created_at = EXCLUDED.created_at, "
    "notified_at = CASE WHEN r.notified_at <= " TS("$6") " THEN EXCLUDED.notified_at ELSE r.notified_at END "
    "RETURNING r.notified_at = " TS("$5");

#define REQUEST_COLUMNS "to_user, from_user, greeting, source, " MS("created_at")

constexpr const char* kLockLiveRequest = "acct_lock_live_request";
constexpr const char* kLockLiveRequestSql =
    "SELECT " REQUEST_COLUMNS
    " FROM friend_requests "
    "WHERE to_user = $1 AND from_user = $2 AND created_at >= " TS("$3") " FOR UPDATE";

constexpr const char* kDeleteRequest = "acct_delete_request";
constexpr const char* kDeleteRequestSql = "DELETE FROM friend_requests WHERE to_user = $1 AND from_user = $2";

constexpr const char* kLiveRequestsTo = "acct_live_requests_to";
constexpr const char* kLiveRequestsToSql =
    "SELECT " REQUEST_COLUMNS " FROM friend_requests r WHERE to_user = $1 AND created_at >= " TS("$2")
    " AND NOT EXISTS (SELECT 1 FROM friendships f WHERE f.user_id = r.to_user AND f.friend_id = r.from_user)"
    " ORDER BY created_at DESC, from_user LIMIT $3";

constexpr const char* kLiveRequestsFrom = "acct_live_requests_from";
constexpr const char* kLiveRequestsFromSql =
    "SELECT " REQUEST_COLUMNS " FROM friend_requests r WHERE from_user = $1 AND created_at >= " TS("$2")
    " AND NOT EXISTS (SELECT 1 FROM friendships f WHERE f.user_id = r.to_user AND f.friend_id = r.from_user)"
    " ORDER BY created_at DESC, to_user LIMIT $3";

constexpr const char* kHasEdge = "acct_has_edge";
constexpr const char* kHasEdgeSql = "SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2";

constexpr const char* kEdgeCount = "acct_edge_count";
constexpr const char* kEdgeCountSql = "SELECT count(*) FROM friendships WHERE user_id = $1";

constexpr const char* kInsertEdge = "acct_insert_edge";
constexpr const char* kInsertEdgeSql =
    "INSERT INTO friendships AS f (user_id, friend_id, since) VALUES ($1, $2, " TS("$3") ") "
    "ON CONFLICT (user_id, friend_id) DO UPDATE SET peer_removed = false RETURNING " MS("f.since");

constexpr const char* kDeleteEdge = "acct_delete_edge";
constexpr const char* kDeleteEdgeSql = "DELETE FROM friendships WHERE user_id = $1 AND friend_id = $2 RETURNING 1";

constexpr const char* kMarkPeerRemoved = "acct_mark_peer_removed";
constexpr const char* kMarkPeerRemovedSql =
    "UPDATE friendships SET peer_removed = true WHERE user_id = $1 AND friend_id = $2";

constexpr const char* kSetRemark = "acct_set_remark";
constexpr const char* kSetRemarkSql =
    "UPDATE friendships SET remark = NULLIF($3, '') WHERE user_id = $1 AND friend_id = $2 RETURNING 1";

#define EDGE_COLUMNS "friend_id, " MS("since") ", coalesce(remark, ''), peer_removed"

constexpr const char* kEdgesOf = "acct_edges_of";
constexpr const char* kEdgesOfSql =
    "SELECT " EDGE_COLUMNS " FROM friendships WHERE user_id = $1 ORDER BY since, friend_id LIMIT $2";

constexpr const char* kEdgesAmong = "acct_edges_among";
constexpr const char* kEdgesAmongSql =
    "SELECT " EDGE_COLUMNS " FROM friendships WHERE user_id = $1 AND friend_id = ANY($2::bigint[])";

constexpr const char* kFriendsAmong = "acct_friends_among";
constexpr const char* kFriendsAmongSql =
    "SELECT friend_id FROM friendships WHERE user_id = $1 AND friend_id = ANY($2::bigint[]) AND NOT peer_removed";

constexpr const char* kLabelsOf = "acct_labels_of";
constexpr const char* kLabelsOfSql =
    "SELECT l.label_id, l.name, COALESCE(array_agg(m.friend_id ORDER BY m.friend_id) FILTER (WHERE m.friend_id IS NOT "
    "NULL), '{}')::text FROM contact_labels l LEFT JOIN contact_label_members m ON m.user_id = l.user_id AND "
    "m.label_id = l.label_id WHERE l.user_id = $1 GROUP BY l.label_id, l.name, l.created_at "
    "ORDER BY l.created_at, l.label_id";
constexpr const char* kLabelCount = "acct_label_count";
constexpr const char* kLabelCountSql = "SELECT count(*) FROM contact_labels WHERE user_id = $1";
constexpr const char* kLabelNamed = "acct_label_named";
constexpr const char* kLabelNamedSql = "SELECT label_id FROM contact_labels WHERE user_id = $1 AND name = $2";
constexpr const char* kInsertLabel = "acct_insert_label";
constexpr const char* kInsertLabelSql =
    "INSERT INTO contact_labels (user_id, label_id, name, created_at) VALUES ($1, $2, "
    "$3, " TS("$4") ") ON CONFLICT DO NOTHING RETURNING 1";
constexpr const char* kRenameLabel = "acct_rename_label";
constexpr const char* kRenameLabelSql =
    "UPDATE contact_labels SET name = $3 WHERE user_id = $1 AND label_id = $2 RETURNING 1";
constexpr const char* kClearLabel = "acct_clear_label";
constexpr const char* kClearLabelSql = "DELETE FROM contact_label_members WHERE user_id = $1 AND label_id = $2";
constexpr const char* kFillLabel = "acct_fill_label";
constexpr const char* kFillLabelSql =
    "INSERT INTO contact_label_members (user_id, label_id, friend_id) SELECT $1, $2, unnest($3::bigint[])";
constexpr const char* kDeleteLabel = "acct_delete_label";
constexpr const char* kDeleteLabelSql = "DELETE FROM contact_labels WHERE user_id = $1 AND label_id = $2 RETURNING 1";
constexpr const char* kRemoveFromLabels = "acct_remove_from_labels";
constexpr const char* kRemoveFromLabelsSql = "DELETE FROM contact_label_members WHERE user_id = $1 AND friend_id = $2";
constexpr const char* kDeleteLabelsOf = "acct_delete_labels_of";
constexpr const char* kDeleteLabelsOfSql = "DELETE FROM contact_labels WHERE user_id = $1";

constexpr const char* kBlock = "acct_block";
constexpr const char* kBlockSql =
    "INSERT INTO blocks (user_id, blocked_id, since) VALUES ($1, $2, " TS("$3") ") ON CONFLICT DO NOTHING";
constexpr const char* kUnblock = "acct_unblock";
constexpr const char* kUnblockSql = "DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2 RETURNING 1";
constexpr const char* kBlockedAmong = "acct_blocked_among";
constexpr const char* kBlockedAmongSql =
    "SELECT blocked_id FROM blocks WHERE user_id = $1 AND blocked_id = ANY($2::bigint[])";
constexpr const char* kBlockedBy = "acct_blocked_by";
constexpr const char* kBlockedBySql =
    "SELECT blocked_id FROM blocks WHERE user_id = $1 ORDER BY since, blocked_id LIMIT $2";
constexpr const char* kDeleteBlocksOf = "acct_delete_blocks_of";
constexpr const char* kDeleteBlocksOfSql = "DELETE FROM blocks WHERE user_id = $1";

// The device's previous session goes first (a statement of its own: the unique (user, device) check
// of the insert must not meet it).
constexpr const char* kDeleteDeviceSession = "acct_delete_device_session";
constexpr const char* kDeleteDeviceSessionSql =
    "DELETE FROM sessions WHERE user_id = $1 AND device_id = $2 RETURNING session_id";
// $1..$8: user, session, device id, name, platform, created, last active, expires. Nothing on any
// conflict: a taken session id, or a concurrent log-in on the same device that committed first.
constexpr const char* kPutSession = "acct_put_session";
constexpr const char* kPutSessionSql =
    "INSERT INTO sessions (user_id, session_id, token_gen, device_id, device_name, platform, created_at, "
    "last_active_at, expires_at) VALUES ($1, $2, 1, $3, $4, $5, " TS("$6") ", " TS("$7") ", " TS("$8") ") "
    "ON CONFLICT DO NOTHING RETURNING 1";

#define SESSION_COLUMNS                                                                          \
  "user_id, session_id, token_gen, device_id, device_name, platform, " MS("created_at") ", " MS( \
      "last_active_at") ", " MS("expires_at")

constexpr const char* kSessionOf = "acct_session_of";
constexpr const char* kSessionOfSql = "SELECT " SESSION_COLUMNS " FROM sessions WHERE user_id = $1 AND session_id = $2";

constexpr const char* kLiveSessions = "acct_live_sessions";
constexpr const char* kLiveSessionsSql =
    "SELECT " SESSION_COLUMNS
    " FROM sessions WHERE user_id = $1 AND expires_at > " TS("$2") " ORDER BY last_active_at DESC, session_id";

constexpr const char* kRefreshSession = "acct_refresh_session";
constexpr const char* kRefreshSessionSql =
    "UPDATE sessions SET token_gen = token_gen + 1, expires_at = " TS("$4") ", last_active_at = " TS("$5") " "
    "WHERE user_id = $1 AND session_id = $2 AND token_gen = $3 AND expires_at > " TS("$5") " RETURNING token_gen";

constexpr const char* kTouchSession = "acct_touch_session";
constexpr const char* kTouchSessionSql = "UPDATE sessions SET last_active_at = " TS(
    "$3") " WHERE user_id = $1 AND session_id = $2 AND last_active_at < " TS("$4");

constexpr const char* kDeleteSession = "acct_delete_session";
constexpr const char* kDeleteSessionSql =
    "DELETE FROM sessions WHERE user_id = $1 AND ($2::bigint = 0 OR session_id = $2::bigint) RETURNING session_id";

constexpr const char* kDeleteExpiredSessions = "acct_delete_expired_sessions";
constexpr const char* kDeleteExpiredSessionsSql = "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= " TS("$2");

constexpr const char* kTrimSessions = "acct_trim_sessions";
constexpr const char* kTrimSessionsSql =
    "DELETE FROM sessions WHERE user_id = $1 AND session_id IN (SELECT session_id FROM sessions WHERE user_id = $1 "
    "ORDER BY last_active_at DESC, session_id OFFSET $2) RETURNING session_id";

constexpr const char* kDeleteUser = "acct_delete_user";
constexpr const char* kDeleteUserSql =
    "UPDATE users SET phone = NULL, handle = '', handle_lower = '~' || id::text, display_name = '', "
    "avatar_media_id = '', whats_up = '', allow_phone_lookup = false, qr_secret = NULL, deleted_at = " TS(
        "$2") " WHERE id = $1 AND deleted_at IS NULL RETURNING 1";
constexpr const char* kDeleteEdgesOf = "acct_delete_edges_of";
constexpr const char* kDeleteEdgesOfSql = "DELETE FROM friendships WHERE user_id = $1";
constexpr const char* kDeleteRequestsTo = "acct_delete_requests_to";
constexpr const char* kDeleteRequestsToSql = "DELETE FROM friend_requests WHERE to_user = $1";

constexpr const char* kSetPhone = "acct_set_phone";
constexpr const char* kSetPhoneSql = "UPDATE users SET phone = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING 1";

constexpr const char* kLockPhone = "acct_lock_phone";
constexpr const char* kLockPhoneSql =
    "SELECT user_id, COALESCE(" MS("free_from") ", 0) FROM phones WHERE phone = $1 FOR UPDATE";
constexpr const char* kPhoneOwner = "acct_phone_owner";
constexpr const char* kPhoneOwnerSql = "SELECT user_id, COALESCE(" MS("free_from") ", 0) FROM phones WHERE phone = $1";
// $1 phone, $2 user, $3 now. Taken when new, already this user's in use, or released and free by now.
constexpr const char* kClaimPhone = "acct_claim_phone";
constexpr const char* kClaimPhoneSql =
    "INSERT INTO phones (phone, user_id, claimed_at, free_from) VALUES ($1, $2, " TS("$3") ", NULL) "
    "ON CONFLICT (phone) DO UPDATE SET user_id = EXCLUDED.user_id, claimed_at = EXCLUDED.claimed_at, free_from = NULL "
    "WHERE (phones.user_id = EXCLUDED.user_id AND phones.free_from IS NULL) OR phones.free_from <= " TS("$3") " "
    "RETURNING 1";
constexpr const char* kReleasePhone = "acct_release_phone";
constexpr const char* kReleasePhoneSql =
    "UPDATE phones SET free_from = " TS("$3") " WHERE phone = $1 AND user_id = $2 AND free_from IS NULL";
constexpr const char* kPurgePhones = "acct_purge_phones";
constexpr const char* kPurgePhonesSql =
    "DELETE FROM phones WHERE phone IN (SELECT phone FROM phones WHERE free_from < " TS(
        "$1") " LIMIT $2 FOR UPDATE SKIP LOCKED)";

#undef MS
#undef TS
#undef SESSION_COLUMNS
#undef CODE_COLUMNS
#undef USER_COLUMNS
#undef REQUEST_COLUMNS

int64_t Id(uint64_t id) { return static_cast<int64_t>(id); }

// PostgreSQL array literal of ids, e.g. "{1,2,3}" (numbers only, so no quoting is needed).
UserRow ToUser(const pqxx::row& r) {
  UserRow u;
  u.id = static_cast<uint64_t>(r[0].as<int64_t>());
  u.phone = r[1].as<std::string>();
  u.handle = r[2].as<std::string>();
  u.display_name = r[3].as<std::string>();
  u.created_ms = r[4].as<int64_t>();
  u.handle_changed_ms = r[5].as<int64_t>();
  u.deleted_ms = r[6].as<int64_t>();
  u.avatar_media_id = r[7].as<std::string>();
  u.whats_up = r[8].as<std::string>();
  u.allow_phone_lookup = r[9].as<bool>();
  return u;
}

std::optional<UserRow> OneUser(const pqxx::result& r) {
  if (r.empty()) return std::nullopt;
  return ToUser(r[0]);
}

CodeRow ToCode(const pqxx::row& r) {
  CodeRow c;
  c.code_hash = r[0].as<std::string>();
  c.expires_ms = r[1].as<int64_t>();
  c.sent_ms = r[2].as<int64_t>();
  c.tries = r[3].as<int>();
  c.day_start_ms = r[4].as<int64_t>();
  c.day_count = r[5].as<int>();
  return c;
}

SessionRow ToSession(const pqxx::row& r) {
  SessionRow s;
  s.user_id = static_cast<uint64_t>(r[0].as<int64_t>());
  s.session_id = static_cast<uint64_t>(r[1].as<int64_t>());
  s.token_gen = static_cast<uint32_t>(r[2].as<int64_t>());
  s.device_id = r[3].as<std::string>();
  s.device_name = r[4].as<std::string>();
  s.platform = r[5].as<std::string>();
  s.created_ms = r[6].as<int64_t>();
  s.last_active_ms = r[7].as<int64_t>();
  s.expires_ms = r[8].as<int64_t>();
  return s;
}

std::vector<uint64_t> Ids(const pqxx::result& r) {
  std::vector<uint64_t> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(static_cast<uint64_t>(row[0].as<int64_t>()));
  return out;
}

RequestRow ToRequest(const pqxx::row& r) {
  RequestRow q;
  q.to_user = static_cast<uint64_t>(r[0].as<int64_t>());
  q.from_user = static_cast<uint64_t>(r[1].as<int64_t>());
  q.greeting = r[2].as<std::string>();
  q.source = r[3].as<int>();
  q.created_ms = r[4].as<int64_t>();
  return q;
}

}  // namespace

void PrepareAccountStatements(pqxx::connection& c) {
  const std::pair<const char*, const char*> statements[] = {
      {kPutCode, kPutCodeSql},
      {kGetCode, kGetCodeSql},
      {kLockCode, kLockCodeSql},
      {kAddCodeTry, kAddCodeTrySql},
      {kConsumeCode, kConsumeCodeSql},
      {kWithdrawCode, kWithdrawCodeSql},
      {kPurgeCodes, kPurgeCodesSql},
      {kInsertUser, kInsertUserSql},
      {kUserById, kUserByIdSql},
      {kLockUser, kLockUserSql},
      {kUserByPhone, kUserByPhoneSql},
      {kUserByHandle, kUserByHandleSql},
      {kUsersByIds, kUsersByIdsSql},
      {kSetDisplayName, kSetDisplayNameSql},
      {kSetProfile, kSetProfileSql},
      {kSetPhoneLookup, kSetPhoneLookupSql},
      {kQrSecret, kQrSecretSql},
      {kSetQrSecret, kSetQrSecretSql},
      {kSetHandle, kSetHandleSql},
      {kSetHandleCase, kSetHandleCaseSql},
      {kClaimHandle, kClaimHandleSql},
      {kReleaseHandle, kReleaseHandleSql},
      {kUpsertRequest, kUpsertRequestSql},
      {kLockLiveRequest, kLockLiveRequestSql},
      {kDeleteRequest, kDeleteRequestSql},
      {kLiveRequestsTo, kLiveRequestsToSql},
      {kLiveRequestsFrom, kLiveRequestsFromSql},
      {kHasEdge, kHasEdgeSql},
      {kEdgeCount, kEdgeCountSql},
      {kInsertEdge, kInsertEdgeSql},
      {kDeleteEdge, kDeleteEdgeSql},
      {kMarkPeerRemoved, kMarkPeerRemovedSql},
      {kSetRemark, kSetRemarkSql},
      {kEdgesOf, kEdgesOfSql},
      {kEdgesAmong, kEdgesAmongSql},
      {kFriendsAmong, kFriendsAmongSql},
      {kLabelsOf, kLabelsOfSql},
      {kLabelCount, kLabelCountSql},
      {kLabelNamed, kLabelNamedSql},
      {kInsertLabel, kInsertLabelSql},
      {kRenameLabel, kRenameLabelSql},
      {kClearLabel, kClearLabelSql},
      {kFillLabel, kFillLabelSql},
      {kDeleteLabel, kDeleteLabelSql},
      {kRemoveFromLabels, kRemoveFromLabelsSql},
      {kDeleteLabelsOf, kDeleteLabelsOfSql},
      {kBlock, kBlockSql},
      {kUnblock, kUnblockSql},
      {kBlockedAmong, kBlockedAmongSql},
      {kBlockedBy, kBlockedBySql},
      {kDeleteBlocksOf, kDeleteBlocksOfSql},
      {kDeleteUser, kDeleteUserSql},
      {kDeleteEdgesOf, kDeleteEdgesOfSql},
      {kDeleteRequestsTo, kDeleteRequestsToSql},
      {kSetPhone, kSetPhoneSql},
      {kLockPhone, kLockPhoneSql},
      {kPhoneOwner, kPhoneOwnerSql},
      {kClaimPhone, kClaimPhoneSql},
      {kReleasePhone, kReleasePhoneSql},
      {kPurgePhones, kPurgePhonesSql},
      {kDeleteDeviceSession, kDeleteDeviceSessionSql},
      {kPutSession, kPutSessionSql},
      {kSessionOf, kSessionOfSql},
      {kLiveSessions, kLiveSessionsSql},
      {kRefreshSession, kRefreshSessionSql},
      {kTouchSession, kTouchSessionSql},
      {kDeleteSession, kDeleteSessionSql},
      {kDeleteExpiredSessions, kDeleteExpiredSessionsSql},
      {kTrimSessions, kTrimSessionsSql},
  };
  for (const auto& [name, sql] : statements) c.prepare(name, sql);
}

namespace store {

bool PutCode(pqxx::work& t, const std::string& phone, const std::string& code_hash, int64_t expires_ms, int64_t now_ms,
             int64_t resend_cutoff_ms, int64_t day_cutoff_ms, uint32_t max_codes_per_day) {
  return !t.exec_prepared(kPutCode, phone, code_hash, expires_ms, now_ms, resend_cutoff_ms, day_cutoff_ms,
                          static_cast<int64_t>(max_codes_per_day))
              .empty();
}

std::optional<CodeRow> GetCode(pqxx::work& t, const std::string& phone) {
  auto r = t.exec_prepared(kGetCode, phone);
  if (r.empty()) return std::nullopt;
  return ToCode(r[0]);
}

std::optional<CodeRow> LockCode(pqxx::work& t, const std::string& phone) {
  auto r = t.exec_prepared(kLockCode, phone);
  if (r.empty()) return std::nullopt;
  return ToCode(r[0]);
}

void AddCodeTry(pqxx::work& t, const std::string& phone) { t.exec_prepared(kAddCodeTry, phone); }

void ConsumeCode(pqxx::work& t, const std::string& phone) { t.exec_prepared(kConsumeCode, phone); }

void WithdrawCode(pqxx::work& t, const std::string& phone, const std::string& code_hash) {
  t.exec_prepared(kWithdrawCode, phone, code_hash);
}

int PurgeExpiredCodes(pqxx::work& t, int64_t cutoff_ms, int max_rows) {
  return static_cast<int>(t.exec_prepared(kPurgeCodes, cutoff_ms, max_rows).affected_rows());
}

bool InsertUser(pqxx::work& t, const UserRow& u) {
  return !t.exec_prepared(kInsertUser, Id(u.id), u.phone, u.handle, LowerAscii(u.handle), u.display_name, u.created_ms)
              .empty();
}

std::optional<UserRow> UserById(pqxx::work& t, uint64_t id) { return OneUser(t.exec_prepared(kUserById, Id(id))); }

std::optional<UserRow> LockUser(pqxx::work& t, uint64_t id) { return OneUser(t.exec_prepared(kLockUser, Id(id))); }

std::optional<UserRow> UserByPhone(pqxx::work& t, const std::string& phone) {
  return OneUser(t.exec_prepared(kUserByPhone, phone));
}

std::optional<UserRow> UserByHandleLower(pqxx::work& t, const std::string& handle_lower) {
  return OneUser(t.exec_prepared(kUserByHandle, handle_lower));
}

bool SetHandle(pqxx::work& t, uint64_t id, const std::string& handle, int64_t now_ms) {
  return !t.exec_prepared(kSetHandle, Id(id), handle, LowerAscii(handle), now_ms).empty();
}

bool SetHandleCase(pqxx::work& t, uint64_t id, const std::string& handle) {
  return !t.exec_prepared(kSetHandleCase, Id(id), handle, LowerAscii(handle)).empty();
}

bool ClaimHandle(pqxx::work& t, const std::string& handle_lower, uint64_t user, int64_t now_ms) {
  return !t.exec_prepared(kClaimHandle, handle_lower, Id(user), now_ms).empty();
}

void ReleaseHandle(pqxx::work& t, const std::string& handle_lower, uint64_t user, int64_t hold_until_ms) {
  t.exec_prepared(kReleaseHandle, handle_lower, Id(user), hold_until_ms);
}

std::vector<UserRow> UsersByIds(pqxx::work& t, const std::vector<uint64_t>& ids) {
  std::vector<UserRow> out;
  if (ids.empty()) return out;
  auto r = t.exec_prepared(kUsersByIds, BigintArray(ids));
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(ToUser(row));
  return out;
}

bool SetProfile(pqxx::work& t, uint64_t id, const std::string& name, const std::string& avatar_media_id,
                const std::string& whats_up) {
  return !t.exec_prepared(kSetProfile, Id(id), name, avatar_media_id, whats_up).empty();
}

std::optional<std::string> QrSecret(pqxx::work& t, uint64_t id) {
  auto r = t.exec_prepared(kQrSecret, Id(id));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

bool SetQrSecret(pqxx::work& t, uint64_t id, const std::string& secret, const std::string& expected) {
  return !t.exec_prepared(kSetQrSecret, Id(id), secret, expected).empty();
}

bool SetPhoneLookup(pqxx::work& t, uint64_t id, bool allowed) {
  return !t.exec_prepared(kSetPhoneLookup, Id(id), allowed).empty();
}

bool SetDisplayName(pqxx::work& t, uint64_t id, const std::string& name) {
  return !t.exec_prepared(kSetDisplayName, Id(id), name).empty();
}

std::vector<uint64_t> DeleteUser(pqxx::work& t, uint64_t id, int64_t now_ms) {
  if (t.exec_prepared(kDeleteUser, Id(id), now_ms).empty()) return {};
  t.exec_prepared(kDeleteEdgesOf, Id(id));
  t.exec_prepared(kDeleteBlocksOf, Id(id));
  t.exec_prepared(kDeleteLabelsOf, Id(id));
  t.exec_prepared(kDeleteRequestsTo, Id(id));
  return DeleteSessions(t, id, 0);
}

bool SetPhone(pqxx::work& t, uint64_t id, const std::string& phone) {
  return !t.exec_prepared(kSetPhone, Id(id), phone).empty();
}

namespace {
std::optional<PhoneRow> OnePhone(const pqxx::result& r) {
  if (r.empty()) return std::nullopt;
  return PhoneRow{static_cast<uint64_t>(r[0][0].as<int64_t>()), r[0][1].as<int64_t>()};
}
}  // namespace

std::optional<PhoneRow> LockPhone(pqxx::work& t, const std::string& phone) {
  return OnePhone(t.exec_prepared(kLockPhone, phone));
}

std::optional<PhoneRow> PhoneOwner(pqxx::work& t, const std::string& phone) {
  return OnePhone(t.exec_prepared(kPhoneOwner, phone));
}

bool ClaimPhone(pqxx::work& t, const std::string& phone, uint64_t user, int64_t now_ms) {
  return !t.exec_prepared(kClaimPhone, phone, Id(user), now_ms).empty();
}

void ReleasePhone(pqxx::work& t, const std::string& phone, uint64_t user, int64_t free_from_ms) {
  t.exec_prepared(kReleasePhone, phone, Id(user), free_from_ms);
}

int PurgeFreePhones(pqxx::work& t, int64_t cutoff_ms, int max_rows) {
  return static_cast<int>(t.exec_prepared(kPurgePhones, cutoff_ms, max_rows).affected_rows());
}

uint64_t PutSession(pqxx::work& t, const SessionRow& s, bool* inserted) {
  const auto old = Ids(t.exec_prepared(kDeleteDeviceSession, Id(s.user_id), s.device_id));
  *inserted = !t.exec_prepared(kPutSession, Id(s.user_id), Id(s.session_id), s.device_id, s.device_name, s.platform,
                               s.created_ms, s.last_active_ms, s.expires_ms)
                   .empty();
  return old.empty() ? 0 : old[0];
}

std::optional<SessionRow> SessionOf(pqxx::work& t, uint64_t user, uint64_t session_id) {
  auto r = t.exec_prepared(kSessionOf, Id(user), Id(session_id));
  if (r.empty()) return std::nullopt;
  return ToSession(r[0]);
}

std::vector<SessionRow> LiveSessionsOf(pqxx::work& t, uint64_t user, int64_t now_ms) {
  auto r = t.exec_prepared(kLiveSessions, Id(user), now_ms);
  std::vector<SessionRow> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(ToSession(row));
  return out;
}

uint32_t RefreshSession(pqxx::work& t, uint64_t user, uint64_t session_id, uint32_t gen, int64_t expires_ms,
                        int64_t now_ms) {
  auto r = t.exec_prepared(kRefreshSession, Id(user), Id(session_id), static_cast<int64_t>(gen), expires_ms, now_ms);
  return r.empty() ? 0 : static_cast<uint32_t>(r[0][0].as<int64_t>());
}

void TouchSession(pqxx::work& t, uint64_t user, uint64_t session_id, int64_t now_ms, int64_t stale_before_ms) {
  t.exec_prepared(kTouchSession, Id(user), Id(session_id), now_ms, stale_before_ms);
}

std::vector<uint64_t> DeleteSessions(pqxx::work& t, uint64_t user, uint64_t session_id) {
  return Ids(t.exec_prepared(kDeleteSession, Id(user), Id(session_id)));
}

std::vector<uint64_t> TrimSessions(pqxx::work& t, uint64_t user, int64_t now_ms, uint32_t keep) {
  t.exec_prepared(kDeleteExpiredSessions, Id(user), now_ms);
  return Ids(t.exec_prepared(kTrimSessions, Id(user), static_cast<int64_t>(keep)));
}

bool UpsertRequest(pqxx::work& t, const RequestRow& r, int64_t renotify_before_ms) {
  auto res = t.exec_prepared1(kUpsertRequest, Id(r.to_user), Id(r.from_user), r.greeting, r.source, r.created_ms,
                              renotify_before_ms);
  return res[0].as<bool>();
}

std::optional<RequestRow> LockLiveRequest(pqxx::work& t, uint64_t to, uint64_t from, int64_t min_created_ms) {
  auto r = t.exec_prepared(kLockLiveRequest, Id(to), Id(from), min_created_ms);
  if (r.empty()) return std::nullopt;
  return ToRequest(r[0]);
}

void DeleteRequest(pqxx::work& t, uint64_t to, uint64_t from) { t.exec_prepared(kDeleteRequest, Id(to), Id(from)); }

std::vector<RequestRow> LiveRequestsTo(pqxx::work& t, uint64_t to, int64_t min_created_ms, int limit) {
  auto r = t.exec_prepared(kLiveRequestsTo, Id(to), min_created_ms, limit);
  std::vector<RequestRow> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(ToRequest(row));
  return out;
}

std::vector<RequestRow> LiveRequestsFrom(pqxx::work& t, uint64_t from, int64_t min_created_ms, int limit) {
  auto r = t.exec_prepared(kLiveRequestsFrom, Id(from), min_created_ms, limit);
  std::vector<RequestRow> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(ToRequest(row));
  return out;
}

bool HasEdge(pqxx::work& t, uint64_t user, uint64_t friend_id) {
  return !t.exec_prepared(kHasEdge, Id(user), Id(friend_id)).empty();
}

int64_t EdgeCount(pqxx::work& t, uint64_t user) { return t.exec_prepared(kEdgeCount, Id(user))[0][0].as<int64_t>(); }

int64_t PutEdge(pqxx::work& t, uint64_t user, uint64_t friend_id, int64_t since_ms) {
  return t.exec_prepared(kInsertEdge, Id(user), Id(friend_id), since_ms)[0][0].as<int64_t>();
}

bool DeleteEdge(pqxx::work& t, uint64_t user, uint64_t friend_id) {
  return !t.exec_prepared(kDeleteEdge, Id(user), Id(friend_id)).empty();
}

void MarkPeerRemoved(pqxx::work& t, uint64_t user, uint64_t friend_id) {
  t.exec_prepared(kMarkPeerRemoved, Id(user), Id(friend_id));
}

bool SetRemark(pqxx::work& t, uint64_t user, uint64_t friend_id, const std::string& remark) {
  return !t.exec_prepared(kSetRemark, Id(user), Id(friend_id), remark).empty();
}

namespace {
std::vector<EdgeRow> ToEdges(const pqxx::result& r) {
  std::vector<EdgeRow> out;
  out.reserve(r.size());
  for (const auto& row : r)
    out.push_back({static_cast<uint64_t>(row[0].as<int64_t>()), row[1].as<int64_t>(), row[2].as<std::string>(),
                   row[3].as<bool>()});
  return out;
}
std::vector<uint64_t> ToIds(const pqxx::result& r) {
  std::vector<uint64_t> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(static_cast<uint64_t>(row[0].as<int64_t>()));
  return out;
}
}  // namespace

std::vector<EdgeRow> EdgesOf(pqxx::work& t, uint64_t user, int limit) {
  return ToEdges(t.exec_prepared(kEdgesOf, Id(user), limit));
}

std::vector<EdgeRow> EdgesAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids) {
  if (ids.empty()) return {};
  return ToEdges(t.exec_prepared(kEdgesAmong, Id(user), BigintArray(ids)));
}

namespace {
// "{1,2,3}" (PostgreSQL's text form of a bigint[]) -> ids.
std::vector<uint64_t> ParseBigintArray(const std::string& s) {
  std::vector<uint64_t> out;
  uint64_t v = 0;
  bool any = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<uint64_t>(c - '0');
      any = true;
    } else if (any) {
      out.push_back(v);
      v = 0;
      any = false;
    }
  }
  return out;
}
}  // namespace

std::vector<LabelRow> LabelsOf(pqxx::work& t, uint64_t user) {
  std::vector<LabelRow> out;
  for (const auto& row : t.exec_prepared(kLabelsOf, Id(user)))
    out.push_back({static_cast<uint64_t>(row[0].as<int64_t>()), row[1].as<std::string>(),
                   ParseBigintArray(row[2].as<std::string>())});
  return out;
}

int64_t LabelCount(pqxx::work& t, uint64_t user) { return t.exec_prepared(kLabelCount, Id(user))[0][0].as<int64_t>(); }

std::optional<uint64_t> LabelNamed(pqxx::work& t, uint64_t user, const std::string& name) {
  auto r = t.exec_prepared(kLabelNamed, Id(user), name);
  if (r.empty()) return std::nullopt;
  return static_cast<uint64_t>(r[0][0].as<int64_t>());
}

bool InsertLabel(pqxx::work& t, uint64_t user, uint64_t label_id, const std::string& name, int64_t now_ms) {
  return !t.exec_prepared(kInsertLabel, Id(user), Id(label_id), name, now_ms).empty();
}

bool RenameLabel(pqxx::work& t, uint64_t user, uint64_t label_id, const std::string& name) {
  return !t.exec_prepared(kRenameLabel, Id(user), Id(label_id), name).empty();
}

void SetLabelMembers(pqxx::work& t, uint64_t user, uint64_t label_id, const std::vector<uint64_t>& ids) {
  t.exec_prepared(kClearLabel, Id(user), Id(label_id));
  if (!ids.empty()) t.exec_prepared(kFillLabel, Id(user), Id(label_id), BigintArray(ids));
}

bool DeleteLabel(pqxx::work& t, uint64_t user, uint64_t label_id) {
  return !t.exec_prepared(kDeleteLabel, Id(user), Id(label_id)).empty();
}

void RemoveFromLabels(pqxx::work& t, uint64_t user, uint64_t friend_id) {
  t.exec_prepared(kRemoveFromLabels, Id(user), Id(friend_id));
}

void Block(pqxx::work& t, uint64_t user, uint64_t blocked_id, int64_t now_ms) {
  t.exec_prepared(kBlock, Id(user), Id(blocked_id), now_ms);
}

bool Unblock(pqxx::work& t, uint64_t user, uint64_t blocked_id) {
  return !t.exec_prepared(kUnblock, Id(user), Id(blocked_id)).empty();
}

std::vector<uint64_t> BlockedAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids) {
  if (ids.empty()) return {};
  return ToIds(t.exec_prepared(kBlockedAmong, Id(user), BigintArray(ids)));
}

std::vector<uint64_t> BlockedBy(pqxx::work& t, uint64_t user, int limit) {
  return ToIds(t.exec_prepared(kBlockedBy, Id(user), limit));
}

std::vector<uint64_t> FriendsAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids) {
  std::vector<uint64_t> out;
  if (ids.empty()) return out;
  return ToIds(t.exec_prepared(kFriendsAmong, Id(user), BigintArray(ids)));
}

}  // namespace store
}  // namespace chat::account
