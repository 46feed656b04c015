#include "client/api.h"

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/status_code.h"

namespace chat::client {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kCodePollInterval{25};

std::string RandomHex(size_t chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(chars);
  while (out.size() < chars) {
    uint32_t bits = rd();
    for (int i = 0; i < 8 && out.size() < chars; ++i, bits >>= 4) out.push_back(kHex[bits & 15]);
  }
  return out;
}

template <typename Fill>
v1::Reply Do(Connection& conn, milliseconds timeout, Fill fill) {
  v1::ClientFrame frame;
  fill(frame);
  return conn.Call(std::move(frame), timeout);
}

}  // namespace

// ---- codes file ------------------------------------------------------------------------------

std::optional<CodeLine> ReadLatestCodeLine(const std::string& codes_file, const std::string& phone) {
  std::ifstream in(codes_file);
  if (!in) return std::nullopt;
  std::optional<CodeLine> latest;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string ms_text, line_phone, code, extra;
    if (!(fields >> ms_text >> line_phone >> code) || (fields >> extra)) continue;
    if (line_phone != phone) continue;
    int64_t ms = 0;
    try {
      size_t used = 0;
      ms = std::stoll(ms_text, &used);
      if (used != ms_text.size()) continue;
    } catch (const std::exception&) {
      continue;
    }
    latest = CodeLine{ms, code};  // later lines are newer
  }
  return latest;
}

std::string ReadLatestCode(const std::string& codes_file, const std::string& phone) {
  auto line = ReadLatestCodeLine(codes_file, phone);
  return line ? line->code : std::string();
}

std::string WaitForCode(const std::string& codes_file, const std::string& phone, int64_t not_before_unix_ms,
                        milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto line = ReadLatestCodeLine(codes_file, phone);
    if (line && line->unix_ms >= not_before_unix_ms) return line->code;
    if (std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(kCodePollInterval);  // polling a file: no event to wait on
  }
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string NewClientMsgId() { return RandomHex(32); }
std::string NewDeviceId() { return "cli-" + RandomHex(16); }

std::string RandomTestPhone() {
  std::random_device rd;
  std::string phone = "+1555";
  for (int i = 0; i < 7; ++i) phone.push_back(static_cast<char>('0' + rd() % 10));
  return phone;
}

std::string DescribeError(const v1::Reply& reply) {
  return std::string(StatusName(reply.status())) + ": " + reply.message();
}

// ---- requests --------------------------------------------------------------------------------

v1::Reply RequestCode(Connection& conn, const std::string& phone, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_request_code()->set_phone(phone); });
}

v1::Reply SignUp(Connection& conn, const std::string& phone, const std::string& code, const std::string& display_name,
                 const std::string& device_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_sign_up();
    r->set_phone(phone);
    r->set_code(code);
    r->set_display_name(display_name);
    r->set_device_id(device_id);
  });
}

v1::Reply LogIn(Connection& conn, const std::string& phone, const std::string& code, const std::string& device_id,
                milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_log_in();
    r->set_phone(phone);
    r->set_code(code);
    r->set_device_id(device_id);
  });
}

v1::Reply Authenticate(Connection& conn, const std::string& token, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_authenticate()->set_token(token); });
}

v1::Reply RefreshToken(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_refresh_token(); });
}

v1::Reply GetMe(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_get_me(); });
}

v1::Reply SetDisplayName(Connection& conn, const std::string& display_name, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_set_display_name()->set_display_name(display_name); });
}

v1::Reply SetHandle(Connection& conn, const std::string& handle, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_set_handle()->set_handle(handle); });
}

v1::Reply ListDevices(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_devices(); });
}

v1::Reply LogOut(Connection& conn, uint64_t session_id, bool all_devices, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    f.mutable_log_out()->set_session_id(session_id);
    f.mutable_log_out()->set_all_devices(all_devices);
  });
}

v1::Reply DeleteAccount(Connection& conn, const std::string& code, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_delete_account()->set_code(code); });
}

v1::Reply ChangePhone(Connection& conn, const std::string& new_phone, const std::string& code,
                      const std::string& new_code, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_change_phone();
    r->set_new_phone(new_phone);
    r->set_code(code);
    r->set_new_code(new_code);
  });
}

v1::Reply LookupUser(Connection& conn, const std::string& handle, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_lookup_user()->set_handle(handle); });
}

v1::Reply GetProfiles(Connection& conn, const std::vector<uint64_t>& user_ids, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    for (uint64_t id : user_ids) f.mutable_get_profiles()->add_user_ids(id);
    f.mutable_get_profiles();
  });
}

