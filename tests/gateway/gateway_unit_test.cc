// Unit tests of the gateway's logic that needs no sockets: rate limiting, the session hub's
// delivery routing, shared event encoding, error mapping.
#include <gtest/gtest.h>

#include <mutex>
#include <unordered_set>

#include "authenticator.h"
#include "chat/internal/services.pb.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/token.h"
#include "frame_queue.h"
#include "gateway_context.h"
#include "hub.h"
#include "ip_limiter.h"
#include "rate_limiter.h"
#include "router.h"

namespace chat::gateway {
namespace {

TEST(TokenBucket, AllowsBurstThenRefillsAtRate) {
  TokenBucket b(10, 5);  // 10/s, burst 5
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.TryTake(1000)) << i;
  EXPECT_FALSE(b.TryTake(1000));
  EXPECT_FALSE(b.TryTake(1050));  // half a token
  EXPECT_TRUE(b.TryTake(1100));   // one token after 100 ms
  EXPECT_FALSE(b.TryTake(1100));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.TryTake(100000)) << i;
  EXPECT_FALSE(b.TryTake(100000));
}

TEST(TokenBucket, ClockGoingBackwardsGrantsNothingExtra) {
  TokenBucket b(1, 1);
  EXPECT_TRUE(b.TryTake(5000));
  EXPECT_FALSE(b.TryTake(1000));
  EXPECT_FALSE(b.TryTake(5500));
  EXPECT_TRUE(b.TryTake(6000));
}

class FakeSession : public SessionHandle {
 public:
  explicit FakeSession(uint64_t id) : id_(id) {}
  void PushEvents(std::vector<std::shared_ptr<const SharedEvent>> es) override {
    std::lock_guard lk(mu_);
    ++pushes;
    for (auto& e : es) events.push_back(std::move(e));
  }
  void Kick(uint16_t code, std::string) override { kicked = code; }
  void Revoke(std::shared_ptr<const internal::Revocation> r, std::shared_ptr<const SharedEvent>, uint16_t code,
              std::string) override {
    revocations.push_back(std::move(r));
    revoke_code = code;
  }
  uint64_t session_id() const override { return id_; }
  int64_t last_request_ms() const override { return 0; }
  const internal::SessionRef& presence_ref() const override { return ref_; }
  internal::SessionRef ref_;
  std::mutex mu_;
  std::vector<std::shared_ptr<const SharedEvent>> events;
  int pushes = 0;  // PushEvents calls
  uint16_t kicked = 0;
  std::vector<std::shared_ptr<const internal::Revocation>> revocations;  // the session matches them itself
  uint16_t revoke_code = 0;

 private:
  uint64_t id_;
};

v1::Event TextEvent(const std::string& conv, uint64_t seq, const std::string& text) {
  v1::Event e;
  auto* m = e.mutable_message()->mutable_message();
  m->set_conversation_id(conv);
  m->set_seq(seq);
  m->set_sender_id(7);
  m->mutable_content()->mutable_text()->set_text(text);
  return e;
}

std::string DeliveryFor(std::vector<uint64_t> users, const v1::Event& e, uint64_t skip = 0) {
  internal::Delivery d;
  for (auto u : users) d.add_user_ids(u);
  d.set_event(e.SerializeAsString());
  d.set_skip_session_id(skip);
  return d.SerializeAsString();
}

TEST(SessionHub, DeliversToEverySessionOfListedUsersExceptTheSkippedOne) {
  SessionHub hub;
  auto a1 = std::make_shared<FakeSession>(1), a2 = std::make_shared<FakeSession>(2);
  auto b = std::make_shared<FakeSession>(3), c = std::make_shared<FakeSession>(4);
  hub.Add(100, a1);
  hub.Add(100, a2);
  hub.Add(200, b);
  hub.Add(300, c);
  EXPECT_EQ(hub.size(), 4u);

  EXPECT_EQ(hub.Deliver(DeliveryFor({100, 200, 999}, TextEvent("d.100.200", 1, "hi"), /*skip=*/1)), 2);
  EXPECT_TRUE(a2->events.empty()) << "events are held until Flush";
  hub.Flush();
  EXPECT_TRUE(a1->events.empty());  // the sending session
  ASSERT_EQ(a2->events.size(), 1u);
  ASSERT_EQ(b->events.size(), 1u);
  EXPECT_TRUE(c->events.empty());  // not a recipient
  // One shared payload object for all recipients.
  EXPECT_EQ(a2->events[0].get(), b->events[0].get());

  hub.Remove(100, 2);
  hub.Remove(100, 2);  // idempotent
  EXPECT_EQ(hub.size(), 3u);
  EXPECT_EQ(hub.Deliver(DeliveryFor({100}, TextEvent("d.100.200", 2, "again"))), 1);
  hub.Flush();
  EXPECT_EQ(a1->events.size(), 1u);
  EXPECT_EQ(a2->events.size(), 1u);
}

