#include "common/outbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace chat {

namespace {

// pg_try_advisory_lock key of the relay: one relay per database.
constexpr int64_t kRelayLock = 7262020;

}  // namespace

Outbox::Outbox(std::string conninfo, OutboxOptions options) : conninfo_(std::move(conninfo)), options_(options) {}

Outbox::~Outbox() { Stop(); }

void Outbox::Handle(std::string topic, Handler handler) { handlers_[std::move(topic)] = std::move(handler); }

uint64_t Outbox::Append(pqxx::work& t, std::string_view topic, const std::string& payload) const {
  pqxx::result r = t.exec_params(
      "INSERT INTO event_outbox (topic, payload, next_relay_at) "
      "VALUES ($1, $2, now() + $3 * interval '1 millisecond') RETURNING id",
      std::string(topic), pqxx::binarystring(payload.data(), payload.size()),
      static_cast<int64_t>(options_.redeliver_after.count()));
  return r.at(0)[0].as<uint64_t>();
}

void Outbox::Ack(const std::vector<uint64_t>& outbox_ids) {
  if (outbox_ids.empty()) return;
  {
    std::lock_guard lk(mu_);
    acked_.insert(acked_.end(), outbox_ids.begin(), outbox_ids.end());
  }
  cv_.notify_one();
}

void Outbox::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Outbox::Stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  leader_ = false;  // the relay's connection, and with it the lock, ended with its thread
}

size_t Outbox::RelayOnce() {
  std::vector<uint64_t> acked;
  {
    std::lock_guard lk(mu_);
    acked.swap(acked_);
  }
  pqxx::connection c(conninfo_);
  leader_ = false;  // a new session holds no lock
  const size_t taken = Pass(c, acked);
  leader_ = false;  // the lock ends with this connection
  return taken;
}

size_t Outbox::Pass(pqxx::connection& c, std::vector<uint64_t>& acked) {
  if (!acked.empty()) {
    pqxx::nontransaction n(c);
    n.exec_params("DELETE FROM event_outbox WHERE id = ANY($1::bigint[])", BigintArray(acked));
    acked.clear();
  }
  if (!leader_) {
    pqxx::nontransaction n(c);
    leader_ = n.exec_params("SELECT pg_try_advisory_lock($1)", kRelayLock).at(0)[0].as<bool>();
    if (!leader_) return 0;
    spdlog::info("outbox: this process relays the database's undelivered events");
  }
  pqxx::result due;
  {
    pqxx::work w(c);
    due = w.exec_params(
        "UPDATE event_outbox SET next_relay_at = now() + $1 * interval '1 millisecond', relays = relays + 1 "
        "WHERE id IN (SELECT id FROM event_outbox WHERE next_relay_at <= now() ORDER BY id LIMIT $2 "
        "FOR UPDATE SKIP LOCKED) RETURNING id, topic, payload",
        static_cast<int64_t>(options_.redeliver_after.count()), static_cast<int64_t>(options_.batch));
    w.commit();
  }
  std::vector<pqxx::row> rows(due.begin(), due.end());
  std::sort(rows.begin(), rows.end(),
            [](const pqxx::row& a, const pqxx::row& b) { return a[0].as<uint64_t>() < b[0].as<uint64_t>(); });
  size_t taken = 0;
  int failures = 0;
  for (const pqxx::row& row : rows) {
    const uint64_t id = row[0].as<uint64_t>();
    const std::string topic = row[1].as<std::string>();
    auto h = handlers_.find(topic);
    if (h == handlers_.end()) {
      spdlog::error("outbox: row {} has topic '{}', which this process does not relay", id, topic);
      continue;
    }
    if (h->second(id, pqxx::binarystring(row[2]).str())) {
      ++taken;
      failures = 0;
      relayed_.fetch_add(1, std::memory_order_relaxed);
    } else if (++failures >= kMaxConsecutiveFailures) {
      spdlog::warn("outbox: {} rows in a row could not be relayed; the rest wait for the next pass", failures);
      break;
    }
  }
  if (taken > 0) spdlog::info("outbox: relayed {} undelivered events", taken);
  return taken;
}

void Outbox::Run() {
  std::unique_ptr<pqxx::connection> conn;
  std::vector<uint64_t> acked;
  bool stopping = false;
  while (!stopping) {
    {
      std::unique_lock lk(mu_);
      // The first pass runs at once (a restarted process relays what its predecessor left).
      if (conn) cv_.wait_for(lk, options_.poll, [this] { return stop_ || !acked_.empty(); });
      stopping = stop_;
      acked.insert(acked.end(), acked_.begin(), acked_.end());
      acked_.clear();
    }
    try {
      if (!conn) {
        conn = std::make_unique<pqxx::connection>(conninfo_);
        leader_ = false;  // a new session holds no lock
      }
      if (stopping) {
        // Last acknowledgements only; the next leader relays the rest.
        if (!acked.empty()) {
          pqxx::nontransaction n(*conn);
          n.exec_params("DELETE FROM event_outbox WHERE id = ANY($1::bigint[])", BigintArray(acked));
        }
        break;
      }
      Pass(*conn, acked);
    } catch (const std::exception& e) {
      spdlog::warn("outbox relay: {}; retrying", e.what());
      conn.reset();
      leader_ = false;
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, options_.poll, [this] { return stop_; });
    }
  }
}

}  // namespace chat
