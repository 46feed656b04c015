#pragma once
// The transactional outbox: events that must not be lost when a process dies between its commit and
// its publish (membership changes, friend events) are appended to the service database's
// event_outbox table (common/migrations/) inside the transaction that makes the change, so the row
// exists exactly when the change does.
//
// Path of one event:
//   1. the service appends the row (Append, same transaction) and commits;
//   2. it publishes the event at once, as it would without an outbox, with FanoutItem::outbox_id (or
//      CommittedMessage::outbox_id) set to the row id; the event path acknowledges the id (Ack) once
//      the delivery went through, and the row is deleted in the relay's next batch;
//   3. a row still there at next_relay_at (commit + redeliver_after: the process died, Redis was down)
//      is handed to its topic's handler by the relay, which publishes it again the same way, and
//      pushes next_relay_at out by redeliver_after, until someone acknowledges it.
//
// Delivery is at least once: an event may arrive twice (a crash after the delivery and before the
// delete), never zero times while the database keeps the row. Events are idempotent for clients
// (messages carry their seq; group and friend events carry the state they announce). Relayed events
// are published in row order, through the same ordered event path.
//
// One relay per database relays: the one holding a PostgreSQL advisory lock on its own connection
// (replicas of one shard share the database; when the holder dies its session ends and another takes
// over on its next poll). Every replica acknowledges its own deliveries.
//
// A handler answers true when it handed the row on (the publisher acknowledges it once delivered) or
// finished it (then it acknowledges it itself), false when it could not now (a peer is down): the row
// waits for its next relay time. After kMaxConsecutiveFailures false answers a pass stops, so a dead
// peer costs one pass a few deadlines, not one per row.
//
// Threads: Handle before Start; Append from any thread inside its own transaction; Ack from any
// thread; handlers run on the relay thread and may block for at most one RPC deadline.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fanout.h"
#include "common/pg.h"

namespace chat {

struct OutboxOptions {
  // A row not acknowledged this long after its commit (or its last relay) is relayed (again).
  std::chrono::milliseconds redeliver_after{3000};
  // How often the relay looks for due rows (it also wakes for acknowledgements).
  std::chrono::milliseconds poll{1000};
  size_t batch = 256;  // rows relayed per look
};

inline OutboxOptions OutboxOptionsFrom(const Limits& limits) {
  return OutboxOptions{std::chrono::milliseconds(limits.common.outbox_redeliver_after_ms),
                       std::chrono::milliseconds(limits.common.outbox_poll_ms)};
}

class Outbox : public OutboxAcks {
 public:
  using Handler = std::function<bool(uint64_t id, const std::string& payload)>;
  static constexpr int kMaxConsecutiveFailures = 3;

  Outbox(std::string conninfo, OutboxOptions options);
  ~Outbox() override;  // Stop()
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Registers the handler that re-publishes rows of `topic`. Before Start.
  void Handle(std::string topic, Handler handler);
  // Appends a row inside the caller's transaction; returns its id.
  uint64_t Append(pqxx::work& t, std::string_view topic, const std::string& payload) const;
  // Thread-safe: these rows were delivered; they are deleted in the relay's next batch.
  void Ack(const std::vector<uint64_t>& outbox_ids) override;

  void Start();
  // Deletes what was acknowledged, then joins. Idempotent.
  void Stop();
  // One pass on the calling thread (tests, tools; not while started): deletes what was acknowledged,
  // then, if this instance gets the relay lock, relays the rows that are due. Returns how many rows
  // handlers took. Throws on database errors.
  size_t RelayOnce();

  // Stops the outbox when it goes out of scope. Declared after what the relay's handlers use, it stops
  // the relay before those go, however the scope ends (an exception during start-up included).
  class StopGuard {
   public:
    explicit StopGuard(Outbox& outbox) : outbox_(outbox) {}
    ~StopGuard() { outbox_.Stop(); }
    StopGuard(const StopGuard&) = delete;
    StopGuard& operator=(const StopGuard&) = delete;

   private:
    Outbox& outbox_;
  };

  uint64_t relayed() const { return relayed_.load(std::memory_order_relaxed); }
  bool leader() const { return leader_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // One pass on `c`: delete acknowledged rows, then (when leader) relay due rows; returns how many
  // rows handlers took. Throws on connection errors.
  size_t Pass(pqxx::connection& c, std::vector<uint64_t>& acked);

  const std::string conninfo_;
  const OutboxOptions options_;
  std::map<std::string, Handler, std::less<>> handlers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> acked_;  // mu_
  bool stop_ = false;            // mu_
  std::thread thread_;
  std::atomic<bool> leader_{false};
  std::atomic<uint64_t> relayed_{0};
};

}  // namespace chat