TEST(SessionHub, AKickClosesOnlyTheNamedSessionAfterTellingIt) {
  SessionHub hub;
  auto a1 = std::make_shared<FakeSession>(1), a2 = std::make_shared<FakeSession>(2);
  hub.Add(100, a1);
  hub.Add(100, a2);
  v1::Event kicked;
  kicked.mutable_kicked()->set_close_code(4010);
  kicked.mutable_kicked()->set_reason("too many sessions");
  internal::Delivery d;
  d.add_user_ids(100);
  d.set_event(kicked.SerializeAsString());
  d.set_kick_session_id(2);
  EXPECT_EQ(hub.Deliver(d.SerializeAsString()), 1);
  EXPECT_EQ(a2->kicked, 4010);
  ASSERT_EQ(a2->events.size(), 1u) << "the kicked event goes out at once, not at the next Flush";
  EXPECT_EQ(a1->kicked, 0);
  EXPECT_TRUE(a1->events.empty());

  d.set_kick_session_id(77);  // gone already: nothing happens
  EXPECT_EQ(hub.Deliver(d.SerializeAsString()), 0);
  d.set_event("not an event at all");
  d.set_kick_session_id(1);
  EXPECT_EQ(hub.Deliver(d.SerializeAsString()), -1);
  EXPECT_EQ(a1->kicked, 0) << "a malformed kick closes nothing";
}

TEST(SessionHub, MalformedDeliveryIsDroppedWithoutHarm) {
  SessionHub hub;
  auto a = std::make_shared<FakeSession>(1);
  hub.Add(1, a);
  EXPECT_EQ(hub.Deliver(std::string("\xff\xff\xff\xff garbage", 12)), -1);
  hub.Flush();
  EXPECT_TRUE(a->events.empty());
  EXPECT_EQ(hub.Deliver(DeliveryFor({1}, TextEvent("g.5", 9, "ok"))), 1);
}

TEST(SessionHub, EventsRoutedBetweenFlushesReachEachSessionTogetherAndInOrder) {
  SessionHub hub;
  auto a = std::make_shared<FakeSession>(1), b = std::make_shared<FakeSession>(2);
  hub.Add(1, a);
  hub.Add(2, b);
  for (uint64_t seq = 1; seq <= 5; ++seq) hub.Deliver(DeliveryFor({1, 2}, TextEvent("g.5", seq, "m")));
  hub.Deliver(DeliveryFor({2}, TextEvent("d.2.9", 1, "only b")));
  hub.Flush();
  EXPECT_EQ(a->pushes, 1);
  EXPECT_EQ(b->pushes, 1);
  ASSERT_EQ(a->events.size(), 5u);
  ASSERT_EQ(b->events.size(), 6u);
  for (size_t i = 0; i < b->events.size(); ++i) {
    v1::ServerFrame f;
    std::string error;
    ASSERT_TRUE(DecodeServerFrame(*b->events[i]->Frame(WireEncoding::kProto), WireEncoding::kProto, &f, &error));
    EXPECT_EQ(f.event().message().message().seq(), i < 5 ? i + 1 : 1) << i;
  }
  hub.Flush();  // nothing held: no empty pushes
  EXPECT_EQ(a->pushes, 1);
}

TEST(SessionHub, AHugeBacklogIsHandedOnWithoutWaitingForFlush) {
  SessionHub hub;
  auto a = std::make_shared<FakeSession>(1);
  hub.Add(1, a);
  for (int i = 0; i < 5000; ++i) hub.Deliver(DeliveryFor({1}, TextEvent("g.5", i + 1, "m")));
  EXPECT_GE(a->events.size(), 4000u) << "the hub held more than its bound";
  hub.Flush();
  EXPECT_EQ(a->events.size(), 5000u);
}

