// The transactional outbox (common/outbox.h) against the real test PostgreSQL: rows commit and roll
// back with their transaction, acknowledged rows are deleted and never relayed, the rest are relayed
// in row order and again until acknowledged, and only one relay per database relays.
#include "common/outbox.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "test_env.h"

namespace chat {
namespace {

using namespace std::chrono_literals;
using chat::testing::FreshDatabase;
using chat::testing::TestPostgres;

// What a relay handed over, in order; Wait blocks (bounded) until pred holds.
struct Relayed {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, std::string>> rows;
  void Add(uint64_t id, const std::string& payload) {
    std::lock_guard lk(mu);
    rows.emplace_back(id, payload);
    cv.notify_all();
  }
  bool Wait(const std::function<bool()>& pred) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 20s, pred);
  }
};

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = FreshDatabase("unit_outbox");
    std::ifstream in(std::string(CHAT_SOURCE_DIR) + "/common/migrations/0000_common_event_outbox.sql");
    std::stringstream sql;
    sql << in.rdbuf();
    ASSERT_FALSE(sql.str().empty());
    ApplyMigrations(Conn(), {{"0000_common_event_outbox.sql", sql.str().c_str()}});
  }
  std::string Conn() const { return TestPostgres().ConnInfo(db_); }
  int64_t Rows() {
    pqxx::connection c(Conn());
    pqxx::nontransaction n(c);
    return n.exec("SELECT count(*) FROM event_outbox").at(0)[0].as<int64_t>();
  }
  // Appends `payload` in a transaction that commits or rolls back.
  uint64_t Append(Outbox& o, const std::string& payload, bool commit = true) {
    pqxx::connection c(Conn());
    pqxx::work w(c);
    uint64_t id = o.Append(w, "t", payload);
    if (commit) w.commit();
    return id;
  }
  static OutboxOptions Fast() { return OutboxOptions{200ms, 20ms}; }
  std::string db_;
};

TEST_F(OutboxTest, RowsCommitAndRollBackWithTheirTransaction) {
  Outbox o(Conn(), Fast());
  Append(o, "kept");
  Append(o, "rolled back", /*commit=*/false);
  EXPECT_EQ(Rows(), 1);
}

TEST_F(OutboxTest, AcknowledgedRowsAreDeletedAndTheRestRelayedInOrderUntilAcknowledged) {
  Outbox o(Conn(), Fast());
  Relayed relayed;
  o.Handle("t", [&](uint64_t id, const std::string& p) {
    relayed.Add(id, p);
    return true;
  });
  const uint64_t a = Append(o, std::string("a\0binary", 8));
  const uint64_t b = Append(o, "b");
  const uint64_t c = Append(o, "c");
  o.Ack({b});  // delivered at once, as the inline path does
  o.Start();
  // a and c were never acknowledged: relayed in order, and again after redeliver_after.
  ASSERT_TRUE(relayed.Wait([&] { return relayed.rows.size() >= 4; })) << "relayed " << relayed.rows.size();
  {
    std::lock_guard lk(relayed.mu);
    EXPECT_EQ(relayed.rows[0].first, a);
    EXPECT_EQ(relayed.rows[0].second, std::string("a\0binary", 8)) << "payloads are bytes";
    EXPECT_EQ(relayed.rows[1].first, c);
    EXPECT_EQ(relayed.rows[2].first, a);
    EXPECT_EQ(relayed.rows[3].first, c);
    for (const auto& [id, p] : relayed.rows) EXPECT_NE(id, b) << "an acknowledged row was relayed";
  }
  o.Ack({a, c});
  o.Stop();  // deletes what was acknowledged before it returns
  EXPECT_EQ(Rows(), 0);
  EXPECT_GE(o.relayed(), 4u);
}

TEST_F(OutboxTest, APassStopsAfterAFewFailuresAndTheRowsWaitForTheirNextRelayTime) {
  Outbox o(Conn(), OutboxOptions{1h, 20ms});
  int asked = 0;
  o.Handle("t", [&](uint64_t, const std::string&) {
    ++asked;
    return false;  // the peer is down
  });
  for (int i = 0; i < 5; ++i) {
    pqxx::connection c(Conn());
    pqxx::work w(c);
    o.Append(w, "t", "x");
    w.exec("UPDATE event_outbox SET next_relay_at = now()");  // due at once
    w.commit();
  }
  EXPECT_EQ(o.RelayOnce(), 0u);
  EXPECT_EQ(asked, Outbox::kMaxConsecutiveFailures) << "a dead peer must not be asked once per row";
  EXPECT_EQ(o.RelayOnce(), 0u);
  EXPECT_EQ(asked, Outbox::kMaxConsecutiveFailures) << "not due again before redeliver_after";
  EXPECT_EQ(Rows(), 5);
}

TEST_F(OutboxTest, OnlyOneRelayPerDatabaseRelays) {
  Outbox first(Conn(), Fast()), second(Conn(), Fast());
  Relayed relayed;  // payload: which relay handed the row over
  first.Handle("t", [&](uint64_t id, const std::string&) {
    relayed.Add(id, "first");
    return true;
  });
  second.Handle("t", [&](uint64_t id, const std::string&) {
    relayed.Add(id, "second");
    return true;
  });
  Append(first, "never acknowledged");
  first.Start();
  second.Start();
  // Relayed again and again (nobody acknowledges it), always by the same one.
  ASSERT_TRUE(relayed.Wait([&] { return relayed.rows.size() >= 3; }));
  // Read while both run: once one stops, the other may take the lock over and relay (as it should).
  const bool first_leads = first.leader(), second_leads = second.leader();
  std::set<std::string> by;
  {
    std::lock_guard lk(relayed.mu);
    for (const auto& [id, who] : relayed.rows) by.insert(who);
  }
  first.Stop();
  second.Stop();
  EXPECT_EQ(by.size(), 1u) << "both relays relayed the row";
  EXPECT_NE(first_leads, second_leads);
  EXPECT_FALSE(first.leader()) << "a stopped relay holds no lock";
}

}  // namespace
}  // namespace chat
