// End-to-end groups (issue 11): invite codes, roles, mutes and kicks over both encodings, on two
// gateways, two group shards and two account shards. What a user checks: who may join, who may send,
// what each member's history shows (every action a notice, in seq order with the messages), and
// that a kicked member receives nothing from their kick on, whatever was in flight.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/api.h"
#include "cluster.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
constexpr auto kEventWait = std::chrono::seconds(5);

class Groups : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.group_shards = 2;
    o.AllowLoad(1000);
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }

  static v1::Reply Manage(const User& actor, uint64_t gid, const std::function<void(v1::ManageGroupRequest&)>& fill) {
    v1::ManageGroupRequest r = client::GroupAction(gid);
    fill(r);
    return client::ManageGroup(actor.c(), r);
  }
  // The group's history as `viewer` reads it: "[notice]" for system notices, the text otherwise.
  static std::vector<std::string> Lines(const User& viewer, const std::string& conv) {
    std::vector<std::string> out;
    uint64_t last = 0;
    for (const auto& m : FullHistory(viewer.c(), conv)) {
      EXPECT_GT(m.seq(), last) << "history is in seq order";
      last = m.seq();
      out.push_back(m.sender_id() == 0 ? "[" + m.content().system().text() + "]" : TextOf(m));
    }
    return out;
  }
  static TestCluster* cluster_;
};
TestCluster* Groups::cluster_ = nullptr;

TEST_F(Groups, AStrangerJoinsByCodeAndEveryActionIsANoticeInOrderWithTheMessages) {
  User alice = cluster_->SignUp(0, kJson, "Alice");
  User bob = cluster_->SignUp(1, kProto, "Bob");
  User carol = cluster_->SignUp(1, kJson, "Carol");  // nobody's friend
  cluster_->MakeFriends(alice, bob);
  v1::Reply r = client::CreateGroup(alice.c(), "Climbing", {bob.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t gid = r.group().group().group_id();
  const std::string conv = GroupConversationId(gid);

  r = client::MakeGroupInviteCode(bob.c(), gid);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::string code = r.group_invite_code().code();
  EXPECT_EQ(code.find(std::to_string(gid)), std::string::npos) << "the code hides the group id";
  r = client::PreviewGroupInviteCode(carol.c(), code);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group_preview().name(), "Climbing");
  EXPECT_EQ(r.group_preview().member_count(), 2u);
  EXPECT_EQ(std::vector<std::string>(r.group_preview().member_names().begin(), r.group_preview().member_names().end()),
            (std::vector<std::string>{"Alice", "Bob"}));
  const std::string wire = r.SerializeAsString();
  for (const std::string& hidden : {alice.handle, bob.handle, std::to_string(alice.id), std::to_string(bob.id)})
    EXPECT_EQ(wire.find(hidden), std::string::npos) << "a preview names nobody: " << hidden;
  // Every code that admits nobody gets the one reply.
  std::string wrong = code;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  for (const std::string& bad : {wrong, std::string("g1nonsense"), std::string()}) {
    v1::Reply b = client::JoinGroupByCode(carol.c(), bad);
    EXPECT_EQ(b.status(), v1::NOT_FOUND) << bad;
    EXPECT_EQ(b.message(), "this invite code is not valid") << bad;
  }

  r = client::JoinGroupByCode(carol.c(), code);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group().group().member_count(), 3u);
  auto joined = alice.c().WaitEvent(
      [](const v1::Event& e) {
        return e.has_group_changed() && e.group_changed().kind() == v1::GROUP_CHANGE_KIND_MEMBER_JOINED;
      },
      kEventWait);
  ASSERT_TRUE(joined) << Diag(alice.c());
  EXPECT_EQ(joined->group_changed().invited_by(), bob.id);
  EXPECT_TRUE(joined->group_changed().by_code());

  // Roles and mutes, enforced where the message is stored.
  r = Manage(alice, gid, [&](auto& m) {
    m.mutable_set_admin()->set_user_id(bob.id);
    m.mutable_set_admin()->set_on(true);
  });
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = Manage(carol, gid, [](auto& m) { m.set_mute_all(true); });
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED) << "a member cannot";
  r = Manage(bob, gid, [&](auto& m) {
    m.mutable_mute_member()->set_user_id(carol.id);
    m.mutable_mute_member()->set_on(true);
  });
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  r = client::SendText(carol.c(), conv, client::NewClientMsgId(), "can I speak?");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(r.message(), "you are muted in this group");
  SendTextOk(bob.c(), conv, "bob speaks");
  r = Manage(bob, gid, [&](auto& m) {
    m.mutable_mute_member()->set_user_id(carol.id);
    m.mutable_mute_member()->set_on(false);
  });
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  SendTextOk(carol.c(), conv, "thanks");
  ASSERT_EQ(Manage(alice, gid, [](auto& m) { m.set_mute_all(true); }).status(), v1::OK);
  EXPECT_EQ(client::SendText(carol.c(), conv, client::NewClientMsgId(), "hello?").status(), v1::PERMISSION_DENIED);
  SendTextOk(bob.c(), conv, "admins still speak");
  ASSERT_EQ(Manage(alice, gid, [](auto& m) { m.set_mute_all(false); }).status(), v1::OK);
  ASSERT_EQ(Manage(bob, gid, [](auto& m) { m.set_rename("Climbing club"); }).status(), v1::OK);
  EXPECT_EQ(client::LeaveGroup(alice.c(), gid).status(), v1::FAILED_PRECONDITION) << "the owner transfers first";

  EXPECT_EQ(Lines(carol, conv), (std::vector<std::string>{
                                    "[Carol joined the group with Bob's invite code]", "[Alice made Bob an admin]",
                                    "[Bob muted Carol]", "bob speaks", "[Bob unmuted Carol]", "thanks",
                                    "[Alice muted the group: only the owner and admins can send]", "admins still speak",
                                    "[Alice unmuted the group]", "[Bob renamed the group to \"Climbing club\"]"}));
  r = client::ListGroupMembers(carol.c(), gid);
  ASSERT_EQ(r.status(), v1::OK);
  EXPECT_EQ(r.group_members().group().name(), "Climbing club");
  for (const auto& m : r.group_members().members())
    if (m.profile().user_id() == bob.id) EXPECT_EQ(m.role(), v1::GROUP_ROLE_ADMIN);
}

