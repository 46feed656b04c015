// Per-address limits behind a balancer (gateway/src/admission.h): the PROXY protocol from trusted
// balancer addresses only, the per-address verdict before any HTTP is read, and a real haproxy
// (send-proxy-v2) in front of a gateway.
//
// One cluster for the suite: one gateway trusting 127.0.0.8 (raw sockets playing a balancer) and
// 127.0.0.9 (haproxy's source address), max_connections_per_ip 3 and a 4 s handshake timeout, so
// "closed at once" and "closed at the timeout" are seconds apart. Clients pick their address by
// binding a 127.0.0.x source before connecting (all of 127/8 is loopback). Each test uses client
// addresses of its own: open connections hold their address's slots until they end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cluster.h"

namespace chat::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kPerIp = 3;
constexpr uint32_t kHandshakeMs = 4000;
constexpr char kBalancer[] = "127.0.0.8";
constexpr char kHaproxySource[] = "127.0.0.9";

const std::string kUpgrade =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

// A TCP connection from a chosen loopback source address, on a blocking socket.
class Tcp {
 public:
  Tcp(const std::string& source, uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &a.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("bind " + source + ": " + std::strerror(errno));
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
  }
  ~Tcp() { ::close(fd_); }
  Tcp(const Tcp&) = delete;
  Tcp& operator=(const Tcp&) = delete;

  void Send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  enum class End { kOpen, kEof, kReset };
  struct Reply {
    std::string bytes;
    End end = End::kOpen;  // kOpen: still open when the wait ended
    milliseconds took{0};
  };
  // Reads until the server closes or `timeout` passes (or, when `until` is given, until it arrives).
  Reply Read(milliseconds timeout, const std::string& until = "") {
    Reply r;
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    for (;;) {
      if (!until.empty() && r.bytes.find(until) != std::string::npos) break;
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        r.bytes.append(buf, static_cast<size_t>(n));
        continue;
      }
      r.end = n == 0 ? End::kEof : End::kReset;
      break;
    }
    r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    return r;
  }

 private:
  int fd_;
};

std::string V1(const std::string& family, const std::string& src, const std::string& dst) {
  return "PROXY " + family + " " + src + " " + dst + " 40000 8080\r\n";
}

// A v2 PROXY header for a TCP client (IPv4 or IPv6 source), or LOCAL when `source` is empty.
std::string V2(const std::string& source) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  if (source.empty()) return h + std::string("\x20\x00\x00\x00", 4);
  std::string body;
  uint8_t b[16] = {};
  const bool v6 = source.find(':') != std::string::npos;
  ::inet_pton(v6 ? AF_INET6 : AF_INET, source.c_str(), b);
  const size_t n = v6 ? 16 : 4;
  body.append(reinterpret_cast<char*>(b), n);
  uint8_t dst[16] = {};
  dst[n - 1] = 1;
  body.append(reinterpret_cast<char*>(dst), n);
  body += std::string("\x9c\x40\x1f\x90", 4);  // ports 40000, 8080
  body += std::string("\x04\x00\x03xyz", 6);   // a TLV (PP2_TYPE_NOOP): skipped
  h += '\x21';                                 // version 2, PROXY
  h += v6 ? '\x21' : '\x11';                   // TCP over IPv6 / IPv4
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

bool Is429(const Tcp::Reply& r) { return r.bytes.rfind("HTTP/1.1 429 ", 0) == 0; }
bool Is101(const Tcp::Reply& r) { return r.bytes.rfind("HTTP/1.1 101 ", 0) == 0; }
bool Is200(const Tcp::Reply& r) { return r.bytes.rfind("HTTP/1.1 200 ", 0) == 0; }

