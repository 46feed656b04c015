#include "cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <stdexcept>

#include "test_env.h"

namespace chat::e2e {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// Upper bound between two readiness checks when no process writes its log or exits meanwhile: a
// port's readiness is only visible by asking it.
constexpr auto kRecheckInterval = 100ms;

std::string RandomHex(size_t n) {
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(kHex[rd() % 16]);
  return s;
}

std::string Addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool AcceptsTcp(uint16_t port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// GET /healthz answered with 200 within about a second.
bool HealthzOk(uint16_t port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  bool ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  std::string resp;
  char buf[512];
  while (ok && resp.size() < 12) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return ok && resp.rfind("HTTP/1.1 200", 0) == 0;
}

std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  if (!in) return "(no log)\n";
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "  " + all[i] + "\n";
  return out;
}

// Every limit, by section, as the config file spells it (derived from the one declaration).
json::object LimitsJson(const Limits& l) {
  json::object o;
  auto section = [&](const char* name) -> json::object& {
    json::value& v = o[name];
    if (!v.is_object()) v.emplace_object();
    return v.as_object();
  };
#define PUT(sec, type, name, def, lo, hi) section(#sec)[#name] = l.sec.name;
  CHAT_ALL_LIMITS(PUT)
#undef PUT
  return o;
}

}  // namespace

namespace {
// Removes the directories MakeCerts made when the test process exits.
struct CertDirs {
  std::mutex mu;
  std::vector<std::string> dirs;
  ~CertDirs() {
    for (const auto& d : dirs) {
      std::error_code ignored;
      std::filesystem::remove_all(d, ignored);
    }
  }
};
CertDirs& AllCertDirs() {
  static CertDirs dirs;
  return dirs;
}
}  // namespace

std::string MakeCerts() {
  char tmpl[] = "/tmp/chat-e2e-certs.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  const std::string dir = tmpl;
  {
    std::lock_guard lock(AllCertDirs().mu);
    AllCertDirs().dirs.push_back(dir);
  }
  // Short validity: nothing outlives the test process.
  const std::string cmd = "'" CHAT_SOURCE_DIR "/deploy/make-certs' --out '" + dir + "' --days 2 --ca-days 2 >'" + dir +
                          "/make-certs.log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir + "/make-certs.log");
    std::stringstream ss;
    ss << log.rdbuf();
    throw std::runtime_error("deploy/make-certs failed: " + ss.str());
  }
  return dir;
}

const std::string& TestCertsDir() {
  static const std::string dir = MakeCerts();
  return dir;
}

Limits ClusterOptions::DefaultTestLimits() {
  Limits l;
  l.common.drain_timeout_ms = 2000;
  // Every test user signs up from 127.0.0.1: the per-address code quotas are raised (the tests of
  // those quotas set them back, CodeAbuse in abuse_test.cc).
  l.account.address_codes_per_hour = 1000000;
  l.account.address_phone_codes_per_day = 1000000;
  l.account.address_code_checks_per_hour = 1000000;
  l.account.address_phone_code_checks_per_day = 1000000;
  return l;
}

