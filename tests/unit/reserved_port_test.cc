// ReservedPort (tests/support/test_env.h): the kernel behaviour the e2e cluster and the store tests
// rely on to hand ports to servers without a bind-close-reuse race. That autobind never takes a held
// port was checked by exhausting a 10-port ip_local_port_range in a network namespace; here the
// cheap part: which explicit binds may share the port, and that a restarted listener can bind again.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "test_env.h"

namespace chat::testing {
namespace {

using Use = ReservedPort::Use;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A socket with the given options bound to 127.0.0.1:port, or -1 with errno.
int BoundSocket(uint16_t port, bool reuse_addr, bool reuse_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (reuse_addr) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a = Loopback(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// connect() to 127.0.0.1:port: the connected fd, or -1 with errno.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// Listens on fd, connects, accepts and passes one byte; closes everything (the accepted side is
// closed first, so a TIME_WAIT socket stays on the port).
void ServeOnce(int listen_fd, uint16_t port) {
  ASSERT_EQ(::listen(listen_fd, 8), 0) << std::strerror(errno);
  int c = Connect(port);
  ASSERT_GE(c, 0) << std::strerror(errno);
  int a = ::accept(listen_fd, nullptr, nullptr);
  ASSERT_GE(a, 0) << std::strerror(errno);
  char byte = 'x';
  ASSERT_EQ(::send(c, &byte, 1, 0), 1);
  byte = 0;
  ASSERT_EQ(::recv(a, &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'x');
  ::close(a);
  ::close(c);
  ::close(listen_fd);
}

TEST(ReservedPort, ClosedPortRefusesConnectionsAndCannotBeBound) {
  ReservedPort held(Use::kClosed);
  ASSERT_GT(held.port(), 0);
  EXPECT_EQ(held.address(), "127.0.0.1:" + std::to_string(held.port()));
  EXPECT_EQ(Connect(held.port()), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  for (bool reuse_addr : {false, true})
    for (bool reuse_port : {false, true}) {
      EXPECT_EQ(BoundSocket(held.port(), reuse_addr, reuse_port), -1)
          << "SO_REUSEADDR " << reuse_addr << " SO_REUSEPORT " << reuse_port;
      EXPECT_EQ(errno, EADDRINUSE);
    }
}

TEST(ReservedPort, ListenerWithReuseAddrServesAndRebindsWhileHeld) {
  ReservedPort held(Use::kForListener);
  EXPECT_EQ(Connect(held.port()), -1) << "nothing listens yet";
  EXPECT_EQ(errno, ECONNREFUSED);
  // Without SO_REUSEADDR (SO_REUSEPORT alone included) the port stays taken.
  EXPECT_EQ(BoundSocket(held.port(), false, false), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  EXPECT_EQ(BoundSocket(held.port(), false, true), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  // As the gateway binds (SO_REUSEADDR), then as gRPC does (both), each after the previous listener
  // closed: a restarted server gets its port back.
  for (bool reuse_port : {false, true, false}) {
    int fd = BoundSocket(held.port(), true, reuse_port);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ServeOnce(fd, held.port());
  }
  EXPECT_EQ(Connect(held.port()), -1) << "the reservation itself never accepts";
}

TEST(ReservedPort, AutobindDoesNotHandOutAHeldPort) {
  // A sample, not a proof (the proof is exhausting a tiny port range, see the file comment).
  std::vector<ReservedPort> held;
  for (int i = 0; i < 4; ++i) held.emplace_back(i % 2 ? Use::kClosed : Use::kForListener);
  std::set<uint16_t> ports;
  for (const auto& h : held) ports.insert(h.port());
  EXPECT_EQ(ports.size(), held.size());
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) {
    int fd = BoundSocket(0, i % 2 == 0, false);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    fds.push_back(fd);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    EXPECT_EQ(ports.count(ntohs(a.sin_port)), 0u);
  }
  for (int fd : fds) ::close(fd);
  // A moved reservation keeps holding the port; the moved-from one holds nothing.
  ReservedPort moved = std::move(held[0]);
  EXPECT_EQ(BoundSocket(moved.port(), false, false), -1);
  EXPECT_EQ(held[0].port(), 0);
}

}  // namespace
}  // namespace chat::testing
