// chat-service over a real PostgreSQL database (FreshDatabase per test), with fakes for the friend
// check and the fan-out sink. Handlers are called directly, as gRPC would.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "chat_service/chat_service.h"
#include "chat_service/migrations.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/utf8.h"
#include "test_env.h"

namespace chat::chat_service {
namespace {

using namespace std::chrono_literals;

using chat::testing::FreshDatabase;
using chat::testing::TestPostgres;

constexpr uint64_t kAlice = 1001, kBob = 1002, kCarol = 1003, kDave = 1004;
constexpr uint64_t kGroup = 777;

class FakeFriends : public FriendChecker {
 public:
  void Befriend(uint64_t a, uint64_t b) {
    std::lock_guard lk(mu_);
    pairs_.insert(std::minmax(a, b));
  }
  Result<FriendSet> FriendsAmong(uint64_t u, const std::vector<uint64_t>& others) override {
    std::lock_guard lk(mu_);
    if (down_) return Unavailable("account service unavailable, retry");
    FriendSet friends;
    for (uint64_t o : others)
      if (pairs_.count(std::minmax(u, o))) friends.insert(o);
    return friends;
  }
  void SetDown(bool down) {
    std::lock_guard lk(mu_);
    down_ = down;
  }

 private:
  std::mutex mu_;
  std::set<std::pair<uint64_t, uint64_t>> pairs_;
  bool down_ = false;
};

class RecordingSink : public EventDelivery {
 public:
  bool DeliverNow(const std::vector<FanoutItem>& items) override {
    std::lock_guard lk(mu_);
    for (const auto& i : items) items_.push_back(i);
    cv_.notify_all();
    return true;
  }
  // Waits (bounded) until pred(items) holds; returns a copy of the items.
  std::vector<FanoutItem> WaitUntil(const std::function<bool(const std::vector<FanoutItem>&)>& pred) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return pred(items_); });
    return items_;
  }
  std::vector<FanoutItem> Snapshot() {
    std::lock_guard lk(mu_);
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<FanoutItem> items_;
};

bool HasMessage(const std::vector<FanoutItem>& items, const std::string& conv, uint64_t seq) {
  for (const auto& i : items)
    if (i.event.has_message() && i.conversation_id == conv && i.event.message().message().seq() == seq) return true;
  return false;
}
const FanoutItem* FindMessage(const std::vector<FanoutItem>& items, const std::string& conv, uint64_t seq) {
  for (const auto& i : items)
    if (i.event.has_message() && i.conversation_id == conv && i.event.message().message().seq() == seq) return &i;
  return nullptr;
}

// Which shard a test replica serves, and with which limits.
struct ReplicaOptions {
  uint32_t shard = 0;
  uint32_t shard_count = 1;
  Limits limits;
};

// One replica of the chat shard: pool, store, fan-out thread, batcher, service.
struct Replica {
  Replica(const std::string& conninfo, FriendChecker& friends, ReplicaOptions opts, int pool_size = 8)
      : options(std::move(opts)),
        pool(conninfo, pool_size, &PgChatStore::Prepare),
        store(pool),
        fanout(store, sink),
        batcher(store, fanout, options.limits.chat.send_batch_max, options.limits.chat.send_queue_max,
                options.limits.chat.send_committers),
        service({.shard = options.shard,
                 .shard_count = options.shard_count,
                 .limits = &options.limits,
                 .store = &store,
                 .batcher = &batcher,
                 .fanout = &fanout,
                 .friends = &friends}) {
    fanout.Start();
    batcher.Start();
  }
  ~Replica() {
    batcher.Stop();
    fanout.Stop();
  }
  const ReplicaOptions options;
  PgPool pool;
  PgChatStore store;
  RecordingSink sink;
  FanoutQueue fanout;
  SendBatcher batcher;
  ChatServiceImpl service;
};

class ChatStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = TestPostgres();
    db_ = FreshDatabase("chat");
    ApplyMigrations(pg_.ConnInfo(db_), Migrations());
    options_.shard = 0;
    options_.shard_count = 1;
    options_.limits.chat.history_page_default = 7;
    options_.limits.chat.history_page_max = 20;
    options_.limits.chat.max_text_chars = 100;
    options_.limits.chat.send_committers = 4;  // exercise concurrent committers (ordering, gapless seqs)
    replica_ = std::make_unique<Replica>(pg_.ConnInfo(db_), friends_, options_);
  }

  ChatServiceImpl& svc() { return replica_->service; }
  RecordingSink& sink() { return replica_->sink; }

  static internal::SendRequest MakeSend(uint64_t user, uint64_t session, const std::string& conv,
                                        const std::string& cmid, const std::string& text) {
    internal::SendRequest r;
    r.mutable_origin()->set_user_id(user);
    r.mutable_origin()->set_session_id(session);
    r.mutable_request()->set_conversation_id(conv);
    r.mutable_request()->set_client_msg_id(cmid);
    r.mutable_request()->mutable_content()->mutable_text()->set_text(text);
    return r;
  }

  // Send as the gRPC method does it, waiting for the callback.
  static grpc::Status SendAndWait(ChatServiceImpl& svc, const internal::SendRequest& req, v1::SendMessageResult* res) {
    std::promise<grpc::Status> done;
    svc.SendAsync(req, std::chrono::system_clock::now() + 30s, [&](const Status& st, v1::SendMessageResult&& r) {
      *res = std::move(r);
      done.set_value(ToGrpcStatus(st));
    });
    return done.get_future().get();
  }

  grpc::Status Send(uint64_t user, const std::string& conv, const std::string& cmid, const std::string& text,
                    v1::SendMessageResult* res = nullptr, uint64_t session = 0, ChatServiceImpl* on = nullptr) {
    v1::SendMessageResult local;
    auto req = MakeSend(user, session, conv, cmid, text);
    return SendAndWait(on ? *on : svc(), req, res ? res : &local);
  }

  grpc::Status History(uint64_t user, const std::string& conv, v1::HistoryResult* res, uint64_t after = 0,
                       uint64_t before = 0, bool backward = false, uint32_t limit = 0) {
    grpc::ServerContext ctx;
    internal::HistoryRequest req;
    req.set_user_id(user);
    req.mutable_request()->set_conversation_id(conv);
    req.mutable_request()->set_after_seq(after);
    req.mutable_request()->set_before_seq(before);
    req.mutable_request()->set_backward(backward);
    req.mutable_request()->set_limit(limit);
    return svc().GetHistory(&ctx, &req, res);
  }

  grpc::Status UpdateMembers(uint64_t group, std::vector<uint64_t> add, std::vector<uint64_t> remove,
                             const std::string& notice, uint64_t* seq = nullptr, ChatServiceImpl* on = nullptr) {
    grpc::ServerContext ctx;
    internal::UpdateMembersRequest req;
    req.set_conversation_id(GroupConversationId(group));
    req.set_group_id(group);
    for (auto u : add) req.add_add_user_ids(u);
    for (auto u : remove) req.add_remove_user_ids(u);
    req.set_actor_id(kAlice);
    req.set_notice(notice);
    internal::UpdateMembersResult res;
    auto st = (on ? on : &svc())->UpdateMembers(&ctx, &req, &res);
    if (seq) *seq = res.seq();
    return st;
  }

  grpc::Status MarkRead(uint64_t user, uint64_t session, const std::string& conv, uint64_t seq, uint64_t* read_seq) {
    grpc::ServerContext ctx;
    internal::MarkReadRequest req;
    req.mutable_origin()->set_user_id(user);
    req.mutable_origin()->set_session_id(session);
    req.mutable_request()->set_conversation_id(conv);
    req.mutable_request()->set_seq(seq);
    v1::MarkReadResult res;
    auto st = svc().MarkRead(&ctx, &req, &res);
    *read_seq = res.read_seq();
    return st;
  }

  v1::ConversationsResult List(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::ConversationsResult res;
    EXPECT_TRUE(svc().ListConversations(&ctx, &req, &res).ok());
    return res;
  }

  int64_t CountRows(const std::string& sql) {
    pqxx::connection c(pg_.ConnInfo(db_));
    pqxx::nontransaction n(c);
    return n.exec(sql)[0][0].as<int64_t>();
  }

  PostgresConfig pg_;
  std::string db_;
  ReplicaOptions options_;
  FakeFriends friends_;
  std::unique_ptr<Replica> replica_;
  const std::string ab_ = DirectConversationId(kAlice, kBob);
  const std::string group_ = GroupConversationId(kGroup);
};

