#pragma once
// The fixture of the single-shard account-service tests: one shard in-process on a fresh database,
// a settable clock, and one helper per request.
#include <gtest/gtest.h>

#include "account_test_util.h"
#include "common/token.h"

namespace chat::account::testing {

inline constexpr char kPhoneA[] = "+8613800131234";
inline constexpr char kPhoneB[] = "+4915112345678";
inline constexpr char kPhoneC[] = "+12025550123";

class AccountServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ms_ = NowMs();
    config_ = BaseConfig(run_dir_.path() + "/run");  // not yet existing: the sender creates it
    config_.account = {ShardConfig{{"127.0.0.1:1"}, testing::NewAccountDatabase()}};
    Start();
  }
  void TearDown() override {
    shard_.reset();
    testing::DropDatabase(config_.account[0].database);
  }
  // (Re)creates the service, e.g. after a config change.
  void Start() {
    shard_.reset();
    shard_ = std::make_unique<Shard>(config_, 0, now_ms_, config_.run_dir);
  }
  AccountServiceImpl& svc() { return shard_->service; }
  void Advance(int64_t ms) { now_ms_ += ms; }

  grpc::Status RequestCode(const std::string& phone, v1::RequestCodeResult* res = nullptr) {
    grpc::ServerContext ctx;
    v1::RequestCodeRequest req;
    req.set_phone(phone);
    v1::RequestCodeResult local;
    return svc().RequestCode(&ctx, &req, res ? res : &local);
  }
  grpc::Status SignUp(const std::string& phone, const std::string& code, const std::string& name,
                      v1::SessionResult* res, const std::string& device = "phone-1") {
    grpc::ServerContext ctx;
    v1::SignUpRequest req;
    req.set_phone(phone);
    req.set_code(code);
    req.set_display_name(name);
    req.set_device_id(device);
    return svc().SignUp(&ctx, &req, res);
  }
  grpc::Status LogIn(const std::string& phone, const std::string& code, v1::SessionResult* res,
                     const std::string& device = "phone-1") {
    grpc::ServerContext ctx;
    v1::LogInRequest req;
    req.set_phone(phone);
    req.set_code(code);
    req.set_device_id(device);
    return svc().LogIn(&ctx, &req, res);
  }
  std::string Code(const std::string& phone) { return NewestCode(config_.run_dir, phone); }

  // The session a SessionResult's token names (what a gateway would send).
  internal::SessionKey Key(const v1::SessionResult& s) {
    auto claims = TokenSigner(config_.token_keys).Verify(s.token(), now_ms_ / 1000);
    EXPECT_TRUE(claims.has_value()) << "the service issued an unverifiable token";
    internal::SessionKey k;
    if (!claims) return k;
    k.set_user_id(claims->user_id);
    k.set_session_id(claims->session_id);
    k.set_token_gen(claims->token_gen);
    return k;
  }
  // CheckAccount's verdict on the token's session (false also when the call failed).
  bool Admitted(const internal::SessionKey& k) {
    grpc::ServerContext ctx;
    internal::AccountCheckResult res;
    auto st = svc().CheckAccount(&ctx, &k, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return st.ok() && res.active();
  }
  grpc::Status Refresh(const internal::SessionKey& k, v1::SessionResult* res, uint64_t gateway_session = 5) {
    grpc::ServerContext ctx;
    internal::RefreshTokenRequest req;
    req.set_user_id(k.user_id());
    req.set_device_id("phone-1");
    req.set_session_id(k.session_id());
    req.set_token_gen(k.token_gen());
    req.mutable_origin()->set_gateway_id("gw-test");
    req.mutable_origin()->set_session_id(gateway_session);
    return svc().RefreshToken(&ctx, &req, res);
  }
  grpc::Status Devices(const internal::SessionKey& k, v1::DevicesResult* res) {
    grpc::ServerContext ctx;
    return svc().ListDevices(&ctx, &k, res);
  }
  grpc::Status LogOut(const internal::SessionKey& k, uint64_t session_id, bool all) {
    grpc::ServerContext ctx;
    internal::LogOutRequest req;
    *req.mutable_session() = k;
    req.mutable_request()->set_session_id(session_id);
    req.mutable_request()->set_all_devices(all);
    req.mutable_origin()->set_gateway_id("gw-test");
    req.mutable_origin()->set_session_id(7);
    v1::Empty e;
    return svc().LogOut(&ctx, &req, &e);
  }
  grpc::Status DeleteAccount(const internal::SessionKey& k, const std::string& code) {
    grpc::ServerContext ctx;
    internal::DeleteAccountRequest req;
    *req.mutable_session() = k;
    req.set_code(code);
    v1::Empty e;
    return svc().DeleteAccount(&ctx, &req, &e);
  }
  grpc::Status ChangePhone(const internal::SessionKey& k, const std::string& new_phone, const std::string& code,
                           const std::string& new_code, v1::Account* res) {
    grpc::ServerContext ctx;
    internal::ChangePhoneRequest req;
    *req.mutable_session() = k;
    req.mutable_request()->set_new_phone(new_phone);
    req.mutable_request()->set_code(code);
    req.mutable_request()->set_new_code(new_code);
    return svc().ChangePhone(&ctx, &req, res);
  }

  // Requests a code, reads it from the file and signs up; returns the session.
  v1::SessionResult NewUser(const std::string& phone, const std::string& name) {
    EXPECT_TRUE(RequestCode(phone).ok());
    v1::SessionResult res;
    auto st = SignUp(phone, Code(phone), name, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }

  grpc::Status SendRequest(uint64_t from, uint64_t to, const std::string& greeting,
                           v1::SendFriendRequestResult* res = nullptr) {
    grpc::ServerContext ctx;
    internal::SendFriendRequestRequest req;
    req.mutable_origin()->set_user_id(from);
    req.mutable_origin()->set_session_id(11);
    req.mutable_request()->set_user_id(to);
    req.mutable_request()->set_greeting(greeting);
    req.mutable_request()->set_source(v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH);
    v1::SendFriendRequestResult local;
    return svc().SendFriendRequest(&ctx, &req, res ? res : &local);
  }
  grpc::Status Accept(uint64_t me, uint64_t from, v1::Contact* res, uint64_t session_id = 22) {
    grpc::ServerContext ctx;
    internal::AcceptFriendRequestRequest req;
    req.mutable_origin()->set_user_id(me);
    req.mutable_origin()->set_session_id(session_id);
    req.set_from_user_id(from);
    return svc().AcceptFriendRequest(&ctx, &req, res);
  }
  v1::ContactsResult Contacts(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::ContactsResult res;
    auto st = svc().ListContacts(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }
  v1::FriendRequestsResult Requests(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::FriendRequestsResult res;
    auto st = svc().ListFriendRequests(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }
  std::vector<uint64_t> CheckFriends(uint64_t user, std::vector<uint64_t> others) {
    grpc::ServerContext ctx;
    internal::CheckFriendsRequest req;
    req.set_user_id(user);
    for (uint64_t o : others) req.add_other_ids(o);
    internal::CheckFriendsResult res;
    auto st = svc().CheckFriends(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {res.friend_ids().begin(), res.friend_ids().end()};
  }

  v1::FriendRequestsResult SentRequests(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::FriendRequestsResult res;
    auto st = svc().ListSentFriendRequests(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }
  grpc::Status SetLabel(uint64_t me, uint64_t label_id, const std::string& name, std::vector<uint64_t> members,
                        v1::Label* res = nullptr) {
    grpc::ServerContext ctx;
    internal::SetLabelRequest req;
    req.mutable_origin()->set_user_id(me);
    req.mutable_request()->set_label_id(label_id);
    req.mutable_request()->set_name(name);
    for (uint64_t m : members) req.mutable_request()->add_member_ids(m);
    v1::Label local;
    return svc().SetLabel(&ctx, &req, res ? res : &local);
  }
  v1::LabelsResult Labels(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::LabelsResult res;
    auto st = svc().ListLabels(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }
  grpc::Status DeleteLabel(uint64_t user, uint64_t label_id) {
    grpc::ServerContext ctx;
    internal::DeleteLabelRequest req;
    req.set_user_id(user);
    req.set_label_id(label_id);
    v1::Empty empty;
    return svc().DeleteLabel(&ctx, &req, &empty);
  }
  grpc::Status Ignore(uint64_t me, uint64_t from) {
    grpc::ServerContext ctx;
    internal::AcceptFriendRequestRequest req;
    req.mutable_origin()->set_user_id(me);
    req.set_from_user_id(from);
    v1::Empty empty;
    return svc().IgnoreFriendRequest(&ctx, &req, &empty);
  }
  // A befriends B (request and accept); the events they made are dropped.
  void Befriend(uint64_t a, uint64_t b) {
    auto st = SendRequest(a, b, "");
    ASSERT_TRUE(st.ok()) << st.error_message();
    v1::Contact c;
    st = Accept(b, a, &c);
    ASSERT_TRUE(st.ok()) << st.error_message();
    shard_->events.Take();
  }
  internal::ContactRequest ContactReq(uint64_t me, uint64_t other, uint64_t session_id = 33) {
    internal::ContactRequest req;
    req.mutable_origin()->set_user_id(me);
    req.mutable_origin()->set_session_id(session_id);
    req.set_user_id(other);
    return req;
  }
  grpc::Status SetRemark(uint64_t me, uint64_t other, const std::string& remark, v1::Contact* res = nullptr) {
    grpc::ServerContext ctx;
    auto req = ContactReq(me, other);
    req.set_remark(remark);
    v1::Contact local;
    return svc().SetRemark(&ctx, &req, res ? res : &local);
  }
  grpc::Status Block(uint64_t me, uint64_t other, bool blocked = true) {
    grpc::ServerContext ctx;
    auto req = ContactReq(me, other);
    req.set_blocked(blocked);
    v1::Empty empty;
    return svc().SetBlocked(&ctx, &req, &empty);
  }
  grpc::Status DeleteContact(uint64_t me, uint64_t other) {
    grpc::ServerContext ctx;
    auto req = ContactReq(me, other);
    v1::Empty empty;
    return svc().DeleteContact(&ctx, &req, &empty);
  }
  // CheckFriends inbound: (those `user` takes messages from, those it rejects).
  std::pair<std::vector<uint64_t>, std::vector<uint64_t>> InboundCheck(uint64_t user, std::vector<uint64_t> others) {
    grpc::ServerContext ctx;
    internal::CheckFriendsRequest req;
    req.set_user_id(user);
    req.set_inbound(true);
    for (uint64_t o : others) req.add_other_ids(o);
    internal::CheckFriendsResult res;
    auto st = svc().CheckFriends(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {{res.friend_ids().begin(), res.friend_ids().end()}, {res.rejected_ids().begin(), res.rejected_ids().end()}};
  }
  v1::ProfilesResult ProfilesFor(uint64_t viewer, std::vector<uint64_t> ids) {
    grpc::ServerContext ctx;
    internal::ProfilesForRequest req;
    req.set_viewer_id(viewer);
    for (uint64_t id : ids) req.mutable_request()->add_user_ids(id);
    v1::ProfilesResult res;
    auto st = svc().GetProfilesFor(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }

  TempDir run_dir_;
  std::atomic<int64_t> now_ms_{0};
  ClusterConfig config_;
  std::unique_ptr<Shard> shard_;
};

}  // namespace chat::account::testing
