// End-to-end failures: a gateway killed mid-conversation, a chat shard restarted during sends, a
// gateway stopped gracefully, and a slow consumer. Each test kills or restarts processes, so each
// starts its own cluster.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cluster.h"
#include "common/shard.h"
#include "raw_ws.h"

namespace chat::e2e {
namespace {

using client::Connection;
using Clock = std::chrono::steady_clock;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
// The pause a well-behaved client makes before it retries a failed send or reconnect. This is the
// client behaviour under test (retries with the same client_msg_id while a gateway or shard is down,
// paced so that they do not hammer the cluster), not a wait for an event: a client cannot know when
// the shard is back, and waiting for that in the test would skip the retries that hit the outage.
constexpr auto kRetryBackoff = 100ms;

// ---- a sender that retries like a well-behaved client ---------------------------------------------

// What a RetryingSender did. Guarded by mu; cv is notified on every ack and at the end.
struct SendLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, uint64_t>> acked;  // (client_msg_id, seq), in send order
  std::map<std::string, std::string> text_of;           // client_msg_id -> text
  int reconnects = 0;
  int retries = 0;
  std::vector<std::string> errors;  // sends that failed for good (must stay empty)
  bool done = false;

  size_t acked_count() {
    std::lock_guard lock(mu);
    return acked.size();
  }
  // Waits until at least n sends were acknowledged (or the sender finished); false on timeout.
  bool WaitAcked(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return acked.size() >= n || done; }) && acked.size() >= n;
  }
};

// Sends numbered texts to `conv`, one after the other, until `stop` is set (at least `min_messages`)
// or `max_messages` were sent. Every send is retried with the SAME client_msg_id on UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and connection loss; a lost connection is replaced by a
// new one to `fallback_gateway`. Runs on its own thread; owns `conn`.
// `abort` ends it at once (a failing test), leaving the send in progress unfinished.
void RunSender(const TestCluster* cluster, const User* user, std::unique_ptr<Connection> conn, int fallback_gateway,
               WireEncoding encoding, std::string conv, const std::atomic<bool>* stop, const std::atomic<bool>* abort,
               size_t min_messages, size_t max_messages, SendLog* log) {
  for (size_t i = 0; i < max_messages && (i < min_messages || !stop->load()) && !abort->load(); ++i) {
    const std::string id = client::NewClientMsgId();
    const std::string text = "msg " + std::to_string(i);
    {
      std::lock_guard lock(log->mu);
      log->text_of[id] = text;
    }
    const auto deadline = Clock::now() + 60s;
    bool sent = false;
    std::string last_error;
    while (!sent && Clock::now() < deadline && !abort->load()) {
      if (!conn || !conn->is_open()) {
        try {
          conn = cluster->Connect(*user, fallback_gateway, encoding);
          std::lock_guard lock(log->mu);
          ++log->reconnects;
        } catch (const std::exception& e) {
          last_error = e.what();
          conn.reset();
          std::this_thread::sleep_for(kRetryBackoff);  // client backoff (see kRetryBackoff), not a wait
          continue;
        }
      }
      v1::Reply r = client::SendText(*conn, conv, id, text, 10s);
      if (r.status() == v1::OK) {
        std::lock_guard lock(log->mu);
        log->acked.emplace_back(id, r.send_message().seq());
        log->cv.notify_all();
        sent = true;
      } else if (r.status() == v1::UNAVAILABLE || r.status() == v1::DEADLINE_EXCEEDED ||
                 r.status() == v1::RESOURCE_EXHAUSTED) {
        last_error = client::DescribeError(r);
        {
          std::lock_guard lock(log->mu);
          ++log->retries;
        }
        std::this_thread::sleep_for(kRetryBackoff);  // client backoff (see kRetryBackoff), not a wait
      } else {
        last_error = client::DescribeError(r);
        break;
      }
    }
    if (!sent) {
      std::lock_guard lock(log->mu);
      log->errors.push_back("send " + std::to_string(i) + " failed for good: " + last_error);
      break;
    }
  }
  std::lock_guard lock(log->mu);
  log->done = true;
  log->cv.notify_all();
}