v1::Reply SendFriendRequest(Connection& conn, uint64_t user_id, const std::string& greeting,
                            v1::FriendRequestSource source, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_send_friend_request();
    r->set_user_id(user_id);
    r->set_greeting(greeting);
    r->set_source(source);
  });
}

v1::Reply AcceptFriendRequest(Connection& conn, uint64_t user_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_accept_friend_request()->set_user_id(user_id); });
}

v1::Reply ListFriendRequests(Connection& conn, bool outgoing, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_friend_requests()->set_outgoing(outgoing); });
}

v1::Reply MyQrCode(Connection& conn, bool rotate, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_my_qr_code()->set_rotate(rotate); });
}

v1::Reply ResolveQrCode(Connection& conn, const std::string& token, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_resolve_qr_code()->set_token(token); });
}

v1::Reply SetLabel(Connection& conn, uint64_t label_id, const std::string& name,
                   const std::vector<uint64_t>& member_ids, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* l = f.mutable_set_label();
    l->set_label_id(label_id);
    l->set_name(name);
    for (uint64_t id : member_ids) l->add_member_ids(id);
  });
}

v1::Reply DeleteLabel(Connection& conn, uint64_t label_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_delete_label()->set_label_id(label_id); });
}

v1::Reply ListLabels(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_labels(); });
}

v1::Reply IgnoreFriendRequest(Connection& conn, uint64_t user_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_ignore_friend_request()->set_user_id(user_id); });
}

v1::Reply LookupPhone(Connection& conn, const std::string& phone, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_lookup_phone()->set_phone(phone); });
}

v1::Reply SetProfile(Connection& conn, const std::string& display_name, const std::string& avatar_media_id,
                     const std::string& whats_up, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* p = f.mutable_set_profile();
    p->set_display_name(display_name);
    p->set_avatar_media_id(avatar_media_id);
    p->set_whats_up(whats_up);
  });
}

v1::Reply SetPrivacy(Connection& conn, bool allow_phone_lookup, milliseconds timeout) {
  return Do(conn, timeout,
            [&](v1::ClientFrame& f) { f.mutable_set_privacy()->set_allow_phone_lookup(allow_phone_lookup); });
}

v1::Reply ListContacts(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_contacts(); });
}

v1::Reply SetRemark(Connection& conn, uint64_t user_id, const std::string& remark, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    f.mutable_set_remark()->set_user_id(user_id);
    f.mutable_set_remark()->set_remark(remark);
  });
}

v1::Reply BlockUser(Connection& conn, uint64_t user_id, bool blocked, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    f.mutable_block_user()->set_user_id(user_id);
    f.mutable_block_user()->set_blocked(blocked);
  });
}

v1::Reply DeleteContact(Connection& conn, uint64_t user_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_delete_contact()->set_user_id(user_id); });
}

v1::Reply SendText(Connection& conn, const std::string& conversation_id, const std::string& client_msg_id,
                   const std::string& text, milliseconds timeout) {
  v1::MessageContent content;
  content.mutable_text()->set_text(text);
  return SendContent(conn, conversation_id, client_msg_id, content, timeout);
}

v1::Reply SendContent(Connection& conn, const std::string& conversation_id, const std::string& client_msg_id,
                      const v1::MessageContent& content, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_send_message();
    r->set_conversation_id(conversation_id);
    r->set_client_msg_id(client_msg_id);
    *r->mutable_content() = content;
  });
}

v1::Reply GetHistory(Connection& conn, const std::string& conversation_id, uint64_t after_seq, uint32_t limit,
                     milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_get_history();
    r->set_conversation_id(conversation_id);
    r->set_after_seq(after_seq);
    r->set_limit(limit);
  });
}

v1::Reply GetHistoryBefore(Connection& conn, const std::string& conversation_id, uint64_t before_seq, uint32_t limit,
                           milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_get_history();
    r->set_conversation_id(conversation_id);
    r->set_before_seq(before_seq);
    r->set_backward(true);
    r->set_limit(limit);
  });
}

v1::Reply ListConversations(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_conversations(); });
}

v1::Reply MarkRead(Connection& conn, const std::string& conversation_id, uint64_t seq, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_mark_read();
    r->set_conversation_id(conversation_id);
    r->set_seq(seq);
  });
}

v1::Reply CreateGroup(Connection& conn, const std::string& name, const std::vector<uint64_t>& member_ids,
                      milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_create_group();
    r->set_name(name);
    for (uint64_t id : member_ids) r->add_member_ids(id);
  });
}

v1::Reply AddGroupMembers(Connection& conn, uint64_t group_id, const std::vector<uint64_t>& user_ids,
                          milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_add_group_members();
    r->set_group_id(group_id);
    for (uint64_t id : user_ids) r->add_user_ids(id);
  });
}

