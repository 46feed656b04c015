// Fan-out with fake presence and a recording publisher: one delivery per target gateway, carrying
// the event once and the list of local recipients, in item order, and nothing when nobody is online.
#include "common/fanout.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "fake_fanout.h"

namespace chat {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::FakeDeliveryPublisher;
using testing::FakePresenceDirectory;

v1::Event MessageEventFor(const std::string& conversation, uint64_t seq) {
  v1::Event e;
  auto* m = e.mutable_message()->mutable_message();
  m->set_conversation_id(conversation);
  m->set_seq(seq);
  m->set_sender_id(1);
  m->mutable_content()->mutable_text()->set_text("message " + std::to_string(seq));
  return e;
}

internal::Delivery ParseDelivery(const std::string& payload) {
  internal::Delivery d;
  EXPECT_TRUE(d.ParseFromString(payload));
  return d;
}

std::set<uint64_t> UsersOf(const internal::Delivery& d) { return {d.user_ids().begin(), d.user_ids().end()}; }

TEST(Fanout, GroupOf300OnTwoGatewaysIsTwoPublishes) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  FanoutItem item;
  std::set<uint64_t> on_a, on_b;
  for (uint64_t u = 1; u <= 300; ++u) {
    item.user_ids.push_back(u);
    const bool a = (u % 3 != 0);
    presence.AddSession(u, a ? "gw-a" : "gw-b", 1000 + u);
    (a ? on_a : on_b).insert(u);
  }
  item.event = MessageEventFor("g.77", 5);
  item.conversation_id = "g.77";

  Fanout fanout(presence, publisher);
  EXPECT_EQ(fanout.Deliver({item}), 2u);

  EXPECT_EQ(presence.lookups(), 1);
  EXPECT_EQ(presence.last_lookup().size(), 300u);
  ASSERT_EQ(publisher.calls().size(), 1u) << "all deliveries go out in one pipeline";
  auto out = publisher.all();
  ASSERT_EQ(out.size(), 2u);
  std::map<std::string, internal::Delivery> by_channel;
  for (const auto& [channel, payload] : out) by_channel[channel] = ParseDelivery(payload);
  ASSERT_EQ(by_channel.count("gw.gw-a"), 1u);
  ASSERT_EQ(by_channel.count("gw.gw-b"), 1u);
  EXPECT_EQ(UsersOf(by_channel["gw.gw-a"]), on_a);
  EXPECT_EQ(UsersOf(by_channel["gw.gw-b"]), on_b);
  EXPECT_EQ(static_cast<size_t>(by_channel["gw.gw-a"].user_ids_size()), on_a.size()) << "no duplicates";
  for (auto& [channel, d] : by_channel) {
    v1::Event e;
    ASSERT_TRUE(e.ParseFromString(d.event())) << channel;
    EXPECT_TRUE(MessageDifferencer::Equals(e, item.event)) << channel;
    EXPECT_EQ(d.conversation_id(), "g.77");
    EXPECT_EQ(d.skip_session_id(), 0u);
  }
}

TEST(Fanout, OfflineUsersProduceNothing) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {10, 11, 12};
  item.event = MessageEventFor("d.10.11", 1);
  EXPECT_EQ(fanout.Deliver({item}), 0u);
  EXPECT_TRUE(publisher.all().empty());

  // Mixed: only the online user is listed.
  presence.AddSession(11, "gw-a", 5);
  EXPECT_EQ(fanout.Deliver({item}), 1u);
  auto out = publisher.all();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, "gw.gw-a");
  EXPECT_EQ(UsersOf(ParseDelivery(out[0].second)), (std::set<uint64_t>{11}));
}

TEST(Fanout, NoItemsOrNoUsersAskNobody) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  Fanout fanout(presence, publisher);
  EXPECT_EQ(fanout.Deliver({}), 0u);
  FanoutItem empty;
  empty.event = MessageEventFor("g.1", 1);
  EXPECT_EQ(fanout.Deliver({empty}), 0u);
  EXPECT_EQ(presence.lookups(), 0);
  EXPECT_TRUE(publisher.all().empty());
}