TEST_F(ChatStoreTest, ConcurrentSendsGetGaplessSeqsAndFanOutInOrder) {
  friends_.Befriend(kAlice, kBob);
  constexpr int kThreads = 8, kPerThread = 25, kTotal = kThreads * kPerThread;
  std::vector<uint64_t> seqs(kTotal);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::SendMessageResult r;
        const uint64_t user = (t % 2) ? kAlice : kBob;
        auto st = Send(user, ab_, "m-" + std::to_string(t) + "-" + std::to_string(i), "hello", &r, 100 + t);
        if (!st.ok() || r.duplicate()) ++failures;
        seqs[t * kPerThread + i] = r.seq();
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::sort(seqs.begin(), seqs.end());
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(seqs[i], static_cast<uint64_t>(i + 1)) << "gap or duplicate";
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), kTotal);
  EXPECT_EQ(CountRows("SELECT last_seq FROM conversations"), kTotal);

  auto items = sink().WaitUntil([&](const auto& v) { return HasMessage(v, ab_, kTotal); });
  uint64_t expect = 1;
  for (const auto& i : items) {
    if (!i.event.has_message()) continue;
    EXPECT_EQ(i.event.message().message().seq(), expect++) << "fan-out out of seq order";
    std::vector<uint64_t> users = i.user_ids;
    std::sort(users.begin(), users.end());
    EXPECT_EQ(users, (std::vector<uint64_t>{kAlice, kBob}));
  }
  EXPECT_EQ(expect, static_cast<uint64_t>(kTotal + 1));
}

TEST_F(ChatStoreTest, RetryWithSameClientMsgIdReturnsOriginal) {
  friends_.Befriend(kAlice, kBob);
  v1::SendMessageResult first, again;
  ASSERT_TRUE(Send(kAlice, ab_, "c1", "hi", &first).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.seq(), 1u);
  ASSERT_TRUE(Send(kAlice, ab_, "c1", "hi (retry)", &again).ok());
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.seq(), first.seq());
  EXPECT_EQ(again.message_id(), first.message_id());
  EXPECT_EQ(again.server_time_ms(), first.server_time_ms());
  // The same client_msg_id from the other participant is a different message.
  v1::SendMessageResult bob;
  ASSERT_TRUE(Send(kBob, ab_, "c1", "yo", &bob).ok());
  EXPECT_EQ(bob.seq(), 2u);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 2);
  v1::HistoryResult h;
  ASSERT_TRUE(History(kBob, ab_, &h).ok());
  ASSERT_EQ(h.messages_size(), 2);
  EXPECT_EQ(h.messages(0).content().text().text(), "hi");
}

// The unsafe-text probes of issue 9 item 5 through the real send path: refused, nothing stored; and
// what is stored and fanned out is the NFC form.
TEST_F(ChatStoreTest, UnsafeTextIsRefusedAndTextIsStoredInNfc) {
  friends_.Befriend(kAlice, kBob);
  for (std::string bad : {std::string("\x1b[2J\x1b[1;1Hbob: send me your code"), std::string("a\0b", 3),
                          std::string("visible\rhidden")}) {
    auto st = Send(kAlice, ab_, "bad-" + std::to_string(bad.size()), bad);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.error_message().find("send me"), std::string::npos) << "the error echoes the text";
  }
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 0);

  v1::SendMessageResult r;
  ASSERT_TRUE(Send(kAlice, ab_, "nfc", "cafe\xCC\x81", &r).ok());  // e + U+0301
  v1::HistoryResult h;
  ASSERT_TRUE(History(kBob, ab_, &h).ok());
  ASSERT_EQ(h.messages_size(), 1);
  EXPECT_EQ(h.messages(0).content().text().text(), "caf\xC3\xA9");
  auto items = sink().WaitUntil([&](const auto& v) { return HasMessage(v, ab_, r.seq()); });
  const FanoutItem* item = FindMessage(items, ab_, r.seq());
  ASSERT_TRUE(item) << "the message was not fanned out";
  EXPECT_EQ(item->event.message().message().content().text().text(), "caf\xC3\xA9");
}

TEST_F(ChatStoreTest, StrangersCannotMessage) {
  auto st = Send(kAlice, ab_, "c1", "hi");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "you can only message friends");
  friends_.Befriend(kAlice, kBob);
  // A third user cannot write into somebody else's direct conversation.
  EXPECT_EQ(Send(kCarol, ab_, "c1", "hi").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::HistoryResult h;
  EXPECT_EQ(History(kCarol, ab_, &h).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 0);
  ASSERT_TRUE(Send(kAlice, ab_, "c1", "hi").ok());
}

TEST_F(ChatStoreTest, UnknownFriendshipIsRetryableAndStoresNothing) {
  friends_.Befriend(kAlice, kBob);
  friends_.SetDown(true);
  auto st = Send(kAlice, ab_, "c1", "hi");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 0);
  friends_.SetDown(false);
  v1::SendMessageResult res;
  ASSERT_TRUE(Send(kAlice, ab_, "c1", "hi", &res).ok());
  EXPECT_EQ(res.seq(), 1u);
  EXPECT_FALSE(res.duplicate());
}