v1::Reply LeaveGroup(Connection& conn, uint64_t group_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_leave_group()->set_group_id(group_id); });
}

v1::Reply ListGroupMembers(Connection& conn, uint64_t group_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_group_members()->set_group_id(group_id); });
}

v1::Reply ListMyGroups(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_my_groups(); });
}

v1::Reply ManageGroup(Connection& conn, const v1::ManageGroupRequest& request, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { *f.mutable_manage_group() = request; });
}

v1::ManageGroupRequest GroupAction(uint64_t group_id) {
  v1::ManageGroupRequest r;
  r.set_group_id(group_id);
  return r;
}

v1::Reply MakeGroupInviteCode(Connection& conn, uint64_t group_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_make_group_invite_code()->set_group_id(group_id); });
}

v1::Reply PreviewGroupInviteCode(Connection& conn, const std::string& code, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_preview_group_invite_code()->set_code(code); });
}

v1::Reply RespondGroupInvitation(Connection& conn, uint64_t group_id, bool accept, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    f.mutable_respond_group_invitation()->set_group_id(group_id);
    f.mutable_respond_group_invitation()->set_accept(accept);
  });
}

v1::Reply ListGroupInvitations(Connection& conn, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_group_invitations(); });
}

v1::Reply ListGroupJoinRequests(Connection& conn, uint64_t group_id, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_list_group_join_requests()->set_group_id(group_id); });
}

v1::Reply ReviewGroupJoinRequest(Connection& conn, uint64_t group_id, uint64_t user_id, bool approve,
                                 milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) {
    auto* r = f.mutable_review_group_join_request();
    r->set_group_id(group_id);
    r->set_user_id(user_id);
    r->set_approve(approve);
  });
}

v1::Reply JoinGroupByCode(Connection& conn, const std::string& code, milliseconds timeout) {
  return Do(conn, timeout, [&](v1::ClientFrame& f) { f.mutable_join_group_by_code()->set_code(code); });
}

// ---- flows -----------------------------------------------------------------------------------

namespace {

std::optional<Session> CodeFlow(ConnectOptions options, const std::string& codes_file, const std::string& phone,
                                const std::string* display_name, const std::string& device_id, std::string* error) {
  options.token.clear();
  std::string connect_error;
  auto conn = Connection::Connect(options, &connect_error);
  if (!conn) {
    *error = connect_error;
    return std::nullopt;
  }
  int64_t before = UnixMillis();
  v1::Reply reply = RequestCode(*conn, phone, options.timeout);
  if (reply.status() != v1::OK) {
    *error = "request_code: " + DescribeError(reply);
    return std::nullopt;
  }
  std::string code = WaitForCode(codes_file, phone, before, options.timeout);
  if (code.empty()) {
    *error = "no code for the phone appeared in " + codes_file + " within " + std::to_string(options.timeout.count()) +
             " ms";
    return std::nullopt;
  }
  reply = display_name ? SignUp(*conn, phone, code, *display_name, device_id, options.timeout)
                       : LogIn(*conn, phone, code, device_id, options.timeout);
  if (reply.status() != v1::OK) {
    *error = std::string(display_name ? "sign_up: " : "log_in: ") + DescribeError(reply);
    return std::nullopt;
  }
  Session s;
  s.conn = std::move(conn);
  s.account = reply.session().account();
  s.token = reply.session().token();
  return s;
}

}  // namespace

std::optional<Session> SignUpNew(ConnectOptions options, const std::string& codes_file, const std::string& phone,
                                 const std::string& display_name, std::string* error, const std::string& device_id) {
  return CodeFlow(std::move(options), codes_file, phone, &display_name, device_id, error);
}

std::optional<Session> LogInWithCode(ConnectOptions options, const std::string& codes_file, const std::string& phone,
                                     std::string* error, const std::string& device_id) {
  return CodeFlow(std::move(options), codes_file, phone, nullptr, device_id, error);
}

std::optional<Session> ConnectWithToken(ConnectOptions options, const std::string& token, std::string* error,
                                        int* http_status) {
  options.token = token;
  auto conn = Connection::Connect(options, error, http_status);
  if (!conn) return std::nullopt;
  v1::Reply reply = GetMe(*conn, options.timeout);
  if (reply.status() != v1::OK) {
    *error = "get_me: " + DescribeError(reply);
    return std::nullopt;
  }
  Session s;
  s.conn = std::move(conn);
  s.account = reply.account();
  s.token = token;
  return s;
}

}  // namespace chat::client
