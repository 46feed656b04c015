// Profiles, privacy and finding people by phone on one account shard against a real PostgreSQL:
// the rules of each profile field, who hears of a change, and that a phone search tells "nobody has
// this number" and "its owner does not allow it" apart by nothing at all.
#include <gtest/gtest.h>

#include "account_fixture.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::account {
namespace {

using testing::AccountServiceTest;
using testing::kPhoneA;
using testing::kPhoneB;
using testing::kPhoneC;

constexpr char kAvatar[] = "m_0123456789abcdefABCDEF";

class ProfileTest : public AccountServiceTest {
 protected:
  void SetUp() override {
    AccountServiceTest::SetUp();
    alice_session = NewUser(kPhoneA, "Alice");
    alice = alice_session.account().profile().user_id();
    bob = NewUser(kPhoneB, "Bob").account().profile().user_id();
    carol = NewUser(kPhoneC, "Carol").account().profile().user_id();
    shard_->events.Take();
  }
  grpc::Status SetProfile(uint64_t user, const std::string& name, const std::string& avatar,
                          const std::string& whats_up, v1::Account* res = nullptr) {
    grpc::ServerContext ctx;
    internal::SetProfileRequest req;
    req.mutable_origin()->set_user_id(user);
    req.mutable_origin()->set_session_id(44);
    req.mutable_request()->set_display_name(name);
    req.mutable_request()->set_avatar_media_id(avatar);
    req.mutable_request()->set_whats_up(whats_up);
    v1::Account local;
    return svc().SetProfile(&ctx, &req, res ? res : &local);
  }
  grpc::Status AllowPhoneLookup(uint64_t user, bool allow) {
    grpc::ServerContext ctx;
    internal::SetPrivacyRequest req;
    req.set_user_id(user);
    req.mutable_request()->set_allow_phone_lookup(allow);
    v1::Account res;
    auto st = svc().SetPrivacy(&ctx, &req, &res);
    EXPECT_EQ(res.allow_phone_lookup(), st.ok() && allow);
    return st;
  }
  grpc::Status LookupPhone(uint64_t searcher, const std::string& phone, v1::UserProfile* res) {
    grpc::ServerContext ctx;
    internal::LookupPhoneRequest req;
    req.set_searcher_id(searcher);
    req.set_phone(phone);
    return svc().LookupPhone(&ctx, &req, res);
  }
  v1::SessionResult alice_session;
  uint64_t alice = 0, bob = 0, carol = 0;
};

TEST_F(ProfileTest, AProfileChangeReachesContactsAndOtherSessions) {
  Befriend(alice, bob);
  v1::Account acc;
  auto st = SetProfile(alice, " Alice W. ", kAvatar, "  out climbing ", &acc);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(acc.profile().display_name(), "Alice W.");
  EXPECT_EQ(acc.profile().avatar_media_id(), kAvatar);
  EXPECT_EQ(acc.profile().whats_up(), "out climbing");

  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  std::vector<uint64_t> to = events[0].user_ids;
  std::sort(to.begin(), to.end());
  std::vector<uint64_t> want = {alice, bob};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(to, want) << "Bob (a contact) and Alice's other sessions; Carol is a stranger";
  EXPECT_EQ(events[0].skip_session_id, 44u);
  const auto& p = events[0].event.profile_changed().profile();
  EXPECT_EQ(p.user_id(), alice);
  EXPECT_EQ(p.whats_up(), "out climbing");
  EXPECT_EQ(p.remark(), "") << "one event for every contact: no one's remark in it";

  // Everyone sees the new profile; set_display_name keeps the rest of it.
  auto seen = ProfilesFor(carol, {alice});
  ASSERT_EQ(seen.profiles_size(), 1);
  EXPECT_EQ(seen.profiles(0).avatar_media_id(), kAvatar);
  grpc::ServerContext ctx;
  internal::SetDisplayNameRequest dn;
  dn.set_user_id(alice);
  dn.set_display_name("Ali");
  ASSERT_TRUE(svc().SetDisplayName(&ctx, &dn, &acc).ok());
  EXPECT_EQ(acc.profile().display_name(), "Ali");
  EXPECT_EQ(acc.profile().avatar_media_id(), kAvatar);
  EXPECT_EQ(acc.profile().whats_up(), "out climbing");
  events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.profile_changed().profile().display_name(), "Ali");

  // "" clears avatar and what's up.
  ASSERT_TRUE(SetProfile(alice, "Ali", "", "", &acc).ok());
  EXPECT_EQ(acc.profile().avatar_media_id(), "");
  EXPECT_EQ(acc.profile().whats_up(), "");
}