// 200 messages from three senders on both gateways are in flight when an admin kicks Carol: every
// message Carol is pushed, and everything she can read, has a seq below the kick's notice. Every
// acknowledged message is in the final history exactly once.
TEST_F(Groups, AKickedMemberGetsNothingFromTheKickOnWhateverWasInFlight) {
  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = cluster_->SignUp(1, kJson, "Bob");
  User dave = cluster_->SignUp(0, kJson, "Dave");
  User carol = cluster_->SignUp(1, kProto, "Carol");
  for (const User* u : {&bob, &dave, &carol}) cluster_->MakeFriends(alice, *u);
  v1::Reply r = client::CreateGroup(alice.c(), "Flood", {bob.id, dave.id, carol.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t gid = r.group().group().group_id();
  const std::string conv = GroupConversationId(gid);
  ASSERT_EQ(Manage(alice, gid,
                   [&](auto& m) {
                     m.mutable_set_admin()->set_user_id(bob.id);
                     m.mutable_set_admin()->set_on(true);
                   })
                .status(),
            v1::OK);

  constexpr int kPerSender = 67;
  chat::testing::Signal acked_changed;              // guards acks and acked
  std::set<std::pair<uint64_t, std::string>> acks;  // (seq, client_msg_id)
  int acked = 0;
  std::vector<std::thread> senders;
  for (const User* u : {&alice, &bob, &dave})
    senders.emplace_back([&, u] {
      for (int i = 0; i < kPerSender; ++i) {
        const std::string id = client::NewClientMsgId();
        v1::Reply s = client::SendText(u->c(), conv, id, u->display_name + " " + std::to_string(i));
        if (s.status() != v1::OK) continue;
        acked_changed.Update([&] {
          acks.insert({s.send_message().seq(), id});
          ++acked;
        });
      }
    });
  // The kick lands in the middle of the flood.
  ASSERT_TRUE(acked_changed.WaitFor([&] { return acked >= 60; }, std::chrono::seconds(30)));
  r = Manage(bob, gid, [&](auto& m) { m.mutable_remove_members()->add_user_ids(carol.id); });
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  for (auto& t : senders) t.join();
  ASSERT_EQ(acked, 3 * kPerSender);
  // A last message from Alice, which Bob (on Carol's gateway) is pushed (a sender is not pushed its own).
  const uint64_t marker = SendTextOk(alice.c(), conv, "that's all");

  uint64_t kick_seq = 0, last_seq = 0;
  std::set<std::pair<uint64_t, std::string>> stored;
  for (const auto& m : FullHistory(alice.c(), conv)) {
    last_seq = m.seq();
    if (m.sender_id() == 0 && m.content().system().text() == "Bob removed Carol") kick_seq = m.seq();
    if (m.sender_id() != 0) EXPECT_TRUE(stored.insert({m.seq(), m.client_msg_id()}).second);
  }
  ASSERT_GT(kick_seq, 0u) << "the kick is a notice in the history";
  for (const auto& a : acks) EXPECT_TRUE(stored.count(a)) << "acked message " << a.first << " is in the history";
  EXPECT_LT(kick_seq, last_seq) << "messages followed the kick";

  ASSERT_EQ(last_seq, marker);
  // Once Bob, on Carol's gateway, has been pushed the last message, whatever Carol was pushed is
  // queued on her connection ahead of the reply to her next request.
  ASSERT_TRUE(bob.c().WaitEvent(
      [&](const v1::Event& e) { return e.has_message() && e.message().message().seq() == marker; }, kEventWait))
      << Diag(bob.c());
  ASSERT_EQ(client::GetMe(carol.c()).status(), v1::OK);
  size_t pushed = 0;
  while (carol.c().PendingEvents() > 0) {
    auto e = carol.c().NextEvent(std::chrono::milliseconds(0));
    if (!e || !e->has_message() || e->message().message().conversation_id() != conv) continue;
    ++pushed;
    EXPECT_LT(e->message().message().seq(), kick_seq) << "pushed after the kick";
  }
  EXPECT_GT(pushed, 0u) << "Carol was a member while the flood began";
  // Her history ends before the kick; she cannot send.
  auto hist = FullHistory(carol.c(), conv);
  ASSERT_FALSE(hist.empty());
  EXPECT_LT(hist.back().seq(), kick_seq);
  r = client::SendText(carol.c(), conv, client::NewClientMsgId(), "still here?");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(client::ListGroupMembers(carol.c(), gid).status(), v1::NOT_FOUND);
}

}  // namespace
}  // namespace chat::e2e

