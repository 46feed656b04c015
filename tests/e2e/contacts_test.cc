// End-to-end contacts (issue 10): blocks, one-way deletes and remark names over both encodings, on
// two gateways and two account shards, with the users of each pair on different account shards, so
// every rule crosses a shard. What a user checks: who can still message whom (every acked message is
// in the history, every refused one is not), what each side's contact list shows, and what the
// other devices hear.
#include <gtest/gtest.h>

#include <string>

#include "client/api.h"
#include "cluster.h"
#include "common/friends.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
constexpr auto kEventWait = std::chrono::seconds(5);

class Contacts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }

  // A user on the other account shard than `other`, on `gateway`.
  User OnOtherShard(const User& other, int gateway, WireEncoding enc, const std::string& name) {
    for (int i = 0; i < 64; ++i) {
      User u = cluster_->SignUp(gateway, enc, name);
      if (ShardOfUser(u.id, 2) != ShardOfUser(other.id, 2)) return u;
    }
    throw std::runtime_error("64 sign-ups all landed on one account shard");
  }
  // Sends text from `from` to `to` in their direct conversation; the reply.
  v1::Reply Send(const User& from, const User& to, const std::string& text) {
    return client::SendText(from.c(), DirectConversationId(from.id, to.id), client::NewClientMsgId(), text);
  }
  // The texts of the pair's history as `viewer` reads it.
  std::vector<std::string> Texts(const User& viewer, const User& other) {
    std::vector<std::string> out;
    for (const auto& m : FullHistory(viewer.c(), DirectConversationId(viewer.id, other.id), 0, 100))
      out.push_back(m.content().text().text());
    return out;
  }
  static const v1::Contact* Find(const v1::Reply& contacts, uint64_t id) {
    for (const auto& c : contacts.contacts().contacts())
      if (c.profile().user_id() == id) return &c;
    return nullptr;
  }
  static TestCluster* cluster_;
};
TestCluster* Contacts::cluster_ = nullptr;

TEST_F(Contacts, ABlockRejectsTheBlockedUsersMessagesAndRequestsAtOnceAndRevealsNothingElse) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = OnOtherShard(alice, 1, kJson, "Bob");
  cluster_->MakeFriends(alice, bob);
  auto bob_phone = cluster_->Connect(bob, 0, kProto);  // Bob's other device

  v1::Reply r = Send(alice, bob, "hello Bob");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);  // chat-service now remembers the pair

  r = client::BlockUser(bob.c(), alice.id, true);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  auto e = bob_phone->WaitEvent([](const v1::Event& ev) { return ev.has_contact_updated(); }, kEventWait);
  ASSERT_TRUE(e) << "Bob's other device was not told";
  EXPECT_EQ(e->contact_updated().contact().profile().user_id(), alice.id);
  EXPECT_TRUE(e->contact_updated().contact().blocked());

  // The very next send is refused, with the documented status and words.
  r = Send(alice, bob, "are you there?");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(r.message(), kRejectedByReceiver);
  r = client::SendFriendRequest(alice.c(), bob.id, "let me back in");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(r.message(), kRejectedByReceiver);
  // The blocker may still write; the blocked side's list shows nothing of the block.
  r = Send(bob, alice, "I can still write to you");
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = client::ListContacts(alice.c());
  ASSERT_EQ(r.status(), v1::OK);
  ASSERT_NE(Find(r, bob.id), nullptr);
  EXPECT_FALSE(Find(r, bob.id)->blocked());
  EXPECT_EQ(r.contacts().blocked_size(), 0);
  r = client::ListContacts(bob.c());
  ASSERT_NE(Find(r, alice.id), nullptr);
  EXPECT_TRUE(Find(r, alice.id)->blocked());
  ASSERT_EQ(r.contacts().blocked_size(), 1);
  EXPECT_EQ(r.contacts().blocked(0).user_id(), alice.id);

  // Unblocked: Alice's messages go through again.
  r = client::BlockUser(bob.c(), alice.id, false);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = Send(alice, bob, "back again");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::vector<std::string> acked = {"hello Bob", "I can still write to you", "back again"};
  EXPECT_EQ(Texts(bob, alice), acked) << "every acked message, and no refused one";
  EXPECT_EQ(Texts(alice, bob), acked);
}

TEST_F(Contacts, DeletingIsOneWayNeitherCanWriteAndARequestReconnects) {
  User alice = cluster_->SignUp(1, kJson, "Alice");
  User bob = OnOtherShard(alice, 0, kProto, "Bob");
  cluster_->MakeFriends(alice, bob);
  auto alice_tablet = cluster_->Connect(alice, 0, kProto);
  ASSERT_EQ(Send(bob, alice, "hi").status(), v1::OK);
  ASSERT_EQ(Send(alice, bob, "hi yourself").status(), v1::OK);

  v1::Reply r = client::DeleteContact(alice.c(), bob.id);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  auto e = alice_tablet->WaitEvent([](const v1::Event& ev) { return ev.has_contact_updated(); }, kEventWait);
  ASSERT_TRUE(e) << "Alice's other device was not told";
  EXPECT_TRUE(e->contact_updated().removed());
  EXPECT_EQ(e->contact_updated().contact().profile().user_id(), bob.id);

  r = client::ListContacts(alice.c());
  EXPECT_EQ(Find(r, bob.id), nullptr);
  r = client::ListContacts(bob.c());
  EXPECT_NE(Find(r, alice.id), nullptr) << "Bob still lists Alice (WeChat)";
  r = Send(bob, alice, "why?");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(r.message(), "you can only message friends");
  r = Send(alice, bob, "one more thing");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED) << "the one who deleted cannot write either";
  r = client::DeleteContact(alice.c(), bob.id);
  EXPECT_EQ(r.status(), v1::NOT_FOUND);

  // Alice re-adds Bob, who never removed her: reconnected at once.
  r = client::SendFriendRequest(alice.c(), bob.id, "sorry");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_TRUE(r.send_friend_request().already_friends());
  r = Send(bob, alice, "welcome back");
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = client::ListContacts(alice.c());
  EXPECT_NE(Find(r, bob.id), nullptr);
  const std::vector<std::string> acked = {"hi", "hi yourself", "welcome back"};
  EXPECT_EQ(Texts(alice, bob), acked);
  EXPECT_EQ(Texts(bob, alice), acked);
}