TEST(SharedEvent, FramesDecodeToTheSameEventInBothEncodings) {
  auto event = TextEvent("g.42", 77, std::string(300, 'x') + "\xe4\xbd\xa0\xe5\xa5\xbd");  // > 127 bytes: 2-byte length
  auto shared_ptr = std::make_shared<const SharedEvent>(event.SerializeAsString());        // always shared-owned
  const SharedEvent& shared = *shared_ptr;
  for (auto enc : {WireEncoding::kProto, WireEncoding::kJson}) {
    auto bytes = shared.Frame(enc);
    v1::ServerFrame f;
    std::string err;
    ASSERT_TRUE(DecodeServerFrame(*bytes, enc, &f, &err)) << err;
    ASSERT_TRUE(f.has_event());
    EXPECT_EQ(f.event().SerializeAsString(), event.SerializeAsString());
    // Same encoding as the generic encoder.
    v1::ServerFrame expected;
    *expected.mutable_event() = event;
    EXPECT_EQ(*bytes, EncodeServerFrame(expected, enc));
    EXPECT_EQ(shared.Frame(enc).get(), bytes.get());  // encoded once
  }
}

TEST(SetError, HidesTransportDetailButKeepsServiceMessages) {
  v1::Reply r;
  SetError(&r, grpc::Status(grpc::StatusCode::UNAVAILABLE, "failed to connect to all addresses; ipv4:127.0.0.1:5"));
  EXPECT_EQ(r.status(), v1::UNAVAILABLE);
  EXPECT_EQ(r.message().find("127.0.0.1"), std::string::npos);
  SetError(&r, grpc::Status(grpc::StatusCode::INTERNAL, "pqxx: relation messages does not exist"));
  EXPECT_EQ(r.status(), v1::INTERNAL);
  EXPECT_EQ(r.message(), "internal error");
  SetError(&r, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "you can only message friends"));
  EXPECT_EQ(r.status(), v1::PERMISSION_DENIED);
  EXPECT_EQ(r.message(), "you can only message friends");
  SetError(&r, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"));
  EXPECT_EQ(r.status(), v1::DEADLINE_EXCEEDED);
}

TEST(RequestRouter, EveryRequestKindOfTheSchemaHasARoute) {
  // The router is a table keyed by request kind: a kind added to client.proto without its entry
  // would answer "unknown request" to every client that uses it.
  const auto* oneof = v1::ClientFrame::descriptor()->FindOneofByName("request");
  ASSERT_NE(oneof, nullptr);
  ASSERT_GT(oneof->field_count(), 20);
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* field = oneof->field(i);
    EXPECT_TRUE(RequestRouter::Routed(static_cast<v1::ClientFrame::RequestCase>(field->number())))
        << "no route for " << field->name();
  }
  EXPECT_FALSE(RequestRouter::Routed(v1::ClientFrame::REQUEST_NOT_SET));
}

TEST(SessionHub, ARevocationReachesEverySessionOfItsUserAndForgetsTheUsersChecks) {
  SessionHub hub;
  std::vector<uint64_t> forgotten;
  hub.set_on_revoke([&](uint64_t user) { forgotten.push_back(user); });
  auto a1 = std::make_shared<FakeSession>(1), a2 = std::make_shared<FakeSession>(2);
  auto b = std::make_shared<FakeSession>(3);
  hub.Add(100, a1);
  hub.Add(100, a2);
  hub.Add(200, b);
  v1::Event kicked;
  kicked.mutable_kicked()->set_close_code(4011);
  kicked.mutable_kicked()->set_reason("signed out");
  internal::Delivery d;
  d.add_user_ids(100);
  d.set_event(kicked.SerializeAsString());
  d.mutable_revocation()->add_session_ids(555);
  EXPECT_EQ(hub.Revoke(d.SerializeAsString()), 2);
  EXPECT_EQ(forgotten, std::vector<uint64_t>{100});
  ASSERT_EQ(a1->revocations.size(), 1u);
  EXPECT_EQ(a1->revocations[0]->session_ids(0), 555u);
  EXPECT_EQ(a2->revocations.size(), 1u);
  EXPECT_EQ(a1->revoke_code, 4011);
  EXPECT_TRUE(b->revocations.empty());
  // A user with no session here: the cache still forgets it.
  d.set_user_ids(0, 300);
  EXPECT_EQ(hub.Revoke(d.SerializeAsString()), 0);
  EXPECT_EQ(forgotten, (std::vector<uint64_t>{100, 300}));
  // Malformed: no revocation, no kicked event, or not one user.
  d.clear_revocation();
  EXPECT_EQ(hub.Revoke(d.SerializeAsString()), -1);
  d.mutable_revocation()->set_all_sessions(true);
  d.set_event("junk");
  EXPECT_EQ(hub.Revoke(d.SerializeAsString()), -1);
  d.set_event(kicked.SerializeAsString());
  d.add_user_ids(100);
  EXPECT_EQ(hub.Revoke(d.SerializeAsString()), -1);
  EXPECT_EQ(hub.Revoke("\xff\xff"), -1);
  EXPECT_EQ(forgotten.size(), 2u);
}