uint64_t TestCluster::GatewayRssKiB(int i) const {
  const pid_t pid = gateways_.at(i).child.pid();
  if (pid <= 0) return 0;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

void ClusterOptions::AllowLoad(uint32_t per_second) {
  limits.gateway.requests_per_second = per_second;
  limits.gateway.request_burst = per_second;
  limits.chat.user_messages_per_second = 0;
  limits.chat.user_messages_per_minute = 0;
  limits.chat.user_history_bytes_per_minute = 0;
}

TestCluster::TestCluster(ClusterOptions options) : options_(std::move(options)) {
  try {
    char tmpl[] = "/tmp/chat-e2e.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    run_dir_ = tmpl;
    config_path_ = run_dir_ + "/cluster.json";

    for (int i = 0; i < options_.chat_shards; ++i) chat_ports_.push_back(ReservePort());
    for (int i = 0; i < options_.gateways; ++i) gateway_ports_.push_back(ReservePort());

    config_.token_keys = TokenKeys::Single("e2e-1", "e2e-" + RandomHex(32));
    config_.token_keys.keys[0].legacy_v1 = false;
    config_.run_dir = run_dir_;
    config_.log_level = "info";
    // Each service logs in as its kind's own role (scram), which owns its shards' databases and may
    // connect to no other, as in local-cluster. The cluster creates and drops them as the superuser.
    config_.postgres = chat::testing::TestPostgres();
    config_.postgres.user = "{kind}";
    config_.postgres.password = "";
    config_.postgres.password_file = chat::testing::TestPostgresAuthDir() + "/{kind}.pass";
    config_.postgres.pool_size = 4;
    // The services authenticate to Redis as their kind's own ACL user, as in local-cluster.
    config_.redis = chat::testing::TestRedis();
    config_.redis.user = "{kind}";
    config_.redis.password = "";
    config_.redis.password_file = chat::testing::TestRedisAuthDir() + "/{kind}.pass";
    config_.internal_tls.ca_file = TestCertsDir() + "/ca.crt";
    config_.internal_tls.cert_file = TestCertsDir() + "/{kind}.crt";
    config_.internal_tls.key_file = TestCertsDir() + "/{kind}.key";
    // Shards of one service get consecutive entries; presence has no database.
    auto database = [](const std::string& prefix, int i, const std::string& kind) {
      std::string db = chat::testing::FreshDatabase(prefix + std::to_string(i));
      chat::testing::OwnDatabase(db, kind);
      return db;
    };
    auto add_shards = [&](std::vector<ShardConfig>& out, int n, const std::string& db_prefix, const std::string& kind) {
      for (int i = 0; i < n; ++i) {
        const uint16_t port = ReservePort();
        service_ports_.push_back(port);
        out.push_back({{Addr(port)}, db_prefix.empty() ? "" : database(db_prefix, i, kind)});
      }
    };
    add_shards(config_.account, options_.account_shards, "e2e_account", "account-service");
    add_shards(config_.presence, options_.presence_shards, "", "");
    add_shards(config_.group, options_.group_shards, "e2e_group", "group-service");
    for (int i = 0; i < options_.chat_shards; ++i) {
      service_ports_.push_back(chat_ports_[i]);
      config_.chat.push_back({{Addr(chat_ports_[i])}, database("e2e_chat", i, "chat-service")});
    }
    for (int i = 0; i < options_.gateways; ++i)
      config_.gateways.push_back(
          {"e2e-gw" + std::to_string(i) + "-" + RandomHex(6), Addr(gateway_ports_[i]), options_.trusted_proxies});
    config_.limits = options_.limits;
    WriteConfig();

    const std::string bin = chat::testing::BinDir();
    auto service = [&](const std::string& exe, const std::string& name, int shard) {
      Process p;
      p.name = name;
      p.argv = {bin + "/" + exe, "--config", config_path_, "--shard", std::to_string(shard)};
      p.log_path = run_dir_ + "/" + name + ".log";
      return p;
    };
    for (int i = 0; i < options_.account_shards; ++i)
      services_.push_back(service("account-service", "account-service." + std::to_string(i), i));
    for (int i = 0; i < options_.presence_shards; ++i)
      services_.push_back(service("presence-service", "presence-service." + std::to_string(i), i));
    for (int i = 0; i < options_.group_shards; ++i)
      services_.push_back(service("group-service", "group-service." + std::to_string(i), i));
    first_chat_ = services_.size();
    for (int i = 0; i < options_.chat_shards; ++i)
      services_.push_back(service("chat-service", "chat-service." + std::to_string(i), i));
    for (int i = 0; i < options_.gateways; ++i) {
      Process p;
      p.name = "gateway." + std::to_string(i);
      p.argv = {bin + "/gateway", "--config", config_path_, "--index", std::to_string(i), "--threads", "2"};
      p.log_path = run_dir_ + "/" + p.name + ".log";
      gateways_.push_back(std::move(p));
    }

    std::vector<Process*> watch;
    for (auto& p : services_) {
      Spawn(p);
      watch.push_back(&p);
    }
    WaitReady(service_ports_, {}, watch);
    for (auto& g : gateways_) {
      Spawn(g);
      watch.push_back(&g);
    }
    WaitReady({}, gateway_ports_, watch);
    std::printf("e2e cluster ready: run dir %s, gateways on ports", run_dir_.c_str());
    for (uint16_t p : gateway_ports_) std::printf(" %u", static_cast<unsigned>(p));
    std::printf("\n");
    std::fflush(stdout);
  } catch (...) {
    for (auto& g : gateways_) Terminate(g, SIGKILL, 5s);
    for (auto& s : services_) Terminate(s, SIGKILL, 5s);
    DropDatabases();
    throw;
  }
}

TestCluster::~TestCluster() {
  // Gateways first (they drain their clients), then the services, all SIGTERMed together.
  for (auto& g : gateways_)
    if (g.child.pid() > 0) ::kill(g.child.pid(), SIGTERM);
  for (auto& g : gateways_) Terminate(g, SIGTERM, 15s);
  for (auto& s : services_)
    if (s.child.pid() > 0) ::kill(s.child.pid(), SIGTERM);
  for (auto& s : services_) Terminate(s, SIGTERM, 15s);
  DropDatabases();
}

uint16_t TestCluster::ReservePort() {
  reserved_ports_.emplace_back(chat::testing::ReservedPort::Use::kForListener);
  return reserved_ports_.back().port();
}

void TestCluster::DropDatabases() noexcept {
  try {
    pqxx::connection c(chat::testing::TestPostgres().ConnInfo("postgres"));
    pqxx::nontransaction n(c);
    for (const auto* shards : {&config_.account, &config_.chat, &config_.group})
      for (const auto& s : *shards)
        if (!s.database.empty()) n.exec("DROP DATABASE IF EXISTS " + c.quote_name(s.database) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Best effort: a leftover database on the test server harms nothing.
  }
}

void TestCluster::WriteConfig() {
  json::object root;
  json::array keys;
  for (const auto& k : config_.token_keys.keys) {
    json::object o{{"id", k.id}, {"secret", k.secret}};
    if (k.legacy_v1) o["legacy_v1"] = true;
    keys.emplace_back(std::move(o));
  }
  root["token_keys"] = std::move(keys);
  root["token_signing_key"] = config_.token_keys.signing_key_id;
  root["run_dir"] = config_.run_dir;
  root["log_level"] = config_.log_level;
  root["code_sender"] = "file";
  root["postgres"] = json::object{{"host", config_.postgres.host},
                                  {"port", config_.postgres.port},
                                  {"user", config_.postgres.user},
                                  {"password_file", config_.postgres.password_file},
                                  {"pool_size", config_.postgres.pool_size}};
  root["redis"] = json::object{{"host", config_.redis.host},
                               {"port", config_.redis.port},
                               {"timeout_ms", config_.redis.timeout_ms},
                               {"user", config_.redis.user},
                               {"password_file", config_.redis.password_file}};
  root["internal_tls"] = json::object{{"ca_file", config_.internal_tls.ca_file},
                                      {"cert_file", config_.internal_tls.cert_file},
                                      {"key_file", config_.internal_tls.key_file}};
  auto shards = [](const std::vector<ShardConfig>& v) {
    json::array a;
    for (const auto& s : v) {
      json::object o;
      json::array addrs;
      for (const auto& addr : s.addresses) addrs.emplace_back(addr);
      o["addresses"] = std::move(addrs);
      if (!s.database.empty()) o["database"] = s.database;
      a.emplace_back(std::move(o));
    }
    return a;
  };
  root["services"] = json::object{{"account", shards(config_.account)},
                                  {"presence", shards(config_.presence)},
                                  {"chat", shards(config_.chat)},
                                  {"group", shards(config_.group)}};
  json::array gws;
  for (const auto& g : config_.gateways) {
    json::object o{{"id", g.id}, {"listen", g.listen}};
    if (!g.trusted_proxies.empty()) {
      json::array t;
      for (const auto& r : g.trusted_proxies) t.emplace_back(r);
      o["trusted_proxies"] = std::move(t);
    }
    gws.emplace_back(std::move(o));
  }
  root["gateways"] = std::move(gws);
  root["limits"] = LimitsJson(config_.limits);
  const std::string text = json::serialize(root);
  config_ = ParseConfig(text);  // the same validation every process applies
  std::ofstream out(config_path_);
  out << text << "\n";
  if (!out) throw std::runtime_error("cannot write " + config_path_);
}

void TestCluster::Spawn(Process& p) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : p.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "CHAT_FAILPOINTS=", 16) != 0) env_strings.emplace_back(*e);
  if (!p.failpoints.empty()) env_strings.push_back("CHAT_FAILPOINTS=" + p.failpoints);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int log_fd = ::open(p.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + p.log_path + ": " + std::strerror(errno));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no cluster behind
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // The test's own sockets (client connections) must not live on in the child, or closing them
    // in the test would never reach the peer.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "e2e cluster: execv failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  try {
    p.child = chat::testing::ChildWatch(pid);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
}

