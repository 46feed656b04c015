// End-to-end one-time-code abuse (issue 10, sign-up and log-in hardening): the limits on code
// requests and code checks bite per connection and per client address before they bite a victim's
// phone, wrong codes lock the code and not the phone, and no reply tells whether a phone has an
// account.
//
// One cluster for the suite with the default code limits (the test clusters raise the per-address
// ones, see DefaultTestLimits), except the 30 s resend interval, which is set to 0 so that several
// codes for one phone need no waiting (the interval has its unit tests). Clients play distinct
// addresses by binding 127.0.0.x sources (the gateway's per-address key is the TCP peer); each test
// uses addresses of its own, because the quotas outlive the test.
#include <gtest/gtest.h>

#include <string>

#include "client/api.h"
#include "cluster.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;

class CodeAbuse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    const Limits defaults;
    o.limits.account = defaults.account;
    o.limits.account.code_resend_interval_s = 0;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }

  static const AccountLimits& limits() { return cluster_->limits().account; }

  // A new unauthenticated connection from `source` (a 127.0.0.x address).
  static std::unique_ptr<Connection> From(const std::string& source, WireEncoding enc = kProto, int gateway = 0) {
    client::ConnectOptions o = cluster_->Options(gateway, enc);
    o.source_address = source;
    std::string error;
    auto c = Connection::Connect(o, &error);
    if (!c) throw std::runtime_error("connect from " + source + ": " + error);
    return c;
  }
  // request_code for `phone` on a new connection from `source`.
  static v1::Reply CodeFrom(const std::string& source, const std::string& phone) {
    return client::RequestCode(*From(source), phone);
  }
  static v1::Reply LogInFrom(const std::string& source, const std::string& phone, const std::string& code) {
    return client::LogIn(*From(source, kJson, 1), phone, code, client::NewDeviceId());
  }
  // The newest code sent to `phone` after `since_ms`.
  static std::string CodeSent(const std::string& phone, int64_t since_ms) {
    return client::WaitForCode(cluster_->codes_file(), phone, since_ms);
  }
  static std::string Wrong(const std::string& code) { return code == "000000" ? "111111" : "000000"; }

  static TestCluster* cluster_;
};
TestCluster* CodeAbuse::cluster_ = nullptr;

// Issue 10: "one connection got codes for 40 new phones in 39 ms".
TEST_F(CodeAbuse, OneConnectionGetsItsFewCodesAndChecksThenRefusals) {
  const uint32_t cap = cluster_->limits().gateway.code_requests_per_connection;
  ASSERT_GT(cap, 0u);
  auto c = From("127.0.0.31");
  for (uint32_t i = 0; i < cap; ++i) {
    v1::Reply r = client::RequestCode(*c, client::RandomTestPhone());
    ASSERT_EQ(r.status(), v1::OK) << i << ": " << client::DescribeError(r);
  }
  v1::Reply r = client::RequestCode(*c, client::RandomTestPhone());
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED);
  EXPECT_NE(r.message().find("code_requests_per_connection"), std::string::npos) << r.message();

  // Checks: every attempt counts, right or wrong (here: wrong, for phones without a code).
  const uint32_t checks = cluster_->limits().gateway.code_checks_per_connection;
  for (uint32_t i = 0; i < checks; ++i) {
    r = client::LogIn(*c, client::RandomTestPhone(), "123456", client::NewDeviceId());
    ASSERT_EQ(r.status(), v1::PERMISSION_DENIED) << i << ": " << client::DescribeError(r);
  }
  r = client::LogIn(*c, client::RandomTestPhone(), "123456", client::NewDeviceId());
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED);
  EXPECT_NE(r.message().find("code_checks_per_connection"), std::string::npos) << r.message();
  // The connection itself is still served.
  EXPECT_EQ(client::GetMe(*c).status(), v1::UNAUTHENTICATED);
}