TEST_F(ChatStoreTest, GroupMembershipGatesSendAndHistory) {
  auto st = Send(kAlice, group_, "c1", "hi");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::HistoryResult h;
  EXPECT_EQ(History(kAlice, group_, &h).error_code(), grpc::StatusCode::NOT_FOUND);

  uint64_t seq = 0;
  ASSERT_TRUE(UpdateMembers(kGroup, {kAlice, kBob}, {}, "group created", &seq).ok());
  EXPECT_EQ(seq, 1u);
  // Someone who never belonged gets exactly the reply of a group that does not exist (protocol.md 11).
  const std::string missing = GroupConversationId(kGroup + 1);
  const auto same_reply = [](const grpc::Status& a, const grpc::Status& b) {
    EXPECT_EQ(a.error_code(), b.error_code());
    EXPECT_EQ(a.error_message(), b.error_message());
  };
  st = Send(kCarol, group_, "c1", "let me in");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  same_reply(st, Send(kCarol, missing, "c1", "let me in"));
  st = History(kCarol, group_, &h);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  same_reply(st, History(kCarol, missing, &h));
  uint64_t read = 0;
  st = MarkRead(kCarol, 1, group_, 1, &read);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  same_reply(st, MarkRead(kCarol, 1, missing, 1, &read));

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send(kAlice, group_, "a" + std::to_string(i), "old news").ok());
  ASSERT_TRUE(UpdateMembers(kGroup, {kCarol}, {}, "Carol joined", &seq).ok());
  EXPECT_EQ(seq, 5u);
  // Idempotent: the same change again adds nothing and posts no second notice.
  uint64_t again = 0;
  ASSERT_TRUE(UpdateMembers(kGroup, {kCarol}, {}, "Carol joined", &again).ok());
  EXPECT_EQ(again, 5u);
  ASSERT_TRUE(Send(kBob, group_, "b1", "welcome").ok());

  ASSERT_TRUE(History(kCarol, group_, &h).ok());
  ASSERT_EQ(h.messages_size(), 2);  // only what came after joining
  EXPECT_EQ(h.messages(0).seq(), 5u);
  EXPECT_EQ(h.messages(0).sender_id(), 0u);
  EXPECT_EQ(h.messages(0).content().system().text(), "Carol joined");
  EXPECT_EQ(h.messages(1).seq(), 6u);
  EXPECT_EQ(h.last_seq(), 6u);
  ASSERT_TRUE(History(kCarol, group_, &h, 0, 0, /*backward=*/true).ok());
  EXPECT_EQ(h.messages_size(), 2);
  EXPECT_FALSE(h.has_more());
  ASSERT_TRUE(History(kAlice, group_, &h).ok());
  EXPECT_EQ(h.messages_size(), 6);

  // After leaving, Carol can read up to her departure only and cannot send.
  ASSERT_TRUE(UpdateMembers(kGroup, {}, {kCarol}, "Carol left", &seq).ok());
  EXPECT_EQ(seq, 7u);
  // A former member knows the group: she is told she left.
  st = Send(kCarol, group_, "c2", "still here?");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "you are no longer a member of this group");
  st = MarkRead(kCarol, 1, group_, 6, &read);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "you are no longer a member of this group");
  ASSERT_TRUE(Send(kAlice, group_, "a9", "after carol").ok());
  ASSERT_TRUE(History(kCarol, group_, &h).ok());
  ASSERT_EQ(h.messages_size(), 2);
  EXPECT_EQ(h.last_seq(), 6u);
}

// group-service pushes the complete send rules with every versioned change: a silenced member's
// sends are refused with their own reply, everyone else's go through; each versioned notice is
// posted once, even when its text repeats an earlier one.
TEST_F(ChatStoreTest, SilencedMembersCannotSendAndVersionedNoticesRepeat) {
  uint64_t version = 0;
  auto push = [&](std::vector<uint64_t> add, std::vector<uint64_t> silenced, const std::string& notice, uint64_t* seq) {
    grpc::ServerContext ctx;
    internal::UpdateMembersRequest req;
    req.set_conversation_id(group_);
    req.set_group_id(kGroup);
    for (auto u : add) req.add_add_user_ids(u);
    req.set_actor_id(kAlice);
    req.set_notice(notice);
    req.set_membership_version(++version);
    for (auto u : silenced) req.mutable_rules()->add_silenced_user_ids(u);
    req.mutable_rules()->add_privileged_user_ids(kAlice);
    internal::UpdateMembersResult res;
    auto st = svc().UpdateMembers(&ctx, &req, &res);
    *seq = res.seq();
    return st;
  };
  uint64_t seq = 0;
  ASSERT_TRUE(push({kAlice, kBob, kCarol}, {}, "created", &seq).ok());
  ASSERT_TRUE(push({}, {kBob}, "Alice muted Bob", &seq).ok());
  EXPECT_EQ(seq, 2u);
  auto st = Send(kBob, group_, "b1", "can I?");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "you are muted in this group");
  ASSERT_TRUE(Send(kCarol, group_, "c1", "I can").ok());
  ASSERT_TRUE(push({}, {}, "Alice unmuted Bob", &seq).ok());
  ASSERT_TRUE(Send(kBob, group_, "b1", "now I can").ok()) << "the refused send stored nothing";
  ASSERT_TRUE(push({}, {kBob, kCarol}, "Alice muted Bob", &seq).ok());  // the same text again
  EXPECT_EQ(seq, 6u) << "a second versioned notice with the same text is posted too";
  EXPECT_EQ(Send(kCarol, group_, "c2", "and me?").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Send(kAlice, group_, "a1", "the owner may").ok());
  v1::HistoryResult h;
  ASSERT_TRUE(History(kCarol, group_, &h).ok());
  std::vector<std::string> texts;
  for (const auto& m : h.messages())
    texts.push_back(m.sender_id() == 0 ? "[" + m.content().system().text() + "]" : m.content().text().text());
  EXPECT_EQ(texts, (std::vector<std::string>{"[created]", "[Alice muted Bob]", "I can", "[Alice unmuted Bob]",
                                             "now I can", "[Alice muted Bob]", "the owner may"}));
}

TEST_F(ChatStoreTest, MemberAddedLaterGetsNoOlderFanOutAndRemovedMemberNothingAfter) {
  // Two replicas of the shard: membership changes on one, sends on the other.
  Replica other(pg_.ConnInfo(db_), friends_, options_);
  ASSERT_TRUE(UpdateMembers(kGroup, {kAlice, kBob, kCarol}, {}, "").ok());
  v1::SendMessageResult r1;
  ASSERT_TRUE(Send(kAlice, group_, "m1", "to all three", &r1, 11).ok());
  auto items = sink().WaitUntil([&](const auto& v) { return HasMessage(v, group_, r1.seq()); });
  const FanoutItem* first = FindMessage(items, group_, r1.seq());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(std::set<uint64_t>(first->user_ids.begin(), first->user_ids.end()),
            (std::set<uint64_t>{kAlice, kBob, kCarol}));
  EXPECT_EQ(first->skip_session_id, 11u);

  uint64_t notice_seq = 0;
  ASSERT_TRUE(UpdateMembers(kGroup, {kDave}, {kCarol}, "Dave in, Carol out", &notice_seq, &other.service).ok());
  v1::SendMessageResult r2;
  ASSERT_TRUE(Send(kBob, group_, "m2", "after the change", &r2, 12).ok());
  items = sink().WaitUntil([&](const auto& v) { return HasMessage(v, group_, r2.seq()); });
  const FanoutItem* second = FindMessage(items, group_, r2.seq());
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(std::set<uint64_t>(second->user_ids.begin(), second->user_ids.end()),
            (std::set<uint64_t>{kAlice, kBob, kDave}));
  // The notice went out from the replica that wrote it, to the members after the change.
  auto other_items = other.sink.WaitUntil([&](const auto& v) { return HasMessage(v, group_, notice_seq); });
  const FanoutItem* notice = FindMessage(other_items, group_, notice_seq);
  ASSERT_NE(notice, nullptr);
  EXPECT_EQ(std::set<uint64_t>(notice->user_ids.begin(), notice->user_ids.end()),
            (std::set<uint64_t>{kAlice, kBob, kDave}));
  EXPECT_EQ(notice->event.message().message().content().system().text(), "Dave in, Carol out");
  for (const auto& i : sink().Snapshot())
    if (i.event.has_message() && i.event.message().message().seq() > r1.seq()) {
      EXPECT_EQ(std::count(i.user_ids.begin(), i.user_ids.end(), kCarol), 0);
    }
}

