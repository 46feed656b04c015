// The waiting helpers of tests/support/wait.h: each wakes on its event, and times out without it.
#include "wait.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <thread>

namespace chat::testing {
namespace {

using namespace std::chrono_literals;

TEST(Signal, WakesTheWaiterOnNotifyAndTimesOutWithout) {
  Signal signal;
  std::atomic<bool> ready{false};  // changed outside the signal's mutex: Notify must still be seen
  EXPECT_FALSE(signal.WaitFor([&] { return ready.load(); }, 10ms));
  std::thread t([&] {
    ready = true;
    signal.Notify();
  });
  EXPECT_TRUE(signal.WaitFor([&] { return ready.load(); }, 10s));
  t.join();
  int n = 0;
  signal.Update([&] { n = 2; });
  EXPECT_TRUE(signal.WaitFor([&] { return n == 2; }, 0ms));
}

TEST(ChildWatch, ReapsAnExitedChildAndWaitsForARunningOne) {
  pid_t quick = ::fork();
  if (quick == 0) ::_exit(7);
  ChildWatch q(quick);
  auto status = q.WaitExit(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 7);
  EXPECT_EQ(q.pid(), -1);
  EXPECT_EQ(q.WaitExit(0ms), 0) << "a reaped child answers at once";

  int hold[2];
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  pid_t slow = ::fork();
  if (slow == 0) {  // runs until the test closes its end of the pipe
    char c;
    ::close(hold[1]);
    (void)!::read(hold[0], &c, 1);
    ::_exit(0);
  }
  ::close(hold[0]);
  ChildWatch s(slow);
  EXPECT_FALSE(s.WaitExit(20ms)) << "still running";
  EXPECT_EQ(WaitReadable(std::vector<int>{s.fd()}, 0ms), -1);
  ::kill(slow, SIGKILL);
  status = s.WaitExit(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  ::close(hold[1]);
}

TEST(FileWatch, SeesAWriteMadeBeforeOrDuringTheWait) {
  char dir[] = "/tmp/wait-test.XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string file = std::string(dir) + "/f";
  FileWatch watch(dir, IN_MODIFY);
  EXPECT_FALSE(watch.Wait(10ms));
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "a", 1), 1);  // before the wait: kept until then
  EXPECT_TRUE(watch.Wait(10s));
  EXPECT_FALSE(watch.Wait(0ms)) << "Wait consumed the events";
  std::thread writer([&] { (void)!::write(fd, "b", 1); });
  EXPECT_TRUE(watch.Wait(10s));
  writer.join();
  ::close(fd);
  ::unlink(file.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace chat::testing