class ProxyProtocol : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.gateways = 1;
    o.chat_shards = 1;
    o.limits.gateway.max_connections_per_ip = kPerIp;
    o.limits.gateway.handshake_timeout_ms = kHandshakeMs;
    o.trusted_proxies = {kBalancer, kHaproxySource};
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  uint16_t port() const { return cluster_->gateway_port(0); }

  // Opens kPerIp WebSocket sessions for `client` through the raw balancer with `header`; they hold
  // the address's slots while they live (unauthenticated, until auth_timeout_ms).
  std::vector<std::unique_ptr<Tcp>> FillQuota(const std::string& header) {
    std::vector<std::unique_ptr<Tcp>> held;
    for (uint32_t i = 0; i < kPerIp; ++i) {
      held.push_back(std::make_unique<Tcp>(kBalancer, port()));
      held.back()->Send(header + kUpgrade);
      auto r = held.back()->Read(milliseconds(5000), "\r\n\r\n");
      EXPECT_TRUE(Is101(r)) << "session " << i << " through the balancer: " << r.bytes;
    }
    return held;
  }

  static TestCluster* cluster_;
};
TestCluster* ProxyProtocol::cluster_ = nullptr;

TEST_F(ProxyProtocol, SilentSocketsBeyondThePerAddressCapAreClosedAtOnce) {
  // kPerIp silent sockets take the address's slots (and would hold them for the handshake timeout).
  std::vector<std::unique_ptr<Tcp>> silent;
  for (uint32_t i = 0; i < kPerIp; ++i) silent.push_back(std::make_unique<Tcp>("127.0.0.2", port()));
  // Every further one is answered 429 and closed before it sends a byte.
  constexpr int kBeyond = 50;
  milliseconds slowest{0};
  for (int i = 0; i < kBeyond; ++i) {
    Tcp extra("127.0.0.2", port());
    auto r = extra.Read(milliseconds(kHandshakeMs * 2));
    ASSERT_TRUE(Is429(r)) << "socket " << i << ": " << r.bytes;
    EXPECT_NE(r.bytes.find("too many connections from your address"), std::string::npos) << r.bytes;
    ASSERT_EQ(r.end, Tcp::End::kEof) << "socket " << i;
    slowest = std::max(slowest, r.took);
  }
  EXPECT_LT(slowest.count(), 1000) << "a refused socket waited for something (handshake timeout " << kHandshakeMs
                                   << " ms)";
  std::printf("refused %d silent sockets beyond the cap; slowest close %lld ms\n", kBeyond,
              static_cast<long long>(slowest.count()));
  // The admitted silent sockets are still open, and other addresses are served.
  for (auto& s : silent) EXPECT_EQ(s->Read(milliseconds(50)).end, Tcp::End::kOpen);
  Tcp other("127.0.0.3", port());
  other.Send(kHealthz);
  EXPECT_TRUE(Is200(other.Read(milliseconds(5000))));
}

TEST_F(ProxyProtocol, ARefusedClientThatSentItsRequestStillReads429) {
  std::vector<std::unique_ptr<Tcp>> silent;
  for (uint32_t i = 0; i < kPerIp; ++i) silent.push_back(std::make_unique<Tcp>("127.0.0.5", port()));
  int got_429 = 0;
  constexpr int kTries = 20;
  for (int i = 0; i < kTries; ++i) {
    Tcp extra("127.0.0.5", port());
    extra.Send(kUpgrade);  // usually in before the refusal: the close then resets the connection
    auto r = extra.Read(milliseconds(5000));
    EXPECT_NE(r.end, Tcp::End::kOpen);
    got_429 += Is429(r);
  }
  EXPECT_EQ(got_429, kTries) << "the reset after the 429 made the client lose it";
}

TEST_F(ProxyProtocol, TrustedBalancerV1NamesTheClientAndTheLimitBitesPerClient) {
  auto held = FillQuota(V1("TCP4", "198.51.100.20", "127.0.0.1"));
  // The balancer's address now has kPerIp connections, but the limit is the client's.
  Tcp fourth(kBalancer, port());
  fourth.Send(V1("TCP4", "198.51.100.20", "127.0.0.1"));  // no HTTP yet: refused right after the header
  auto r = fourth.Read(milliseconds(kHandshakeMs * 2));
  EXPECT_TRUE(Is429(r)) << r.bytes;
  EXPECT_LT(r.took.count(), 1000);
  for (const std::string other : {"198.51.100.21", "198.51.100.22"}) {
    Tcp c(kBalancer, port());
    c.Send(V1("TCP4", other, "127.0.0.1") + kUpgrade);
    EXPECT_TRUE(Is101(c.Read(milliseconds(5000), "\r\n\r\n"))) << other << " behind the same balancer";
  }
  Tcp v6(kBalancer, port());
  v6.Send(V1("TCP6", "2001:db8::20", "::1") + kHealthz);
  EXPECT_TRUE(Is200(v6.Read(milliseconds(5000))));
}