TEST_F(ChatStoreTest, HistoryPageStopsAtAByteBudgetSoItFitsTheSendQueue) {
  // With long texts allowed, a page of 20 would be ~2 MB; a page stops near 1 MiB instead.
  auto opts = options_;
  opts.limits.chat.max_text_chars = 200000;
  Replica big(pg_.ConnInfo(db_), friends_, opts);
  friends_.Befriend(kAlice, kBob);
  const std::string text(100000, 'x');
  for (int i = 1; i <= 20; ++i)
    ASSERT_TRUE(Send(kAlice, ab_, "big" + std::to_string(i), text, nullptr, 0, &big.service).ok());
  auto page = [&](uint64_t after, uint64_t before, bool backward, v1::HistoryResult* h) {
    grpc::ServerContext ctx;
    internal::HistoryRequest req;
    req.set_user_id(kBob);
    req.mutable_request()->set_conversation_id(ab_);
    req.mutable_request()->set_after_seq(after);
    req.mutable_request()->set_before_seq(before);
    req.mutable_request()->set_backward(backward);
    req.mutable_request()->set_limit(20);
    return big.service.GetHistory(&ctx, &req, h);
  };
  v1::HistoryResult h;
  ASSERT_TRUE(page(0, 0, false, &h).ok());
  ASSERT_EQ(h.messages_size(), 10);
  EXPECT_EQ(h.messages(0).seq(), 1u);
  EXPECT_EQ(h.messages(9).seq(), 10u);
  EXPECT_TRUE(h.has_more());
  EXPECT_LE(h.ByteSizeLong(), 1100000u);
  // Paging on from the last seq seen gets the rest, nothing skipped.
  ASSERT_TRUE(page(10, 0, false, &h).ok());
  ASSERT_EQ(h.messages_size(), 10);
  EXPECT_EQ(h.messages(0).seq(), 11u);
  EXPECT_FALSE(h.has_more());
  // Backward keeps the newest messages of the window, still in ascending order.
  ASSERT_TRUE(page(0, 0, true, &h).ok());
  ASSERT_EQ(h.messages_size(), 10);
  EXPECT_EQ(h.messages(0).seq(), 11u);
  EXPECT_EQ(h.messages(9).seq(), 20u);
  EXPECT_TRUE(h.has_more());
}

TEST_F(ChatStoreTest, HistoryPagesForwardAndBackward) {
  friends_.Befriend(kAlice, kBob);
  for (int i = 1; i <= 25; ++i) ASSERT_TRUE(Send(kAlice, ab_, std::to_string(i), "msg " + std::to_string(i)).ok());
  auto seqs = [](const v1::HistoryResult& h) {
    std::vector<uint64_t> v;
    for (const auto& m : h.messages()) v.push_back(m.seq());
    return v;
  };
  auto range = [](uint64_t lo, uint64_t hi) {
    std::vector<uint64_t> v;
    for (uint64_t s = lo; s <= hi; ++s) v.push_back(s);
    return v;
  };
  v1::HistoryResult h;
  ASSERT_TRUE(History(kBob, ab_, &h, 0, 0, false, 10).ok());
  EXPECT_EQ(seqs(h), range(1, 10));
  EXPECT_TRUE(h.has_more());
  EXPECT_EQ(h.last_seq(), 25u);
  EXPECT_EQ(h.messages(0).content().text().text(), "msg 1");
  EXPECT_EQ(h.messages(0).sender_id(), kAlice);
  EXPECT_EQ(h.messages(0).client_msg_id(), "1");
  ASSERT_TRUE(History(kBob, ab_, &h, 20, 0, false, 10).ok());
  EXPECT_EQ(seqs(h), range(21, 25));
  EXPECT_FALSE(h.has_more());
  ASSERT_TRUE(History(kBob, ab_, &h, 0, 0, true, 10).ok());
  EXPECT_EQ(seqs(h), range(16, 25));
  EXPECT_TRUE(h.has_more());
  ASSERT_TRUE(History(kBob, ab_, &h, 0, 16, true, 10).ok());
  EXPECT_EQ(seqs(h), range(6, 15));
  ASSERT_TRUE(History(kBob, ab_, &h, 0, 6, true, 10).ok());
  EXPECT_EQ(seqs(h), range(1, 5));
  EXPECT_FALSE(h.has_more());
  ASSERT_TRUE(History(kBob, ab_, &h).ok());  // default page size
  EXPECT_EQ(seqs(h), range(1, 7));
  ASSERT_TRUE(History(kBob, ab_, &h, 0, 0, false, 1000).ok());  // clamped to the max
  EXPECT_EQ(seqs(h), range(1, 20));
  EXPECT_TRUE(h.has_more());
  ASSERT_TRUE(History(kBob, ab_, &h, 25).ok());
  EXPECT_TRUE(seqs(h).empty());
  EXPECT_FALSE(h.has_more());
  // A participant with no messages yet sees an empty conversation.
  friends_.Befriend(kAlice, kCarol);
  ASSERT_TRUE(History(kCarol, DirectConversationId(kAlice, kCarol), &h).ok());
  EXPECT_EQ(h.messages_size(), 0);
  EXPECT_EQ(h.last_seq(), 0u);
}

TEST_F(ChatStoreTest, ListConversationsShowsUnreadAndLastMessage) {
  friends_.Befriend(kAlice, kBob);
  friends_.Befriend(kAlice, kCarol);
  const std::string ac = DirectConversationId(kAlice, kCarol);
  ASSERT_TRUE(Send(kAlice, ab_, "1", "a1").ok());
  ASSERT_TRUE(Send(kAlice, ab_, "2", "a2").ok());
  ASSERT_TRUE(Send(kBob, ab_, "3", "b1").ok());
  ASSERT_TRUE(Send(kBob, ab_, "4", "b2").ok());
  ASSERT_TRUE(Send(kBob, ab_, "5", "b3").ok());
  const int64_t t = NowMs();
  while (NowMs() == t) std::this_thread::yield();  // the next conversation is strictly newer
  ASSERT_TRUE(Send(kCarol, ac, "1", "c1").ok());
  ASSERT_TRUE(UpdateMembers(kGroup, {kBob}, {}, "").ok());

  auto alice = List(kAlice);
  ASSERT_EQ(alice.conversations_size(), 2);
  EXPECT_EQ(alice.conversations(0).conversation_id(), ac);  // newest first
  const auto& c = alice.conversations(1);
  EXPECT_EQ(c.conversation_id(), ab_);
  EXPECT_EQ(c.kind(), v1::CONVERSATION_KIND_DIRECT);
  EXPECT_EQ(c.peer_user_id(), kBob);
  EXPECT_EQ(c.last_seq(), 5u);
  EXPECT_EQ(c.read_seq(), 2u);
  EXPECT_EQ(c.unread_count(), 3u);
  EXPECT_EQ(c.first_seq(), 1u);
  EXPECT_EQ(c.last_message().content().text().text(), "b3");
  EXPECT_EQ(c.last_message().sender_id(), kBob);
  EXPECT_GT(c.last_message_time_ms(), 0);

  auto bob = List(kBob);
  ASSERT_EQ(bob.conversations_size(), 2);
  const v1::ConversationSummary* bab = nullptr;
  const v1::ConversationSummary* bg = nullptr;
  for (const auto& s : bob.conversations()) (s.conversation_id() == ab_ ? bab : bg) = &s;
  ASSERT_TRUE(bab && bg);
  EXPECT_EQ(bab->unread_count(), 0u);  // his own messages came last
  EXPECT_EQ(bab->read_seq(), 5u);
  EXPECT_EQ(bg->kind(), v1::CONVERSATION_KIND_GROUP);
  EXPECT_EQ(bg->group_id(), kGroup);
  EXPECT_EQ(bg->last_seq(), 0u);
  EXPECT_FALSE(bg->has_last_message());
  EXPECT_EQ(List(kDave).conversations_size(), 0);
}

