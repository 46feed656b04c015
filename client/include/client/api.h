#pragma once
// Convenience layer over Connection: one function per request kind, the dev code file, and the
// sign-up / log-in flows an end-to-end test or the CLI needs. No Beast here.
//
// Every request function sends one ClientFrame on `conn` and returns its Reply (never throws; a
// timeout or a closed connection come back as DEADLINE_EXCEEDED / UNAVAILABLE replies, see
// Connection::Call). Thread-safety is Connection's: any thread may call these concurrently.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/v1/client.pb.h"
#include "client/connection.h"

namespace chat::client {

// An authenticated connection and who it is authenticated as.
struct Session {
  std::unique_ptr<Connection> conn;
  v1::Account account;
  std::string token;

  uint64_t user_id() const { return account.profile().user_id(); }
  const std::string& handle() const { return account.profile().handle(); }
};

// ---- the development code sender's file ------------------------------------------------------

struct CodeLine {
  int64_t unix_ms = 0;
  std::string code;
};
// The newest line "<unix_ms> <phone> <code>" of `codes_file` for `phone` (newest = last in the
// file). nullopt if the file is missing or has no line for that phone. Malformed lines are skipped.
std::optional<CodeLine> ReadLatestCodeLine(const std::string& codes_file, const std::string& phone);
// Just the code of ReadLatestCodeLine, or "" if there is none.
std::string ReadLatestCode(const std::string& codes_file, const std::string& phone);
// Polls `codes_file` until a line for `phone` stamped at or after `not_before_unix_ms` appears
// (use the time just before request_code, so an older code is never taken). Returns "" when
// `timeout` passes first.
std::string WaitForCode(const std::string& codes_file, const std::string& phone, int64_t not_before_unix_ms,
                        std::chrono::milliseconds timeout = kDefaultTimeout);

// Wall-clock milliseconds since the Unix epoch (the clock the code sender stamps lines with).
int64_t UnixMillis();
// A fresh random client_msg_id (32 hex chars).
std::string NewClientMsgId();
// A fresh random device id, "cli-" + 16 hex chars.
std::string NewDeviceId();
// A random, syntactically valid E.164 test phone number: "+1555" followed by 7 digits.
std::string RandomTestPhone();
// "STATUS_NAME: message", for printing a failed reply.
std::string DescribeError(const v1::Reply& reply);

// ---- one function per request ------------------------------------------------------------------

v1::Reply RequestCode(Connection& conn, const std::string& phone, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply SignUp(Connection& conn, const std::string& phone, const std::string& code, const std::string& display_name,
                 const std::string& device_id = "", std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply LogIn(Connection& conn, const std::string& phone, const std::string& code, const std::string& device_id = "",
                std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply Authenticate(Connection& conn, const std::string& token, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply RefreshToken(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply GetMe(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply SetDisplayName(Connection& conn, const std::string& display_name,
                         std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply SetHandle(Connection& conn, const std::string& handle, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply LookupUser(Connection& conn, const std::string& handle, std::chrono::milliseconds timeout = kDefaultTimeout);
// Finds a user by phone number (only one who allows it): reply profile.
v1::Reply LookupPhone(Connection& conn, const std::string& phone, std::chrono::milliseconds timeout = kDefaultTimeout);
// Replaces the caller's public profile (display name, avatar media id, what's up): reply account.
v1::Reply SetProfile(Connection& conn, const std::string& display_name, const std::string& avatar_media_id,
                     const std::string& whats_up, std::chrono::milliseconds timeout = kDefaultTimeout);
// Whether others may find the caller by phone number: reply account.
v1::Reply SetPrivacy(Connection& conn, bool allow_phone_lookup, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListDevices(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
// session_id 0 = this device; all_devices = every one.
v1::Reply LogOut(Connection& conn, uint64_t session_id = 0, bool all_devices = false,
                 std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply DeleteAccount(Connection& conn, const std::string& code, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ChangePhone(Connection& conn, const std::string& new_phone, const std::string& code,
                      const std::string& new_code, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply GetProfiles(Connection& conn, const std::vector<uint64_t>& user_ids,
                      std::chrono::milliseconds timeout = kDefaultTimeout);

v1::Reply SendFriendRequest(Connection& conn, uint64_t user_id, const std::string& greeting = "",
                            v1::FriendRequestSource source = v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH,
                            std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply AcceptFriendRequest(Connection& conn, uint64_t user_id, std::chrono::milliseconds timeout = kDefaultTimeout);
// Pending requests to you, or (outgoing) the ones you sent.
v1::Reply ListFriendRequests(Connection& conn, bool outgoing = false,
                             std::chrono::milliseconds timeout = kDefaultTimeout);
// Your personal QR code's token (rotate: a new one; the old ones stop working): reply qr_code.
v1::Reply MyQrCode(Connection& conn, bool rotate = false, std::chrono::milliseconds timeout = kDefaultTimeout);
// The user a personal QR code's token names: reply profile.
v1::Reply ResolveQrCode(Connection& conn, const std::string& token,
                        std::chrono::milliseconds timeout = kDefaultTimeout);
// Creates (label_id 0) or replaces a label: reply label.
v1::Reply SetLabel(Connection& conn, uint64_t label_id, const std::string& name,
                   const std::vector<uint64_t>& member_ids, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply DeleteLabel(Connection& conn, uint64_t label_id, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListLabels(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
// Drops a pending request from user_id without telling them: reply empty.
v1::Reply IgnoreFriendRequest(Connection& conn, uint64_t user_id, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListContacts(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
// A private remark name for a contact ("" clears it): reply contact.
v1::Reply SetRemark(Connection& conn, uint64_t user_id, const std::string& remark,
                    std::chrono::milliseconds timeout = kDefaultTimeout);
// Blocks (or unblocks) a user: reply empty.
v1::Reply BlockUser(Connection& conn, uint64_t user_id, bool blocked,
                    std::chrono::milliseconds timeout = kDefaultTimeout);
// Deletes a contact, one way: reply empty.
v1::Reply DeleteContact(Connection& conn, uint64_t user_id, std::chrono::milliseconds timeout = kDefaultTimeout);

v1::Reply SendText(Connection& conn, const std::string& conversation_id, const std::string& client_msg_id,
                   const std::string& text, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply SendContent(Connection& conn, const std::string& conversation_id, const std::string& client_msg_id,
                      const v1::MessageContent& content, std::chrono::milliseconds timeout = kDefaultTimeout);
// Ascending page of messages with seq > after_seq (limit 0 = server default).
v1::Reply GetHistory(Connection& conn, const std::string& conversation_id, uint64_t after_seq = 0, uint32_t limit = 0,
                     std::chrono::milliseconds timeout = kDefaultTimeout);
// The `limit` messages before `before_seq` (0 = the newest), returned in ascending order.
v1::Reply GetHistoryBefore(Connection& conn, const std::string& conversation_id, uint64_t before_seq, uint32_t limit,
                           std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListConversations(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply MarkRead(Connection& conn, const std::string& conversation_id, uint64_t seq,
                   std::chrono::milliseconds timeout = kDefaultTimeout);

v1::Reply CreateGroup(Connection& conn, const std::string& name, const std::vector<uint64_t>& member_ids,
                      std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply AddGroupMembers(Connection& conn, uint64_t group_id, const std::vector<uint64_t>& user_ids,
                          std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply LeaveGroup(Connection& conn, uint64_t group_id, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListGroupMembers(Connection& conn, uint64_t group_id, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListMyGroups(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
// An owner's or admin's change (one action: rename, set_admin, transfer_owner_to, remove_members,
// mute_member, mute_all, invite_confirmation, dissolve); GroupAction(id) starts the request.
v1::Reply ManageGroup(Connection& conn, const v1::ManageGroupRequest& request,
                      std::chrono::milliseconds timeout = kDefaultTimeout);
v1::ManageGroupRequest GroupAction(uint64_t group_id);
v1::Reply MakeGroupInviteCode(Connection& conn, uint64_t group_id, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply PreviewGroupInviteCode(Connection& conn, const std::string& code,
                                 std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply JoinGroupByCode(Connection& conn, const std::string& code,
                          std::chrono::milliseconds timeout = kDefaultTimeout);
// Invitations to groups of 100 or more members wait for the invitee; in confirmation mode, members'
// invitations and code joins wait for an owner's or admin's review.
v1::Reply RespondGroupInvitation(Connection& conn, uint64_t group_id, bool accept,
                                 std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListGroupInvitations(Connection& conn, std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ListGroupJoinRequests(Connection& conn, uint64_t group_id,
                                std::chrono::milliseconds timeout = kDefaultTimeout);
v1::Reply ReviewGroupJoinRequest(Connection& conn, uint64_t group_id, uint64_t user_id, bool approve,
                                 std::chrono::milliseconds timeout = kDefaultTimeout);

// ---- flows -------------------------------------------------------------------------------------

// Connects with `options` (whose token is ignored: unauthenticated), requests a code for `phone`,
// waits for it in `codes_file`, and signs up (or, for LogInWithCode, logs in). The returned
// Session's connection is authenticated. On failure returns nullopt and a reason in *error.
std::optional<Session> SignUpNew(ConnectOptions options, const std::string& codes_file, const std::string& phone,
                                 const std::string& display_name, std::string* error,
                                 const std::string& device_id = "");
std::optional<Session> LogInWithCode(ConnectOptions options, const std::string& codes_file, const std::string& phone,
                                     std::string* error, const std::string& device_id = "");
// Connects with `token` in the Authorization header (or the query, per options.token_in_query)
// and asks get_me to fill in the account. nullopt + *error (+ *http_status) on failure.
std::optional<Session> ConnectWithToken(ConnectOptions options, const std::string& token, std::string* error,
                                        int* http_status = nullptr);

}  // namespace chat::client