// Issue 10: "a stranger who knows a number can lock its owner out for 24 h (4 code requests and 20
// wrong codes in about 95 s)".
TEST_F(CodeAbuse, AStrangerCannotLockAnOwnerOutFromOneAddress) {
  const std::string attacker = "127.0.0.32", owner_address = "127.0.0.33";
  const User owner = cluster_->SignUp(0, kProto, "Owner");  // from 127.0.0.1

  // Codes for the owner's phone from one address: address_phone_codes_per_day, then the wait.
  int64_t since = client::UnixMillis() - 5;
  for (uint32_t i = 0; i < limits().address_phone_codes_per_day; ++i) {
    v1::Reply r = CodeFrom(attacker, owner.phone);
    ASSERT_EQ(r.status(), v1::OK) << i << ": " << client::DescribeError(r);
  }
  v1::Reply r = CodeFrom(attacker, owner.phone);
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED) << client::DescribeError(r);
  EXPECT_NE(r.message().find("address_phone_codes_per_day"), std::string::npos) << r.message();
  EXPECT_GT(r.retry_after_ms(), 60u * 1000) << "the wait is hours, and the reply says so";

  // Guesses at the owner's phone from the same address: the live code dies after code_max_tries;
  // the address may make address_phone_code_checks_per_day checks of this phone, then none.
  const std::string live = CodeSent(owner.phone, since);
  ASSERT_FALSE(live.empty());
  for (uint32_t i = 0; i < limits().address_phone_code_checks_per_day; ++i) {
    r = LogInFrom(attacker, owner.phone, Wrong(live));
    const auto want = i < limits().code_max_tries ? v1::PERMISSION_DENIED : v1::FAILED_PRECONDITION;
    ASSERT_EQ(r.status(), want) << i << ": " << client::DescribeError(r);
  }
  r = LogInFrom(attacker, owner.phone, live);
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED) << "even the right code, from this address";
  EXPECT_NE(r.message().find("address_phone_code_checks_per_day"), std::string::npos) << r.message();
  EXPECT_GT(r.retry_after_ms(), 0u);

  // The owner, on their own network, gets a code and logs in: the phone is not locked.
  since = client::UnixMillis() - 5;
  r = CodeFrom(owner_address, owner.phone);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::string fresh = CodeSent(owner.phone, since);
  ASSERT_FALSE(fresh.empty());
  r = LogInFrom(owner_address, owner.phone, fresh);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.session().account().profile().user_id(), owner.id);
}

// Issue 10: "the SMS budget must not be exhaustible from one address".
TEST_F(CodeAbuse, OneAddressGetsAtMostItsHourlyCodesAcrossPhones) {
  const std::string attacker = "127.0.0.34";
  uint32_t sent = 0;
  v1::Reply r;
  for (uint32_t i = 0; i <= limits().address_codes_per_hour; ++i) {
    r = CodeFrom(attacker, client::RandomTestPhone());
    if (r.status() != v1::OK) break;
    ++sent;
  }
  EXPECT_EQ(sent, limits().address_codes_per_hour);
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED) << client::DescribeError(r);
  EXPECT_NE(r.message().find("address_codes_per_hour"), std::string::npos) << r.message();
  EXPECT_GT(r.retry_after_ms(), 0u);
  // Others still get codes.
  r = CodeFrom("127.0.0.35", client::RandomTestPhone());
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
}

// "The replies to 'unknown phone' and 'wrong code' do not reveal whether a phone has an account."
TEST_F(CodeAbuse, RepliesAreTheSameWithOrWithoutAnAccount) {
  const User user = cluster_->SignUp(1, kJson, "Known");
  const std::string unknown = client::RandomTestPhone();
  const std::string source = "127.0.0.36";
  v1::Reply known_code = CodeFrom(source, user.phone), unknown_code = CodeFrom(source, unknown);
  ASSERT_EQ(known_code.status(), v1::OK);
  EXPECT_EQ(known_code.request_code().SerializeAsString(), unknown_code.request_code().SerializeAsString());
  v1::Reply known_wrong = LogInFrom(source, user.phone, "000000");
  v1::Reply unknown_wrong = LogInFrom(source, unknown, "000000");
  EXPECT_EQ(known_wrong.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(known_wrong.status(), unknown_wrong.status());
  EXPECT_EQ(known_wrong.message(), unknown_wrong.message());
}

}  // namespace
}  // namespace chat::e2e