TEST_F(ChatStoreTest, MarkReadIsMonotonicAndTellsOtherSessions) {
  friends_.Befriend(kAlice, kBob);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(Send(kAlice, ab_, std::to_string(i), "x").ok());
  uint64_t read = 0;
  ASSERT_TRUE(MarkRead(kBob, 42, ab_, 2, &read).ok());
  EXPECT_EQ(read, 2u);
  auto items = sink().WaitUntil([](const auto& v) {
    return std::any_of(v.begin(), v.end(), [](const FanoutItem& i) { return i.event.has_read_position(); });
  });
  std::vector<FanoutItem> reads;
  for (const auto& i : items)
    if (i.event.has_read_position()) reads.push_back(i);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].user_ids, std::vector<uint64_t>{kBob});
  EXPECT_EQ(reads[0].skip_session_id, 42u);
  EXPECT_EQ(reads[0].event.read_position().conversation_id(), ab_);
  EXPECT_EQ(reads[0].event.read_position().read_seq(), 2u);

  ASSERT_TRUE(MarkRead(kBob, 42, ab_, 1, &read).ok());
  EXPECT_EQ(read, 2u);  // never moves back
  ASSERT_TRUE(MarkRead(kBob, 43, ab_, 100, &read).ok());
  EXPECT_EQ(read, 5u);  // clamped to last_seq
  EXPECT_EQ(List(kBob).conversations(0).unread_count(), 0u);
  items = sink().WaitUntil([](const auto& v) {
    return std::count_if(v.begin(), v.end(), [](const FanoutItem& i) { return i.event.has_read_position(); }) >= 2;
  });
  reads.clear();
  for (const auto& i : items)
    if (i.event.has_read_position()) reads.push_back(i);
  ASSERT_EQ(reads.size(), 2u);  // the backward MarkRead emitted nothing
  EXPECT_EQ(reads[1].event.read_position().read_seq(), 5u);

  EXPECT_EQ(MarkRead(kCarol, 1, ab_, 1, &read).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(MarkRead(kCarol, 1, group_, 1, &read).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ChatStoreTest, InvalidInputsAreRejected) {
  friends_.Befriend(kAlice, kBob);
  auto code = [&](const internal::SendRequest& req) {
    v1::SendMessageResult res;
    return SendAndWait(svc(), req, &res).error_code();
  };
  const auto bad = grpc::StatusCode::INVALID_ARGUMENT;
  for (const std::string id : {"", "x", "d.2.1", "d.5.5", "d.01.2", "g.", "g.0", "g.-1", "d.1", "q.1"})
    EXPECT_EQ(code(MakeSend(kAlice, 1, id, "c", "hi")), bad) << id;
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, "c", "")), bad);
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, "c", std::string(101, 'x'))), bad);
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, "c", std::string(100, 'x'))), grpc::StatusCode::OK);
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, "", "hi")), bad);
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, std::string(65, 'c'), "hi")), bad);
  EXPECT_EQ(code(MakeSend(kAlice, 1, ab_, "new\nline", "hi")), bad);
  auto sys = MakeSend(kAlice, 1, ab_, "s", "");
  sys.mutable_request()->mutable_content()->mutable_system()->set_text("I am the server");
  EXPECT_EQ(code(sys), bad);
  auto none = MakeSend(kAlice, 1, ab_, "n", "");
  none.mutable_request()->clear_content();
  EXPECT_EQ(code(none), bad);
  auto media = MakeSend(kAlice, 1, ab_, "m", "");
  media.mutable_request()->mutable_content()->mutable_media()->set_url("https://cdn/x.jpg");
  EXPECT_EQ(code(media), bad);
  media.mutable_request()->mutable_content()->mutable_media()->set_kind(v1::MEDIA_KIND_IMAGE);
  EXPECT_EQ(code(media), grpc::StatusCode::OK);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 2);

  v1::HistoryResult h;
  EXPECT_EQ(History(kAlice, "d.x.y", &h).error_code(), bad);
  uint64_t seq;
  grpc::ServerContext ctx;
  internal::UpdateMembersRequest um;
  um.set_group_id(5);
  um.set_conversation_id("g.6");
  internal::UpdateMembersResult umr;
  EXPECT_EQ(svc().UpdateMembers(&ctx, &um, &umr).error_code(), bad);
  EXPECT_EQ(UpdateMembers(kGroup, {kAlice}, {kAlice}, "", &seq).error_code(), bad);
}

TEST_F(ChatStoreTest, WrongShardIsRefused) {
  ReplicaOptions two = options_;
  two.shard_count = 2;
  two.shard = 0;
  Replica shard0(pg_.ConnInfo(db_), friends_, two);
  uint64_t g = 1;
  while (ShardOfConversation(GroupConversationId(g), 2) == 0) ++g;
  friends_.Befriend(kAlice, kBob);
  auto st = Send(kAlice, GroupConversationId(g), "c", "hi", nullptr, 0, &shard0.service);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "wrong shard");
}

TEST_F(ChatStoreTest, BatchWithFailingSendsCommitsTheOthers) {
  friends_.Befriend(kAlice, kBob);
  ASSERT_TRUE(UpdateMembers(kGroup, {kAlice}, {}, "").ok());
  auto make = [](const std::string& conv, uint64_t sender, const std::string& cmid, bool direct) {
    PendingSend s;
    s.conversation_id = conv;
    s.direct = direct;
    if (auto p = ParseConversationId(conv); p && direct) {
      s.user_a = p->a;
      s.user_b = p->b;
    }
    s.sender_id = sender;
    s.client_msg_id = cmid;
    s.require_member = !direct;
    s.content.mutable_text()->set_text(cmid);
    return s;
  };
  const PendingSend ok1 = make(ab_, kAlice, "ok1", true);
  const PendingSend not_member = make(group_, kBob, "nm", false);
  const PendingSend no_group = make(GroupConversationId(999), kAlice, "ng", false);
  const PendingSend ok2 = make(group_, kAlice, "ok2", false);
  const PendingSend ok3 = make(ab_, kBob, "ok3", true);
  std::vector<CommittedMessage> committed;
  auto out = replica_->store.CommitSends({&ok1, &not_member, &no_group, &ok2, &ok3},
                                         [&](std::vector<CommittedMessage>&& m) { committed = std::move(m); });
  ASSERT_EQ(out.size(), 5u);
  EXPECT_TRUE(out[0].status.ok());
  // A non-member of an existing group gets exactly the missing group's reply.
  EXPECT_EQ(out[1].status.code(), v1::NOT_FOUND);
  EXPECT_EQ(out[1].status.message(), out[2].status.message());
  EXPECT_EQ(out[2].status.code(), v1::NOT_FOUND);
  EXPECT_TRUE(out[3].status.ok());
  EXPECT_TRUE(out[4].status.ok());
  EXPECT_EQ(out[0].result.seq(), 1u);
  EXPECT_EQ(out[4].result.seq(), 2u);
  EXPECT_EQ(out[3].result.seq(), 1u);
  EXPECT_EQ(committed.size(), 3u);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 3);
}

