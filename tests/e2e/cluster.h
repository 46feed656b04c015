#pragma once
// TestCluster: the whole chat cluster as real processes on loopback, for end-to-end tests.
//
// One TestCluster owns: fresh PostgreSQL databases on the test server (tests/support), a private
// run dir (config file, codes.log, one log file per process), and the child processes
// account-service, presence-service, N chat-service shards, group-service and M gateways, all
// started from chat::testing::BinDir(). Redis is the shared test Redis: gateway channels carry
// random instance ids and users have random ids, so clusters running side by side never collide.
//
// Threads: construct, destroy and call the process-control methods (Kill/Stop/Restart) from one
// thread, the one that constructed the cluster (children die with that thread via
// PR_SET_PDEATHSIG). The read-only accessors and the user helpers (SignUp, Connect, MakeFriends)
// may be called from any thread.
//
// The internal plane is mutual TLS, as in every cluster deploy/local-cluster starts: every cluster
// of one test process uses the certificates TestCertsDir() made once.
//
// Errors: the constructor and the helpers throw std::runtime_error with a description (and the
// tail of the relevant process logs when a process did not come up); gtest reports a throwing test
// as failed.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/v1/client.pb.h"
#include "client/api.h"
#include "client/connection.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/token.h"
#include "test_env.h"
#include "wait.h"

namespace chat::e2e {

using namespace std::chrono_literals;

struct ClusterOptions {
  int chat_shards = 2;
  int gateways = 2;
  int account_shards = 1;
  int presence_shards = 1;
  int group_shards = 1;
  // Written into the config as is (every field). Tests shrink what they exercise, e.g.
  // auth_timeout_ms, send_queue_max_frames, max_frame_bytes.
  Limits limits = DefaultTestLimits();
  // gateways[].trusted_proxies of every gateway (balancer addresses that must send PROXY headers).
  std::vector<std::string> trusted_proxies;
  // How long Start waits for every port and /healthz.
  std::chrono::milliseconds ready_timeout = 30s;

  // Product defaults, except a short drain so that stopping a cluster takes little time.
  static Limits DefaultTestLimits();
  // For tests that drive load from a few users: each connection may make `per_second` requests
  // per second (and as many at once), and the per-user message quotas are out of the way (they are
  // tested by Abuse.*).
  void AllowLoad(uint32_t per_second);
};

// A signed-up user and the connection it signed up on (authenticated, events flowing).
struct User {
  uint64_t id = 0;
  std::string handle;
  std::string display_name;
  std::string phone;
  std::string token;
  std::string device_id;
  std::unique_ptr<client::Connection> conn;

  client::Connection& c() const { return *conn; }
};

class TestCluster {
 public:
  // Creates the databases and config, starts every process and waits until all are ready.
  explicit TestCluster(ClusterOptions options = {});
  // SIGTERM to every process still running, waits (bounded), SIGKILLs leftovers, then drops the
  // cluster's databases. The run dir (config, logs, codes.log) stays under /tmp for post-mortems.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  const ClusterConfig& config() const { return config_; }
  const Limits& limits() const { return config_.limits; }
  // Signs like the cluster's account service (its signing key, verified by its gateways).
  TokenSigner signer() const { return TokenSigner(config_.token_keys); }
  const std::string& run_dir() const { return run_dir_; }
  std::string codes_file() const { return run_dir_ + "/codes.log"; }
  int gateway_count() const { return static_cast<int>(gateway_ports_.size()); }
  int chat_shard_count() const { return static_cast<int>(chat_ports_.size()); }
  uint16_t gateway_port(int i) const { return gateway_ports_.at(i); }
  // Resident memory of gateway i's process in KiB (VmRSS), 0 when it is not running.
  uint64_t GatewayRssKiB(int i) const;

  // Connection options for gateway i with the given encoding (no token), with the recorder of
  // RecordFrames if one is set.
  client::ConnectOptions Options(int gateway, WireEncoding encoding) const;
  // From now on every connection this cluster's helpers open (and any opened with Options) hands each
  // WebSocket message it receives to `record`, with the connection's encoding, on its I/O thread.
  void RecordFrames(std::function<void(WireEncoding, const std::string&)> record) { record_ = std::move(record); }
  // Every process's whole log, for scans (the privacy test).
  std::vector<std::string> LogPaths() const;

  // SIGKILL, then reap. The gateway's clients see their connections drop.
  void KillGateway(int i);
  // SIGTERM, then wait (bounded) for the process to exit; returns its exit status as from
  // waitpid (or -1 if it had to be SIGKILLed after the deadline).
  int StopGateway(int i, std::chrono::milliseconds deadline = 20s);
  // Stops chat shard i (SIGKILL when `hard`, else SIGTERM and wait), starts it again on the same
  // port and waits until it accepts connections. `failpoints` (common/failpoint.h) are armed in the
  // new process (CHAT_FAILPOINTS); empty = none.
  void RestartChatShard(int i, bool hard = false, const std::string& failpoints = "");
  // Waits up to `timeout` for chat shard i to exit by itself (e.g. at a failpoint) and reaps it;
  // returns its wait status, nullopt while it still runs. Restart it with RestartChatShard.
  std::optional<int> WaitChatShardExit(int i, std::chrono::milliseconds timeout);

