// Micro-benchmark of the text policy on the send path (common/text_policy.h): nanoseconds of thread
// CPU time per NormalizeText call (the copy of the text a send makes anyway included, and shown
// alone) for message texts of 20 and 4,000 characters in several scripts, and for display names.
// Run pinned to one core, e.g. `taskset -c 1 build/bin/text-policy-bench`; the figures are
// recorded in docs/benchmarks.md. CPU time, not wall time, so a busy shared machine distorts less.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/text_policy.h"

namespace {

// Thread CPU time.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<Clock, duration>;
  static time_point now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec));
  }
};

std::string Repeat(const std::string& unit, size_t code_points, size_t unit_code_points) {
  std::string s;
  for (size_t n = 0; n + unit_code_points <= code_points; n += unit_code_points) s += unit;
  return s;
}

struct Case {
  const char* name;
  chat::TextRule rule;
  std::string text;
};

}  // namespace

int main(int argc, char** argv) {
  // text-policy-bench [CASE_SUBSTRING [CALLS]]: only the matching cases, CALLS calls per round
  // (for `valgrind --tool=callgrind`, whose instruction counts a busy machine cannot distort).
  const std::string only = argc > 1 ? argv[1] : "";
  const size_t fixed_iters = argc > 2 ? std::stoul(argv[2]) : 0;
  const int rounds = fixed_iters ? 1 : 3;
  const auto warm_start = Clock::now();
  chat::PrepareTextPolicy();
  const double table_ms = std::chrono::duration<double, std::milli>(Clock::now() - warm_start).count();
  std::printf("one-time NFC table: %.1f ms\n", table_ms);

  const chat::TextRule message{chat::TextKind::kMessage, 1, 4000};
  const chat::TextRule name{chat::TextKind::kName, 1, 32};
  const std::string ascii = "The quick brown fox jumps over the lazy dog. 0123456789 ";  // 56
  std::vector<Case> cases{
      {"ASCII, 20 chars", message, ascii.substr(0, 20)},
      {"ASCII, 4000 chars", message, Repeat(ascii.substr(0, 50), 4000, 50)},
      {"Chinese, 20 chars", message, Repeat("\xE4\xBD\xA0\xE5\xA5\xBD", 20, 2)},
      {"Chinese, 4000 chars", message, Repeat("\xE4\xBD\xA0\xE5\xA5\xBD", 4000, 2)},
      {"French (precomposed, NFC), 4000 chars", message, Repeat("caf\xC3\xA9 ", 4000, 5)},
      {"French (decomposed: 4800 in, 4000 after NFC)", message, Repeat("cafe\xCC\x81 ", 4800, 6)},
      {"Hindi (combining marks), 4000 chars", message,
       Repeat("\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87 ", 4000, 7)},
      {"display name, ASCII", name, "Alice Smith"},
      {"display name, Chinese", name, "\xE5\xBC\xA0\xE4\xB8\x89"},
  };
  for (const Case& c : cases) {
    if (std::string(c.name).find(only) == std::string::npos) continue;
    // About 100 MB of text per round, at least 20,000 calls.
    const size_t iters = fixed_iters ? fixed_iters : std::max<size_t>(20000, 100'000'000 / (c.text.size() + 1));
    std::printf("%-45s", c.name);
    for (int r = 0; r < rounds; ++r) {
      size_t sink = 0;
      const auto t0 = Clock::now();
      for (size_t i = 0; i < iters; ++i) {
        std::string s = c.text;  // the send path owns a copy of the request's content too
        if (!chat::NormalizeText("text", c.rule, &s).ok()) {
          std::fprintf(stderr, "\n%s: refused\n", c.name);
          return 1;
        }
        sink += s.size();
      }
      const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
      std::printf("  %9.0f ns", ns);
      if (sink == 0) std::printf("?");
    }
    // The same copy without the policy, to subtract.
    size_t sink = 0;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < iters; ++i) {
      std::string s = c.text;
      sink += s.size();
      asm volatile("" : : "r"(s.data()) : "memory");
    }
    const double copy_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
    std::printf("   (copy alone %.0f ns)%s\n", copy_ns, sink == 0 ? "?" : "");
  }
  return 0;
}
