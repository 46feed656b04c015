// End-to-end messaging over one shared cluster (2 shards of every service, 2 gateways): 1:1 and group chat
// across gateways and encodings, offline sync, idempotent resend, and permission checks. Nothing
// here kills processes, so the suite shares one cluster.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cluster.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
// How long an event is given to NOT arrive, after an event ordered behind it already arrived.
constexpr auto kNoEventGrace = 300ms;

class Messaging : public ::testing::Test {
 protected:
  // Two shards of every sharded service: friendships, groups and conversation lists cross shards.
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.group_shards = 2;
    o.presence_shards = 2;
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  TestCluster& cluster() { return *cluster_; }

  static TestCluster* cluster_;
};
TestCluster* Messaging::cluster_ = nullptr;

// Both renderings of a frame a client received: the protobuf bytes (unknown fields included) and
// the canonical JSON. What the server sent is in there, whichever encoding it used.
std::string Renderings(const google::protobuf::Message& m) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(m, &json);
  return m.SerializeAsString() + "\n" + json + "\n" + m.DebugString();
}

// No trace of u's phone: neither its digits nor the "+1555" test prefix. (Its 7-digit subscriber
// part alone is not checked: random ids and times contain any 7 digits now and then.)
void ExpectNoPhone(const std::string& rendered, const User& u, const std::string& what) {
  EXPECT_EQ(rendered.find(u.phone.substr(1)), std::string::npos)
      << what << " carry the phone number of " << u.display_name;
  EXPECT_EQ(rendered.find(u.phone.substr(0, 5)), std::string::npos) << what << " carry a phone number";
}

TEST_F(Messaging, DirectChatAcrossGatewaysAndEncodings) {
  User alice = cluster().SignUp(0, kProto, "Alice");
  User bob = cluster().SignUp(1, kJson, "Bob");
  cluster().MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);
  // Alice's second device: the other gateway, the other encoding.
  auto alice2 = cluster().Connect(alice, 1, kJson);
  ASSERT_EQ(alice.c().encoding(), kProto);
  ASSERT_EQ(bob.c().encoding(), kJson);

  // Alice (proto, gateway 0) -> Bob (JSON, gateway 1).
  const std::string a_id = client::NewClientMsgId();
  v1::Reply r = client::SendText(alice.c(), conv, a_id, "Hi Bob, hike on Saturday?");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t a_seq = r.send_message().seq();
  EXPECT_GT(a_seq, 0u);
  EXPECT_FALSE(r.send_message().duplicate());

  auto at_bob = WaitForMessage(bob.c(), conv, a_seq);
  ASSERT_TRUE(at_bob) << "Bob never got Alice's message " << a_seq << Diag(bob.c());
  EXPECT_EQ(TextOf(*at_bob), "Hi Bob, hike on Saturday?");
  EXPECT_EQ(at_bob->sender_id(), alice.id);
  EXPECT_EQ(at_bob->client_msg_id(), a_id);
  auto at_alice2 = WaitForMessage(*alice2, conv, a_seq);
  ASSERT_TRUE(at_alice2) << "Alice's other device never got her message" << Diag(*alice2);
  EXPECT_EQ(TextOf(*at_alice2), "Hi Bob, hike on Saturday?");

  // Bob (JSON, gateway 1) -> Alice (proto, gateway 0).
  r = client::SendText(bob.c(), conv, client::NewClientMsgId(), "Yes! 8am 👍");
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t b_seq = r.send_message().seq();
  EXPECT_EQ(b_seq, a_seq + 1);

  // Per conversation, events reach a session in seq order: had Alice's sending session been sent
  // her own message a_seq, it would be queued before Bob's b_seq.
  bool own_echo = false;
  std::optional<v1::Message> at_alice;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       !at_alice && std::chrono::steady_clock::now() < deadline;) {
    auto e = alice.c().NextEvent(1s);
    if (!e) continue;
    if (IsMessage(*e, conv, a_seq)) own_echo = true;
    if (IsMessage(*e, conv, b_seq)) at_alice = e->message().message();
  }
  ASSERT_TRUE(at_alice) << "Alice never got Bob's reply " << b_seq;
  EXPECT_FALSE(own_echo) << "the sending session got its own message back as an event";
  EXPECT_EQ(TextOf(*at_alice), "Yes! 8am 👍");
  EXPECT_EQ(at_alice->sender_id(), bob.id);
  auto b_at_alice2 = WaitForMessage(*alice2, conv, b_seq);
  ASSERT_TRUE(b_at_alice2);
  EXPECT_EQ(TextOf(*b_at_alice2), "Yes! 8am 👍");
  // Bob's sending session does not get his own message either (nothing else is owed to it).
  EXPECT_FALSE(WaitForMessage(bob.c(), conv, b_seq, kNoEventGrace)) << "Bob's sending session got an echo";

  // History agrees on both encodings.
  auto h = FullHistory(*alice2, conv);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].seq(), a_seq);
  EXPECT_EQ(h[1].seq(), b_seq);
}

