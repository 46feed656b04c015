#pragma once
// The plan every worker process inherits from the coordinator (computed before fork(), so it is
// never serialized), the memory the coordinator and workers share, and the worker's main loop.
//
// Coordination is through Shared (an anonymous MAP_SHARED mapping made before fork()): the
// coordinator writes `phase` and the measurement window; each worker writes only its own
// WorkerStats (live counters are relaxed atomics; the result block is written once, before
// `state` becomes kFinished, and read by the coordinator only after that).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "histogram.h"
#include "sessions.h"

namespace bench {

enum class Protocol { kProject, kSocketIo };

struct UserSpec {
  std::string peer_id;   // socket.io user id
  uint64_t user_id = 0;  // project user id
  std::string token;     // project token
};

struct ConnSpec {
  int user = 0;
  int gateway = 0;
  std::vector<int> expect_streams;  // streams whose every acked message this connection must get
};

struct StreamSpec {
  int conn = 0;  // the sending connection
  Target target;
  int receivers = 1;
};

struct Plan {
  Protocol protocol = Protocol::kSocketIo;
  bool json = false;
  std::vector<Endpoint> gateways;
  std::vector<UserSpec> users;
  std::vector<ConnSpec> conns;
  std::vector<StreamSpec> streams;
  std::string peer_group;  // socket.io: every connection joins this room; empty = none
  int workers = 1;
  // Worker process of each connection (index = connection). In closed loop every receiver of a
  // stream lives in the sender's worker, so the sender sees each delivery without crossing processes.
  std::vector<int> conn_worker;
  bool closed_loop = true;
  // Closed loop: messages in flight per stream, where a message stays in flight until it is acked
  // and delivered to every receiver of its stream (pacing on the ack alone lets a system that acks
  // before delivering queue without bound).
  int inflight = 1;
  double rate_per_stream = 0;  // open loop: messages/s per stream (Poisson arrivals)
  int body_bytes = 64;
  std::string run_nonce;          // makes client_msg_ids unique across runs
  int connect_concurrency = 256;  // handshakes in progress per worker
  uint32_t open_loop_cap = 5000;  // open loop: most messages in flight per stream (beyond: counted as skipped)
};

inline constexpr int kMaxWorkers = 16;
inline constexpr int kMaxStreams = 20000;

enum Phase : int { kPhaseConnect = 0, kPhaseRun = 1, kPhaseStop = 2, kPhaseFinish = 3 };
enum WorkerState : int { kStateConnecting = 0, kStateReady = 1, kStateFinished = 2 };

struct WorkerStats {
  std::atomic<uint64_t> connected{0}, connect_failed{0}, disconnected{0};
  std::atomic<uint64_t> sent{0}, acked{0}, send_errors{0}, skipped{0};
  std::atomic<uint64_t> delivered{0}, distinct{0}, delivered_in_window{0}, sent_in_window{0};
  std::atomic<int> state{kStateConnecting};
  // Written once at finish.
  uint64_t duplicates = 0, out_of_order = 0, lost = 0, unexpected = 0, undecodable = 0;
  Histogram latency;      // send (intended time) -> deliver, messages sent in the window, us
  Histogram ack_latency;  // send -> ack, messages sent in the window, us
  char first_error[256] = {};
};

struct Shared {
  std::atomic<int> phase{kPhaseConnect};
  std::atomic<int64_t> window_start_us{0}, window_end_us{0};
  std::atomic<uint64_t> sent_ok[kMaxStreams];  // per stream: sends acked OK
  WorkerStats workers[kMaxWorkers];
};

// steady clock in microseconds; the same clock in every process of this machine.
int64_t NowUs();
// Source address for connection c: spreads connections over 127.0.0.2 .. 127.0.0.251.
std::string SourceAddressFor(int conn);

// Runs worker `index` of the plan until the coordinator sets kPhaseFinish; returns an exit code.
int RunWorker(const Plan& plan, Shared* shared, int index);

}  // namespace bench