// A RunSender thread. Finish() lets the send in progress complete and joins; the destructor (a
// test that failed early) aborts and joins.
class SenderThread {
 public:
  // Takes over user.conn.
  SenderThread(const TestCluster& cluster, User& user, int fallback_gateway, WireEncoding encoding,
               const std::string& conv, size_t min_messages, SendLog& log)
      : thread_(RunSender, &cluster, &user, std::move(user.conn), fallback_gateway, encoding, conv, &stop_, &abort_,
                min_messages, size_t{5000}, &log) {}
  ~SenderThread() {
    stop_ = abort_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  std::thread thread_;
};

// Checks the server's history of `conv` against everything `log` had acknowledged: seqs 1..N
// without gaps, every acknowledged message exactly once at its acknowledged seq, nothing else.
void ExpectHistoryMatchesAcks(Connection& reader, const std::string& conv, SendLog& log) {
  std::vector<v1::Message> h;
  ASSERT_NO_THROW(h = FullHistory(reader, conv));
  std::lock_guard lock(log.mu);
  ASSERT_EQ(h.size(), log.acked.size()) << "history and acknowledged sends differ in size";
  std::map<std::string, int> copies;
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].seq(), i + 1) << "seq gap or disorder at position " << i;
    ++copies[h[i].client_msg_id()];
  }
  for (const auto& [id, seq] : log.acked) {
    EXPECT_EQ(copies[id], 1) << "acknowledged message " << id << " is in history " << copies[id] << " times";
    ASSERT_GE(seq, 1u);
    ASSERT_LE(seq, h.size());
    EXPECT_EQ(h[seq - 1].client_msg_id(), id) << "acknowledged seq " << seq << " holds another message";
    EXPECT_EQ(TextOf(h[seq - 1]), log.text_of[id]);
  }
}

// ---- a gateway killed mid-conversation -------------------------------------------------------------