void TestCluster::WaitReady(const std::vector<uint16_t>& tcp_ports, const std::vector<uint16_t>& http_ports,
                            const std::vector<Process*>& watch) {
  const auto deadline = Clock::now() + options_.ready_timeout;
  // Created before the first check, so a log line written between a check and the wait still wakes it.
  chat::testing::FileWatch logs(run_dir_, IN_MODIFY);
  std::vector<int> wake_fds{logs.fd()};
  for (Process* p : watch)
    if (p->child.pid() > 0) wake_fds.push_back(p->child.fd());
  std::vector<bool> tcp_ok(tcp_ports.size()), http_ok(http_ports.size());
  for (;;) {
    logs.Drain();
    for (Process* p : watch) {
      if (p->child.pid() <= 0) continue;
      if (auto status = p->child.WaitExit(0ms))
        Fail(p->name + " exited during start-up (wait status " + std::to_string(*status) + ")");
    }
    bool all = true;
    for (size_t i = 0; i < tcp_ports.size(); ++i) all &= (tcp_ok[i] = tcp_ok[i] || AcceptsTcp(tcp_ports[i]));
    for (size_t i = 0; i < http_ports.size(); ++i) all &= (http_ok[i] = http_ok[i] || HealthzOk(http_ports[i]));
    if (all) return;
    const auto now = Clock::now();
    if (now >= deadline) {
      std::string missing;
      for (size_t i = 0; i < tcp_ports.size(); ++i)
        if (!tcp_ok[i]) missing += " tcp:" + std::to_string(tcp_ports[i]);
      for (size_t i = 0; i < http_ports.size(); ++i)
        if (!http_ok[i]) missing += " healthz:" + std::to_string(http_ports[i]);
      Fail("cluster not ready within " + std::to_string(options_.ready_timeout.count()) + " ms; waiting for" + missing);
    }
    // Readiness has no event of its own; what can change it does: a process logs (each writes a
    // "ready" line once it listens) or exits (its pidfd turns readable, and it fails at once above).
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    chat::testing::WaitReadable(wake_fds, std::min<std::chrono::milliseconds>(kRecheckInterval, left));
  }
}

