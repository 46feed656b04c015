// End-to-end profiles and finding people by phone (issue 10): a profile change reaches contacts on
// another gateway and account shard, phone search finds only who allows it with misses that are the
// same bytes whatever the reason, and both are capped per user per day (real Redis quotas). Both
// encodings.
#include <gtest/gtest.h>

#include <string>

#include "client/api.h"
#include "cluster.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
constexpr auto kEventWait = std::chrono::seconds(5);

class Profile : public ::testing::Test {
 protected:
  static constexpr uint32_t kLookupsPerDay = 4;
  static constexpr uint32_t kChangesPerDay = 3;
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.limits.account.user_phone_lookups_per_day = kLookupsPerDay;
    o.limits.account.user_profile_changes_per_day = kChangesPerDay;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  // The reply's bytes without its request id: what tells one refusal from another.
  static std::string Bytes(v1::Reply r) {
    r.set_request_id(0);
    return r.SerializeAsString();
  }
  static TestCluster* cluster_;
};
TestCluster* Profile::cluster_ = nullptr;

TEST_F(Profile, AChangeReachesContactsOnOtherGatewaysAndStrangersSeeItOnlyWhenTheyAsk) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = cluster_->SignUp(1, kJson, "Bob");
  User carol = cluster_->SignUp(1, kProto, "Carol");
  cluster_->MakeFriends(alice, bob);
  auto alice_tablet = cluster_->Connect(alice, 1, kJson);

  const std::string avatar = "m_" + std::string(30, 'a');
  v1::Reply r = client::SetProfile(alice.c(), "Alice W.", avatar, "out climbing");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.account().profile().whats_up(), "out climbing");
  for (Connection* c : {&bob.c(), alice_tablet.get()}) {
    auto e = c->WaitEvent([](const v1::Event& ev) { return ev.has_profile_changed(); }, kEventWait);
    ASSERT_TRUE(e) << "a profile_changed event did not arrive";
    EXPECT_EQ(e->profile_changed().profile().user_id(), alice.id);
    EXPECT_EQ(e->profile_changed().profile().display_name(), "Alice W.");
    EXPECT_EQ(e->profile_changed().profile().avatar_media_id(), avatar);
  }
  // Carol is on Bob's gateway: had she been a recipient, her copy would have come in the same
  // delivery as Bob's, before the reply to this request.
  r = client::GetProfiles(carol.c(), {alice.id});
  ASSERT_EQ(r.profiles().profiles_size(), 1);
  EXPECT_EQ(r.profiles().profiles(0).whats_up(), "out climbing");
  EXPECT_FALSE(
      carol.c().WaitEvent([](const v1::Event& ev) { return ev.has_profile_changed(); }, std::chrono::milliseconds(0)))
      << "a stranger was told";

  EXPECT_EQ(client::SetProfile(alice.c(), "Alice", "not a media id!", "").status(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(client::SetProfile(alice.c(), "Alice", "", std::string(31, 'x')).status(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(client::GetMe(bob.c()).status(), v1::OK) << "Bob's session is untouched";
}

TEST_F(Profile, ChangesAreCappedPerDay) {
  User dave = cluster_->SignUp(0, kJson, "Dave");
  v1::Reply r;
  for (uint32_t i = 0; i < kChangesPerDay; ++i) {
    r = client::SetDisplayName(dave.c(), "Dave " + std::to_string(i));
    ASSERT_EQ(r.status(), v1::OK) << i << ": " << client::DescribeError(r);
  }
  r = client::SetProfile(dave.c(), "Dave again", "", "");
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(r.retry_after_ms(), 0u);
  r = client::GetMe(dave.c());
  EXPECT_EQ(r.account().profile().display_name(), "Dave " + std::to_string(kChangesPerDay - 1));
}

TEST_F(Profile, APhoneFindsOnlyWhoAllowsItAndEveryMissIsTheSameReply) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User erin = cluster_->SignUp(1, kJson, "Erin");  // the searcher
  const std::string nobody = "+8613700" + std::to_string(100000 + (alice.id % 800000));

  v1::Reply hidden = client::LookupPhone(erin.c(), alice.phone);
  v1::Reply unknown = client::LookupPhone(erin.c(), nobody);
  ASSERT_EQ(hidden.status(), v1::NOT_FOUND) << client::DescribeError(hidden);
  EXPECT_EQ(Bytes(hidden), Bytes(unknown)) << "a private number and an unused one must be indistinguishable";
  EXPECT_EQ(client::GetMe(alice.c()).account().allow_phone_lookup(), false) << "off by default";

  v1::Reply r = client::SetPrivacy(alice.c(), true);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_TRUE(r.account().allow_phone_lookup());
  r = client::LookupPhone(erin.c(), alice.phone);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.profile().user_id(), alice.id);
  EXPECT_EQ(r.SerializeAsString().find(alice.phone.substr(1)), std::string::npos) << "the number came back";

  // Every search counts, found or not: the next is over the cap of kLookupsPerDay (4).
  r = client::LookupPhone(erin.c(), nobody);
  EXPECT_EQ(r.status(), v1::NOT_FOUND);
  r = client::LookupPhone(erin.c(), alice.phone);
  EXPECT_EQ(r.status(), v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(r.retry_after_ms(), 0u);
  EXPECT_EQ(client::LookupPhone(erin.c(), "12345").status(), v1::INVALID_ARGUMENT);
  // Another searcher has a budget of their own.
  User frank = cluster_->SignUp(0, kProto, "Frank");
  r = client::LookupPhone(frank.c(), alice.phone);
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
}

}  // namespace
}  // namespace chat::e2e
