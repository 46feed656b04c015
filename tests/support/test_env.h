#pragma once
// What tests that need real PostgreSQL/Redis use to find them. tests/run starts both and exports
// CHAT_TEST_PG_HOST/PORT/USER and CHAT_TEST_REDIS_HOST/PORT. A test that needs them and finds no
// such variables fails (never skips): a missing service is a broken test environment.
#include <cstdint>
#include <string>

#include "common/config.h"

namespace chat::testing {

// The superuser (CHAT_TEST_PG_USER) with its password from CHAT_TEST_PG_AUTH_DIR.
PostgresConfig TestPostgres();
// The role of a service kind ("chat-service", ...) and its password, as an e2e cluster's services
// log in. Such a role may connect only to databases it owns (OwnDatabase).
PostgresConfig TestPostgresAs(const std::string& kind);
// The directory of <role>.pass files (CHAT_TEST_PG_AUTH_DIR).
std::string TestPostgresAuthDir();
// Gives `database` to the role of `kind` and lets nobody else but superusers connect to it, as
// deploy/local-cluster does for every shard's database (chat_pg_database).
void OwnDatabase(const std::string& database, const std::string& kind);
// The internal plane of tests whose gRPC servers and channels all live in the test process: plain
// text (insecure_plaintext). Clusters of real processes (tests/e2e) run mutual TLS.
InternalTlsConfig InProcessPlaintext();
// Authenticated as the harness's own user (CHAT_TEST_REDIS_USER, allowed everything).
RedisConfig TestRedis();
// The directory of <user>.pass files of the test Redis's ACL users (one per process kind).
std::string TestRedisAuthDir();
// Creates a new, empty database with a unique name and returns its name.
std::string FreshDatabase(const std::string& prefix);
// Directory holding the built executables (gateway, chat-service, ...).
std::string BinDir();
// Restarts the test PostgreSQL (`pg_ctl restart`, as the postgres user when run as root) and returns
// once it accepts connections again. `immediate`: -m immediate, i.e. every backend is killed at once
// and the server recovers from its WAL, as after a crash. Needs CHAT_TEST_PG_DATA and
// CHAT_TEST_PG_BIN (tests/run exports them); throws when they are missing or the restart fails.
// Only for tests that run alone (the e2e phase): every other user of the server loses its sessions.
void RestartTestPostgres(bool immediate);

// Keeps gRPC's callback completion queue up for the rest of the test process. libgrpc++ 1.51 shuts
// that queue down when the last channel or server using it goes away, and a test that then starts
// the next one can abort inside gRPC (the old queue's thread races with the new one). Production
// processes keep their channels for life; tests that build and drop callback-API servers or
// channels call this first. Idempotent.
void KeepGrpcCallbackQueueUp();

// A loopback TCP port held for as long as this object lives: a socket bound to 127.0.0.1:0 (the
// kernel picks a free port, port() reads it back) that never listens. While it lives, no other
// socket gets the port by autobind (bind to port 0, or the implicit bind of connect()), and a
// connect to it is refused. So a port can be written into a config before the process that serves
// it starts, with no moment at which another socket can take it (bind, read back, close and hand
// over later has one). What else may bind the port depends on `use`:
//   kClosed       nothing: an address where nobody answers, for "unreachable" tests;
//   kForListener  a socket with SO_REUSEADDR set, which may then listen and serve on it, and a new
//                 one again after that listener is closed (a restarted server). gRPC servers, the
//                 gateway's Asio acceptor and redis-server all set SO_REUSEADDR; a bind without it
//                 still fails with EADDRINUSE.
// Linux behaviour this relies on (net/ipv4/inet_connection_sock.c, checked on 6.18 by
// tests/unit/reserved_port_test.cc and, for autobind, by tests/support/port_reservation_check.py,
// which exhausts a 10-port ip_local_port_range in a network namespace): autobind takes no port that
// has a bound owner at the same address, whatever the options; an explicit bind may share a port with a bound,
// non-listening owner only when both have SO_REUSEADDR (or both SO_REUSEPORT and the same uid, which kForListener does
// not set). The socket is close-on-exec; children never inherit it. Movable, not copyable.
class ReservedPort {
 public:
  enum class Use { kClosed, kForListener };
  explicit ReservedPort(Use use);
  ReservedPort(ReservedPort&& other) noexcept;
  ReservedPort& operator=(ReservedPort&& other) noexcept;
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  ~ReservedPort();

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace chat::testing
