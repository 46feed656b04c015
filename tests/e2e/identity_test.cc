// End-to-end identity (issue 10): handles set over both encodings, across gateways and account
// shards. One cluster for the suite, with two account shards so that a handle's claim shard is
// often not its user's.
#include <gtest/gtest.h>

#include <string>

#include "client/api.h"
#include "cluster.h"

namespace chat::e2e {
namespace {

constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;

class Identity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  static TestCluster* cluster_;
};
TestCluster* Identity::cluster_ = nullptr;

TEST_F(Identity, AHandleIsSetOnceFoundExactlyAndNobodyElsesInAnyCase) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = cluster_->SignUp(1, kJson, "Bob");
  const std::string random = alice.handle;

  v1::Reply r = client::SetHandle(alice.c(), "Alice-1990");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.account().profile().handle(), "Alice-1990");

  // Bob, over JSON on the other gateway, finds her by the new handle in any case, not by the old
  // one, and never by a prefix.
  r = client::LookupUser(bob.c(), "alice-1990");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.profile().user_id(), alice.id);
  EXPECT_EQ(r.profile().handle(), "Alice-1990");
  EXPECT_EQ(client::LookupUser(bob.c(), random).status(), v1::NOT_FOUND);
  EXPECT_EQ(client::LookupUser(bob.c(), "alice-199").status(), v1::NOT_FOUND);

  r = client::SetHandle(bob.c(), "ALICE-1990");
  EXPECT_EQ(r.status(), v1::ALREADY_EXISTS) << client::DescribeError(r);
  r = client::SetHandle(bob.c(), "admin-bob");
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << client::DescribeError(r);
  r = client::SetHandle(bob.c(), "b");
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << client::DescribeError(r);

  r = client::SetHandle(alice.c(), "alice-again");
  EXPECT_EQ(r.status(), v1::FAILED_PRECONDITION) << client::DescribeError(r);
  EXPECT_GT(r.retry_after_ms(), 364ull * 24 * 3600 * 1000);
  EXPECT_EQ(client::LookupUser(bob.c(), "alice-again").status(), v1::NOT_FOUND);

  // Bob's own handle still works for him, and get_me shows Alice hers.
  r = client::SetHandle(bob.c(), "bob_the_builder");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = client::GetMe(alice.c());
  ASSERT_EQ(r.status(), v1::OK);
  EXPECT_EQ(r.account().profile().handle(), "Alice-1990");
}

TEST_F(Identity, SetHandleNeedsAnAuthenticatedConnection) {
  std::string error;
  auto c = client::Connection::Connect(cluster_->Options(0, kJson), &error);
  ASSERT_TRUE(c) << error;
  v1::Reply r = client::SetHandle(*c, "nobody_here");
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED);
}

}  // namespace
}  // namespace chat::e2e