TEST(GatewayFailure, ClientsOfAKilledGatewayResyncWithNothingLostOrRepeated) {
  ClusterOptions o;
  o.AllowLoad(2000);  // the sender goes as fast as replies come back
  TestCluster cluster(o);
  User alice = cluster.SignUp(0, kProto, "Alice");  // sender, on the gateway that dies
  User bob = cluster.SignUp(0, kJson, "Bob");       // receiver, on the gateway that dies
  cluster.MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);

  // What Bob saw, deduplicated by seq; the same seq must always be the same message.
  std::map<uint64_t, v1::Message> seen;
  auto take = [&](const v1::Message& m) {
    if (m.conversation_id() != conv) return;
    auto [it, fresh] = seen.emplace(m.seq(), m);
    if (!fresh) {
      EXPECT_EQ(it->second.client_msg_id(), m.client_msg_id()) << "seq " << m.seq() << " seen as two messages";
    }
  };
  auto contiguous = [&] {
    uint64_t s = 0;
    while (seen.count(s + 1)) ++s;
    return s;
  };
  auto drain_events = [&](Connection& c, std::chrono::milliseconds wait) {
    while (auto e = c.NextEvent(wait))
      if (e->has_message()) take(e->message().message());
  };

  SendLog log;
  SenderThread sender(cluster, alice, 1, kProto, conv, 40, log);  // takes over alice.conn

  // Bob is mid-conversation when gateway 0 dies.
  for (auto deadline = Clock::now() + 30s; seen.size() < 10 && Clock::now() < deadline;)
    if (auto e = bob.c().NextEvent(1s); e && e->has_message()) take(e->message().message());
  ASSERT_GE(seen.size(), 10u) << "Bob received too little before the kill";
  const size_t acked_before_kill = log.acked_count();
  cluster.KillGateway(0);

  // Bob sees the connection drop (no close frame from a killed process).
  uint16_t code = 0;
  ASSERT_TRUE(bob.c().WaitClosed(15s, &code)) << "Bob's connection to the killed gateway stayed open";
  EXPECT_EQ(code, 1006);
  drain_events(bob.c(), 0ms);  // events that arrived before the drop

  // Bob reconnects to the other gateway and syncs: list, then history after his last seen seq.
  std::unique_ptr<Connection> bob1;
  ASSERT_NO_THROW(bob1 = cluster.Connect(bob, 1, kJson));
  std::optional<v1::ConversationSummary> summary;
  ASSERT_NO_THROW(summary = FindConversation(*bob1, conv));
  ASSERT_TRUE(summary);
  EXPECT_GE(summary->last_seq(), acked_before_kill);
  std::vector<v1::Message> page;
  ASSERT_NO_THROW(page = FullHistory(*bob1, conv, contiguous()));
  for (const auto& m : page) take(m);
  EXPECT_GE(contiguous(), summary->last_seq()) << "sync left a gap";

  // The conversation goes on through gateway 1 for a while, then the sender stops.
  ASSERT_TRUE(log.WaitAcked(acked_before_kill + 30, 60s)) << "the sender did not recover after the kill";
  sender.Finish();
  {
    std::lock_guard lock(log.mu);
    std::printf("gateway kill: %zu acked before the kill, %zu in all, %d retries, %d reconnects\n", acked_before_kill,
                log.acked.size(), log.retries, log.reconnects);
    EXPECT_TRUE(log.errors.empty()) << log.errors.front();
    EXPECT_GE(log.reconnects, 1) << "the sender never noticed its gateway died";
  }

  // Bob's final catch-up: pending events, then history after his last seen seq.
  drain_events(*bob1, 500ms);
  ASSERT_NO_THROW(page = FullHistory(*bob1, conv, contiguous()));
  for (const auto& m : page) take(m);

  // The union of what Bob saw holds every acknowledged message exactly once, at its seq.
  {
    std::lock_guard lock(log.mu);
    std::set<uint64_t> acked_seqs;
    for (const auto& [id, seq] : log.acked) {
      EXPECT_TRUE(acked_seqs.insert(seq).second) << "two acknowledged sends got seq " << seq;
      auto it = seen.find(seq);
      ASSERT_NE(it, seen.end()) << "Bob never saw acknowledged seq " << seq;
      EXPECT_EQ(it->second.client_msg_id(), id);
    }
    EXPECT_EQ(seen.size(), acked_seqs.size()) << "Bob saw messages nobody acknowledged";
  }
  ExpectHistoryMatchesAcks(*bob1, conv, log);
}

// ---- a chat shard restarted during sends -----------------------------------------------------------

TEST(ChatShardRestart, SendsRetriedAcrossRestartsAreStoredExactlyOnceWithoutGaps) {
  ClusterOptions o;
  o.AllowLoad(2000);
  TestCluster cluster(o);
  User alice = cluster.SignUp(0, kProto, "Alice");
  User bob = cluster.SignUp(1, kJson, "Bob");
  cluster.MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);
  const int shard = static_cast<int>(ShardOfConversation(conv, cluster.chat_shard_count()));

  SendLog log;
  SenderThread sender(cluster, alice, 1, kProto, conv, 30, log);  // takes over alice.conn
  ASSERT_TRUE(log.WaitAcked(10, 30s));
  const size_t before_term = log.acked_count();
  cluster.RestartChatShard(shard, /*hard=*/false);  // SIGTERM: graceful
  ASSERT_TRUE(log.WaitAcked(log.acked_count() + 10, 60s)) << "sends did not recover after a SIGTERM restart";
  const size_t before_kill = log.acked_count();
  cluster.RestartChatShard(shard, /*hard=*/true);  // SIGKILL: mid-transaction
  ASSERT_TRUE(log.WaitAcked(log.acked_count() + 10, 60s)) << "sends did not recover after a SIGKILL restart";
  sender.Finish();
  {
    std::lock_guard lock(log.mu);
    std::printf("chat shard %d restarts: SIGTERM after %zu acks, SIGKILL after %zu, %zu in all, %d retries\n", shard,
                before_term, before_kill, log.acked.size(), log.retries);
    EXPECT_TRUE(log.errors.empty()) << log.errors.front();
  }
  ExpectHistoryMatchesAcks(bob.c(), conv, log);
  // The recipient's view after sync agrees.
  auto summary = FindConversation(bob.c(), conv);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->last_seq(), log.acked_count());
}

