#pragma once
// PostgreSQL access of account-service: every statement is a named prepared statement declared in
// account_store.cc and registered on each pooled connection by PrepareAccountStatements (the PgPool
// prepare callback). The functions are stateless and run inside the caller's transaction (see
// chat::WithTransaction); they throw libpqxx errors, which WithTransaction maps to statuses.
// Times cross this boundary as unix milliseconds from the service's clock.
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace chat::account {

// The PgPool prepare callback.
void PrepareAccountStatements(pqxx::connection& c);

struct UserRow {
  uint64_t id = 0;
  std::string phone;
  std::string handle;
  std::string display_name;
  int64_t created_ms = 0;
  int64_t handle_changed_ms = 0;  // when the user last set a handle; 0 = never
  int64_t deleted_ms = 0;         // when the account was deleted; 0 = it is not
  std::string avatar_media_id;    // "" = none
  std::string whats_up;
  bool allow_phone_lookup = false;  // others may find the account by its phone number
};

struct PhoneRow {
  uint64_t user_id = 0;
  int64_t free_from_ms = 0;  // 0: in use; else released, may sign up again from then
};

struct CodeRow {
  std::string code_hash;
  int64_t expires_ms = 0;
  int64_t sent_ms = 0;
  int tries = 0;             // wrong guesses of this code
  int64_t day_start_ms = 0;  // start of the phone's current 24 h window
  int day_count = 0;         // codes sent in that window
};

struct SessionRow {
  uint64_t user_id = 0;
  uint64_t session_id = 0;
  uint32_t token_gen = 1;
  std::string device_id;
  std::string device_name;
  std::string platform;
  int64_t created_ms = 0;
  int64_t last_active_ms = 0;
  int64_t expires_ms = 0;
};

struct RequestRow {
  uint64_t to_user = 0;
  uint64_t from_user = 0;
  std::string greeting;
  int source = 0;
  int64_t created_ms = 0;
};

struct LabelRow {
  uint64_t label_id = 0;
  std::string name;
  std::vector<uint64_t> member_ids;  // ascending
};

struct EdgeRow {
  uint64_t friend_id = 0;
  int64_t since_ms = 0;
  std::string remark;         // the owner's private name for the friend ("" = none)
  bool peer_removed = false;  // the friend deleted the owner (one-way delete); the edge stays listed
};

namespace store {

// --- phone codes
// One row per phone: its current code (if any) and its 24 h window counters. The window starts with
// the first code after the previous window ended (a window that started at or before day_cutoff_ms
// is over).
// Stores a fresh code (tries = 0) unless the phone's current code was sent after resend_cutoff_ms or
// max_codes_per_day codes were already sent in the current window; counts the code in the window
// (starting a new one if the last is over). One statement, so atomic against concurrent requests.
// Returns false when refused (GetCode then tells which rule).
bool PutCode(pqxx::work& t, const std::string& phone, const std::string& code_hash, int64_t expires_ms, int64_t now_ms,
             int64_t resend_cutoff_ms, int64_t day_cutoff_ms, uint32_t max_codes_per_day);
std::optional<CodeRow> GetCode(pqxx::work& t, const std::string& phone);
// Same, with the row locked until the transaction ends (serializes verifications of one phone).
std::optional<CodeRow> LockCode(pqxx::work& t, const std::string& phone);
// Counts a wrong guess against the code (code_max_tries of them kill it).
void AddCodeTry(pqxx::work& t, const std::string& phone);
// Uses the code up: it no longer verifies and the resend interval no longer applies; the window's
// counters stay.
void ConsumeCode(pqxx::work& t, const std::string& phone);
// Takes back a code that could not be sent (only if it is still code_hash): like ConsumeCode, and it
// no longer counts towards the daily cap.
void WithdrawCode(pqxx::work& t, const std::string& phone, const std::string& code_hash);
// Deletes at most max_rows rows whose code expired before cutoff_ms and whose window started at or
// before it (pass now - 24 h: the counters of a finished window are no longer needed). Returns how
// many were deleted.
int PurgeExpiredCodes(pqxx::work& t, int64_t cutoff_ms, int max_rows);

// --- users
// Inserts unless the id, phone or handle is taken (never throws a unique violation). Returns true
// if inserted; on false the caller checks which one collided.
bool InsertUser(pqxx::work& t, const UserRow& u);
std::optional<UserRow> UserById(pqxx::work& t, uint64_t id);
// Like UserById, but locks the user's row: serializes changes to that user's friend edges.
std::optional<UserRow> LockUser(pqxx::work& t, uint64_t id);
// The account row carrying this phone (users.phone, a copy: phones is the authority).
std::optional<UserRow> UserByPhone(pqxx::work& t, const std::string& phone);
// Records that the account was deleted at now_ms: phone, handle and name go (handle_lower becomes
// "~<id>", which no lookup can match); its sessions, friendships and pending requests to it are
// deleted. Returns the ids of the sessions deleted.
std::vector<uint64_t> DeleteUser(pqxx::work& t, uint64_t id, int64_t now_ms);
bool SetPhone(pqxx::work& t, uint64_t id, const std::string& phone);

// --- phone numbers (on the shard ShardOfPhone(phone), for accounts of any shard)
// The number's row, locked until the transaction ends.
std::optional<PhoneRow> LockPhone(pqxx::work& t, const std::string& phone);
// The same without a lock (a read).
std::optional<PhoneRow> PhoneOwner(pqxx::work& t, const std::string& phone);
// The number becomes user's unless another account has it in use or it is released and not yet
// free. Idempotent for the holder. One statement: of concurrent claims exactly one wins.
bool ClaimPhone(pqxx::work& t, const std::string& phone, uint64_t user, int64_t now_ms);
// The holder's number is free for a new sign-up from free_from_ms (only while in use).
void ReleasePhone(pqxx::work& t, const std::string& phone, uint64_t user, int64_t free_from_ms);
// Deletes up to max_rows numbers free since before cutoff_ms; returns how many.
int PurgeFreePhones(pqxx::work& t, int64_t cutoff_ms, int max_rows);
std::optional<UserRow> UserByHandleLower(pqxx::work& t, const std::string& handle_lower);
// Users among `ids` (unknown ids omitted, order unspecified).
std::vector<UserRow> UsersByIds(pqxx::work& t, const std::vector<uint64_t>& ids);
bool SetDisplayName(pqxx::work& t, uint64_t id, const std::string& name);
// Display name, avatar and what's up at once (a live account only).
bool SetProfile(pqxx::work& t, uint64_t id, const std::string& name, const std::string& avatar_media_id,
                const std::string& whats_up);
bool SetPhoneLookup(pqxx::work& t, uint64_t id, bool allowed);
// The live account's QR secret ("" = none yet); nullopt when there is no live account.
std::optional<std::string> QrSecret(pqxx::work& t, uint64_t id);
// Replaces the QR secret when it is still `expected`; false otherwise (or no live account).
bool SetQrSecret(pqxx::work& t, uint64_t id, const std::string& secret, const std::string& expected);
// The user's handle becomes `handle` (its lower case too; the unique index refuses one another user
// of this shard has, which a claim has ruled out), changed at now_ms. False: no such user.
bool SetHandle(pqxx::work& t, uint64_t id, const std::string& handle, int64_t now_ms);
// Only the letter case of the user's current handle; false unless LowerAscii(handle) is it.
bool SetHandleCase(pqxx::work& t, uint64_t id, const std::string& handle);

// --- handle claims (stored on the shard ShardOfHandle(handle_lower), for users of any shard)
// Claims the handle for `user` unless another user holds it (in use, or released less than its hold
// ago). Idempotent for the holder. One statement: of concurrent claims exactly one wins.
bool ClaimHandle(pqxx::work& t, const std::string& handle_lower, uint64_t user, int64_t now_ms);
// The holder lets the handle go: others may claim it from hold_until_ms. No-op for anyone else.
void ReleaseHandle(pqxx::work& t, const std::string& handle_lower, uint64_t user, int64_t hold_until_ms);

// --- sessions (on the user's shard; one per device id)
// Stores s, replacing the user's session on the same device id. Returns the replaced session's id
// (0: none). False in *inserted when s.session_id is taken (the caller draws another).
uint64_t PutSession(pqxx::work& t, const SessionRow& s, bool* inserted);
std::optional<SessionRow> SessionOf(pqxx::work& t, uint64_t user, uint64_t session_id);
// The user's sessions that expire after now_ms, most recently active first.
std::vector<SessionRow> LiveSessionsOf(pqxx::work& t, uint64_t user, int64_t now_ms);
// Moves a live session (token_gen == gen, not expired at now_ms) to gen + 1 with a new expiry.
// Returns the new generation, 0 when the session is gone, expired or gen is not its current one.
uint32_t RefreshSession(pqxx::work& t, uint64_t user, uint64_t session_id, uint32_t gen, int64_t expires_ms,
                        int64_t now_ms);
// Records activity at now_ms if the last was before stale_before_ms (a read, not a write, otherwise).
void TouchSession(pqxx::work& t, uint64_t user, uint64_t session_id, int64_t now_ms, int64_t stale_before_ms);
// Deletes one session (session_id != 0) or all of the user's; returns the ids deleted.
std::vector<uint64_t> DeleteSessions(pqxx::work& t, uint64_t user, uint64_t session_id);
// Deletes the user's sessions expired at now_ms and then, beyond the `keep` most recently active,
// the idlest; returns the ids deleted beyond `keep` (expired ones need no revocation).
std::vector<uint64_t> TrimSessions(pqxx::work& t, uint64_t user, int64_t now_ms, uint32_t keep);

// --- friend requests (stored on the receiver's shard)
// Stores or refreshes the request. True when the receiver should be told (a friendRequest event):
// the request is new, or its last notice is at or before renotify_before_ms (which then becomes
// r.created_ms); false for a re-send inside that window.
bool UpsertRequest(pqxx::work& t, const RequestRow& r, int64_t renotify_before_ms);
// The request from `from` to `to` if created at or after min_created_ms; locked.
std::optional<RequestRow> LockLiveRequest(pqxx::work& t, uint64_t to, uint64_t from, int64_t min_created_ms);
void DeleteRequest(pqxx::work& t, uint64_t to, uint64_t from);
// Live requests to `to` from users who are not yet its friends, newest first, at most `limit`.
std::vector<RequestRow> LiveRequestsTo(pqxx::work& t, uint64_t to, int64_t min_created_ms, int limit);
// Live requests stored here that `from` sent (to this shard's users), newest first, at most `limit`.
std::vector<RequestRow> LiveRequestsFrom(pqxx::work& t, uint64_t from, int64_t min_created_ms, int limit);

// --- friendships (one edge per direction, on the shard of user_id)
bool HasEdge(pqxx::work& t, uint64_t user, uint64_t friend_id);
int64_t EdgeCount(pqxx::work& t, uint64_t user);
// Inserts the edge unless present, and clears peer_removed (a reconnection). Returns the stored
// since (existing edges keep theirs).
int64_t PutEdge(pqxx::work& t, uint64_t user, uint64_t friend_id, int64_t since_ms);
// True when there was an edge.
bool DeleteEdge(pqxx::work& t, uint64_t user, uint64_t friend_id);
// The friend deleted `user`: user's edge (if any) keeps listing them with peer_removed set.
void MarkPeerRemoved(pqxx::work& t, uint64_t user, uint64_t friend_id);
// False when there is no such edge. "" clears the remark.
bool SetRemark(pqxx::work& t, uint64_t user, uint64_t friend_id, const std::string& remark);
std::vector<EdgeRow> EdgesOf(pqxx::work& t, uint64_t user, int limit);
// user's edges to those of `ids` that it has (any order).
std::vector<EdgeRow> EdgesAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids);
// Which of `ids` are friends of `user` both ways (user's edge, without peer_removed).
std::vector<uint64_t> FriendsAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids);

