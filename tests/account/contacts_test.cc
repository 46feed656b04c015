// Contacts of one account shard against a real PostgreSQL: remark names, blocks and one-way
// deletes, and what each of them means for who may message whom (CheckFriends inbound, the question
// chat-service asks before a direct send) and for friend requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>

#include "account_fixture.h"
#include "common/friends.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::account {
namespace {

using testing::AccountServiceTest;
using testing::kPhoneA;
using testing::kPhoneB;
using testing::kPhoneC;

using Ids = std::vector<uint64_t>;

class ContactsTest : public AccountServiceTest {
 protected:
  void SetUp() override {
    AccountServiceTest::SetUp();
    alice = NewUser(kPhoneA, "Alice").account().profile().user_id();
    bob = NewUser(kPhoneB, "Bob").account().profile().user_id();
    carol = NewUser(kPhoneC, "Carol").account().profile().user_id();
    shard_->events.Take();
  }
  // Whether `recipient` takes direct messages from `sender`.
  Inbound Verdict(uint64_t recipient, uint64_t sender) {
    auto [accepted, rejected] = InboundCheck(recipient, {sender});
    if (!rejected.empty()) return Inbound::kRejected;
    return accepted.empty() ? Inbound::kNotFriend : Inbound::kAccepted;
  }
  const v1::Contact* Find(const v1::ContactsResult& r, uint64_t id) {
    for (const auto& c : r.contacts())
      if (c.profile().user_id() == id) return &c;
    return nullptr;
  }
  uint64_t alice = 0, bob = 0, carol = 0;
};

TEST_F(ContactsTest, FriendsTakeEachOthersMessagesStrangersDoNot) {
  EXPECT_EQ(Verdict(bob, alice), Inbound::kNotFriend);
  Befriend(alice, bob);
  EXPECT_EQ(Verdict(bob, alice), Inbound::kAccepted);
  EXPECT_EQ(Verdict(alice, bob), Inbound::kAccepted);
  EXPECT_EQ(Verdict(alice, carol), Inbound::kNotFriend);
}

TEST_F(ContactsTest, ARemarkIsShownOnlyToTheUserWhoGaveIt) {
  Befriend(alice, bob);
  v1::Contact c;
  auto st = SetRemark(alice, bob, "  Bobby from work ", &c);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(c.profile().remark(), "Bobby from work") << "trimmed";
  EXPECT_EQ(c.profile().display_name(), "Bob");
  EXPECT_EQ(c.conversation_id(), DirectConversationId(alice, bob));

  // Alice's other devices hear of it; the asking session has the reply.
  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user_ids, Ids{alice});
  EXPECT_EQ(events[0].skip_session_id, 33u);
  ASSERT_TRUE(events[0].event.has_contact_updated());
  EXPECT_EQ(events[0].event.contact_updated().contact().profile().remark(), "Bobby from work");

  EXPECT_EQ(Find(Contacts(alice), bob)->profile().remark(), "Bobby from work");
  EXPECT_EQ(Find(Contacts(bob), alice)->profile().remark(), "") << "Bob gave Alice none";
  auto seen_by_alice = ProfilesFor(alice, {bob, carol});
  ASSERT_EQ(seen_by_alice.profiles_size(), 2);
  EXPECT_EQ(seen_by_alice.profiles(0).remark(), "Bobby from work");
  EXPECT_EQ(seen_by_alice.profiles(1).remark(), "");
  auto seen_by_carol = ProfilesFor(carol, {bob});
  ASSERT_EQ(seen_by_carol.profiles_size(), 1);
  EXPECT_EQ(seen_by_carol.profiles(0).remark(), "") << "a remark is private";

  // "" clears it.
  ASSERT_TRUE(SetRemark(alice, bob, "", &c).ok());
  EXPECT_EQ(Find(Contacts(alice), bob)->profile().remark(), "");
}

