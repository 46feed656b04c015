#pragma once
// Waiting on events with a deadline, for tests (STYLE.md 14: never on a bare sleep).
//
// Header-only, on the C++ standard library and Linux system calls alone, so that suites which link
// chat_core only (client/tests) can include it without linking chat_test_support.
//
//   Signal       a condition another thread changes: the changer notifies, the test waits for a
//                predicate with a timeout.
//   WaitReadable poll() on file descriptors with a timeout (sockets, pidfds, inotify).
//   ChildWatch   a child process through its pidfd (pidfd_open, Linux 5.3+): readable when the
//                child exits, so its exit is awaited, never polled with waitpid(WNOHANG) and a sleep.
//   FileWatch    inotify on one file or directory: wakes when it is accessed, written, closed...
//
// Every wait takes a timeout and returns false (or nullopt) when it passes; none throws on timeout.
// The constructors throw std::system_error when the kernel refuses the descriptor.
#include <poll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace chat::testing {

// A condition that other threads change and a test waits for. The changing side calls Notify()
// after each change (or makes the change inside Update). Notify takes the mutex, so a waiter that
// has just found its predicate false cannot miss the wake-up, even when the state is an atomic
// changed outside the mutex. Any thread may call any method.
class Signal {
 public:
  // Runs `change` under the mutex, then wakes every waiter.
  template <typename F>
  void Update(F&& change) {
    {
      std::lock_guard lk(mu_);
      change();
    }
    cv_.notify_all();
  }
  void Notify() {
    Update([] {});
  }
  // Blocks until pred() holds or `timeout` passes; returns pred()'s last value. pred runs under the
  // mutex, at the start and after every Notify.
  template <typename P>
  bool WaitFor(P pred, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, pred);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// Blocks until one of `fds` is readable (or hung up, or in error) or `timeout` passes; returns the
// index of the first such fd, or -1 on timeout. Restarts after EINTR with the time left.
inline int WaitReadable(const std::vector<int>& fds, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + timeout;
  std::vector<pollfd> pfds;
  for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    const int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::max<long long>(0, left.count())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "poll");
    if (n == 0) return -1;
    for (size_t i = 0; i < pfds.size(); ++i)
      if (pfds[i].revents != 0) return static_cast<int>(i);
  }
}
inline bool WaitReadable(int fd, std::chrono::milliseconds timeout) {
  return WaitReadable(std::vector<int>{fd}, timeout) == 0;
}

// One child of this process, watched through its pidfd. Owns the pidfd and reaps the child (no
// other code may waitpid it). Not thread-safe: one thread uses it.
class ChildWatch {
 public:
  ChildWatch() = default;
  explicit ChildWatch(pid_t pid) : pid_(pid), fd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "pidfd_open");
  }
  ChildWatch(ChildWatch&& o) noexcept : pid_(std::exchange(o.pid_, -1)), fd_(std::exchange(o.fd_, -1)) {}
  ChildWatch& operator=(ChildWatch&& o) noexcept {
    if (this != &o) {
      Close();
      pid_ = std::exchange(o.pid_, -1);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~ChildWatch() { Close(); }

  // -1 once the child was reaped (or for a default-constructed watch).
  pid_t pid() const { return pid_; }
  // Readable once the child has exited; for WaitReadable together with other descriptors.
  int fd() const { return fd_; }
  // Waits up to `timeout` for the child to exit, then reaps it and returns its wait status; nullopt
  // while it still runs. A reaped (or never started) child answers 0 at once.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return 0;
    if (!WaitReadable(fd_, timeout)) return std::nullopt;
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid_, &status, 0);
    while (r < 0 && errno == EINTR);
    Close();
    return status;
  }

 private:
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int fd_ = -1;
};

// An inotify watch on one path for the events in `mask` (IN_MODIFY, IN_CLOSE_NOWRITE, ...; see
// inotify(7)); for a directory, events of the files in it count. Events that arrive between two
// waits are kept, so checking a state and then waiting never misses a change. One thread uses it.
class FileWatch {
 public:
  FileWatch(const std::string& path, uint32_t mask) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    if (::inotify_add_watch(fd_, path.c_str(), mask) < 0) {
      const int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::generic_category(), "inotify_add_watch " + path);
    }
  }
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;
  ~FileWatch() { ::close(fd_); }

  // Readable while events are pending; for WaitReadable together with other descriptors.
  int fd() const { return fd_; }
  // Waits up to `timeout` for at least one event and consumes every pending one; false on timeout.
  bool Wait(std::chrono::milliseconds timeout) {
    if (!WaitReadable(fd_, timeout)) return false;
    Drain();
    return true;
  }
  // Consumes the pending events without waiting.
  void Drain() {
    alignas(inotify_event) char buf[4096];
    while (::read(fd_, buf, sizeof buf) > 0) {
    }
  }

 private:
  int fd_;
};

}  // namespace chat::testing