TEST(Authenticator, AcceptsItsOwnTokensOnlyAndSaysWhyNot) {
  const TokenKeys keys = TokenKeys::Single("gw", "gateway-unit-test-secret-0123456789");
  const Authenticator auth(keys, Limits{}.gateway, nullptr);
  TokenSigner signer(keys);
  const int64_t now_s = NowMs() / 1000;
  TokenError err{};
  auto id = auth.Verify(signer.Issue({42, "phone-1", now_s + 600}), &err);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->user_id, 42u);
  EXPECT_EQ(id->device_id, "phone-1");
  EXPECT_FALSE(auth.Verify(signer.Issue({42, "phone-1", now_s - 1}), &err));
  EXPECT_EQ(err, TokenError::kExpired);
  EXPECT_STREQ(Authenticator::Refusal(err), "token expired; log in again");
  TokenSigner other(TokenKeys::Single("gw", "another-secret-entirely-0123456789"));
  EXPECT_FALSE(auth.Verify(other.Issue({42, "phone-1", now_s + 600}), &err));
  EXPECT_EQ(err, TokenError::kBadSignature);
  EXPECT_STREQ(Authenticator::Refusal(err), "invalid token");
  TokenSigner stranger(TokenKeys::Single("elsewhere", "another-secret-entirely-0123456789"));
  EXPECT_FALSE(auth.Verify(stranger.Issue({42, "phone-1", now_s + 600}), &err));
  EXPECT_EQ(err, TokenError::kUnknownKey);
  EXPECT_STREQ(Authenticator::Refusal(err), "invalid token");
  EXPECT_FALSE(auth.Verify("not a token", &err));
}

TEST(AccountCache, FreshThenStaleThenEvictedOrInvalidated) {
  auto T = [](uint64_t user) { return TokenRef{user, 1, 1}; };
  AccountCache cache(/*ttl_ms=*/1000, /*max_entries=*/3);
  EXPECT_EQ(cache.Look(T(1), 0), AccountCache::Entry::kNone);
  cache.Confirm(T(1), 0);
  EXPECT_EQ(cache.Look(T(1), 999), AccountCache::Entry::kFresh);
  EXPECT_EQ(cache.Look(T(1), 1000), AccountCache::Entry::kStale);  // the TTL is exclusive
  cache.Confirm(T(1), 1000);                                       // re-confirmed: fresh again
  EXPECT_EQ(cache.Look(T(1), 1500), AccountCache::Entry::kFresh);
  // Bounded: a fourth user evicts the least recently confirmed (2), not the re-confirmed 1.
  cache.Confirm(T(2), 1100);
  cache.Confirm(T(3), 1200);
  cache.Confirm(T(1), 1300);
  cache.Confirm(T(4), 1400);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Look(T(2), 1400), AccountCache::Entry::kNone);
  EXPECT_EQ(cache.Look(T(1), 1400), AccountCache::Entry::kFresh);
  EXPECT_EQ(cache.Look(T(3), 1400), AccountCache::Entry::kFresh);
  // The deactivation hook forgets a user at once.
  cache.Invalidate(3);
  EXPECT_EQ(cache.Look(T(3), 1400), AccountCache::Entry::kNone);
  EXPECT_EQ(cache.size(), 2u);
  cache.Invalidate(3);  // twice is harmless
  // Tokens are told apart by session and generation; a revocation forgets them all.
  cache.Confirm({1, 1, 2}, 1400);
  EXPECT_EQ(cache.Look({1, 1, 2}, 1400), AccountCache::Entry::kFresh);
  EXPECT_EQ(cache.Look({1, 2, 1}, 1400), AccountCache::Entry::kNone);
  EXPECT_EQ(cache.Look({1, 1, 3}, 1400), AccountCache::Entry::kNone);
  EXPECT_EQ(cache.Look(T(1), 1400), AccountCache::Entry::kFresh);
  for (uint32_t gen = 10; gen < 10 + AccountCache::kTokensPerUser; ++gen) cache.Confirm({1, 1, gen}, 1500 + gen);
  EXPECT_EQ(cache.Look(T(1), 1600), AccountCache::Entry::kNone) << "beyond kTokensPerUser the oldest goes";
  cache.Invalidate(1);
  EXPECT_EQ(cache.Look({1, 1, 10}, 1600), AccountCache::Entry::kNone);
  // max_entries 0: nothing is kept.
  AccountCache off(1000, 0);
  off.Confirm(T(1), 0);
  EXPECT_EQ(off.Look(T(1), 0), AccountCache::Entry::kNone);
}

