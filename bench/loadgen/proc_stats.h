#pragma once
// CPU and memory of server processes, read from /proc. A watched process counts with all of its
// descendants (PostgreSQL's backends are children of the postmaster). RSS of a tree double counts
// shared pages (PostgreSQL shared_buffers); compare like with like.
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct ProcSample {
  uint64_t cpu_ticks = 0;  // utime + stime of the tree, clock ticks
  uint64_t rss_bytes = 0;  // sum of VmRSS of the tree
  bool alive = false;
};

struct WatchedProcess {
  std::string name;
  int pid = 0;
};

// Reads every watched process (and its descendants) in one scan of /proc.
std::vector<ProcSample> SampleProcesses(const std::vector<WatchedProcess>& procs);
// The user-space RSS of one process only (no descendants), bytes; 0 if gone.
uint64_t RssOf(int pid);
double TicksPerSecond();

}  // namespace bench
