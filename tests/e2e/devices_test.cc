// End-to-end sessions and devices (issue 10): log-out, refresh and account deletion close the
// affected connections on whichever gateway holds them (close 4011, within 2 s) and their tokens are
// refused at every gateway from then on; phone numbers move across account shards. One cluster for
// the suite: two gateways, two account shards.
#include <gtest/gtest.h>

#include <string>

#include "client/api.h"
#include "cluster.h"
#include "common/shard.h"
#include "common/status_code.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
// The bound for a revoked session to be closed anywhere.
constexpr auto kRevocationBound = std::chrono::milliseconds(2000);

class Devices : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.limits.account.code_resend_interval_s = 0;  // several codes per phone in one test
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }

  // Requests a code for `phone` on `conn` and reads it from the code file.
  std::string CodeFor(Connection& conn, const std::string& phone) { return cluster_->CodeFor(conn, phone); }

  std::unique_ptr<Connection> Unauthenticated(int gateway, WireEncoding enc) {
    std::string error;
    auto c = Connection::Connect(cluster_->Options(gateway, enc), &error);
    EXPECT_TRUE(c) << error;
    return c;
  }
  // A second device of `user`: logs in on `gateway` with its own device id.
  std::unique_ptr<Connection> NewDevice(const User& user, int gateway, WireEncoding enc, const std::string& device,
                                        v1::SessionResult* session) {
    auto c = Unauthenticated(gateway, enc);
    if (!c) return c;
    const std::string code = CodeFor(*c, user.phone);
    v1::Reply r = client::LogIn(*c, user.phone, code, device);
    EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
    *session = r.session();
    return c;
  }
  // Whether a connection with `token` in the upgrade is refused with 401 by `gateway`.
  bool RefusedAtUpgrade(const std::string& token, int gateway) {
    auto o = cluster_->Options(gateway, kProto);
    o.token = token;
    std::string error;
    auto c = Connection::Connect(o, &error);
    return !c && error.find("401") != std::string::npos;
  }
  // Waits for the server to close `c`; the close code (0 when it stayed open past the bound).
  uint16_t ClosedWith(Connection& c, std::string* reason = nullptr) {
    uint16_t code = 0;
    if (!c.WaitClosed(kRevocationBound, &code, reason)) return 0;
    return code;
  }
  static TestCluster* cluster_;
};
TestCluster* Devices::cluster_ = nullptr;

TEST_F(Devices, LoggingOutAnotherDeviceClosesItOnTheOtherGatewayAndItsTokenIsRefusedEverywhere) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  v1::SessionResult tablet_session;
  auto tablet = NewDevice(alice, 1, kJson, "tablet-1", &tablet_session);
  ASSERT_TRUE(tablet);
  // The phone hears of the new device.
  auto ev = alice.c().WaitEvent([](const v1::Event& e) { return e.has_new_device(); }, 5s);
  ASSERT_TRUE(ev) << "no new_device event on the other device";
  EXPECT_EQ(ev->new_device().device().device_id(), "tablet-1");

  v1::Reply r = client::ListDevices(*tablet);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  ASSERT_EQ(r.devices().devices_size(), 2);
  EXPECT_EQ(r.devices().devices(0).device_id(), "tablet-1");
  EXPECT_TRUE(r.devices().devices(0).current());
  EXPECT_FALSE(r.devices().devices(1).current());

  r = client::LogOut(alice.c(), tablet_session.session_id());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  auto kicked = tablet->WaitEvent([](const v1::Event& e) { return e.has_kicked(); }, kRevocationBound);
  ASSERT_TRUE(kicked) << "the logged-out device got no kicked event";
  EXPECT_EQ(kicked->kicked().close_code(), kCloseSessionEnded);
  EXPECT_EQ(ClosedWith(*tablet), kCloseSessionEnded);
  for (int g = 0; g < 2; ++g) EXPECT_TRUE(RefusedAtUpgrade(tablet_session.token(), g)) << "gateway " << g;
  auto again = Unauthenticated(0, kJson);
  r = client::Authenticate(*again, tablet_session.token());
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);

  // The phone is untouched.
  r = client::GetMe(alice.c());
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_FALSE(RefusedAtUpgrade(alice.token, 1));
}

TEST_F(Devices, RefreshKillsTheReplacedTokenOnEveryGatewayButKeepsItsConnection) {
  User alice = cluster_->SignUp(0, kJson, "Alice");
  // A gateway that has confirmed the old token (and cached it) and holds a connection on it.
  auto other = cluster_->Connect(alice, 1, kProto);
  v1::Reply r = client::RefreshToken(alice.c());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::string fresh = r.session().token();
  EXPECT_NE(fresh, alice.token);
  EXPECT_EQ(ClosedWith(*other), kCloseSessionEnded) << "a connection on the replaced token stayed open";
  for (int g = 0; g < 2; ++g) {
    EXPECT_TRUE(RefusedAtUpgrade(alice.token, g)) << "gateway " << g << " took the replaced token";
    EXPECT_FALSE(RefusedAtUpgrade(fresh, g)) << "gateway " << g;
  }
  // The refreshing connection goes on, and can refresh again.
  r = client::GetMe(alice.c());
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = client::RefreshToken(alice.c());
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
}

