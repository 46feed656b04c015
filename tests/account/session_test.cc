// Sessions, devices, account deletion and phone changes of one account shard against a real
// PostgreSQL: what a token is worth after each change, and what the gateways are told.
#include <gtest/gtest.h>

#include "account_fixture.h"
#include "common/status.h"
#include "common/status_code.h"

namespace chat::account {
namespace {

using testing::AccountServiceTest;
using testing::kPhoneA;
using testing::kPhoneB;
using testing::kPhoneC;
using testing::OtherCode;

class SessionTest : public AccountServiceTest {
 protected:
  grpc::Status LogInOn(const std::string& phone, const std::string& device, v1::SessionResult* res,
                       const std::string& name = "", const std::string& platform = "") {
    Advance(int64_t{config_.limits.account.code_resend_interval_s} * 1000 + 1);  // a fresh code may be sent
    if (auto st = RequestCode(phone); !st.ok()) return st;
    grpc::ServerContext ctx;
    v1::LogInRequest req;
    req.set_phone(phone);
    req.set_code(Code(phone));
    req.set_device_id(device);
    req.set_device_name(name);
    req.set_platform(platform);
    return svc().LogIn(&ctx, &req, res);
  }
  // The revocations published since the last call, in order.
  std::vector<FanoutItem> Revocations() {
    std::vector<FanoutItem> out;
    for (auto& it : shard_->events.Take())
      if (it.revocation) out.push_back(std::move(it));
    return out;
  }
  std::vector<uint64_t> SessionIds(const FanoutItem& it) {
    return {it.revocation->session_ids().begin(), it.revocation->session_ids().end()};
  }
  std::string FreshCode(const std::string& phone) {
    Advance(int64_t{config_.limits.account.code_resend_interval_s} * 1000 + 1);
    EXPECT_TRUE(RequestCode(phone).ok());
    return Code(phone);
  }
};

TEST_F(SessionTest, EachDeviceIsASessionListedWithItsNameAndANewOneIsAnnounced) {
  v1::SessionResult phone = NewUser(kPhoneA, "Alice");
  const uint64_t me = phone.account().profile().user_id();
  EXPECT_TRUE(shard_->events.Take().empty()) << "a sign-up has no other device to tell";
  Advance(31 * 1000);
  v1::SessionResult tablet;
  ASSERT_TRUE(LogInOn(kPhoneA, "tablet-7", &tablet, "Alice's iPad", "iOS 18").ok());
  EXPECT_NE(tablet.session_id(), phone.session_id());
  // The other devices hear of the new one; nothing is revoked.
  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user_ids, std::vector<uint64_t>{me});
  ASSERT_TRUE(events[0].event.has_new_device());
  EXPECT_EQ(events[0].event.new_device().device().device_name(), "Alice's iPad");
  EXPECT_EQ(events[0].event.new_device().device().session_id(), tablet.session_id());

  v1::DevicesResult devices;
  ASSERT_TRUE(Devices(Key(tablet), &devices).ok());
  ASSERT_EQ(devices.devices_size(), 2);
  // Most recently active first, the asking one marked.
  EXPECT_EQ(devices.devices(0).device_id(), "tablet-7");
  EXPECT_EQ(devices.devices(0).platform(), "iOS 18");
  EXPECT_TRUE(devices.devices(0).current());
  EXPECT_EQ(devices.devices(1).device_id(), "phone-1");
  EXPECT_FALSE(devices.devices(1).current());
  EXPECT_EQ(devices.devices(1).last_active_ms(), devices.devices(1).created_ms());