// ---- PostgreSQL crashes under load --------------------------------------------------------------------

// The independent checker's fault: PostgreSQL restarted with -m immediate (every backend killed, WAL
// recovery) while senders on both gateways write. With the default durable commit, every
// acknowledged message is in history once, at its acknowledged seq, and no seq holds two messages;
// and the pools notice their dead connections at once, so the first request after the restart
// succeeds instead of failing on a stale connection.
TEST(PostgresRestart, AckedMessagesSurviveAnImmediateRestartUnderLoad) {
  ClusterOptions o;
  o.AllowLoad(2000);
  TestCluster cluster(o);
  constexpr int kPairs = 3;
  std::vector<User> senders, readers;
  for (int i = 0; i < kPairs; ++i) {
    senders.push_back(cluster.SignUp(i % 2, i % 2 ? kJson : kProto, "S" + std::to_string(i)));
    readers.push_back(cluster.SignUp((i + 1) % 2, kProto, "R" + std::to_string(i)));
    cluster.MakeFriends(senders.back(), readers.back());
  }
  User carol = cluster.SignUp(0, kProto, "Carol");  // asks right after the restart
  User dave = cluster.SignUp(1, kJson, "Dave");
  cluster.MakeFriends(carol, dave);
  const std::string carol_dave = DirectConversationId(carol.id, dave.id);
  ASSERT_EQ(SendTextOk(carol.c(), carol_dave, "before"), 1u);

  std::vector<std::unique_ptr<SendLog>> logs;
  std::vector<std::unique_ptr<SenderThread>> threads;
  std::vector<std::string> convs;
  for (int i = 0; i < kPairs; ++i) {
    convs.push_back(DirectConversationId(senders[i].id, readers[i].id));
    logs.push_back(std::make_unique<SendLog>());
    threads.push_back(std::make_unique<SenderThread>(cluster, senders[i], (i + 1) % 2, i % 2 ? kJson : kProto, convs[i],
                                                     20, *logs[i]));
  }
  for (auto& log : logs) ASSERT_TRUE(log->WaitAcked(10, 30s));

  chat::testing::RestartTestPostgres(/*immediate=*/true);
  // Back: the first request of each kind succeeds at once (the pools replace dead connections).
  v1::Reply r = client::SendText(carol.c(), carol_dave, client::NewClientMsgId(), "right after", 10s);
  EXPECT_EQ(r.status(), v1::OK) << "first send after the restart: " << client::DescribeError(r);
  r = client::ListContacts(dave.c());
  EXPECT_EQ(r.status(), v1::OK) << "first account read after the restart: " << client::DescribeError(r);

  for (auto& log : logs)
    ASSERT_TRUE(log->WaitAcked(log->acked_count() + 10, 60s)) << "sends did not recover after the restart";
  for (auto& t : threads) t->Finish();
  for (int i = 0; i < kPairs; ++i) {
    {
      std::lock_guard lock(logs[i]->mu);
      std::printf("pair %d: %zu acked, %d retries\n", i, logs[i]->acked.size(), logs[i]->retries);
      EXPECT_TRUE(logs[i]->errors.empty()) << logs[i]->errors.front();
    }
    ExpectHistoryMatchesAcks(readers[i].c(), convs[i], *logs[i]);
  }
}

