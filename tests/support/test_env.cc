#include "test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <pqxx/pqxx>
#include <stdexcept>
#include <utility>
#include <vector>

#include "chat/internal/services.grpc.pb.h"

namespace chat::testing {

namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v)
    throw std::runtime_error(std::string("test environment: ") + name +
                             " is not set; run the tests through tests/run, which starts PostgreSQL and Redis");
  return v;
}
}  // namespace

PostgresConfig TestPostgres() {
  PostgresConfig pg;
  pg.host = Env("CHAT_TEST_PG_HOST");
  pg.port = std::stoi(Env("CHAT_TEST_PG_PORT"));
  pg.user = Env("CHAT_TEST_PG_USER");
  pg.password_file = TestPostgresAuthDir() + "/" + pg.user + ".pass";
  LoadPostgresAuth(pg, "");
  pg.pool_size = 4;
  return pg;
}

std::string TestPostgresAuthDir() { return Env("CHAT_TEST_PG_AUTH_DIR"); }

PostgresConfig TestPostgresAs(const std::string& kind) {
  PostgresConfig pg = TestPostgres();
  pg.user = kind;
  pg.password_file = TestPostgresAuthDir() + "/" + kind + ".pass";
  LoadPostgresAuth(pg, kind);
  return pg;
}

void OwnDatabase(const std::string& database, const std::string& kind) {
  pqxx::connection c(TestPostgres().ConnInfo("postgres"));
  pqxx::nontransaction n(c);
  n.exec("ALTER DATABASE " + c.quote_name(database) + " OWNER TO " + c.quote_name(kind));
  n.exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + c.quote_name(database) + " FROM PUBLIC");
}

std::string TestRedisAuthDir() { return Env("CHAT_TEST_REDIS_AUTH_DIR"); }

InternalTlsConfig InProcessPlaintext() {
  InternalTlsConfig tls;
  tls.insecure_plaintext = true;
  return tls;
}

RedisConfig TestRedis() {
  RedisConfig r;
  r.host = Env("CHAT_TEST_REDIS_HOST");
  r.port = std::stoi(Env("CHAT_TEST_REDIS_PORT"));
  r.user = Env("CHAT_TEST_REDIS_USER");
  r.password_file = TestRedisAuthDir() + "/" + r.user + ".pass";
  LoadRedisAuth(r, "");
  return r;
}

std::string FreshDatabase(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string name = "t_" + prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
                     std::to_string(std::rand() % 100000);
  auto pg = TestPostgres();
  pqxx::connection c(pg.ConnInfo("postgres"));
  pqxx::nontransaction n(c);
  n.exec("DROP DATABASE IF EXISTS " + c.quote_name(name));
  n.exec("CREATE DATABASE " + c.quote_name(name));
  return name;
}

void RestartTestPostgres(bool immediate) {
  const std::string data = Env("CHAT_TEST_PG_DATA");
  const std::string bin = Env("CHAT_TEST_PG_BIN");
  std::vector<std::string> args;
  if (::geteuid() == 0) args = {"runuser", "-u", "postgres", "--"};
  args.insert(args.end(),
              {bin + "/pg_ctl", "-D", data, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "restart"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) ::dup2(null_fd, 1);  // pg_ctl's progress dots; errors stay on stderr
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("pg_ctl restart of " + data + " failed (wait status " + std::to_string(status) + ")");
}

std::string BinDir() {
  if (const char* v = std::getenv("CHAT_BIN_DIR"); v && *v) return v;
  return CHAT_DEFAULT_BIN_DIR;
}

void KeepGrpcCallbackQueueUp() {
  // A channel that is never destroyed, with one finished callback call on it: that call makes the
  // channel take its reference on the callback queue. Held by these statics, so LeakSanitizer sees
  // it reachable (a local pointer made it, and what gRPC hangs on it, a reported leak).
  static std::shared_ptr<grpc::Channel>* channel = nullptr;
  static std::unique_ptr<internal::ChatService::Stub>* stub = nullptr;
  static const bool done = [] {
    channel =
        new std::shared_ptr<grpc::Channel>(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
    stub = new std::unique_ptr<internal::ChatService::Stub>(internal::ChatService::NewStub(*channel));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    internal::SendRequest req;
    v1::SendMessageResult res;
    std::promise<void> finished;
    (*stub)->async()->Send(&ctx, &req, &res, [&](grpc::Status) { finished.set_value(); });
    finished.get_future().wait();
    return true;
  }();
  (void)done;
}

ReservedPort::ReservedPort(Use use) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("ReservedPort: socket: ") + std::strerror(errno));
  const int one = 1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if ((use == Use::kForListener && ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
      ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int err = errno;
    ::close(fd_);
    throw std::runtime_error(std::string("ReservedPort: bind 127.0.0.1:0: ") + std::strerror(err));
  }
  port_ = ntohs(a.sin_port);
}

ReservedPort::ReservedPort(ReservedPort&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(std::exchange(other.port_, 0)) {}

ReservedPort& ReservedPort::operator=(ReservedPort&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = std::exchange(other.port_, 0);
  }
  return *this;
}

ReservedPort::~ReservedPort() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace chat::testing
