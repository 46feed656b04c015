// End-to-end: the event path (common/events.h) and the transactional outbox (common/outbox.h).
//
// EventOutbox: a chat shard dies right after committing a group membership change, before it
// publishes anything (a failpoint, so the death lands exactly there). After it restarts, the members
// still get the notice message and the MEMBERS_ADDED event, the newcomer too, and the notice is in
// history exactly once.
//
// EventOrder: several senders on two gateways write to one group at once; every member sees the
// conversation's message events in strictly increasing seq order (the fan-out pool runs one
// conversation on one worker), each exactly once, and they match history.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "cluster.h"
#include "common/failpoint.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;

bool IsMembersAdded(const v1::Event& e, uint64_t group_id, uint64_t user) {
  if (!e.has_group_changed()) return false;
  const auto& g = e.group_changed();
  if (g.group().group_id() != group_id || g.kind() != v1::GROUP_CHANGE_KIND_MEMBERS_ADDED) return false;
  for (uint64_t u : g.user_ids())
    if (u == user) return true;
  return false;
}

bool IsSystemNotice(const v1::Event& e, const std::string& conv) {
  return e.has_message() && e.message().message().conversation_id() == conv &&
         e.message().message().content().has_system();
}

TEST(EventOutbox, AChatShardKilledBetweenAMembershipCommitAndItsPublishStillAnnouncesIt) {
  ClusterOptions o;
  // Relay quickly, so the test does not wait the product default.
  o.limits.common.outbox_redeliver_after_ms = 500;
  o.limits.common.outbox_poll_ms = 100;
  TestCluster cluster(o);
  User alice = cluster.SignUp(0, kProto, "Alice");
  User bob = cluster.SignUp(1, kJson, "Bob");
  User carol = cluster.SignUp(1, kProto, "Carol");
  cluster.MakeFriends(alice, bob);
  cluster.MakeFriends(alice, carol);

  v1::Reply r = client::CreateGroup(alice.c(), "Outbox", {bob.id});
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const v1::Group group = r.group().group();
  const std::string conv = group.conversation_id();
  ASSERT_TRUE(bob.c().WaitEvent([&](const v1::Event& e) { return e.has_group_changed(); }, 10s))
      << "Bob never heard of the group" << Diag(bob.c());
  ASSERT_TRUE(bob.c().WaitEvent([&](const v1::Event& e) { return IsSystemNotice(e, conv); }, 10s))
      << "Bob never got the 'created' notice" << Diag(bob.c());

  // The shard of the group's conversation dies after its next membership commit, before publishing.
  const int shard = static_cast<int>(ShardOfConversation(conv, cluster.chat_shard_count()));
  cluster.RestartChatShard(shard, /*hard=*/false, "chat.update_members.after_commit");
  r = client::AddGroupMembers(alice.c(), group.group_id(), {carol.id});
  ASSERT_EQ(r.status(), v1::OK) << "the group change committed, so the reply is OK: " << client::DescribeError(r);
  auto status = cluster.WaitChatShardExit(shard, 20s);
  ASSERT_TRUE(status) << "the chat shard did not reach its failpoint" << cluster.LogTails();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == kFailpointExitCode)
      << "the chat shard ended otherwise (wait status " << *status << ")";

  cluster.RestartChatShard(shard);
  // Both halves of the change reach every member: group-service's event (relayed after its push to
  // chat finally succeeds) and chat's notice (relayed from the outbox row committed with it).
  for (const User* u : {&alice, &bob, &carol}) {
    if (u != &alice) {
      auto e =
          u->c().WaitEvent([&](const v1::Event& ev) { return IsMembersAdded(ev, group.group_id(), carol.id); }, 20s);
      EXPECT_TRUE(e) << u->display_name << " never got MEMBERS_ADDED" << Diag(u->c());
    }
    auto n = u->c().WaitEvent(
        [&](const v1::Event& ev) {
          return IsSystemNotice(ev, conv) && ev.message().message().content().system().text() == "Alice invited Carol";
        },
        20s);
    EXPECT_TRUE(n) << u->display_name << " never got the notice committed before the crash" << Diag(u->c());
  }
  // Exactly one notice for the change in history: relaying announced it, it did not post it again.
  auto h = FullHistory(carol.c(), conv);
  int notices = 0;
  for (const auto& m : h) notices += m.content().has_system() && m.content().system().text() == "Alice invited Carol";
  EXPECT_EQ(notices, 1);
}