// An account-service whose answers the test gives by hand, counting the questions.
class FakeDirectory : public AccountDirectory {
 public:
  void Check(const TokenRef& token, std::function<void(AccountDirectory::Answer)> done) override {
    std::lock_guard lock(mu_);
    asked_.push_back(token.user_id);
    pending_.push_back(std::move(done));
  }
  size_t asked() {
    std::lock_guard lock(mu_);
    return asked_.size();
  }
  // Answers the oldest open question.
  void Reply(AccountDirectory::Answer a) {
    std::function<void(AccountDirectory::Answer)> done;
    {
      std::lock_guard lock(mu_);
      ASSERT_FALSE(pending_.empty());
      done = std::move(pending_.front());
      pending_.erase(pending_.begin());
    }
    done(a);
  }

 private:
  std::mutex mu_;
  std::vector<uint64_t> asked_;
  std::vector<std::function<void(AccountDirectory::Answer)>> pending_;
};

TEST(Authenticator, AccountCheckIsCachedSharedAndSurvivesAnOutageForKnownUsers) {
  Limits limits;
  limits.gateway.account_check_cache_ttl_ms = 1000;
  limits.gateway.account_check_cache_max_entries = 100;
  int64_t now = 0;
  auto dir = std::make_unique<FakeDirectory>();
  FakeDirectory& fake = *dir;
  Authenticator auth(TokenKeys::Single("gw", "gateway-unit-test-secret-0123456789"), limits.gateway, std::move(dir),
                     [&] { return now; });
  using V = Authenticator::AccountVerdict;
  std::vector<V> got;
  auto record = [&](V v) { got.push_back(v); };
  auto Id = [](uint64_t user) { return Identity{user, "phone-1", 3, 1}; };

  // Three connections of one uncached user at once: one question, three answers.
  for (int i = 0; i < 3; ++i) auth.CheckAccount(Id(7), record);
  EXPECT_EQ(fake.asked(), 1u);
  EXPECT_TRUE(got.empty());
  fake.Reply(AccountDirectory::Answer::kActive);
  EXPECT_EQ(got, (std::vector<V>{V::kAdmit, V::kAdmit, V::kAdmit}));

  // Within the TTL: answered inline, nothing asked.
  got.clear();
  now = 999;
  auth.CheckAccount(Id(7), record);
  EXPECT_EQ(got, (std::vector<V>{V::kAdmit}));
  EXPECT_EQ(fake.asked(), 1u);

  // After the TTL it asks again; account-service is down, and the user was known: admitted.
  got.clear();
  now = 5000;
  auth.CheckAccount(Id(7), record);
  EXPECT_EQ(fake.asked(), 2u);
  fake.Reply(AccountDirectory::Answer::kUnreachable);
  EXPECT_EQ(got, (std::vector<V>{V::kAdmit}));
  // An unknown user during the outage: a retryable refusal.
  got.clear();
  auth.CheckAccount(Id(8), record);
  fake.Reply(AccountDirectory::Answer::kUnreachable);
  EXPECT_EQ(got, (std::vector<V>{V::kUnavailable}));
  EXPECT_STREQ(Authenticator::Refusal(V::kUnavailable), "account check unavailable; retry shortly");

  // No such account: refused, and a cached user who is gone is forgotten.
  got.clear();
  auth.CheckAccount(Id(7), record);
  fake.Reply(AccountDirectory::Answer::kNotActive);
  EXPECT_EQ(got, (std::vector<V>{V::kNoAccount}));
  EXPECT_EQ(auth.cache().Look(TokenRef::Of(Id(7)), now), AccountCache::Entry::kNone);
  EXPECT_STREQ(Authenticator::Refusal(V::kNoAccount), "session ended or account not found; log in again");

  // The deactivation hook: a fresh entry is dropped and the next connection asks again.
  got.clear();
  auth.CheckAccount(Id(9), record);
  fake.Reply(AccountDirectory::Answer::kActive);
  const size_t before = fake.asked();
  auth.InvalidateAccount(9);
  auth.CheckAccount(Id(9), record);
  EXPECT_EQ(fake.asked(), before + 1);
  fake.Reply(AccountDirectory::Answer::kNotActive);
  EXPECT_EQ(got, (std::vector<V>{V::kAdmit, V::kNoAccount}));
}