int TestCluster::Terminate(Process& p, int signal, std::chrono::milliseconds deadline) {
  if (p.child.pid() <= 0) return 0;
  ::kill(p.child.pid(), signal);
  if (auto status = p.child.WaitExit(deadline)) return *status;
  ::kill(p.child.pid(), SIGKILL);
  p.child.WaitExit(60s);  // a SIGKILLed process is gone at once
  return -1;
}

void TestCluster::Fail(const std::string& why) const {
  throw std::runtime_error("e2e cluster (" + run_dir_ + "): " + why + "\n" + LogTails());
}

std::string TestCluster::LogTails(size_t lines) const {
  std::string out;
  for (const auto* list : {&services_, &gateways_})
    for (const auto& p : *list) out += "---- " + p.log_path + " (last lines)\n" + Tail(p.log_path, lines);
  return out;
}

client::ConnectOptions TestCluster::Options(int gateway, WireEncoding encoding) const {
  client::ConnectOptions o;
  o.host = "127.0.0.1";
  o.port = gateway_port(gateway);
  o.encoding = encoding;
  o.timeout = 10s;
  if (record_) o.on_received = [record = record_, encoding](const std::string& bytes) { record(encoding, bytes); };
  return o;
}

std::vector<std::string> TestCluster::LogPaths() const {
  std::vector<std::string> out;
  for (const auto* list : {&services_, &gateways_})
    for (const auto& p : *list) out.push_back(p.log_path);
  return out;
}