TEST_F(ProxyProtocol, TrustedBalancerV2NamesTheClientOverIpv4AndIpv6) {
  // An IPv6 client is its /64 (limits.gateway.ip_limit_v6_prefix_bits): another address of the same
  // /64 is the same client, the next /64 another one.
  struct Case {
    std::string client, same, other;
  };
  for (const auto& [client, same, other] : {Case{"198.51.100.30", "198.51.100.30", "198.51.100.31"},
                                            Case{"2001:db8::30", "2001:db8::ffff:31", "2001:db8:0:1::30"}}) {
    auto held = FillQuota(V2(client));
    Tcp fourth(kBalancer, port());
    fourth.Send(V2(same) + kUpgrade);
    auto r = fourth.Read(milliseconds(5000));
    EXPECT_TRUE(Is429(r)) << same << " after " << client << ": " << r.bytes;
    Tcp next(kBalancer, port());
    next.Send(V2(other) + kUpgrade);
    EXPECT_TRUE(Is101(next.Read(milliseconds(5000), "\r\n\r\n"))) << other << " behind the same balancer";
  }
  // LOCAL (a balancer's own health check) is the balancer itself.
  Tcp check(kBalancer, port());
  check.Send(V2("") + kHealthz);
  EXPECT_TRUE(Is200(check.Read(milliseconds(5000))));
}

TEST_F(ProxyProtocol, ATrustedPeerMustSendAValidHeaderInTime) {
  Tcp plain(kBalancer, port());  // speaks HTTP straight away: not a PROXY header
  plain.Send(kHealthz);
  Tcp bad(kBalancer, port());
  bad.Send("PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n" + kHealthz);
  Tcp silent(kBalancer, port());
  Tcp partial(kBalancer, port());
  partial.Send("PROXY TCP4 198.51.100.40 ");  // never finished
  for (Tcp* t : {&plain, &bad}) {
    auto r = t->Read(milliseconds(kHandshakeMs * 2));
    EXPECT_EQ(r.bytes, "") << "answered without a PROXY header";
    EXPECT_NE(r.end, Tcp::End::kOpen);
    EXPECT_LT(r.took.count(), 1000) << "an invalid header is refused at once";
  }
  for (Tcp* t : {&silent, &partial}) {
    auto r = t->Read(milliseconds(kHandshakeMs * 3));
    EXPECT_EQ(r.bytes, "");
    EXPECT_NE(r.end, Tcp::End::kOpen) << "still open after " << r.took.count() << " ms";
    EXPECT_LT(r.took.count(), kHandshakeMs + 1500) << "closed late";
  }
}

TEST_F(ProxyProtocol, AnUntrustedPeerCannotClaimAnAddress) {
  // 127.0.0.4 is a client, not a balancer: a PROXY header is not HTTP, and nothing is answered.
  for (const std::string& header : {V1("TCP4", "198.51.100.50", "127.0.0.1"), V2("198.51.100.50")}) {
    Tcp spoof("127.0.0.4", port());
    spoof.Send(header + kHealthz);
    auto r = spoof.Read(milliseconds(5000));
    EXPECT_EQ(r.bytes, "") << "a PROXY header from an untrusted peer was accepted";
    EXPECT_NE(r.end, Tcp::End::kOpen);
  }
  Tcp plain("127.0.0.4", port());
  plain.Send(kHealthz);
  EXPECT_TRUE(Is200(plain.Read(milliseconds(5000)))) << "the same peer speaking plain HTTP is served";
}