// With per-user quotas the charge stage runs ahead of the committers: a user over quota is refused with
// the wait and nothing of theirs is stored, the sends within it commit in submission order, and Stop
// answers every send it accepted, charged or not.
TEST_F(ChatStoreTest, SendsOverAUsersQuotaAreRefusedWithTheWaitAndTheRestCommitInOrder) {
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t sender = (rng() >> 2) | 1;  // a bucket of this run's own (the test Redis outlives runs)
  const std::string conv = DirectConversationId(sender, kBob);
  Limits limits;
  limits.chat.user_messages_per_second = 0;  // unlimited: only the per-minute bucket decides
  limits.chat.user_messages_per_minute = 5;
  limits.chat.user_history_bytes_per_minute = 0;
  UserQuotas quotas(chat::testing::TestRedis(), SendQuotaSpecs(limits));
  // One committer, so that submission order is commit order (concurrent committers race for the row lock).
  SendBatcher batcher(replica_->store, replica_->fanout, 2, 1000, 1, &quotas);
  batcher.Start();
  std::vector<std::future<SendOutcome>> outs;
  for (int i = 0; i < 12; ++i) {
    PendingSend s;
    s.conversation_id = conv;
    s.direct = true;
    s.user_a = std::min(sender, kBob);
    s.user_b = std::max(sender, kBob);
    s.sender_id = sender;
    s.client_msg_id = "q" + std::to_string(i);
    s.content.mutable_text()->set_text(s.client_msg_id);
    outs.push_back(batcher.Submit(std::move(s)));
  }
  batcher.Stop();
  int stored = 0;
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(outs[i].wait_for(0s), std::future_status::ready) << "Stop answered send " << i;
    SendOutcome o = outs[i].get();
    if (i < 5) {
      ASSERT_TRUE(o.status.ok()) << i << ": " << o.status.message();
      EXPECT_EQ(o.result.seq(), static_cast<uint64_t>(i + 1)) << "submission order is commit order";
      ++stored;
    } else {
      EXPECT_EQ(o.status.code(), v1::RESOURCE_EXHAUSTED) << i;
      // One token of 5 per minute refills in 12 s.
      EXPECT_GT(o.status.retry_after_ms(), 10'000) << i;
      EXPECT_LE(o.status.retry_after_ms(), 12'000) << i;
    }
  }
  EXPECT_EQ(stored, 5);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages WHERE sender_id = " + std::to_string(sender)), 5);
}

// One batch statement: a retry inside the same batch and a retry of a stored message are both the
// original message; ids with quotes and backslashes survive the array encoding.
TEST_F(ChatStoreTest, BatchRepeatsAreDuplicatesOfTheFirst) {
  friends_.Befriend(kAlice, kBob);
  ASSERT_TRUE(Send(kAlice, ab_, "stored", "first").ok());
  auto make = [&](uint64_t sender, const std::string& cmid, const std::string& text) {
    PendingSend s;
    s.conversation_id = ab_;
    s.direct = true;
    s.user_a = kAlice;
    s.user_b = kBob;
    s.sender_id = sender;
    s.client_msg_id = cmid;
    s.content.mutable_text()->set_text(text);
    return s;
  };
  const PendingSend a = make(kAlice, "q\"x\\y,{}", "odd id");
  const PendingSend again = make(kAlice, "q\"x\\y,{}", "odd id, retried");
  const PendingSend stored = make(kAlice, "stored", "first, retried");
  const PendingSend bob = make(kBob, "q\"x\\y,{}", std::string("bin\0ary", 7));
  std::vector<CommittedMessage> committed;
  auto out = replica_->store.CommitSends({&a, &again, &stored, &bob},
                                         [&](std::vector<CommittedMessage>&& m) { committed = std::move(m); });
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) ASSERT_TRUE(o.status.ok()) << o.status.message();
  EXPECT_EQ(out[0].result.seq(), 2u);
  EXPECT_FALSE(out[0].result.duplicate());
  EXPECT_EQ(out[1].result.seq(), 2u);
  EXPECT_TRUE(out[1].result.duplicate());
  EXPECT_EQ(out[2].result.seq(), 1u);
  EXPECT_TRUE(out[2].result.duplicate());
  EXPECT_EQ(out[3].result.seq(), 3u);  // same client_msg_id, other sender: a different message
  EXPECT_FALSE(out[3].result.duplicate());
  ASSERT_EQ(committed.size(), 2u);
  EXPECT_EQ(committed[0].message.seq(), 2u);
  EXPECT_EQ(committed[1].message.seq(), 3u);
  v1::HistoryResult h;
  ASSERT_TRUE(History(kBob, ab_, &h).ok());
  ASSERT_EQ(h.messages_size(), 3);
  EXPECT_EQ(h.messages(1).client_msg_id(), "q\"x\\y,{}");
  EXPECT_EQ(h.messages(1).content().text().text(), "odd id");
  EXPECT_EQ(h.messages(2).content().text().text(), std::string("bin\0ary", 7));
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 3);
}