  // Logging in again on a device replaces its session: the old token dies, its connections close.
  Advance(31 * 1000);
  v1::SessionResult tablet2;
  ASSERT_TRUE(LogInOn(kPhoneA, "tablet-7", &tablet2).ok());
  EXPECT_FALSE(Admitted(Key(tablet)));
  EXPECT_TRUE(Admitted(Key(tablet2)));
  EXPECT_TRUE(Admitted(Key(phone)));
  auto revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(SessionIds(revoked[0]), std::vector<uint64_t>{tablet.session_id()});
  EXPECT_EQ(revoked[0].event.kicked().close_code(), kCloseSessionEnded);
  devices.Clear();
  ASSERT_TRUE(Devices(Key(phone), &devices).ok());
  EXPECT_EQ(devices.devices_size(), 2) << devices.DebugString();
}

TEST_F(SessionTest, LogOutThisAnotherOrEveryDeviceKillsExactlyThoseTokens) {
  v1::SessionResult a = NewUser(kPhoneA, "Alice");
  v1::SessionResult b, c;
  Advance(31 * 1000);
  ASSERT_TRUE(LogInOn(kPhoneA, "laptop", &b).ok());
  Advance(31 * 1000);
  ASSERT_TRUE(LogInOn(kPhoneA, "watch", &c).ok());
  Revocations();

  // Another device.
  ASSERT_TRUE(LogOut(Key(a), b.session_id(), false).ok());
  EXPECT_FALSE(Admitted(Key(b)));
  EXPECT_TRUE(Admitted(Key(a)));
  EXPECT_TRUE(Admitted(Key(c)));
  auto revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(SessionIds(revoked[0]), std::vector<uint64_t>{b.session_id()});
  EXPECT_EQ(revoked[0].revocation->skip_gateway_id(), "gw-test");  // the asking connection closes itself
  // A dead session can end nothing, and an unknown session id is NOT_FOUND.
  EXPECT_EQ(LogOut(Key(b), 0, true).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Admitted(Key(a)));
  EXPECT_EQ(LogOut(Key(a), b.session_id(), false).error_code(), grpc::StatusCode::NOT_FOUND);
  // Another user's session is not found either: sessions are looked up under the caller.
  v1::SessionResult eve = NewUser(kPhoneB, "Eve");
  EXPECT_EQ(LogOut(Key(eve), a.session_id(), false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Admitted(Key(a)));

  // This device (session_id 0).
  ASSERT_TRUE(LogOut(Key(c), 0, false).ok());
  EXPECT_FALSE(Admitted(Key(c)));
  EXPECT_TRUE(Admitted(Key(a)));
  // Every device.
  Advance(31 * 1000);
  ASSERT_TRUE(LogInOn(kPhoneA, "laptop", &b).ok());
  Revocations();
  ASSERT_TRUE(LogOut(Key(b), 0, true).ok());
  EXPECT_FALSE(Admitted(Key(a)));
  EXPECT_FALSE(Admitted(Key(b)));
  EXPECT_TRUE(Admitted(Key(eve)));
  revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_TRUE(revoked[0].revocation->all_sessions());
  v1::DevicesResult devices;
  EXPECT_EQ(Devices(Key(a), &devices).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SessionTest, RefreshExtendsTheSessionAndKillsTheTokenItReplaced) {
  v1::SessionResult a = NewUser(kPhoneA, "Alice");
  const internal::SessionKey first = Key(a);
  Revocations();
  Advance(10ll * 24 * 3600 * 1000);
  v1::SessionResult r;
  ASSERT_TRUE(Refresh(first, &r, /*gateway_session=*/42).ok());
  const internal::SessionKey second = Key(r);
  EXPECT_EQ(second.session_id(), first.session_id());
  EXPECT_EQ(second.token_gen(), 2u);
  EXPECT_EQ(r.session_id(), first.session_id());
  EXPECT_EQ(r.token_expires_ms() - a.token_expires_ms(), 10ll * 24 * 3600 * 1000);
  EXPECT_FALSE(Admitted(first));
  EXPECT_TRUE(Admitted(second));
  // Connections on older tokens of this session close; the refreshing one is spared.
  auto revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(SessionIds(revoked[0]), std::vector<uint64_t>{first.session_id()});
  EXPECT_EQ(revoked[0].revocation->below_gen(), 2u);
  EXPECT_EQ(revoked[0].revocation->skip_session_id(), 42u);
  // The replaced token cannot refresh again (a thief who kept it gets nothing).
  EXPECT_EQ(Refresh(first, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Past the original 30 days the refreshed token still works, the session having moved on.
  Advance(25ll * 24 * 3600 * 1000);
  EXPECT_TRUE(Admitted(second));
}

TEST_F(SessionTest, BeyondMaxDevicesPerUserTheIdlestSessionEnds) {
  config_.limits.account.max_devices_per_user = 3;
  Start();
  std::vector<v1::SessionResult> s(4);
  s[0] = NewUser(kPhoneA, "Alice");
  for (int i = 1; i < 4; ++i) {
    Advance(31 * 1000);
    ASSERT_TRUE(LogInOn(kPhoneA, "device-" + std::to_string(i), &s[i]).ok());
  }
  EXPECT_FALSE(Admitted(Key(s[0])));
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(Admitted(Key(s[i]))) << i;
  auto revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(SessionIds(revoked[0]), std::vector<uint64_t>{s[0].session_id()});
  EXPECT_NE(revoked[0].event.kicked().reason().find("max_devices_per_user"), std::string::npos);
}

TEST_F(SessionTest, DeviceNamesFollowTheNameRules) {
  NewUser(kPhoneA, "Alice");
  v1::SessionResult s;
  Advance(31 * 1000);
  auto st = LogInOn(kPhoneA, "tablet", &s, "bad\x01name");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("device_name"), std::string::npos) << st.error_message();
  Advance(31 * 1000);
  st = LogInOn(kPhoneA, "tablet", &s, "", std::string(config_.limits.account.max_device_name_chars + 1, 'x'));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("platform"), std::string::npos) << st.error_message();
  Advance(31 * 1000);
  EXPECT_TRUE(LogInOn(kPhoneA, "tablet", &s, "Kitchen tablet", "Android 15").ok());
}

TEST_F(SessionTest, DeletedAccountIsGoneAtOnceAndItsNumberSignsUpANewAccountAfterTheCoolingOff) {
  v1::SessionResult alice = NewUser(kPhoneA, "Alice");
  v1::SessionResult bob = NewUser(kPhoneB, "Bob");
  const uint64_t a = alice.account().profile().user_id();
  const uint64_t b = bob.account().profile().user_id();
  ASSERT_TRUE(SendRequest(a, b, "hi").ok());
  v1::Contact contact;
  ASSERT_TRUE(Accept(b, a, &contact).ok());
  const std::string handle = alice.account().profile().handle();

  // The code of the account's number is required; a wrong one changes nothing.
  const std::string code = FreshCode(kPhoneA);
  EXPECT_EQ(DeleteAccount(Key(alice), OtherCode(code)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Admitted(Key(alice)));
  Revocations();
  ASSERT_TRUE(DeleteAccount(Key(alice), code).ok());

  // Its sessions end everywhere (one revocation of all of them).
  EXPECT_FALSE(Admitted(Key(alice)));
  auto revoked = Revocations();
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_TRUE(revoked[0].revocation->all_sessions());
  EXPECT_EQ(revoked[0].event.kicked().reason(), "account deleted");
  // Gone from search and from Bob's contacts; history still names the id as a deleted user.
  grpc::ServerContext ctx;
  v1::LookupUserRequest lookup;
  lookup.set_handle(handle);
  v1::UserProfile found;
  EXPECT_EQ(svc().LookupHandle(&ctx, &lookup, &found).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Contacts(b).contacts_size(), 0);
  v1::GetProfilesRequest preq;
  preq.add_user_ids(a);
  v1::ProfilesResult profiles;
  ASSERT_TRUE(svc().GetProfiles(&ctx, &preq, &profiles).ok());
  ASSERT_EQ(profiles.profiles_size(), 1);
  EXPECT_TRUE(profiles.profiles(0).deleted());
  EXPECT_EQ(profiles.profiles(0).display_name(), kDeletedUserName);
  EXPECT_EQ(profiles.profiles(0).handle(), "");
  EXPECT_EQ(SendRequest(b, a, "are you there?").error_code(), grpc::StatusCode::NOT_FOUND);
  internal::UserIdRequest me;
  me.set_user_id(a);
  v1::Account account;
  EXPECT_EQ(svc().GetAccount(&ctx, &me, &account).error_code(), grpc::StatusCode::NOT_FOUND);

  // During the cooling-off the number neither logs in nor signs up, and says how long to wait.
  v1::SessionResult s;
  auto st = LogInOn(kPhoneA, "phone-1", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const int64_t cooling_ms = int64_t{config_.limits.account.deleted_phone_reuse_after_s} * 1000;
  EXPECT_GT(RetryAfterMs(st), cooling_ms - 3600 * 1000);
  EXPECT_LE(RetryAfterMs(st), cooling_ms);
  Advance(31 * 1000);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  EXPECT_EQ(SignUp(kPhoneA, Code(kPhoneA), "Alice again", &s).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // Afterwards a sign-up is a new account that inherits nothing.
  Advance(cooling_ms);
  v1::SessionResult again = NewUser(kPhoneA, "Alice again");
  EXPECT_NE(again.account().profile().user_id(), a);
  EXPECT_EQ(again.account().phone(), kPhoneA);
  EXPECT_EQ(Contacts(again.account().profile().user_id()).contacts_size(), 0);
  EXPECT_EQ(CheckFriends(b, {again.account().profile().user_id()}).size(), 0u);
}

TEST_F(SessionTest, ChangePhoneNeedsCodesOfBothNumbersAndMovesTheAccount) {
  v1::SessionResult alice = NewUser(kPhoneA, "Alice");
  const uint64_t a = alice.account().profile().user_id();
  NewUser(kPhoneB, "Bob");
  FreshCode(kPhoneA);
  ASSERT_TRUE(RequestCode(kPhoneC).ok());
  v1::Account acc;
  // A wrong code for either number changes nothing.
  EXPECT_EQ(ChangePhone(Key(alice), kPhoneC, OtherCode(Code(kPhoneA)), Code(kPhoneC), &acc).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::string old_code = FreshCode(kPhoneA);
  EXPECT_EQ(ChangePhone(Key(alice), kPhoneC, old_code, OtherCode(Code(kPhoneC)), &acc).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A number another account has is refused (the caller proved it holds that number's code).
  EXPECT_EQ(ChangePhone(Key(alice), kPhoneB, FreshCode(kPhoneA), FreshCode(kPhoneB), &acc).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ChangePhone(Key(alice), kPhoneA, FreshCode(kPhoneA), Code(kPhoneA), &acc).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::SessionResult s;
  ASSERT_TRUE(LogInOn(kPhoneA, "phone-1", &s).ok()) << "the account lost its number to failed changes";
  alice = s;

  auto st = ChangePhone(Key(alice), kPhoneC, FreshCode(kPhoneA), FreshCode(kPhoneC), &acc);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(acc.phone(), kPhoneC);
  EXPECT_EQ(acc.profile().user_id(), a);
  EXPECT_TRUE(Admitted(Key(alice))) << "changing number does not sign anyone out";
  // The new number logs in to the same account; the old one is free for a new sign-up at once.
  Advance(31 * 1000);
  ASSERT_TRUE(LogInOn(kPhoneC, "tablet", &s).ok());
  EXPECT_EQ(s.account().profile().user_id(), a);
  Advance(31 * 1000);
  EXPECT_EQ(LogInOn(kPhoneA, "phone-9", &s).error_code(), grpc::StatusCode::NOT_FOUND);
  Advance(31 * 1000);
  v1::SessionResult fresh = NewUser(kPhoneA, "Someone new");
  EXPECT_NE(fresh.account().profile().user_id(), a);
}

}  // namespace
}  // namespace chat::account