TEST(SessionIdGenerator, IdsAreUniqueWithinAndAcrossGateways) {
  // Regression: per-process counters made gateway B skip an unrelated session whose id equalled
  // the sender's session id on gateway A.
  SessionIdGenerator a(0x1234), b(0x1235);  // even adjacent seeds must not overlap
  std::unordered_set<uint64_t> seen;
  for (int i = 0; i < 100000; ++i) {
    uint64_t x = a.Next(), y = b.Next();
    EXPECT_NE(x, 0u);
    EXPECT_TRUE(seen.insert(x).second) << "repeat " << x;
    EXPECT_TRUE(seen.insert(y).second) << "collision " << y;
  }
}

TEST(IpLimiter, CapsConcurrentConnectionsPerAddressAndFreesSlotsOnClose) {
  IpLimiter lim(/*max_per_ip=*/2, /*rate=*/1000, /*burst=*/1000);
  std::unique_ptr<IpLimiter::Slot> a, b, c, other;
  EXPECT_EQ(lim.Acquire("10.0.0.1", 0, &a), IpLimiter::Verdict::kOk);
  EXPECT_EQ(lim.Acquire("10.0.0.1", 0, &b), IpLimiter::Verdict::kOk);
  EXPECT_EQ(lim.Acquire("10.0.0.1", 0, &c), IpLimiter::Verdict::kTooMany);
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(lim.Acquire("10.0.0.2", 0, &other), IpLimiter::Verdict::kOk);  // other addresses unaffected
  a.reset();
  EXPECT_EQ(lim.Acquire("10.0.0.1", 0, &c), IpLimiter::Verdict::kOk);
  b.reset();
  c.reset();
  other.reset();
  lim.SweepNow(10000);  // idle and refilled: forgotten
  EXPECT_EQ(lim.tracked(), 0u);
}

TEST(IpLimiter, ConnectCloseChurnDoesNotResetTheRateLimit) {
  IpLimiter lim(/*max_per_ip=*/100, /*rate=*/10, /*burst=*/3);
  int ok = 0;
  for (int i = 0; i < 10; ++i) {
    std::unique_ptr<IpLimiter::Slot> s;
    if (lim.Acquire("5.6.7.8", 1000, &s) == IpLimiter::Verdict::kOk) ++ok;
  }  // each slot released at once
  EXPECT_EQ(ok, 3);
}

TEST(IpLimiter, LimitsTheRateOfNewConnectionsPerAddress) {
  IpLimiter lim(/*max_per_ip=*/100, /*rate=*/10, /*burst=*/3);
  std::vector<std::unique_ptr<IpLimiter::Slot>> held(5);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(lim.Acquire("1.2.3.4", 1000, &held[i]), IpLimiter::Verdict::kOk);
  EXPECT_EQ(lim.Acquire("1.2.3.4", 1000, &held[3]), IpLimiter::Verdict::kTooFast);
  EXPECT_EQ(lim.Acquire("1.2.3.4", 1100, &held[3]), IpLimiter::Verdict::kOk);  // 100 ms = one token
}

}  // namespace
}  // namespace chat::gateway

namespace chat::gateway {
namespace {

FrameQueue::Frame F(int i) { return std::make_shared<const std::string>(std::to_string(i)); }

TEST(FrameQueue, IsFifoAndOwnsNothingOnceDrained) {
  FrameQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity_for_test(), 0u);
  int next_in = 0, next_out = 0;
  // Interleaved pushes and pops across the compaction threshold keep FIFO order.
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 7; ++k) q.push_back(F(next_in++));
    for (int k = 0; k < 5; ++k) {
      ASSERT_EQ(*q.front(), std::to_string(next_out++));
      q.pop_front();
    }
  }
  EXPECT_EQ(q.size(), static_cast<size_t>(next_in - next_out));
  EXPECT_EQ(*q.back(), std::to_string(next_in - 1));
  while (!q.empty()) {
    ASSERT_EQ(*q.front(), std::to_string(next_out++));
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
  // A drained queue gave back what the burst grew.
  EXPECT_LE(q.capacity_for_test(), 4u);
}

TEST(FrameQueue, PopBackDropsTheNewest) {
  FrameQueue q;
  for (int i = 0; i < 3; ++i) q.push_back(F(i));
  q.pop_back();
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(*q.back(), "1");
  q.pop_front();
  q.pop_back();
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace chat::gateway