TEST(EventOrder, OneConversationsEventsAreNeverReorderedUnderConcurrentSendsFromSeveralGateways) {
  ClusterOptions o;
  o.limits.common.fanout_workers = 4;  // several workers, so a wrong key would show as reordering
  o.AllowLoad(2000);                   // each sender goes as fast as its replies come back
  TestCluster cluster(o);
  User owner = cluster.SignUp(0, kProto, "Owner");
  std::vector<User> senders, readers;
  for (int i = 0; i < 4; ++i) senders.push_back(cluster.SignUp(i % 2, i % 2 ? kJson : kProto, "S" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) readers.push_back(cluster.SignUp(i, kProto, "R" + std::to_string(i)));
  std::vector<uint64_t> ids;
  for (auto* list : {&senders, &readers})
    for (User& u : *list) {
      cluster.MakeFriends(owner, u);
      ids.push_back(u.id);
    }
  v1::Reply r = client::CreateGroup(owner.c(), "Order", ids);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::string conv = r.group().group().conversation_id();

  constexpr int kPerSender = 60;
  std::vector<std::vector<uint64_t>> acked(senders.size());
  std::vector<std::string> errors(senders.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < senders.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        for (int k = 0; k < kPerSender; ++k)
          acked[i].push_back(SendTextOk(senders[i].c(), conv, "m" + std::to_string(i) + "." + std::to_string(k)));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < senders.size(); ++i) ASSERT_TRUE(errors[i].empty()) << errors[i];
  std::set<uint64_t> all_sent;
  for (const auto& a : acked) all_sent.insert(a.begin(), a.end());
  ASSERT_EQ(all_sent.size(), senders.size() * kPerSender) << "two acks carried one seq";
  const uint64_t last = *all_sent.rbegin();

  // Every reader (and every sender, for the others' messages) sees the conversation's message events
  // in strictly increasing seq order, each once, up to the newest one it should get.
  auto check = [&](const User& u, const std::set<uint64_t>& own) {
    std::set<uint64_t> want;
    for (uint64_t s : all_sent)
      if (!own.count(s)) want.insert(s);
    ASSERT_FALSE(want.empty());
    const uint64_t newest = *want.rbegin();
    std::vector<uint64_t> seen;
    while (seen.empty() || seen.back() < newest) {
      auto e = u.c().WaitEvent(
          [&](const v1::Event& ev) { return ev.has_message() && ev.message().message().conversation_id() == conv; },
          20s);
      if (!e) break;
      seen.push_back(e->message().message().seq());
    }
    ASSERT_FALSE(seen.empty()) << u.display_name << " got no message event" << Diag(u.c());
    for (size_t k = 1; k < seen.size(); ++k)
      ASSERT_LT(seen[k - 1], seen[k]) << u.display_name << " got seq " << seen[k] << " after " << seen[k - 1];
    std::set<uint64_t> got(seen.begin(), seen.end());
    for (uint64_t s : want) EXPECT_TRUE(got.count(s)) << u.display_name << " never got seq " << s;
    for (uint64_t s : own) EXPECT_FALSE(got.count(s)) << u.display_name << "'s sending session got its own seq " << s;
  };
  for (const User& u : readers) check(u, {});
  for (size_t i = 0; i < senders.size(); ++i) check(senders[i], {acked[i].begin(), acked[i].end()});

  // History holds exactly what was acknowledged, gapless.
  auto h = FullHistory(readers[0].c(), conv);
  ASSERT_EQ(h.size(), last);
  for (size_t k = 0; k < h.size(); ++k) EXPECT_EQ(h[k].seq(), k + 1);
}

}  // namespace
}  // namespace chat::e2e