namespace chat::e2e {
namespace {

// Invitations that wait, with invitee_accepts_from_members lowered to 3 so a small group is "large".
class GroupInvitations : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.group_shards = 2;
    o.limits.group.invitee_accepts_from_members = 3;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  static TestCluster* cluster_;
};
TestCluster* GroupInvitations::cluster_ = nullptr;

TEST_F(GroupInvitations, LargeGroupsWaitForTheInviteeAndConfirmationModeForTheOwner) {
  User alice = cluster_->SignUp(0, kJson, "Alice");
  User bob = cluster_->SignUp(1, kProto, "Bob");
  User dave = cluster_->SignUp(0, kProto, "Dave");
  User carol = cluster_->SignUp(1, kJson, "Carol");
  User eve = cluster_->SignUp(0, kJson, "Eve");
  for (const User* u : {&bob, &dave, &carol}) cluster_->MakeFriends(alice, *u);
  cluster_->MakeFriends(bob, eve);
  v1::Reply r = client::CreateGroup(alice.c(), "Alumni", {bob.id, dave.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t gid = r.group().group().group_id();
  const std::string conv = GroupConversationId(gid);

  // Three members: Carol is invited, not added.
  r = client::AddGroupMembers(alice.c(), gid, {carol.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  ASSERT_EQ(r.group().invited_user_ids_size(), 1);
  EXPECT_EQ(r.group().group().member_count(), 3u);
  auto e = carol.c().WaitEvent([](const v1::Event& ev) { return ev.has_group_invitation(); }, kEventWait);
  ASSERT_TRUE(e) << Diag(carol.c());
  EXPECT_EQ(e->group_invitation().invitation().group_name(), "Alumni");
  EXPECT_EQ(e->group_invitation().invitation().inviter_id(), alice.id);
  r = client::ListGroupInvitations(carol.c());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  ASSERT_EQ(r.group_invitations().invitations_size(), 1);
  EXPECT_EQ(client::ListGroupMembers(carol.c(), gid).status(), v1::NOT_FOUND) << "not a member yet";
  r = client::RespondGroupInvitation(carol.c(), gid, true);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group().group().member_count(), 4u);
  SendTextOk(carol.c(), conv, "hello all");
  EXPECT_EQ(client::RespondGroupInvitation(carol.c(), gid, true).status(), v1::NOT_FOUND);

  // Confirmation mode: Bob's invitation of Eve waits for Alice, then (a large group) for Eve.
  v1::ManageGroupRequest m = client::GroupAction(gid);
  m.set_invite_confirmation(true);
  ASSERT_EQ(client::ManageGroup(alice.c(), m).status(), v1::OK);
  r = client::AddGroupMembers(bob.c(), gid, {eve.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  ASSERT_EQ(r.group().pending_approval_user_ids_size(), 1);
  e = alice.c().WaitEvent(
      [](const v1::Event& ev) { return ev.has_group_invitation() && ev.group_invitation().needs_approval(); },
      kEventWait);
  ASSERT_TRUE(e) << Diag(alice.c());
  EXPECT_EQ(e->group_invitation().invitation().user_id(), eve.id);
  EXPECT_EQ(client::ListGroupJoinRequests(bob.c(), gid).status(), v1::PERMISSION_DENIED);
  r = client::ListGroupJoinRequests(alice.c(), gid);
  ASSERT_EQ(r.status(), v1::OK);
  ASSERT_EQ(r.group_invitations().invitations_size(), 1);
  EXPECT_EQ(r.group_invitations().invitations(0).inviter_id(), bob.id);
  r = client::ReviewGroupJoinRequest(alice.c(), gid, eve.id, true);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group().invited_user_ids_size(), 1) << "approved into a large group: Eve answers now";
  ASSERT_TRUE(eve.c().WaitEvent([](const v1::Event& ev) { return ev.has_group_invitation(); }, kEventWait));
  r = client::RespondGroupInvitation(eve.c(), gid, true);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group().group().member_count(), 5u);

  std::vector<std::string> notices;
  for (const auto& msg : FullHistory(alice.c(), conv))
    if (msg.sender_id() == 0) notices.push_back(msg.content().system().text());
  EXPECT_EQ(notices, (std::vector<std::string>{"Alice created the group", "Carol joined the group, invited by Alice",
                                               "Alice turned on invitation confirmation: new members need approval",
                                               "Eve joined the group, invited by Bob"}));
}

}  // namespace
}  // namespace chat::e2e