TEST_F(ContactsTest, RemarkRules) {
  Befriend(alice, bob);
  const uint32_t max = config_.limits.account.max_remark_chars;
  EXPECT_TRUE(SetRemark(alice, bob, std::string(max, 'x')).ok());
  EXPECT_EQ(SetRemark(alice, bob, std::string(max + 1, 'x')).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetRemark(alice, bob, "a\x01z").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetRemark(alice, bob, "a\u202Ez").error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "bidi override";
  EXPECT_EQ(SetRemark(alice, carol, "Carol").error_code(), grpc::StatusCode::NOT_FOUND) << "not a contact";
  EXPECT_EQ(SetRemark(alice, alice, "me").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetRemark(alice, 0, "x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetRemark(alice, 987654321, "x").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ContactsTest, ABlockRejectsMessagesAndRequestsUntilUnblocked) {
  Befriend(alice, bob);
  ASSERT_TRUE(Block(bob, alice).ok());
  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user_ids, Ids{bob});
  EXPECT_TRUE(events[0].event.contact_updated().contact().blocked());

  EXPECT_EQ(Verdict(bob, alice), Inbound::kRejected);
  EXPECT_EQ(Verdict(alice, bob), Inbound::kAccepted) << "the blocker may still write";
  // Alice sees nothing of it: Bob is still her contact, unmarked.
  const auto alices = Contacts(alice);
  const v1::Contact* b = Find(alices, bob);
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->blocked());
  const auto bobs = Contacts(bob);
  ASSERT_NE(Find(bobs, alice), nullptr);
  EXPECT_TRUE(Find(bobs, alice)->blocked());
  ASSERT_EQ(bobs.blocked_size(), 1);
  EXPECT_EQ(bobs.blocked(0).user_id(), alice);

  // A block outlives the contact, and may name a stranger.
  ASSERT_TRUE(Block(bob, carol).ok());
  auto st = SendRequest(carol, bob, "let me in");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), kRejectedByReceiver);
  EXPECT_TRUE(Requests(bob).requests().empty());
  ASSERT_TRUE(Block(bob, carol).ok()) << "blocking twice is harmless";
  EXPECT_EQ(shard_->events.Take().size(), 1u) << "only the first block announced anything";

  ASSERT_TRUE(Block(bob, alice, false).ok());
  EXPECT_EQ(Verdict(bob, alice), Inbound::kAccepted);
  EXPECT_FALSE(Find(Contacts(bob), alice)->blocked());
  ASSERT_TRUE(Block(bob, carol, false).ok());
  EXPECT_TRUE(SendRequest(carol, bob, "let me in").ok());
}

TEST_F(ContactsTest, DeletingIsOneWayAndARequestReconnects) {
  Befriend(alice, bob);
  ASSERT_TRUE(DeleteContact(alice, bob).ok());
  EXPECT_EQ(Find(Contacts(alice), bob), nullptr);
  ASSERT_NE(Find(Contacts(bob), alice), nullptr) << "Bob still lists Alice (WeChat)";
  EXPECT_EQ(Verdict(alice, bob), Inbound::kNotFriend) << "Bob's messages to Alice are refused";
  EXPECT_EQ(Verdict(bob, alice), Inbound::kNotFriend) << "and Alice's to Bob";
  EXPECT_TRUE(CheckFriends(bob, {alice}).empty()) << "not friends for group invitations either";
  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].event.contact_updated().removed());
  EXPECT_EQ(events[0].event.contact_updated().contact().profile().user_id(), bob);
  EXPECT_EQ(DeleteContact(alice, bob).error_code(), grpc::StatusCode::NOT_FOUND);

  // Alice re-adds Bob, who never removed her: at once, no approval (WeChat).
  v1::SendFriendRequestResult res;
  ASSERT_TRUE(SendRequest(alice, bob, "sorry", &res).ok());
  EXPECT_TRUE(res.already_friends());
  EXPECT_EQ(Verdict(alice, bob), Inbound::kAccepted);
  EXPECT_EQ(Verdict(bob, alice), Inbound::kAccepted);
  ASSERT_NE(Find(Contacts(alice), bob), nullptr);
  EXPECT_TRUE(Requests(bob).requests().empty());
  events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user_ids, Ids{alice});
  EXPECT_EQ(events[0].event.friend_added().contact().profile().user_id(), bob);
}

TEST_F(ContactsTest, TheDeletedSideReconnectsByARequestTheOtherAccepts) {
  Befriend(alice, bob);
  ASSERT_TRUE(DeleteContact(alice, bob).ok());
  v1::SendFriendRequestResult res;
  ASSERT_TRUE(SendRequest(bob, alice, "still friends?", &res).ok());
  EXPECT_FALSE(res.already_friends()) << "Alice decides";
  EXPECT_EQ(Verdict(alice, bob), Inbound::kNotFriend);
  ASSERT_EQ(Requests(alice).requests_size(), 1);
  v1::Contact c;
  ASSERT_TRUE(Accept(alice, bob, &c).ok());
  EXPECT_EQ(Verdict(alice, bob), Inbound::kAccepted);
  EXPECT_EQ(Verdict(bob, alice), Inbound::kAccepted);
}