  // SIGTERM to account shard i and wait for it to exit; StartAccountShard starts it again on the same
  // port and waits until it accepts connections.
  void StopAccountShard(int i);
  void StartAccountShard(int i);
  // Writes `keys` into the config and restarts every account shard and then every gateway with it
  // (SIGTERM, same ports), waiting until each is ready. Open connections to the gateways drop.
  void RestartWithTokenKeys(TokenKeys keys);

  // Connects to gateway `gateway`, requests a code for a fresh random phone, reads it from
  // codes.log and signs up with a fresh device id. Throws on any failure.
  User SignUp(int gateway, WireEncoding encoding, const std::string& display_name) const;
  // A new connection for `user` with its token in the Authorization header. It returns after one
  // get_me round trip, so the session is registered for events when it returns. Throws on failure.
  std::unique_ptr<client::Connection> Connect(const User& user, int gateway, WireEncoding encoding) const;
  // Requests a code for `phone` on `conn` and reads it from the codes file. Throws on failure.
  std::string CodeFor(client::Connection& conn, const std::string& phone) const;
  // a sends a friend request to b on a's connection, b accepts on b's connection. Throws on failure.
  void MakeFriends(const User& a, const User& b) const;

  // The last `lines` lines of every process log, for failure messages.
  std::string LogTails(size_t lines = 30) const;

 private:
  struct Process {
    std::string name;               // e.g. "chat-service.1"
    std::vector<std::string> argv;  // argv[0] is the executable path
    std::string failpoints;         // CHAT_FAILPOINTS of the next Spawn ("" = unset)
    std::string log_path;
    chat::testing::ChildWatch child;  // child.pid() is -1 before Spawn and once reaped
  };

  void WriteConfig();
  void Spawn(Process& p);
  // Waits until every port accepts TCP (services) / answers /healthz 200 (gateways), failing fast
  // when one of `watch` exits. The ports are asked again whenever a process writes its log (each
  // logs a "ready" line once it listens) or exits, and at least every 100 ms.
  void WaitReady(const std::vector<uint16_t>& tcp_ports, const std::vector<uint16_t>& http_ports,
                 const std::vector<Process*>& watch);
  // SIGTERM (or SIGKILL) p and reap it within `deadline` (waiting on its pidfd); SIGKILL after it.
  // Returns the wait status or -1 when it had to be killed after the deadline.
  int Terminate(Process& p, int signal, std::chrono::milliseconds deadline);
  [[noreturn]] void Fail(const std::string& why) const;
  // Drops the databases this cluster created (after its processes are gone). Never throws.
  void DropDatabases() noexcept;

  // Holds a port from before the config names it for as long as the cluster lives (SO_REUSEADDR, never
  // listening; see chat::testing::ReservedPort): its process binds it, a restarted one binds it
  // again, and no other socket can take it in between. Returns the port.
  uint16_t ReservePort();

  ClusterOptions options_;
  std::vector<chat::testing::ReservedPort> reserved_ports_;  // every port in config_
  ClusterConfig config_;
  std::string run_dir_;
  std::string config_path_;
  std::vector<uint16_t> service_ports_;  // account..., presence..., group..., chat...
  std::vector<uint16_t> chat_ports_;
  std::vector<uint16_t> gateway_ports_;
  std::vector<Process> services_;  // account..., presence..., group..., then chat shards in order
  size_t first_chat_ = 0;          // index of chat shard 0 in services_
  std::vector<Process> gateways_;
  std::function<void(WireEncoding, const std::string&)> record_;
};

// ---- certificates -----------------------------------------------------------------------------------

// Runs deploy/make-certs into a fresh directory (a new CA and a certificate per process kind) and
// returns it; the directory is removed when the test process exits. Throws when the script fails.
std::string MakeCerts();
// The directory MakeCerts made for this test process's clusters (made at the first call; thread-safe).
const std::string& TestCertsDir();

// ---- helpers for tests ---------------------------------------------------------------------------

// True when `event` is a message event for (conversation, seq).
bool IsMessage(const v1::Event& event, const std::string& conversation_id, uint64_t seq);
// Waits for the message event (conversation, seq) on `conn`; nullopt after `timeout`.
std::optional<v1::Message> WaitForMessage(client::Connection& conn, const std::string& conversation_id, uint64_t seq,
                                          std::chrono::milliseconds timeout = 10s);
// Every message of the conversation after `after_seq`, paging forward (`page` messages at a time)
// until has_more is false. Throws when a page fails.
std::vector<v1::Message> FullHistory(client::Connection& conn, const std::string& conversation_id,
                                     uint64_t after_seq = 0, uint32_t page = 200);
// The summary of `conversation_id` in list_conversations, or nullopt. Throws when the list fails.
std::optional<v1::ConversationSummary> FindConversation(client::Connection& conn, const std::string& conversation_id);
// " (connection: open|closed, N undecodable, M wrong frame type)", for failure messages.
std::string Diag(const client::Connection& conn);
// Text of a text message ("" otherwise).
std::string TextOf(const v1::Message& m);
// Sends a text and expects OK; returns the reply's seq. Throws otherwise.
uint64_t SendTextOk(client::Connection& conn, const std::string& conversation_id, const std::string& text,
                    std::string* client_msg_id_out = nullptr);

}  // namespace chat::e2e