void TestCluster::KillGateway(int i) { Terminate(gateways_.at(i), SIGKILL, 10s); }

int TestCluster::StopGateway(int i, std::chrono::milliseconds deadline) {
  return Terminate(gateways_.at(i), SIGTERM, deadline);
}

std::optional<int> TestCluster::WaitChatShardExit(int i, std::chrono::milliseconds timeout) {
  return services_.at(first_chat_ + i).child.WaitExit(timeout);
}

void TestCluster::RestartChatShard(int i, bool hard, const std::string& failpoints) {
  Process& p = services_.at(first_chat_ + i);
  Terminate(p, hard ? SIGKILL : SIGTERM, 15s);
  p.failpoints = failpoints;
  // The port stayed reserved (ReservePort); the new process binds it with SO_REUSEADDR, as gRPC does.
  Spawn(p);
  WaitReady({chat_ports_.at(i)}, {}, {&p});
}

void TestCluster::StopAccountShard(int i) { Terminate(services_.at(i), SIGTERM, 15s); }

void TestCluster::StartAccountShard(int i) {
  Process& p = services_.at(i);
  Spawn(p);
  WaitReady({service_ports_.at(i)}, {}, {&p});
}

void TestCluster::RestartWithTokenKeys(TokenKeys keys) {
  config_.token_keys = std::move(keys);
  WriteConfig();
  // Account shards first (they sign), then the gateways (they verify), each back on its port.
  for (int i = 0; i < options_.account_shards; ++i) {
    Process& p = services_.at(i);
    Terminate(p, SIGTERM, 15s);
    Spawn(p);
    WaitReady({service_ports_.at(i)}, {}, {&p});
  }
  for (size_t i = 0; i < gateways_.size(); ++i) {
    Terminate(gateways_[i], SIGTERM, 15s);
    Spawn(gateways_[i]);
    WaitReady({}, {gateway_ports_[i]}, {&gateways_[i]});
  }
}

User TestCluster::SignUp(int gateway, WireEncoding encoding, const std::string& display_name) const {
  User u;
  u.phone = client::RandomTestPhone();
  u.device_id = client::NewDeviceId();
  u.display_name = display_name;
  std::string error;
  auto session =
      client::SignUpNew(Options(gateway, encoding), codes_file(), u.phone, display_name, &error, u.device_id);
  if (!session)
    throw std::runtime_error("sign up of " + display_name + " on gateway " + std::to_string(gateway) +
                             " failed: " + error);
  u.id = session->user_id();
  u.handle = session->handle();
  u.token = session->token;
  u.conn = std::move(session->conn);
  if (u.id == 0 || u.token.empty()) throw std::runtime_error("sign up returned no user id or token");
  return u;
}