// SendBatch over real gRPC: each send is judged on its own, answers come back in request order, and
// a call over limits.chat.send_batch_max is refused whole.
TEST_F(ChatStoreTest, SendBatchAnswersEverySendInOrderOverGrpc) {
  chat::testing::KeepGrpcCallbackQueueUp();
  friends_.Befriend(kAlice, kBob);
  int port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&svc());
  auto server = b.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  auto stub = internal::ChatService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  internal::SendBatchRequest req;
  *req.add_sends() = MakeSend(kAlice, 1, ab_, "b1", "one");
  *req.add_sends() = MakeSend(kCarol, 3, ab_, "b2", "not mine");
  *req.add_sends() = MakeSend(kAlice, 1, "nonsense", "b3", "bad id");
  *req.add_sends() = MakeSend(kBob, 2, ab_, "b4", "two");
  *req.add_sends() = MakeSend(kAlice, 1, ab_, "b1", "one, retried");
  internal::SendBatchResult res;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    ASSERT_TRUE(stub->SendBatch(&ctx, req, &res).ok());
  }
  ASSERT_EQ(res.results_size(), 5);
  EXPECT_EQ(res.results(0).code(), grpc::StatusCode::OK);
  EXPECT_EQ(res.results(1).code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(res.results(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(res.results(2).message().empty());
  EXPECT_EQ(res.results(3).code(), grpc::StatusCode::OK);
  EXPECT_EQ(res.results(4).code(), grpc::StatusCode::OK);
  std::set<uint64_t> seqs = {res.results(0).result().seq(), res.results(3).result().seq()};
  EXPECT_EQ(seqs, (std::set<uint64_t>{1, 2}));
  // The retry and its original may commit in either order (the sends of one call are concurrent):
  // one of them is the message, the other its duplicate.
  EXPECT_EQ(res.results(4).result().seq(), res.results(0).result().seq());
  EXPECT_NE(res.results(4).result().duplicate(), res.results(0).result().duplicate());
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 2);

  internal::SendBatchRequest big;
  for (uint32_t i = 0; i <= options_.limits.chat.send_batch_max; ++i)
    *big.add_sends() = MakeSend(kAlice, 1, ab_, "big" + std::to_string(i), "x");
  grpc::ClientContext ctx;
  internal::SendBatchResult big_res;
  EXPECT_EQ(stub->SendBatch(&ctx, big, &big_res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 2);
  server->Shutdown();
}

// Another replica commits the same (conversation, sender, client_msg_id) while our batch runs: our
// insert hits the unique constraint; that send must come back as the duplicate, the rest commit.
TEST_F(ChatStoreTest, DuplicateRacingInFromAnotherReplicaDoesNotFailTheBatch) {
  friends_.Befriend(kAlice, kBob);
  ASSERT_TRUE(Send(kAlice, ab_, "warm-up", "creates the conversation").ok());
  pqxx::connection other(pg_.ConnInfo(db_));
  pqxx::work rival(other);
  // The rival replica takes seq 2 for "race" and holds the row lock until it commits.
  const int64_t rival_seq =
      rival.exec("UPDATE conversations SET last_seq = last_seq + 1 RETURNING last_seq")[0][0].as<int64_t>();
  rival.exec_params(
      "INSERT INTO messages (conversation_id, seq, message_id, sender_id, client_msg_id, server_time_ms, content) "
      "VALUES ($1, $2, $4, $3, 'race', 1, ''::bytea)",
      ab_, rival_seq, static_cast<int64_t>(kAlice), ab_ + ":" + std::to_string(rival_seq));

  // The racing send is the first of its conversation in the batch, so its statement is the one that
  // waits for the rival's row lock and then runs into the unique constraint.
  friends_.Befriend(kAlice, kCarol);
  PendingSend racing, after, elsewhere;
  for (auto* s : {&racing, &after, &elsewhere}) {
    s->conversation_id = ab_;
    s->direct = true;
    s->user_a = kAlice;
    s->user_b = kBob;
    s->sender_id = kAlice;
    s->content.mutable_text()->set_text("x");
  }
  racing.client_msg_id = "race";
  after.client_msg_id = "after";
  elsewhere.client_msg_id = "elsewhere";
  elsewhere.conversation_id = DirectConversationId(kAlice, kCarol);
  elsewhere.user_b = kCarol;
  std::vector<SendOutcome> out;
  std::vector<CommittedMessage> committed;
  std::promise<void> batch_done;
  auto batch_finished = batch_done.get_future();
  std::thread batch([&] {
    out = replica_->store.CommitSends({&racing, &after, &elsewhere},
                                      [&](std::vector<CommittedMessage>&& m) { committed = std::move(m); });
    batch_done.set_value();
  });
  // Wait until the batch is blocked on the rival's lock, then let the rival commit. PostgreSQL
  // announces no lock wait, so pg_stat_activity is asked again whenever 5 ms pass without the batch
  // finishing: the pause is a wait on the batch's end, so a batch that never waited fails at once.
  pqxx::connection observer(pg_.ConnInfo(db_));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool waiting = false, finished = false;
  while (!waiting && !finished && std::chrono::steady_clock::now() < deadline) {
    pqxx::nontransaction n(observer);
    waiting = n.exec_params("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                            db_)[0][0]
                  .as<int>() > 0;
    if (!waiting) finished = batch_finished.wait_for(5ms) == std::future_status::ready;
  }
  if (!waiting) {  // leave no thread running behind the failed assertion
    rival.abort();
    batch.join();
  }
  ASSERT_TRUE(waiting) << (finished ? "the batch finished without waiting for the rival's lock"
                                    : "the batch was not waiting for a lock within 10 s");
  rival.commit();
  batch.join();
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) ASSERT_TRUE(o.status.ok()) << o.status.message();
  EXPECT_TRUE(out[0].result.duplicate());
  EXPECT_EQ(out[0].result.seq(), static_cast<uint64_t>(rival_seq));
  EXPECT_FALSE(out[1].result.duplicate());
  EXPECT_EQ(out[1].result.seq(), 3u);  // right after the rival's seq: no gap
  EXPECT_FALSE(out[2].result.duplicate());
  EXPECT_EQ(out[2].result.seq(), 1u);
  EXPECT_EQ(committed.size(), 2u);  // the duplicate is not fanned out again
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages"), 4);
  EXPECT_EQ(CountRows("SELECT max(last_seq) FROM conversations"), 3);
}

TEST_F(ChatStoreTest, DatabaseDownIsUnavailable) {
  PostgresConfig dead = pg_;
  dead.port = 1;
  Replica down(dead.ConnInfo(db_), friends_, options_, 1);
  friends_.Befriend(kAlice, kBob);
  auto st = Send(kAlice, ab_, "c", "hi", nullptr, 0, &down.service);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message().find("SQL"), std::string::npos);
}

TEST_F(ChatStoreTest, StaleMemberListIsNeverUsedWhenTheReloadFails) {
  // A replica with one pooled connection, so the test can keep the fan-out thread from reloading.
  Replica small(pg_.ConnInfo(db_), friends_, options_, 1);
  ASSERT_TRUE(UpdateMembers(kGroup, {kAlice, kBob, kCarol}, {}, "").ok());
  v1::SendMessageResult r1;
  ASSERT_TRUE(Send(kAlice, group_, "m1", "to all three", &r1, 0, &small.service).ok());
  auto items = small.sink.WaitUntil([&](const auto& v) { return HasMessage(v, group_, r1.seq()); });
  const FanoutItem* first = FindMessage(items, group_, r1.seq());
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(std::count(first->user_ids.begin(), first->user_ids.end(), kCarol), 1);  // now cached with Carol

  // Carol leaves through the other replica; a message written after that reaches `small`'s fan-out
  // while no connection is free to reload the member list.
  ASSERT_TRUE(UpdateMembers(kGroup, {}, {kCarol}, "").ok());
  const auto version =
      static_cast<uint64_t>(CountRows("SELECT members_version FROM conversations WHERE id = '" + group_ + "'"));
  {
    PgPool::Lease held = small.pool.Acquire();
    CommittedMessage m;
    m.direct = false;
    m.members_version = version;
    m.message.set_conversation_id(group_);
    m.message.set_seq(r1.seq() + 1);
    m.message.set_sender_id(kBob);
    m.message.mutable_content()->mutable_text()->set_text("Carol must not see this");
    std::vector<CommittedMessage> batch;
    batch.push_back(std::move(m));
    small.fanout.PushMessages(std::move(batch));
    // The fan-out thread takes its queue in order: once an item pushed after the message reaches the
    // sink, the message's round is over (and its skip counted, which happens before any delivery).
    // (The marker has the group's ordering key, so it shares the message's fan-out worker.)
    FanoutItem marker;
    marker.user_ids = {kAlice};
    marker.conversation_id = group_;
    marker.event.mutable_group_changed()->set_actor_id(kAlice);
    small.fanout.PushItem(marker);
    small.sink.WaitUntil([](const auto& v) {
      return std::any_of(v.begin(), v.end(), [](const FanoutItem& i) { return i.event.has_group_changed(); });
    });
    ASSERT_GE(small.fanout.skipped_no_members(), 1u);
  }
  for (const auto& i : small.sink.Snapshot())
    if (i.event.has_message() && i.event.message().message().seq() > r1.seq()) {
      EXPECT_EQ(std::count(i.user_ids.begin(), i.user_ids.end(), kCarol), 0);
    }
  EXPECT_FALSE(HasMessage(small.sink.Snapshot(), group_, r1.seq() + 1));

  // Once a connection is free again the list is reloaded: the next message reaches the current members.
  v1::SendMessageResult r2;
  ASSERT_TRUE(Send(kBob, group_, "m2", "after Carol left", &r2, 0, &small.service).ok());
  items = small.sink.WaitUntil([&](const auto& v) { return HasMessage(v, group_, r2.seq()); });
  const FanoutItem* second = FindMessage(items, group_, r2.seq());
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(std::set<uint64_t>(second->user_ids.begin(), second->user_ids.end()), (std::set<uint64_t>{kAlice, kBob}));
}

TEST_F(ChatStoreTest, OutboxMessagesAreAcknowledgedOnceDeliveredOrWhenTheyReachNobody) {
  struct Acks : OutboxAcks {
    std::mutex mu;
    std::set<uint64_t> ids;
    void Ack(const std::vector<uint64_t>& v) override {
      std::lock_guard lk(mu);
      ids.insert(v.begin(), v.end());
    }
  } acks;
  RecordingSink sink;
  FanoutQueue queue(replica_->store, sink, 60s, 10, 100, /*workers=*/2, &acks);
  queue.Start();
  std::vector<CommittedMessage> batch(2);
  batch[0].direct = true;
  batch[0].message.set_conversation_id(ab_);
  batch[0].message.set_seq(1);
  batch[0].outbox_id = 7;
  batch[1].direct = true;
  batch[1].message.set_conversation_id("d.not-a-conversation");  // resolves to nobody
  batch[1].message.set_seq(1);
  batch[1].outbox_id = 8;
  queue.PushMessages(std::move(batch));
  queue.Stop();  // drains
  EXPECT_TRUE(HasMessage(sink.Snapshot(), ab_, 1));
  EXPECT_EQ(acks.ids, (std::set<uint64_t>{7, 8}));
}

TEST_F(ChatStoreTest, FanOutQueueIsBoundedAndDropsTheOldestEvents) {
  // Not started: nothing drains, as when presence or Redis hangs every round.
  RecordingSink sink;
  FanoutQueue queue(replica_->store, sink, 60s, 10, /*max_queued=*/4);
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    CommittedMessage m;
    m.direct = true;
    m.message.set_conversation_id(ab_);
    m.message.set_seq(seq);
    m.message.set_sender_id(kAlice);
    m.message.mutable_content()->mutable_text()->set_text("m" + std::to_string(seq));
    std::vector<CommittedMessage> one;
    one.push_back(std::move(m));
    queue.PushMessages(std::move(one));
  }
  EXPECT_EQ(queue.dropped(), 6u);
  queue.Start();
  auto items = sink.WaitUntil([&](const auto& v) { return HasMessage(v, ab_, 10); });
  queue.Stop();
  std::vector<uint64_t> seqs;
  for (const auto& i : sink.Snapshot()) seqs.push_back(i.event.message().message().seq());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{7, 8, 9, 10}));  // the newest four, in order
}