TEST_F(Messaging, GroupAcrossGateways) {
  User alice = cluster().SignUp(0, kProto, "Alice");
  User bob = cluster().SignUp(1, kJson, "Bob");
  User carol = cluster().SignUp(0, kJson, "Carol");
  User dave = cluster().SignUp(1, kProto, "Dave");
  for (User* u : {&bob, &carol, &dave}) cluster().MakeFriends(alice, *u);
  const std::vector<const User*> all = {&alice, &bob, &carol, &dave};
  std::string seen_by_others;  // every frame Bob, Carol and Dave received, rendered

  v1::Reply r = client::CreateGroup(alice.c(), "Weekend hike", {bob.id, carol.id, dave.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const v1::Group group = r.group().group();
  EXPECT_EQ(group.member_count(), 4u);
  EXPECT_EQ(group.owner_id(), alice.id);
  EXPECT_EQ(group.conversation_id(), GroupConversationId(group.group_id()));
  const std::string conv = group.conversation_id();

  // Every other member hears about the group, on either gateway and encoding.
  for (const User* u : {&bob, &carol, &dave}) {
    auto e = u->c().WaitEvent(
        [&](const v1::Event& ev) {
          return ev.has_group_changed() && ev.group_changed().group().group_id() == group.group_id();
        },
        10s);
    ASSERT_TRUE(e) << u->display_name << " got no group_changed event";
    EXPECT_EQ(e->group_changed().kind(), v1::GROUP_CHANGE_KIND_CREATED);
    EXPECT_EQ(e->group_changed().actor_id(), alice.id);
    std::set<uint64_t> ids(e->group_changed().user_ids().begin(), e->group_changed().user_ids().end());
    EXPECT_EQ(ids, (std::set<uint64_t>{alice.id, bob.id, carol.id, dave.id}));
    seen_by_others += Renderings(*e);
  }

  // Members see each other by display name and handle, never by phone.
  r = client::ListGroupMembers(carol.c(), group.group_id());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  seen_by_others += Renderings(r);
  std::map<uint64_t, v1::GroupMember> members;
  for (const auto& m : r.group_members().members()) members[m.profile().user_id()] = m;
  ASSERT_EQ(members.size(), 4u);
  for (const User* u : all) {
    ASSERT_TRUE(members.count(u->id)) << u->display_name << " missing from the member list";
    EXPECT_EQ(members[u->id].profile().display_name(), u->display_name);
    EXPECT_EQ(members[u->id].profile().handle(), u->handle);
  }
  EXPECT_EQ(members[alice.id].role(), v1::GROUP_ROLE_OWNER);
  EXPECT_EQ(members[bob.id].role(), v1::GROUP_ROLE_MEMBER);
  r = client::ListGroupMembers(dave.c(), group.group_id());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  seen_by_others += Renderings(r);

  // Bob (JSON, gateway 1) writes; everyone else gets it on both gateways; Bob's session does not.
  std::string bob_msg_id;
  const uint64_t seq = SendTextOk(bob.c(), conv, "I'll bring snacks", &bob_msg_id);
  EXPECT_GE(seq, 2u) << "seq 1 is the 'created the group' notice";
  for (const User* u : {&alice, &carol, &dave}) {
    auto m = WaitForMessage(u->c(), conv, seq);
    ASSERT_TRUE(m) << u->display_name << " never got Bob's group message" << Diag(u->c());
    EXPECT_EQ(TextOf(*m), "I'll bring snacks");
    EXPECT_EQ(m->sender_id(), bob.id);
    EXPECT_EQ(m->client_msg_id(), bob_msg_id);
    if (u != &alice) seen_by_others += Renderings(*m);
  }
  EXPECT_FALSE(WaitForMessage(bob.c(), conv, seq, kNoEventGrace)) << "the sending session got an echo";

  // Dave (proto, gateway 1) answers; Alice and Bob and Carol get it.
  const uint64_t seq2 = SendTextOk(dave.c(), conv, "see you at 8");
  EXPECT_EQ(seq2, seq + 1);
  for (const User* u : {&alice, &bob, &carol}) {
    auto m = WaitForMessage(u->c(), conv, seq2);
    ASSERT_TRUE(m) << u->display_name << " never got Dave's group message" << Diag(u->c());
    if (u != &alice) seen_by_others += Renderings(*m);
  }

  // The system notice (seq 1) reached members too, and history is the same for everyone.
  auto h = FullHistory(carol.c(), conv);
  seen_by_others += [&] {
    std::string s;
    for (const auto& m : h) s += Renderings(m);
    return s;
  }();
  ASSERT_EQ(h.size(), seq2);
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(h[i].seq(), i + 1);
  EXPECT_TRUE(h[0].content().has_system());
  EXPECT_EQ(h[0].sender_id(), 0u);

  // Group listing from another member.
  r = client::ListMyGroups(dave.c());
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  bool listed = false;
  for (const auto& g : r.groups().groups()) listed |= g.group_id() == group.group_id();
  EXPECT_TRUE(listed);

  // A friend added later: the members hear MEMBERS_ADDED, and the newcomer reads from the
  // "invited" notice on, never the messages before it.
  User erin = cluster().SignUp(0, kProto, "Erin");
  cluster().MakeFriends(alice, erin);
  r = client::AddGroupMembers(alice.c(), group.group_id(), {erin.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.group().group().member_count(), 5u);
  for (const User* u : {&bob, &carol, &dave, &erin}) {
    auto e = u->c().WaitEvent(
        [&](const v1::Event& ev) {
          return ev.has_group_changed() && ev.group_changed().kind() == v1::GROUP_CHANGE_KIND_MEMBERS_ADDED;
        },
        10s);
    ASSERT_TRUE(e) << u->display_name << " got no MEMBERS_ADDED event" << Diag(u->c());
    EXPECT_EQ(e->group_changed().group().group_id(), group.group_id());
    ASSERT_EQ(e->group_changed().user_ids_size(), 1);
    EXPECT_EQ(e->group_changed().user_ids(0), erin.id);
    seen_by_others += Renderings(*e);
  }
  auto erin_view = FindConversation(erin.c(), conv);
  ASSERT_TRUE(erin_view) << "the group is missing from the newcomer's conversation list";
  EXPECT_EQ(erin_view->first_seq(), seq2 + 1);
  auto erin_history = FullHistory(erin.c(), conv);
  ASSERT_FALSE(erin_history.empty());
  EXPECT_EQ(erin_history.front().seq(), seq2 + 1) << "the newcomer can read messages from before joining";
  const uint64_t seq3 = SendTextOk(erin.c(), conv, "hi all, thanks for adding me");
  for (const User* u : {&alice, &bob, &carol, &dave}) {
    auto m = WaitForMessage(u->c(), conv, seq3);
    ASSERT_TRUE(m) << u->display_name << " never got the newcomer's message" << Diag(u->c());
    if (u != &alice) seen_by_others += Renderings(*m);
  }

  for (const User* u : all) ExpectNoPhone(seen_by_others, *u, "frames seen by other members");
  ExpectNoPhone(seen_by_others, erin, "frames seen by other members");
}

TEST_F(Messaging, OfflineRecipientSyncsEverything) {
  User alice = cluster().SignUp(0, kProto, "Alice");
  User bob = cluster().SignUp(1, kProto, "Bob");
  cluster().MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);
  bob.c().Close();
  ASSERT_FALSE(bob.c().is_open());

  std::vector<std::string> texts;
  for (int i = 1; i <= 20; ++i) {
    texts.push_back("offline message " + std::to_string(i));
    EXPECT_EQ(SendTextOk(alice.c(), conv, texts.back()), static_cast<uint64_t>(i));
  }

  // Bob comes back on the other gateway with two devices.
  auto bob1 = cluster().Connect(bob, 0, kJson);
  auto bob2 = cluster().Connect(bob, 0, kProto);
  auto summary = FindConversation(*bob1, conv);
  ASSERT_TRUE(summary) << "the conversation is missing from Bob's list";
  EXPECT_EQ(summary->kind(), v1::CONVERSATION_KIND_DIRECT);
  EXPECT_EQ(summary->peer_user_id(), alice.id);
  EXPECT_EQ(summary->last_seq(), 20u);
  EXPECT_EQ(summary->unread_count(), 20u);
  EXPECT_EQ(summary->read_seq(), 0u);
  EXPECT_EQ(summary->last_message().seq(), 20u);
  EXPECT_EQ(TextOf(summary->last_message()), texts.back());

  auto h = FullHistory(*bob1, conv, 0);
  ASSERT_EQ(h.size(), 20u);
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].seq(), i + 1);
    EXPECT_EQ(TextOf(h[i]), texts[i]);
    EXPECT_EQ(h[i].sender_id(), alice.id);
  }
  // A partial sync resumes where it stopped.
  auto tail = FullHistory(*bob1, conv, 15);
  ASSERT_EQ(tail.size(), 5u);
  EXPECT_EQ(tail.front().seq(), 16u);

  v1::Reply r = client::MarkRead(*bob1, conv, 20);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.mark_read().read_seq(), 20u);
  auto moved = bob2->WaitEvent(
      [&](const v1::Event& e) { return e.has_read_position() && e.read_position().conversation_id() == conv; }, 10s);
  ASSERT_TRUE(moved) << "Bob's other device got no read_position event";
  EXPECT_EQ(moved->read_position().read_seq(), 20u);
  summary = FindConversation(*bob2, conv);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->unread_count(), 0u);
  EXPECT_EQ(summary->read_seq(), 20u);
  // The marking session gets no read_position for its own mark.
  EXPECT_FALSE(bob1->WaitEvent([](const v1::Event& e) { return e.has_read_position(); }, kNoEventGrace));
}