TEST_F(ProfileTest, ProfileRules) {
  const uint32_t max_up = config_.limits.account.max_whats_up_chars;
  auto code = [&](const std::string& name, const std::string& avatar, const std::string& up) {
    return SetProfile(alice, name, avatar, up).error_code();
  };
  EXPECT_EQ(code("Alice", "", std::string(max_up, 'x')), grpc::StatusCode::OK);
  EXPECT_EQ(code("Alice", "", std::string(max_up + 1, 'x')), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", "", "two\nlines"), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", "", "a\u200Bb"), grpc::StatusCode::INVALID_ARGUMENT) << "zero-width";
  EXPECT_EQ(code("", kAvatar, ""), grpc::StatusCode::INVALID_ARGUMENT) << "a display name is required";
  EXPECT_EQ(code("   ", kAvatar, ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", "short", ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", std::string(65, 'a'), ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", "m_0123456789abcdef/../x", ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", "https://evil.example/a.png", ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code("Alice", std::string(64, 'a'), ""), grpc::StatusCode::OK);
  // A refused change changed nothing.
  auto seen = ProfilesFor(bob, {alice});
  EXPECT_EQ(seen.profiles(0).avatar_media_id(), std::string(64, 'a'));
  EXPECT_EQ(seen.profiles(0).whats_up(), "");
}

TEST_F(ProfileTest, APhoneFindsOnlyWhoAllowsItAndEveryMissLooksTheSame) {
  v1::UserProfile found;
  auto hidden = LookupPhone(carol, kPhoneA, &found);  // Alice has not opted in (the default)
  auto nobody = LookupPhone(carol, "+8613911112222", &found);
  ASSERT_EQ(hidden.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(hidden.error_code(), nobody.error_code());
  EXPECT_EQ(hidden.error_message(), nobody.error_message());
  EXPECT_EQ(hidden.error_details(), nobody.error_details());

  ASSERT_TRUE(AllowPhoneLookup(alice, true).ok());
  auto st = LookupPhone(carol, kPhoneA, &found);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(found.user_id(), alice);
  EXPECT_EQ(found.display_name(), "Alice");
  EXPECT_EQ(found.SerializeAsString().find("13800131234"), std::string::npos) << "no phone in the profile";

  ASSERT_TRUE(AllowPhoneLookup(alice, false).ok());
  auto again = LookupPhone(carol, kPhoneA, &found);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(again.error_message(), nobody.error_message());

  EXPECT_EQ(LookupPhone(carol, "13800131234", &found).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LookupPhone(0, kPhoneA, &found).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ProfileTest, ADeletedAccountIsNotFoundByPhone) {
  ASSERT_TRUE(AllowPhoneLookup(alice, true).ok());
  v1::UserProfile found;
  ASSERT_TRUE(LookupPhone(carol, kPhoneA, &found).ok());
  Advance(int64_t{config_.limits.account.code_resend_interval_s} * 1000 + 1);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  auto st = DeleteAccount(Key(alice_session), Code(kPhoneA));
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto gone = LookupPhone(carol, kPhoneA, &found);
  auto nobody = LookupPhone(carol, "+8613911112222", &found);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(gone.error_message(), nobody.error_message());
}

TEST_F(ProfileTest, AQrCodeIsStableUntilRotatedAndThenOnlyTheNewOneWorks) {
  auto qr = [&](uint64_t user, bool rotate) {
    grpc::ServerContext ctx;
    internal::QrCodeRequest req;
    req.set_user_id(user);
    req.set_rotate(rotate);
    v1::QrCodeResult res;
    auto st = svc().MyQrCode(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res.token();
  };
  auto resolve = [&](const std::string& token, v1::UserProfile* p) {
    grpc::ServerContext ctx;
    v1::ResolveQrCodeRequest req;
    req.set_token(token);
    return svc().ResolveQrCode(&ctx, &req, p);
  };
  const std::string first = qr(alice, false);
  EXPECT_EQ(ParseQrToken(first), alice);
  EXPECT_EQ(qr(alice, false), first) << "the same code until rotated";
  EXPECT_NE(qr(bob, false), first);
  v1::UserProfile p;
  ASSERT_TRUE(resolve(first, &p).ok());
  EXPECT_EQ(p.user_id(), alice);
  EXPECT_EQ(p.display_name(), "Alice");

  const std::string second = qr(alice, true);
  EXPECT_NE(second, first);
  auto old = resolve(first, &p);
  EXPECT_EQ(old.error_code(), grpc::StatusCode::NOT_FOUND) << "rotating kills the old code";
  ASSERT_TRUE(resolve(second, &p).ok());
  // Every code that admits nobody gets the same reply: rotated, forged secret, malformed, unknown user.
  std::string forged = second;
  forged.back() = forged.back() == '0' ? '1' : '0';
  for (const std::string& bad :
       {forged, std::string("q1nothex"), QrToken(987654321, std::string(32, 'a')), std::string(""), second + "0"}) {
    auto st = resolve(bad, &p);
    EXPECT_EQ(st.error_code(), old.error_code()) << bad;
    EXPECT_EQ(st.error_message(), old.error_message()) << bad;
  }
  // A deleted account's code admits nobody.
  Advance(int64_t{config_.limits.account.code_resend_interval_s} * 1000 + 1);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  ASSERT_TRUE(DeleteAccount(Key(alice_session), Code(kPhoneA)).ok());
  EXPECT_EQ(resolve(second, &p).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace chat::account
