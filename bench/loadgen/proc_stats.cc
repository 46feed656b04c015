#include "proc_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace bench {
namespace {

struct Stat {
  int ppid = 0;
  uint64_t ticks = 0;
  uint64_t rss_pages = 0;
};

bool ReadStat(int pid, Stat* out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return false;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // The command name may contain spaces and parentheses: fields resume after the last ')'.
  char* p = std::strrchr(buf, ')');
  if (!p) return false;
  p += 2;  // state
  // Fields from 3 (state): ppid=4, utime=14, stime=15, rss=24.
  int field = 3;
  char* save = nullptr;
  for (char* tok = strtok_r(p, " ", &save); tok; tok = strtok_r(nullptr, " ", &save), ++field) {
    if (field == 4) out->ppid = std::atoi(tok);
    if (field == 14 || field == 15) out->ticks += std::strtoull(tok, nullptr, 10);
    if (field == 24) {
      out->rss_pages = std::strtoull(tok, nullptr, 10);
      return true;
    }
  }
  return false;
}

}  // namespace

double TicksPerSecond() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

uint64_t RssOf(int pid) {
  Stat s;
  if (!ReadStat(pid, &s)) return 0;
  return s.rss_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::vector<ProcSample> SampleProcesses(const std::vector<WatchedProcess>& procs) {
  std::unordered_map<int, Stat> all;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      int pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      Stat s;
      if (ReadStat(pid, &s)) all.emplace(pid, s);
    }
    closedir(d);
  }
  std::unordered_map<int, std::vector<int>> children;
  for (auto& [pid, s] : all) children[s.ppid].push_back(pid);
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  std::vector<ProcSample> out;
  for (const auto& w : procs) {
    ProcSample sample;
    std::vector<int> stack{w.pid};
    while (!stack.empty()) {
      int pid = stack.back();
      stack.pop_back();
      auto it = all.find(pid);
      if (it == all.end()) continue;
      if (pid == w.pid) sample.alive = true;
      sample.cpu_ticks += it->second.ticks;
      sample.rss_bytes += it->second.rss_pages * page;
      for (int c : children[pid]) stack.push_back(c);
    }
    out.push_back(sample);
  }
  return out;
}

}  // namespace bench
