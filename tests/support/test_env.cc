#include "test_env.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <pqxx/pqxx>
#include <stdexcept>

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
  pg.pool_size = 4;
  return pg;
}

RedisConfig TestRedis() {
  RedisConfig r;
  r.host = Env("CHAT_TEST_REDIS_HOST");
  r.port = std::stoi(Env("CHAT_TEST_REDIS_PORT"));
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

std::string BinDir() {
  if (const char* v = std::getenv("CHAT_BIN_DIR"); v && *v) return v;
  return CHAT_DEFAULT_BIN_DIR;
}

void KeepGrpcCallbackQueueUp() {
  static const bool done = [] {
    // A channel that is never destroyed, with one finished callback call on it: that call makes the
    // channel take its reference on the callback queue.
    auto* channel =
        new std::shared_ptr<grpc::Channel>(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
    auto* stub = new std::unique_ptr<internal::ChatService::Stub>(internal::ChatService::NewStub(*channel));
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

}  // namespace chat::testing