// ---- graceful gateway stop ---------------------------------------------------------------------------

TEST(GracefulStop, ClientsOfAStoppingGatewayGet1012) {
  TestCluster cluster;
  User alice = cluster.SignUp(0, kProto, "Alice");
  User bob = cluster.SignUp(0, kJson, "Bob");
  User carol = cluster.SignUp(1, kProto, "Carol");
  cluster.MakeFriends(alice, carol);

  const int status = cluster.StopGateway(0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "gateway did not exit cleanly: " << status;
  for (User* u : {&alice, &bob}) {
    uint16_t code = 0;
    std::string reason;
    ASSERT_TRUE(u->c().WaitClosed(10s, &code, &reason)) << u->display_name << "'s connection stayed open";
    EXPECT_EQ(code, 1012) << u->display_name << ": " << reason;
  }
  // The other gateway is unaffected, and the clients reconnect there.
  EXPECT_TRUE(carol.c().is_open());
  auto alice1 = cluster.Connect(alice, 1, kProto);
  const std::string conv = DirectConversationId(alice.id, carol.id);
  const uint64_t seq = SendTextOk(*alice1, conv, "moved to gateway 1");
  EXPECT_TRUE(WaitForMessage(carol.c(), conv, seq));
}

// ---- keep-alive ------------------------------------------------------------------------------------------

TEST(KeepAlive, SilentClientsArePingedThenDroppedAndPongsKeepThemOpen) {
  ClusterOptions o;
  o.limits.gateway.idle_timeout_ms = 2000;  // ping after 1 s of silence, drop after 2 s
  TestCluster cluster(o);
  User alice = cluster.SignUp(0, kProto, "Alice");
  RawWs mute(cluster.Options(0, kProto));
  RawWs live(cluster.Options(0, kProto));
  ASSERT_EQ(mute.Upgrade("/ws", RawWs::StandardHeaders(alice.token)).substr(0, 12), "HTTP/1.1 101");
  ASSERT_EQ(live.Upgrade("/ws", RawWs::StandardHeaders(alice.token)).substr(0, 12), "HTTP/1.1 101");

  // The live client answers three pings (1.5x idle_timeout) and is still served.
  for (int pings = 0; pings < 3;) {
    auto f = live.ReadFrame();
    ASSERT_TRUE(f) << "the connection ended although it answered every ping";
    ASSERT_EQ(f->opcode, 9);
    live.SendFrame(0x8A, f->payload);
    ++pings;
  }
  v1::ClientFrame req;
  req.set_request_id(5);
  req.mutable_get_me();
  live.SendFrame(0x82, req.SerializeAsString());
  auto reply = live.ReadFrame();
  ASSERT_TRUE(reply);
  v1::ServerFrame f;
  ASSERT_TRUE(f.ParseFromString(reply->payload));
  EXPECT_EQ(f.reply().request_id(), 5u);
  EXPECT_EQ(f.reply().status(), v1::OK);
  // Meanwhile the mute client was pinged, then dropped without a close frame (what it was sent
  // waited in its socket).
  auto ping = mute.ReadFrame();
  ASSERT_TRUE(ping) << "no keep-alive ping";
  EXPECT_EQ(ping->opcode, 9);
  auto next = mute.ReadFrame();
  EXPECT_FALSE(next) << "frame with opcode " << int(next->opcode) << " instead of the end";
  EXPECT_EQ(mute.end(), RawWs::End::kEof) << "a client that never answered pings was not dropped";
}

// ---- slow consumer -------------------------------------------------------------------------------------

TEST(SlowConsumer, AConnectionThatStopsReadingIsDroppedAndOthersAreUnaffected) {
  // Big messages: the kernel's socket buffers on loopback grow to several MiB before the
  // gateway's own queue (16 frames) even starts to fill.
  ClusterOptions o;
  o.limits.gateway.send_queue_max_frames = 16;
  o.AllowLoad(5000);
  o.limits.chat.max_text_chars = 50000;
  o.limits.gateway.max_frame_bytes = 128 * 1024;
  TestCluster cluster(o);
  User alice = cluster.SignUp(1, kProto, "Alice");  // sender, on the other gateway
  User bob = cluster.SignUp(0, kProto, "Bob");      // his normal device keeps reading
  cluster.MakeFriends(alice, bob);
  const std::string conv = DirectConversationId(alice.id, bob.id);

  // Bob's stalled device on the same gateway. One request/reply first: the gateway reads the
  // first frame only once the session is registered, so pushes are routed to it afterwards.
  RawWs stalled(cluster.Options(0, kProto), /*rcvbuf=*/4096);
  ASSERT_EQ(stalled.Upgrade("/ws", RawWs::StandardHeaders(bob.token)).substr(0, 12), "HTTP/1.1 101");
  v1::ClientFrame hello;
  hello.set_request_id(1);
  hello.mutable_get_me();
  stalled.SendFrame(0x82, hello.SerializeAsString());
  {
    // Events (the friendship just made) may arrive before the reply; skip them.
    v1::ServerFrame f;
    do {
      auto frame = stalled.ReadFrame();
      ASSERT_TRUE(frame) << "no reply";
      ASSERT_TRUE(f.ParseFromString(frame->payload));
    } while (!f.has_reply());
    ASSERT_EQ(f.reply().request_id(), 1u);
    ASSERT_EQ(f.reply().status(), v1::OK);
  }
  // From here on the stalled device reads nothing until the end.

  constexpr int kMessages = 300;  // 12 MB of pushes
  const std::string body(40000, 'z');
  for (int i = 0; i < kMessages; ++i) ASSERT_NO_THROW(SendTextOk(alice.c(), conv, body));

  // Bob's reading device on the same gateway gets everything.
  std::set<uint64_t> got;
  for (auto deadline = Clock::now() + 30s; got.size() < kMessages && Clock::now() < deadline;)
    if (auto e = bob.c().NextEvent(1s); e && e->has_message() && e->message().message().conversation_id() == conv)
      got.insert(e->message().message().seq());
  EXPECT_EQ(got.size(), static_cast<size_t>(kMessages)) << "the reading device missed pushes";
  EXPECT_TRUE(bob.c().is_open());

  // Now read what the server had managed to hand the stalled device: it must end (the server
  // dropped it), short of everything, with close code 4008 if a close frame made it through.
  int events = 0, close_code = -1;
  while (auto frame = stalled.ReadFrame()) {
    if (frame->opcode == 0x8) {
      close_code = CloseCodeOf(*frame);
      continue;  // the server closes the TCP connection next
    }
    v1::ServerFrame f;
    if (frame->opcode == 0x2 && f.ParseFromString(frame->payload) && f.has_event()) ++events;
  }
  std::printf("slow consumer: the stalled device got %d of %d events, close code %d, end %d\n", events, kMessages,
              close_code, static_cast<int>(stalled.end()));
  EXPECT_NE(stalled.end(), RawWs::End::kTimeout)
      << "the stalled connection was never dropped (" << events << " events)";
  EXPECT_LT(events, kMessages) << "everything was delivered: the queue limit never applied";
  if (close_code != -1) {
    EXPECT_EQ(close_code, 4008);
  }

  // The dropped device resyncs with nothing missing (small pages: each message is 40 KB).
  auto again = cluster.Connect(bob, 0, kProto);
  auto h = FullHistory(*again, conv, 0, 20);
  EXPECT_EQ(h.size(), static_cast<size_t>(kMessages));
  // And the sender never noticed anything.
  EXPECT_NO_THROW(SendTextOk(alice.c(), conv, "still here"));
}

}  // namespace
}  // namespace chat::e2e