TEST_F(ContactsTest, ABlockSurvivesDeletingTheContact) {
  Befriend(alice, bob);
  ASSERT_TRUE(Block(bob, alice).ok());
  ASSERT_TRUE(DeleteContact(bob, alice).ok());
  EXPECT_EQ(SendRequest(alice, bob, "hi").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Verdict(bob, alice), Inbound::kRejected);
  const auto bobs = Contacts(bob);
  EXPECT_EQ(bobs.contacts_size(), 0);
  ASSERT_EQ(bobs.blocked_size(), 1);
}

TEST_F(ContactsTest, OutgoingRequestsAreListedAndAnIgnoredOneIsDroppedSilently) {
  ASSERT_TRUE(SendRequest(alice, bob, "hi Bob").ok());
  Advance(1000);
  ASSERT_TRUE(SendRequest(alice, carol, "hi Carol").ok());
  shard_->events.Take();
  auto sent = SentRequests(alice);
  ASSERT_EQ(sent.requests_size(), 2);
  EXPECT_EQ(sent.requests(0).to().user_id(), carol) << "newest first";
  EXPECT_EQ(sent.requests(0).to().display_name(), "Carol");
  EXPECT_EQ(sent.requests(0).from().user_id(), alice);
  EXPECT_EQ(sent.requests(1).greeting(), "hi Bob");
  EXPECT_EQ(SentRequests(bob).requests_size(), 0);

  ASSERT_TRUE(Ignore(bob, alice).ok());
  EXPECT_TRUE(shard_->events.Take().empty()) << "the sender is not told";
  EXPECT_TRUE(Requests(bob).requests().empty());
  sent = SentRequests(alice);
  ASSERT_EQ(sent.requests_size(), 1);
  EXPECT_EQ(sent.requests(0).to().user_id(), carol);
  EXPECT_EQ(Ignore(bob, alice).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::Contact c;
  EXPECT_EQ(Accept(bob, alice, &c).error_code(), grpc::StatusCode::NOT_FOUND) << "an ignored request is gone";
  // Asking again is a new request.
  ASSERT_TRUE(SendRequest(alice, bob, "hi again").ok());
  ASSERT_EQ(Requests(bob).requests_size(), 1);
  EXPECT_EQ(Requests(bob).requests(0).greeting(), "hi again");
  // An accepted request leaves the outgoing list.
  ASSERT_TRUE(Accept(carol, alice, &c).ok());
  sent = SentRequests(alice);
  ASSERT_EQ(sent.requests_size(), 1);
  EXPECT_EQ(sent.requests(0).to().user_id(), bob);
}

// The friend cap holds on both sides when many accepts race: a hub that many accept at once
// (requester side) and a hub that accepts many at once (acceptor side).
TEST_F(ContactsTest, TheFriendCapIsNeverExceededUnderConcurrentAccepts) {
  constexpr uint32_t kCap = 5;
  constexpr int kOthers = 12;
  config_.limits.account.max_friends = kCap;
  Start();
  std::vector<uint64_t> others;
  for (int i = 0; i < kOthers; ++i)
    others.push_back(
        NewUser("+86139000200" + std::to_string(10 + i), "U" + std::to_string(i)).account().profile().user_id());
  auto race = [&](auto accept_one) {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0}, full{0}, other{0};
    for (int i = 0; i < kOthers; ++i)
      threads.emplace_back([&, i] {
        const auto st = accept_one(others[i]);
        (st.ok() ? ok : st.error_code() == grpc::StatusCode::FAILED_PRECONDITION ? full : other)++;
      });
    for (auto& t : threads) t.join();
    return std::array<int, 3>{ok.load(), full.load(), other.load()};
  };
  // Requester side: alice asked everyone, everyone accepts at once.
  for (uint64_t o : others) ASSERT_TRUE(SendRequest(alice, o, "").ok());
  auto r = race([&](uint64_t o) {
    v1::Contact c;
    return Accept(o, alice, &c);
  });
  EXPECT_EQ(r[0], static_cast<int>(kCap));
  EXPECT_EQ(r[1], kOthers - static_cast<int>(kCap));
  EXPECT_EQ(r[2], 0);
  EXPECT_EQ(Contacts(alice).contacts_size(), static_cast<int>(kCap));
  int halves = 0;
  for (uint64_t o : others) halves += Contacts(o).contacts_size();
  EXPECT_EQ(halves, static_cast<int>(kCap)) << "a refused accept left no half friendship";
  // Acceptor side: everyone asked bob, bob accepts them all at once.
  for (uint64_t o : others) ASSERT_TRUE(SendRequest(o, bob, "").ok());
  r = race([&](uint64_t o) {
    v1::Contact c;
    return Accept(bob, o, &c);
  });
  EXPECT_EQ(r[0], static_cast<int>(kCap));
  EXPECT_EQ(Contacts(bob).contacts_size(), static_cast<int>(kCap));
}

