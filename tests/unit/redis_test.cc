// Redis client, subscriber and delivery publisher against the real dev Redis. Every key and channel
// is unique to this process, so parallel test runs do not see each other.
#include "common/redis.h"

#include <arpa/inet.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "common/fanout.h"
#include "fake_fanout.h"
#include "test_env.h"

namespace chat {
namespace {

using chat::testing::TestRedis;
using Clock = std::chrono::steady_clock;
using Type = RedisReply::Type;

std::string Unique(const std::string& what) {
  static std::mt19937_64 rng(std::random_device{}());
  return "unit:" + what + ":" + std::to_string(getpid()) + ":" + std::to_string(rng());
}

int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Polls cond until true or the deadline passes; returns cond's last value.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Collects messages from subscriber callbacks (on the subscriber's thread) for the test thread.
class Inbox {
 public:
  void Add(std::string_view channel, std::string_view payload) {
    std::lock_guard lk(mu_);
    got_.emplace_back(std::string(channel), std::string(payload));
    cv_.notify_all();
  }
  // Waits until at least n messages arrived or the deadline passed; returns what arrived.
  std::vector<std::pair<std::string, std::string>> WaitForCount(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [&] { return got_.size() >= n; });
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
};

TEST(RedisClient, SetGetDel) {
  RedisClient redis(TestRedis());
  const std::string key = Unique("k");
  const std::string value("bin\0ary\xff value", 14);
  auto set = redis.Command({"SET", key, value, "EX", "60"});
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->type, Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  auto get = redis.Command({"GET", key});
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->type, Type::kString);
  EXPECT_EQ(get->str, value) << "binary-safe";
  auto del = redis.Command({"DEL", key});
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->type, Type::kInteger);
  EXPECT_EQ(del->integer, 1);
  auto gone = redis.Command({"GET", key});
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->type, Type::kNil);
}

TEST(RedisClient, PipelineRepliesInOrder) {
  RedisClient redis(TestRedis());
  const std::string k = Unique("p"), ctr = Unique("ctr"), list = Unique("list");
  auto r = redis.Pipeline({{"SET", k, "v"},
                           {"INCR", ctr},
                           {"INCRBY", ctr, "41"},
                           {"GET", k},
                           {"RPUSH", list, "a", "b"},
                           {"LRANGE", list, "0", "-1"},
                           {"DEL", k, ctr, list}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 7u);
  EXPECT_EQ((*r)[0].type, Type::kStatus);
  EXPECT_EQ((*r)[1].integer, 1);
  EXPECT_EQ((*r)[2].integer, 42);
  EXPECT_EQ((*r)[3].str, "v");
  EXPECT_EQ((*r)[4].integer, 2);
  ASSERT_EQ((*r)[5].type, Type::kArray);
  ASSERT_EQ((*r)[5].elements.size(), 2u);
  EXPECT_EQ((*r)[5].elements[1].str, "b");
  EXPECT_EQ((*r)[6].integer, 3);
  auto empty = redis.Pipeline({});
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(RedisClient, ErrorReplySurfacesAsErrorAndConnectionSurvives) {
  RedisClient redis(TestRedis());
  const std::string k = Unique("e");
  auto unknown = redis.Command({"NO_SUCH_COMMAND_FOR_UNIT_TEST", "x"});
  ASSERT_TRUE(unknown.has_value()) << "an error reply is an answer, not a broken connection";
  EXPECT_EQ(unknown->type, Type::kError);
  EXPECT_FALSE(unknown->str.empty());
  // An error in the middle of a pipeline leaves the other replies in place.
  auto r = redis.Pipeline({{"SET", k, "not a number", "EX", "60"}, {"INCR", k}, {"GET", k}, {"DEL", k}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[1].type, Type::kError);
  EXPECT_NE((*r)[1].str.find("ERR"), std::string::npos) << (*r)[1].str;
  EXPECT_EQ((*r)[2].str, "not a number");
  EXPECT_EQ((*r)[3].integer, 1);
  auto ping = redis.Command({"PING"});
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->str, "PONG");
}

TEST(RedisClient, ConcurrentCallersShareOneClient) {
  RedisClient redis(TestRedis());
  const std::string ctr = Unique("cc");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto r = redis.Command({"INCR", ctr});
        if (!r || r->type != Type::kInteger) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(redis.Command({"GET", ctr}).value_or(RedisReply{}).str, "400");
  redis.Command({"DEL", ctr});
}

TEST(RedisClient, UnreachableIsNullopt) {
  RedisConfig cfg = TestRedis();
  cfg.port = ClosedPort();
  cfg.timeout_ms = 500;
  RedisClient redis(cfg);
  auto start = Clock::now();
  EXPECT_FALSE(redis.Command({"PING"}).has_value());
  EXPECT_FALSE(redis.Pipeline({{"PING"}, {"PING"}}).has_value());
  EXPECT_FALSE(redis.Command({"PING"}).has_value()) << "retries the connection lazily, still down";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(RedisSubscriber, ReceivesMessagesPublishedAfterSubscribing) {
  const std::string ch1 = Unique("ch1"), ch2 = Unique("ch2");
  Inbox inbox;
  RedisSubscriber sub(TestRedis(), {ch1, ch2},
                      [&](std::string_view channel, std::string_view payload) { inbox.Add(channel, payload); });
  sub.Start();
  ASSERT_TRUE(WaitFor([&] { return sub.connected(); })) << "not subscribed within 5 s";

  RedisClient redis(TestRedis());
  const std::string binary("\0\x01payload\xff", 10);
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "first"}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", ch2, binary}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", Unique("other"), "not for us"}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "third"}).has_value());

  auto got = inbox.WaitForCount(3, std::chrono::milliseconds(5000));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(ch1, std::string("first")));
  EXPECT_EQ(got[1], std::make_pair(ch2, binary));
  EXPECT_EQ(got[2], std::make_pair(ch1, std::string("third")));

  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "Stop() must join promptly";
  EXPECT_FALSE(sub.connected());
  // Nothing is delivered after Stop returned.
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "late"}).has_value());
  EXPECT_EQ(inbox.WaitForCount(4, std::chrono::milliseconds(300)).size(), 3u);
}

