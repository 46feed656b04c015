// chat-cli entry point: blocks the termination signals before any thread exists (the connection's
// I/O thread inherits the mask; `watch` waits for them with sigtimedwait), then runs the CLI.
#include <signal.h>

#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return chat::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