// A real haproxy (the Debian package) in TCP mode in front of gateway `gw_port`, sending PROXY v2
// from kHaproxySource, with /healthz checks (which then carry PROXY headers too). Stopped with
// SIGKILL when destroyed; dies with the test (PR_SET_PDEATHSIG).
class Haproxy {
 public:
  Haproxy(const std::string& run_dir, uint16_t gw_port)
      : port_(chat::testing::ReservedPort::Use::kForListener),
        config_(run_dir + "/haproxy.cfg"),
        stats_(run_dir + "/haproxy.sock"),
        log_(run_dir + "/haproxy.log") {
    std::ofstream(config_) << "global\n    maxconn 1000\n    stats socket " << stats_
                           << "\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n"
                              "    timeout server 30s\n    timeout check 2s\nfrontend chat_ws\n    bind "
                           << port_.address()
                           << "\n    default_backend chat_gateways\nbackend chat_gateways\n    option httpchk\n"
                              "    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost\n"
                              "    http-check expect status 200\n    server gw 127.0.0.1:"
                           << gw_port << " send-proxy-v2 source " << kHaproxySource
                           << " check inter 300ms fall 1 rise 1\n";
    std::string exe = "/usr/sbin/haproxy", db = "-db", f = "-f";
    char* argv[] = {exe.data(), db.data(), f.data(), config_.data(), nullptr};
    const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      ::execv(argv[0], argv);
      ::_exit(127);
    }
    ::close(log_fd);
    if (pid < 0) throw std::runtime_error("fork failed");
    child_ = chat::testing::ChildWatch(pid);
  }
  ~Haproxy() {
    if (child_.pid() > 0) {
      ::kill(child_.pid(), SIGKILL);
      child_.WaitExit(milliseconds(5000));
    }
  }

  uint16_t port() const { return port_.port(); }
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Waits until haproxy's own health check of the gateway has passed (L7OK: a 200 from /healthz,
  // through a PROXY header) and the frontend answers; false if haproxy exits or `timeout` passes.
  bool WaitUp(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (Stat().find("L7OK") != std::string::npos) return true;
      if (child_.WaitExit(milliseconds(100))) return false;  // the pause between looks, or its end
    }
    return false;
  }

  // "show stat" from the stats socket ("" when it does not answer yet).
  std::string Stat() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, stats_.c_str(), sizeof a.sun_path - 1);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const std::string cmd = "show stat\n";
      if (::send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(cmd.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
      }
    }
    ::close(fd);
    return out;
  }

 private:
  chat::testing::ReservedPort port_;
  std::string config_, stats_, log_;
  chat::testing::ChildWatch child_;
};

TEST_F(ProxyProtocol, BehindHaproxyTheLimitBitesPerRealClientAddress) {
  Haproxy haproxy(cluster_->run_dir(), port());
  ASSERT_TRUE(haproxy.WaitUp(milliseconds(10000))) << "haproxy did not pass its /healthz check:\n"
                                                   << haproxy.Stat() << haproxy.log();
  // Clients of haproxy: 127.0.0.20 fills its quota with WebSocket sessions.
  std::vector<std::unique_ptr<Tcp>> held;
  for (uint32_t i = 0; i < kPerIp; ++i) {
    held.push_back(std::make_unique<Tcp>("127.0.0.20", haproxy.port()));
    held.back()->Send(kUpgrade);
    auto r = held.back()->Read(milliseconds(5000), "\r\n\r\n");
    ASSERT_TRUE(Is101(r)) << "session " << i << " through haproxy: " << r.bytes;
  }
  // Its next connection is refused at once, before it sends anything...
  Tcp fourth("127.0.0.20", haproxy.port());
  auto r = fourth.Read(milliseconds(kHandshakeMs * 2));
  EXPECT_TRUE(Is429(r)) << r.bytes;
  EXPECT_LT(r.took.count(), 1000);
  // ...and so is a direct one from the same address: one client, one quota.
  Tcp direct("127.0.0.20", port());
  EXPECT_TRUE(Is429(direct.Read(milliseconds(kHandshakeMs * 2))));
  // Without the PROXY header every client would be haproxy's 127.0.0.9, already at its cap.
  for (const char* other : {"127.0.0.21", "127.0.0.22"}) {
    Tcp c(other, haproxy.port());
    c.Send(kUpgrade);
    EXPECT_TRUE(Is101(c.Read(milliseconds(5000), "\r\n\r\n"))) << other << " through haproxy";
  }
}

}  // namespace
}  // namespace chat::e2e