TEST(RedisSubscriber, DrainedRunsAfterTheLastMessageThatHadArrived) {
  // The gateway flushes held events in on_drained: it must run after every burst, with nothing
  // left unseen.
  const std::string ch = Unique("burst");
  std::mutex mu;
  std::condition_variable cv;
  int messages = 0, seen_at_last_drain = -1, drains = 0;
  RedisSubscriber sub(
      TestRedis(), {ch},
      [&](std::string_view, std::string_view) {
        std::lock_guard lk(mu);
        ++messages;
      },
      {},
      [&] {
        std::lock_guard lk(mu);
        ++drains;
        seen_at_last_drain = messages;
        cv.notify_all();
      });
  sub.Start();
  ASSERT_TRUE(WaitFor([&] { return sub.connected(); })) << "not subscribed within 5 s";
  RedisClient redis(TestRedis());
  std::vector<std::vector<std::string>> burst;
  for (int i = 0; i < 50; ++i) burst.push_back({"PUBLISH", ch, "m" + std::to_string(i)});
  ASSERT_TRUE(redis.Pipeline(burst).has_value());
  {
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return seen_at_last_drain == 50; }))
        << "after " << messages << " messages the last drain had seen " << seen_at_last_drain;
    EXPECT_LE(drains, messages + 1);
  }
  sub.Stop();
}

TEST(RedisSubscriber, StopsPromptlyWhenRedisIsUnreachable) {
  RedisConfig cfg = TestRedis();
  cfg.port = ClosedPort();
  cfg.timeout_ms = 500;
  RedisSubscriber sub(cfg, {Unique("ch")}, [](std::string_view, std::string_view) {});
  sub.Start();
  EXPECT_FALSE(WaitFor([&] { return sub.connected(); }, std::chrono::milliseconds(300)));
  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisSubscriber, StopWithoutStartAndTwice) {
  RedisSubscriber never(TestRedis(), {Unique("ch")}, [](std::string_view, std::string_view) {});
  never.Stop();
  RedisSubscriber twice(TestRedis(), {Unique("ch")}, [](std::string_view, std::string_view) {});
  twice.Start();
  twice.Stop();
  twice.Stop();
}