std::unique_ptr<client::Connection> TestCluster::Connect(const User& user, int gateway, WireEncoding encoding) const {
  std::string error;
  int http = 0;
  auto session = client::ConnectWithToken(Options(gateway, encoding), user.token, &error, &http);
  if (!session)
    throw std::runtime_error("connect of " + user.display_name + " to gateway " + std::to_string(gateway) +
                             " failed (HTTP " + std::to_string(http) + "): " + error);
  if (session->user_id() != user.id) throw std::runtime_error("connected as the wrong user");
  return std::move(session->conn);
}

std::string TestCluster::CodeFor(client::Connection& conn, const std::string& phone) const {
  const int64_t since = client::UnixMillis();
  v1::Reply r = client::RequestCode(conn, phone);
  if (r.status() != v1::OK) throw std::runtime_error("request_code: " + client::DescribeError(r));
  return client::WaitForCode(codes_file(), phone, since);
}

void TestCluster::MakeFriends(const User& a, const User& b) const {
  v1::Reply r = client::SendFriendRequest(a.c(), b.id, "hi from the e2e test");
  if (r.status() != v1::OK) throw std::runtime_error("send_friend_request: " + client::DescribeError(r));
  r = client::AcceptFriendRequest(b.c(), a.id);
  if (r.status() != v1::OK) throw std::runtime_error("accept_friend_request: " + client::DescribeError(r));
}

// ---- helpers -------------------------------------------------------------------------------------

bool IsMessage(const v1::Event& event, const std::string& conversation_id, uint64_t seq) {
  return event.has_message() && event.message().message().conversation_id() == conversation_id &&
         event.message().message().seq() == seq;
}

std::optional<v1::Message> WaitForMessage(client::Connection& conn, const std::string& conversation_id, uint64_t seq,
                                          std::chrono::milliseconds timeout) {
  auto e = conn.WaitEvent([&](const v1::Event& ev) { return IsMessage(ev, conversation_id, seq); }, timeout);
  if (!e) return std::nullopt;
  return e->message().message();
}

std::vector<v1::Message> FullHistory(client::Connection& conn, const std::string& conversation_id, uint64_t after_seq,
                                     uint32_t page) {
  std::vector<v1::Message> out;
  for (int pages = 0; pages < 10000; ++pages) {
    v1::Reply r = client::GetHistory(conn, conversation_id, after_seq, page);
    if (r.status() != v1::OK) throw std::runtime_error("get_history: " + client::DescribeError(r));
    for (const auto& m : r.history().messages()) {
      out.push_back(m);
      after_seq = std::max(after_seq, m.seq());
    }
    if (!r.history().has_more() || r.history().messages().empty()) return out;
  }
  throw std::runtime_error("get_history: too many pages");
}

std::optional<v1::ConversationSummary> FindConversation(client::Connection& conn, const std::string& conversation_id) {
  v1::Reply r = client::ListConversations(conn);
  if (r.status() != v1::OK) throw std::runtime_error("list_conversations: " + client::DescribeError(r));
  for (const auto& c : r.conversations().conversations())
    if (c.conversation_id() == conversation_id) return c;
  return std::nullopt;
}

std::string Diag(const client::Connection& conn) {
  return std::string(" (connection: ") + (conn.is_open() ? "open" : "closed") + ", " +
         std::to_string(conn.undecodable_messages()) + " undecodable, " + std::to_string(conn.frame_type_mismatches()) +
         " wrong frame type, " + std::to_string(conn.PendingEvents()) + " events queued)";
}

std::string TextOf(const v1::Message& m) { return m.content().has_text() ? m.content().text().text() : std::string(); }

uint64_t SendTextOk(client::Connection& conn, const std::string& conversation_id, const std::string& text,
                    std::string* client_msg_id_out) {
  std::string id = client::NewClientMsgId();
  v1::Reply r = client::SendText(conn, conversation_id, id, text);
  if (r.status() != v1::OK) throw std::runtime_error("send_message: " + client::DescribeError(r));
  if (client_msg_id_out) *client_msg_id_out = id;
  return r.send_message().seq();
}

}  // namespace chat::e2e