TEST_F(ContactsTest, LabelsArePrivateSetsOfContactsWithTheirRules) {
  Befriend(alice, bob);
  Befriend(alice, carol);
  v1::Label climbing;
  auto st = SetLabel(alice, 0, " Climbing ", {carol, bob, bob}, &climbing);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(climbing.label_id(), 0u);
  EXPECT_EQ(climbing.name(), "Climbing") << "trimmed";
  Ids want = {bob, carol};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Ids(climbing.member_ids().begin(), climbing.member_ids().end()), want) << "deduplicated, ascending";
  Advance(1000);  // the service's clock: "oldest first" needs two creation times
  ASSERT_TRUE(SetLabel(alice, 0, "Work", {bob}).ok());
  auto labels = Labels(alice);
  ASSERT_EQ(labels.labels_size(), 2);
  EXPECT_EQ(labels.labels(0).name(), "Climbing") << "oldest first";
  EXPECT_EQ(Labels(bob).labels_size(), 0) << "labels are their owner's alone";

  // Replacing: a new name and member list; another label's name is taken; members are contacts.
  v1::Label renamed;
  ASSERT_TRUE(SetLabel(alice, climbing.label_id(), "Crag", {carol}, &renamed).ok());
  EXPECT_EQ(renamed.label_id(), climbing.label_id());
  EXPECT_EQ(Ids(renamed.member_ids().begin(), renamed.member_ids().end()), Ids{carol});
  EXPECT_EQ(SetLabel(alice, 0, "Work", {}).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(SetLabel(alice, climbing.label_id(), "Work", {}).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(SetLabel(alice, climbing.label_id(), "Crag", {}).ok()) << "keeping its own name is fine";
  EXPECT_EQ(SetLabel(bob, 0, "Friends", {carol}).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "Carol is not Bob's contact";
  EXPECT_EQ(SetLabel(alice, 0, "", {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetLabel(alice, 0, std::string(config_.limits.account.max_label_name_chars + 1, 'x'), {}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetLabel(alice, 0, "a\x01b", {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetLabel(alice, 987654321, "Gone", {}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(SetLabel(alice, 0, "Bad ids", {0}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Deleting a contact takes them out of every label; deleting a label leaves the contacts.
  ASSERT_TRUE(SetLabel(alice, climbing.label_id(), "Crag", {bob, carol}).ok());
  ASSERT_TRUE(DeleteContact(alice, carol).ok());
  labels = Labels(alice);
  for (const auto& l : labels.labels())
    for (uint64_t m : l.member_ids()) EXPECT_NE(m, carol) << l.name();
  ASSERT_TRUE(DeleteLabel(alice, climbing.label_id()).ok());
  EXPECT_EQ(DeleteLabel(alice, climbing.label_id()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Labels(alice).labels_size(), 1);
  EXPECT_NE(Find(Contacts(alice), bob), nullptr);
}

TEST_F(ContactsTest, LabelsAreCappedPerUser) {
  config_.limits.account.max_labels_per_user = 2;
  Start();
  ASSERT_TRUE(SetLabel(alice, 0, "one", {}).ok());
  v1::Label two;
  ASSERT_TRUE(SetLabel(alice, 0, "two", {}, &two).ok());
  auto st = SetLabel(alice, 0, "three", {});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "label limit of 2 reached");
  EXPECT_TRUE(SetLabel(alice, two.label_id(), "deux", {}).ok()) << "replacing is not adding";
  ASSERT_TRUE(DeleteLabel(alice, two.label_id()).ok());
  EXPECT_TRUE(SetLabel(alice, 0, "three", {}).ok());
}

TEST_F(ContactsTest, BadContactRequestsAreRefused) {
  EXPECT_EQ(Block(alice, alice).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Block(alice, 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Block(alice, 987654321).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DeleteContact(alice, carol).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DeleteContact(0, carol).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(shard_->events.Take().empty());
}

}  // namespace
}  // namespace chat::account