TEST_F(Messaging, ResendWithSameClientMsgIdIsStoredOnce) {
  User alice = cluster().SignUp(1, kJson, "Alice");
  User bob = cluster().SignUp(0, kProto, "Bob");
  cluster().MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);

  const std::string id = client::NewClientMsgId();
  v1::Reply first = client::SendText(alice.c(), conv, id, "only once please");
  ASSERT_EQ(first.status(), v1::OK) << client::DescribeError(first);
  EXPECT_FALSE(first.send_message().duplicate());
  // The retry, as after a lost reply: another connection, same client_msg_id.
  auto alice2 = cluster().Connect(alice, 0, kProto);
  v1::Reply again = client::SendText(*alice2, conv, id, "only once please");
  ASSERT_EQ(again.status(), v1::OK) << client::DescribeError(again);
  EXPECT_TRUE(again.send_message().duplicate());
  EXPECT_EQ(again.send_message().seq(), first.send_message().seq());
  EXPECT_EQ(again.send_message().message_id(), first.send_message().message_id());
  EXPECT_EQ(again.send_message().server_time_ms(), first.send_message().server_time_ms());

  const uint64_t next = SendTextOk(alice.c(), conv, "a new message");
  EXPECT_EQ(next, first.send_message().seq() + 1) << "the duplicate took a seq";

  auto h = FullHistory(bob.c(), conv);
  int copies = 0;
  for (const auto& m : h) copies += m.client_msg_id() == id;
  EXPECT_EQ(copies, 1);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].seq(), 1u);
  EXPECT_EQ(h[1].seq(), 2u);
}