TEST_F(ChatStoreTest, FullSendQueueFailsFastAndExpiredSendsAreNotCommitted) {
  friends_.Befriend(kAlice, kBob);
  // Not started yet: the queue fills as it would while a slow commit is running.
  SendBatcher batcher(replica_->store, replica_->fanout, 16, /*queue_max=*/2);
  auto make = [&](const std::string& cmid) {
    PendingSend s;
    s.conversation_id = ab_;
    s.direct = true;
    s.user_a = kAlice;
    s.user_b = kBob;
    s.sender_id = kAlice;
    s.client_msg_id = cmid;
    s.content.mutable_text()->set_text("text " + cmid);
    return s;
  };
  auto gave_up = batcher.Submit(make("late"), std::chrono::system_clock::now() - 1ms);
  auto waiting = batcher.Submit(make("live"), std::chrono::system_clock::now() + 30s);
  auto refused = batcher.Submit(make("over"), std::chrono::system_clock::now() + 30s);
  ASSERT_EQ(refused.wait_for(0s), std::future_status::ready);  // fails fast, before any commit
  SendOutcome over = refused.get();
  EXPECT_EQ(over.status.code(), v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(over.status.message(), "chat shard overloaded; retry");

  batcher.Start();
  SendOutcome late = gave_up.get();
  EXPECT_EQ(late.status.code(), v1::DEADLINE_EXCEEDED);
  SendOutcome live = waiting.get();
  ASSERT_TRUE(live.status.ok()) << live.status.message();
  EXPECT_EQ(live.result.seq(), 1u);
  batcher.Stop();
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages WHERE client_msg_id = 'late'"), 0);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages WHERE client_msg_id = 'over'"), 0);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages WHERE client_msg_id = 'live'"), 1);
  // A refused send leaves room for the next one.
  v1::SendMessageResult r;
  ASSERT_TRUE(Send(kAlice, ab_, "over", "text over", &r).ok());
  EXPECT_EQ(r.seq(), 2u);
}

TEST_F(ChatStoreTest, ListConversationsLastMessageIsAShortPreview) {
  friends_.Befriend(kAlice, kBob);
  ReplicaOptions roomy = options_;
  roomy.limits.chat.max_text_chars = 4000;
  Replica r(pg_.ConnInfo(db_), friends_, roomy);
  std::string text;
  for (int i = 0; i < 150; ++i) text += "\xC3\xA9";           // é
  for (int i = 0; i < 3000; ++i) text += "\xF0\x9F\x99\x82";  // 🙂
  v1::SendMessageResult sent;
  ASSERT_TRUE(Send(kAlice, ab_, "long", text, &sent, 0, &r.service).ok());

  grpc::ServerContext ctx;
  internal::UserIdRequest req;
  req.set_user_id(kBob);
  v1::ConversationsResult list;
  ASSERT_TRUE(r.service.ListConversations(&ctx, &req, &list).ok());
  ASSERT_EQ(list.conversations_size(), 1);
  const std::string& preview = list.conversations(0).last_message().content().text().text();
  std::string expected = text.substr(0, 150 * 2) + text.substr(150 * 2, 50 * 4);  // 200 code points
  EXPECT_EQ(preview, expected);
  EXPECT_EQ(list.conversations(0).last_message().seq(), sent.seq());
  EXPECT_EQ(list.conversations(0).last_seq(), sent.seq());

  // History still has the whole text.
  v1::HistoryResult h;
  ASSERT_TRUE(History(kBob, ab_, &h).ok());
  ASSERT_EQ(h.messages_size(), 1);
  EXPECT_EQ(h.messages(0).content().text().text(), text);

  // Short text is not touched.
  ASSERT_TRUE(Send(kBob, ab_, "short", "ok \xF0\x9F\x99\x82", nullptr, 0, &r.service).ok());
  list.Clear();
  ASSERT_TRUE(r.service.ListConversations(&ctx, &req, &list).ok());
  ASSERT_EQ(list.conversations_size(), 1);
  EXPECT_EQ(list.conversations(0).last_message().content().text().text(), "ok \xF0\x9F\x99\x82");
}

}  // namespace
}  // namespace chat::chat_service