TEST_F(Devices, LoggingOutThisOrEveryDeviceRepliesThenCloses) {
  User alice = cluster_->SignUp(1, kProto, "Alice");
  v1::Reply r = client::LogOut(alice.c());
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(ClosedWith(alice.c()), kCloseSessionEnded);
  EXPECT_TRUE(RefusedAtUpgrade(alice.token, 0));

  User bob = cluster_->SignUp(0, kJson, "Bob");
  v1::SessionResult second;
  auto laptop = NewDevice(bob, 1, kProto, "laptop", &second);
  ASSERT_TRUE(laptop);
  r = client::LogOut(*laptop, 0, /*all_devices=*/true);
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(ClosedWith(*laptop), kCloseSessionEnded);
  EXPECT_EQ(ClosedWith(bob.c()), kCloseSessionEnded);
  EXPECT_TRUE(RefusedAtUpgrade(bob.token, 1));
  EXPECT_TRUE(RefusedAtUpgrade(second.token(), 0));
  // Bad input: a session id that is not one of the caller's.
  User carol = cluster_->SignUp(0, kProto, "Carol");
  r = client::LogOut(carol.c(), second.session_id());
  EXPECT_EQ(r.status(), v1::NOT_FOUND) << client::DescribeError(r);
  EXPECT_EQ(client::GetMe(carol.c()).status(), v1::OK);
}

TEST_F(Devices, ADeletedAccountEndsEverywhereAndLeavesADeletedUserInOthersViews) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = cluster_->SignUp(1, kJson, "Bob");
  cluster_->MakeFriends(alice, bob);
  auto second = cluster_->Connect(alice, 1, kJson);
  const std::string handle = alice.handle;

  v1::Reply r = client::DeleteAccount(alice.c(), "000000");
  EXPECT_TRUE(r.status() == v1::PERMISSION_DENIED || r.status() == v1::FAILED_PRECONDITION) << client::DescribeError(r);
  EXPECT_EQ(client::GetMe(alice.c()).status(), v1::OK) << "a wrong code deleted something";
  const std::string code = CodeFor(alice.c(), alice.phone);
  r = client::DeleteAccount(alice.c(), code);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(ClosedWith(alice.c()), kCloseSessionEnded);
  std::string reason;
  EXPECT_EQ(ClosedWith(*second, &reason), kCloseSessionEnded);
  EXPECT_EQ(reason, "account deleted");
  EXPECT_TRUE(RefusedAtUpgrade(alice.token, 0));
  EXPECT_TRUE(RefusedAtUpgrade(alice.token, 1));

  EXPECT_EQ(client::LookupUser(bob.c(), handle).status(), v1::NOT_FOUND);
  r = client::GetProfiles(bob.c(), {alice.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  ASSERT_EQ(r.profiles().profiles_size(), 1);
  EXPECT_TRUE(r.profiles().profiles(0).deleted());
  EXPECT_EQ(r.profiles().profiles(0).display_name(), "Deleted user");
  r = client::ListContacts(bob.c());
  ASSERT_EQ(r.status(), v1::OK);
  EXPECT_EQ(r.contacts().contacts_size(), 0);

  // The number is in its cooling-off: a log-in says so, with the wait.
  auto c = Unauthenticated(0, kProto);
  const std::string code2 = CodeFor(*c, alice.phone);
  r = client::LogIn(*c, alice.phone, code2, "phone-2");
  EXPECT_EQ(r.status(), v1::FAILED_PRECONDITION) << client::DescribeError(r);
  EXPECT_GT(r.retry_after_ms(), uint64_t{cluster_->limits().account.deleted_phone_reuse_after_s} * 1000 - 3600000);
}

TEST_F(Devices, APhoneNumberMovesToAnotherAccountShardWithCodesToBothNumbers) {
  User alice = cluster_->SignUp(1, kJson, "Alice");
  std::string new_phone;
  do new_phone = client::RandomTestPhone();
  while (ShardOfPhone(new_phone, 2) == ShardOfPhone(alice.phone, 2));
  auto other = Unauthenticated(0, kProto);
  const std::string new_code = CodeFor(*other, new_phone);
  const std::string code = CodeFor(alice.c(), alice.phone);
  v1::Reply r = client::ChangePhone(alice.c(), new_phone, code, "000000");
  EXPECT_TRUE(r.status() == v1::PERMISSION_DENIED) << client::DescribeError(r);
  r = client::ChangePhone(alice.c(), new_phone, CodeFor(alice.c(), alice.phone), new_code);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.account().phone(), new_phone);
  EXPECT_EQ(r.account().profile().user_id(), alice.id);

  // The new number, verified on its own shard, logs in to Alice's account on hers.
  r = client::LogIn(*other, new_phone, CodeFor(*other, new_phone), "tablet");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.session().account().profile().user_id(), alice.id);
  EXPECT_EQ(r.session().account().phone(), new_phone);
  // The old one no longer does.
  auto third = Unauthenticated(1, kJson);
  r = client::LogIn(*third, alice.phone, CodeFor(*third, alice.phone), "old-phone");
  EXPECT_EQ(r.status(), v1::NOT_FOUND) << client::DescribeError(r);
}

}  // namespace
}  // namespace chat::e2e