TEST_F(Messaging, StrangersAndNonMembersAreRefused) {
  User alice = cluster().SignUp(0, kProto, "Alice");
  User bob = cluster().SignUp(1, kProto, "Bob");
  User mallory = cluster().SignUp(1, kJson, "Mallory");
  cluster().MakeFriends(alice, bob);
  v1::Reply r = client::CreateGroup(alice.c(), "Private", {bob.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const uint64_t gid = r.group().group().group_id();
  const std::string gconv = r.group().group().conversation_id();
  SendTextOk(bob.c(), gconv, "members only");

  // docs/protocol.md 11: to anyone who never belonged, a group answers every request exactly as a
  // group that does not exist (same status, same message), so group ids cannot be probed.
  const uint64_t missing_gid = (uint64_t{1} << 62) + 12345;  // no group has it in a test cluster
  const std::string missing = GroupConversationId(missing_gid);
  auto same_as_missing = [](const v1::Reply& got, const v1::Reply& missing_reply, const char* what) {
    EXPECT_EQ(got.status(), v1::NOT_FOUND) << what << ": " << client::DescribeError(got);
    EXPECT_EQ(got.status(), missing_reply.status()) << what;
    EXPECT_EQ(got.message(), missing_reply.message()) << what;
  };
  r = client::GetHistory(mallory.c(), gconv, 0);  // 8.15
  EXPECT_EQ(r.history().messages_size(), 0);
  same_as_missing(r, client::GetHistory(mallory.c(), missing, 0), "get_history");
  r = client::SendText(mallory.c(), gconv, client::NewClientMsgId(), "let me in");  // 8.14
  same_as_missing(r, client::SendText(mallory.c(), missing, client::NewClientMsgId(), "let me in"), "send_message");
  r = client::MarkRead(mallory.c(), gconv, 1);  // 8.17
  same_as_missing(r, client::MarkRead(mallory.c(), missing, 1), "mark_read");
  r = client::ListGroupMembers(mallory.c(), gid);  // 8.21
  same_as_missing(r, client::ListGroupMembers(mallory.c(), missing_gid), "list_group_members");
  r = client::AddGroupMembers(mallory.c(), gid, {alice.id});  // 8.19
  same_as_missing(r, client::AddGroupMembers(mallory.c(), missing_gid, {alice.id}), "add_group_members");
  r = client::LeaveGroup(mallory.c(), gid);  // 8.20
  same_as_missing(r, client::LeaveGroup(mallory.c(), missing_gid), "leave_group");

  // 8.14: messaging someone who is not your friend -> PERMISSION_DENIED; nothing is stored.
  const std::string dm = DirectConversationId(mallory.id, alice.id);
  r = client::SendText(mallory.c(), dm, client::NewClientMsgId(), "hello stranger");
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED) << client::DescribeError(r);
  // 8.15: a direct conversation that is not yours -> PERMISSION_DENIED.
  r = client::GetHistory(mallory.c(), DirectConversationId(alice.id, bob.id), 0);
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED) << client::DescribeError(r);
  EXPECT_FALSE(alice.c().WaitEvent(
      [&](const v1::Event& e) { return e.has_message() && e.message().message().conversation_id() == dm; },
      kNoEventGrace));

  // The group is intact for its members.
  auto h = FullHistory(alice.c(), gconv);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(TextOf(h[1]), "members only");
}

}  // namespace
}  // namespace chat::e2e