TEST(RedisDeliveryPublisher, FanoutReachesTheGatewayChannel) {
  const std::string gw_a = Unique("gwa"), gw_b = Unique("gwb");
  Inbox inbox_a, inbox_b;
  RedisSubscriber sub_a(TestRedis(), {GatewayChannel(gw_a)},
                        [&](std::string_view c, std::string_view p) { inbox_a.Add(c, p); });
  RedisSubscriber sub_b(TestRedis(), {GatewayChannel(gw_b)},
                        [&](std::string_view c, std::string_view p) { inbox_b.Add(c, p); });
  sub_a.Start();
  sub_b.Start();
  ASSERT_TRUE(WaitFor([&] { return sub_a.connected() && sub_b.connected(); }));

  testing::FakePresenceDirectory presence;
  for (uint64_t u = 1; u <= 50; ++u) presence.AddSession(u, u <= 30 ? gw_a : gw_b, 100 + u);
  RedisDeliveryPublisher publisher(TestRedis());
  Fanout fanout(presence, publisher);

  std::vector<FanoutItem> items;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    FanoutItem item;
    for (uint64_t u = 1; u <= 60; ++u) item.user_ids.push_back(u);  // 51..60 offline
    item.event.mutable_message()->mutable_message()->set_conversation_id("g.9");
    item.event.mutable_message()->mutable_message()->set_seq(seq);
    item.conversation_id = "g.9";
    item.skip_session_id = 101;
    items.push_back(std::move(item));
  }
  EXPECT_EQ(fanout.Deliver(items), 6u);

  auto got_a = inbox_a.WaitForCount(3, std::chrono::milliseconds(5000));
  auto got_b = inbox_b.WaitForCount(3, std::chrono::milliseconds(5000));
  ASSERT_EQ(got_a.size(), 3u);
  ASSERT_EQ(got_b.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    for (auto* got : {&got_a, &got_b}) {
      internal::Delivery d;
      ASSERT_TRUE(d.ParseFromString((*got)[i].second));
      v1::Event e;
      ASSERT_TRUE(e.ParseFromString(d.event()));
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(e, items[i].event));
      EXPECT_EQ(e.message().message().seq(), static_cast<uint64_t>(i + 1)) << "order kept on the channel";
      EXPECT_EQ(d.conversation_id(), "g.9");
      EXPECT_EQ(d.skip_session_id(), 101u);
      EXPECT_EQ(d.user_ids_size(), got == &got_a ? 30 : 20);
    }
  }
  EXPECT_EQ(got_a[0].first, GatewayChannel(gw_a));
  EXPECT_EQ(got_b[0].first, GatewayChannel(gw_b));
}

TEST(RedisDeliveryPublisher, UnreachableRedisFails) {
  RedisConfig cfg = TestRedis();
  cfg.port = ClosedPort();
  RedisDeliveryPublisher publisher(cfg);
  EXPECT_FALSE(publisher.Publish({{"gw.x", "payload"}}));
  EXPECT_TRUE(publisher.Publish({})) << "nothing to publish is not a failure";
}

// A private redis-server on a free port, so a test can kill and restart it without disturbing the
// shared dev Redis. Fails the test (never skips) if redis-server cannot be started.
class PrivateRedis {
 public:
  PrivateRedis() : port_(ClosedPort()) {}
  ~PrivateRedis() { Kill(); }
  RedisConfig config() const {
    RedisConfig cfg;
    cfg.host = "127.0.0.1";
    cfg.port = port_;
    cfg.timeout_ms = 500;
    return cfg;
  }
  // Starts the server and waits (with a deadline) until it answers PING.
  bool Start() {
    std::string port = std::to_string(port_);
    std::vector<std::string> args = {"redis-server", "--port", port,         "--bind",  "127.0.0.1", "--save", "",
                                     "--appendonly", "no",     "--loglevel", "warning", "--dir",     "/tmp"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) return false;
    RedisClient probe(config());
    return WaitFor([&] {
      auto r = probe.Command({"PING"});
      return r && r->str == "PONG";
    });
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST(RedisRestart, SubscriberAndClientRecoverByThemselves) {
  PrivateRedis server;
  ASSERT_TRUE(server.Start()) << "could not start redis-server on a free port";
  const std::string ch = Unique("restart");
  Inbox inbox;
  std::atomic<int> reconnects{0};
  RedisSubscriber sub(
      server.config(), {ch}, [&](std::string_view c, std::string_view p) { inbox.Add(c, p); }, [&] { ++reconnects; });
  sub.Start();
  ASSERT_TRUE(WaitFor([&] { return sub.connected(); }));
  EXPECT_EQ(reconnects.load(), 0) << "the first subscription is not a reconnect";
  RedisClient client(server.config());
  ASSERT_TRUE(client.Command({"PUBLISH", ch, "before"}).has_value());
  ASSERT_EQ(inbox.WaitForCount(1, std::chrono::milliseconds(5000)).size(), 1u);

  server.Kill();
  EXPECT_TRUE(WaitFor([&] { return !sub.connected(); })) << "subscriber did not notice the server died";
  EXPECT_FALSE(client.Command({"PING"}).has_value()) << "a dead server is nullopt, not an exception";

  ASSERT_TRUE(server.Start()) << "could not restart redis-server";
  ASSERT_TRUE(WaitFor([&] { return sub.connected(); })) << "subscriber did not resubscribe";
  EXPECT_EQ(reconnects.load(), 1) << "the owner is told so it can prompt a resync";
  // The client reconnects lazily: at most the first call after the restart fails.
  ASSERT_TRUE(WaitFor([&] { return client.Command({"PUBLISH", ch, "after"}).has_value(); }));
  auto got = inbox.WaitForCount(2, std::chrono::milliseconds(5000));
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.back().second, "after");

  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace chat