// --- labels (on the owner's shard)
// The user's labels with their members, oldest first.
std::vector<LabelRow> LabelsOf(pqxx::work& t, uint64_t user);
int64_t LabelCount(pqxx::work& t, uint64_t user);
// The user's label with this exact name, if any.
std::optional<uint64_t> LabelNamed(pqxx::work& t, uint64_t user, const std::string& name);
// False when the id is taken (the caller draws another).
bool InsertLabel(pqxx::work& t, uint64_t user, uint64_t label_id, const std::string& name, int64_t now_ms);
// False when there is no such label.
bool RenameLabel(pqxx::work& t, uint64_t user, uint64_t label_id, const std::string& name);
// The label's members become exactly `ids`.
void SetLabelMembers(pqxx::work& t, uint64_t user, uint64_t label_id, const std::vector<uint64_t>& ids);
// False when there is no such label (its members go with it).
bool DeleteLabel(pqxx::work& t, uint64_t user, uint64_t label_id);
// friend_id leaves every label of user's.
void RemoveFromLabels(pqxx::work& t, uint64_t user, uint64_t friend_id);

// --- blocks (on the blocker's shard)
void Block(pqxx::work& t, uint64_t user, uint64_t blocked_id, int64_t now_ms);
// True when there was a block.
bool Unblock(pqxx::work& t, uint64_t user, uint64_t blocked_id);
// Which of `ids` user has blocked.
std::vector<uint64_t> BlockedAmong(pqxx::work& t, uint64_t user, const std::vector<uint64_t>& ids);
// Everyone user has blocked, oldest block first, at most `limit`.
std::vector<uint64_t> BlockedBy(pqxx::work& t, uint64_t user, int limit);

}  // namespace store
}  // namespace chat::account