TEST_F(Contacts, ARemarkIsShownOnlyToItsOwnerAndBadOnesAreRefused) {
  User alice = cluster_->SignUp(0, kJson, "Alice");
  User bob = OnOtherShard(alice, 1, kProto, "Bob");
  User carol = cluster_->SignUp(1, kJson, "Carol");
  cluster_->MakeFriends(alice, bob);
  cluster_->MakeFriends(carol, bob);
  auto alice_tablet = cluster_->Connect(alice, 1, kProto);

  v1::Reply r = client::SetRemark(alice.c(), bob.id, " Bobby (work) ");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.contact().profile().remark(), "Bobby (work)");
  EXPECT_EQ(r.contact().profile().display_name(), "Bob");
  auto e = alice_tablet->WaitEvent([](const v1::Event& ev) { return ev.has_contact_updated(); }, kEventWait);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->contact_updated().contact().profile().remark(), "Bobby (work)");

  r = client::GetProfiles(alice.c(), {bob.id, carol.id});
  ASSERT_EQ(r.status(), v1::OK);
  ASSERT_EQ(r.profiles().profiles_size(), 2);
  EXPECT_EQ(r.profiles().profiles(0).remark(), "Bobby (work)");
  EXPECT_EQ(r.profiles().profiles(1).remark(), "");
  r = client::ListContacts(alice.c());
  EXPECT_EQ(Find(r, bob.id)->profile().remark(), "Bobby (work)");
  r = client::GetProfiles(carol.c(), {bob.id});
  ASSERT_EQ(r.profiles().profiles_size(), 1);
  EXPECT_EQ(r.profiles().profiles(0).remark(), "") << "a remark is private";
  // A group's member list (group-service, on the group's shard) shows the asker's remarks too.
  r = client::CreateGroup(bob.c(), "Climbing", {alice.id, carol.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t group = r.group().group().group_id();
  auto remark_in_members = [&](const User& viewer) {
    v1::Reply members = client::ListGroupMembers(viewer.c(), group);
    EXPECT_EQ(members.status(), v1::OK) << client::DescribeError(members);
    for (const auto& m : members.group_members().members())
      if (m.profile().user_id() == bob.id) return m.profile().remark() + "|" + m.profile().display_name();
    return std::string("Bob is not listed");
  };
  EXPECT_EQ(remark_in_members(alice), "Bobby (work)|Bob");
  EXPECT_EQ(remark_in_members(carol), "|Bob") << "a remark is private";

  EXPECT_EQ(client::SetRemark(alice.c(), bob.id, std::string(33, 'x')).status(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(client::SetRemark(alice.c(), bob.id, "tab\there").status(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(client::SetRemark(alice.c(), carol.id, "Carol").status(), v1::NOT_FOUND) << "not her contact";
  EXPECT_EQ(client::SetRemark(alice.c(), 0, "x").status(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(client::BlockUser(alice.c(), alice.id, true).status(), v1::INVALID_ARGUMENT);
  // Nothing of it touched anyone else's session.
  EXPECT_EQ(client::GetMe(bob.c()).status(), v1::OK);
  EXPECT_EQ(client::GetMe(alice.c()).status(), v1::OK);
  r = client::GetProfiles(alice.c(), {bob.id});
  EXPECT_EQ(r.profiles().profiles(0).remark(), "Bobby (work)") << "a refused change changed nothing";
}

TEST_F(Contacts, LabelsHoldOnlyContactsAndFollowADelete) {
  User alice = cluster_->SignUp(0, kJson, "Alice");
  User bob = OnOtherShard(alice, 1, kProto, "Bob");
  User carol = cluster_->SignUp(1, kJson, "Carol");
  cluster_->MakeFriends(alice, bob);
  v1::Reply r = client::SetLabel(alice.c(), 0, "Climbing", {bob.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t label = r.label().label_id();
  r = client::SetLabel(alice.c(), label, "Climbing", {bob.id, carol.id});
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "Carol is not Alice's contact";
  r = client::ListLabels(alice.c());
  ASSERT_EQ(r.labels().labels_size(), 1);
  ASSERT_EQ(r.labels().labels(0).member_ids_size(), 1) << "a refused change changed nothing";
  EXPECT_EQ(r.labels().labels(0).member_ids(0), bob.id);
  EXPECT_EQ(client::ListLabels(bob.c()).labels().labels_size(), 0) << "labels are private";
  ASSERT_EQ(client::DeleteContact(alice.c(), bob.id).status(), v1::OK);
  r = client::ListLabels(alice.c());
  ASSERT_EQ(r.labels().labels_size(), 1);
  EXPECT_EQ(r.labels().labels(0).member_ids_size(), 0) << "a deleted contact leaves every label";
  EXPECT_EQ(client::DeleteLabel(alice.c(), label).status(), v1::OK);
  EXPECT_EQ(client::DeleteLabel(alice.c(), label).status(), v1::NOT_FOUND);
}

}  // namespace
}  // namespace chat::e2e