TEST(Fanout, UserOnTwoGatewaysAppearsInBoth) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(7, "gw-a", 1, "phone");
  presence.AddSession(7, "gw-b", 2, "laptop");
  presence.AddSession(7, "gw-b", 3, "tablet");  // two sessions on one gateway: listed once there
  presence.AddSession(8, "gw-b", 4);
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {7, 8};
  item.event = MessageEventFor("d.7.8", 3);
  EXPECT_EQ(fanout.Deliver({item}), 2u);
  std::map<std::string, internal::Delivery> by_channel;
  for (const auto& [channel, payload] : publisher.all()) by_channel[channel] = ParseDelivery(payload);
  ASSERT_EQ(by_channel.size(), 2u);
  EXPECT_EQ(UsersOf(by_channel["gw.gw-a"]), (std::set<uint64_t>{7}));
  EXPECT_EQ(UsersOf(by_channel["gw.gw-b"]), (std::set<uint64_t>{7, 8}));
  EXPECT_EQ(by_channel["gw.gw-b"].user_ids_size(), 2);
}

TEST(Fanout, SkipSessionAndConversationAreCarried) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(1, "gw-a", 100);  // the sender's sending session
  presence.AddSession(1, "gw-b", 101);  // the sender's other device
  presence.AddSession(2, "gw-b", 200);
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {1, 2};
  item.event = MessageEventFor("d.1.2", 9);
  item.skip_session_id = 100;
  item.conversation_id = "d.1.2";
  EXPECT_EQ(fanout.Deliver({item}), 2u);
  for (const auto& [channel, payload] : publisher.all()) {
    auto d = ParseDelivery(payload);
    EXPECT_EQ(d.skip_session_id(), 100u) << channel;
    EXPECT_EQ(d.conversation_id(), "d.1.2") << channel;
  }
}

TEST(Fanout, ItemOrderIsKeptPerChannel) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(1, "gw-a", 1);
  presence.AddSession(2, "gw-b", 2);
  presence.AddSession(3, "gw-c", 3);
  Fanout fanout(presence, publisher);
  std::vector<FanoutItem> items;
  for (uint64_t seq = 1; seq <= 6; ++seq) {
    FanoutItem it;
    // Alternate recipients so channels interleave differently.
    it.user_ids = (seq % 2) ? std::vector<uint64_t>{1, 2, 3} : std::vector<uint64_t>{3, 1};
    it.event = MessageEventFor("g.5", seq);
    it.conversation_id = "g.5";
    items.push_back(std::move(it));
  }
  EXPECT_EQ(fanout.Deliver(items), 3u * 3 + 2u * 3);
  EXPECT_EQ(presence.lookups(), 1) << "one lookup for the union of all items";
  EXPECT_EQ(presence.last_lookup().size(), 3u) << "each user asked about once";
  ASSERT_EQ(publisher.calls().size(), 1u);
  std::map<std::string, std::vector<uint64_t>> seqs;
  for (const auto& [channel, payload] : publisher.all()) {
    v1::Event e;
    ASSERT_TRUE(e.ParseFromString(ParseDelivery(payload).event()));
    seqs[channel].push_back(e.message().message().seq());
  }
  EXPECT_EQ(seqs["gw.gw-a"], (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(seqs["gw.gw-b"], (std::vector<uint64_t>{1, 3, 5}));
  EXPECT_EQ(seqs["gw.gw-c"], (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST(Fanout, PresenceDownPublishesNothing) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(1, "gw-a", 1);
  presence.SetUnreachable(true);
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {1};
  item.event = MessageEventFor("d.1.2", 1);
  EXPECT_EQ(fanout.Deliver({item}), 0u);
  EXPECT_TRUE(publisher.all().empty());
}

TEST(Fanout, PartialPresenceStillRingsKnownGateways) {
  // One presence shard down: users found on the others still get their doorbell.
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(1, "gw-a", 1);
  presence.SetPartialFailure(true);
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {1, 2};
  item.event = MessageEventFor("d.1.2", 1);
  EXPECT_EQ(fanout.Deliver({item}), 1u);
  ASSERT_EQ(publisher.all().size(), 1u);
  EXPECT_EQ(publisher.all()[0].first, "gw.gw-a");
}

TEST(Fanout, PublishFailureIsReportedAsNothingDelivered) {
  FakePresenceDirectory presence;
  FakeDeliveryPublisher publisher;
  presence.AddSession(1, "gw-a", 1);
  publisher.SetFailing(true);
  Fanout fanout(presence, publisher);
  FanoutItem item;
  item.user_ids = {1};
  item.event = MessageEventFor("d.1.2", 1);
  EXPECT_EQ(fanout.Deliver({item}), 0u);
}

TEST(Fanout, GatewayChannelName) { EXPECT_EQ(GatewayChannel("gw-1.ab12"), "gw.gw-1.ab12"); }

}  // namespace
}  // namespace chat
