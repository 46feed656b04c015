// The one flag parser: declared flags in both spellings, every error a process exits 2 for, named.
#include "common/flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chat {
namespace {

// TryParse on argv built from `args` (argv[0] is the program).
std::string Parse(Flags& flags, std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return flags.TryParse(static_cast<int>(argv.size()), argv.data());
}

struct Parsed {
  std::string config;
  int shard = -1;
  int replica = 0;
};

Flags Declare(Parsed& p) {
  Flags f("prog", "prog: a test");
  f.Add("config", &p.config, "the config", true);
  f.Add("shard", &p.shard, "the shard", true);
  f.Add("replica", &p.replica, "the replica");
  return f;
}

TEST(Flags, BothSpellingsFillTheOutputs) {
  Parsed p;
  Flags f = Declare(p);
  EXPECT_EQ(Parse(f, {"--config", "/tmp/c.json", "--shard=3"}), "");
  EXPECT_EQ(p.config, "/tmp/c.json");
  EXPECT_EQ(p.shard, 3);
  EXPECT_EQ(p.replica, 0);  // left at its default
  EXPECT_EQ(Parse(f, {"--config=a=b", "--shard", "0", "--replica", "2"}), "");
  EXPECT_EQ(p.config, "a=b");  // only the first '=' splits
  EXPECT_EQ(p.replica, 2);
}

TEST(Flags, EveryErrorNamesTheFlag) {
  Parsed p;
  Flags f = Declare(p);
  EXPECT_EQ(Parse(f, {"--shard", "1"}), "--config is required");
  EXPECT_EQ(Parse(f, {"--config", "c"}), "--shard is required");
  EXPECT_EQ(Parse(f, {"--config", "c", "--shard", "x1"}), "bad value for --shard: x1 (not an integer)");
  EXPECT_EQ(Parse(f, {"--config", "c", "--shard", "1x"}), "bad value for --shard: 1x (not an integer)");
  EXPECT_EQ(Parse(f, {"--config", "c", "--shard"}), "missing value for --shard");
  EXPECT_EQ(Parse(f, {"--config", "c", "--shard", "1", "--bogus", "1"}), "unknown flag --bogus");
  EXPECT_EQ(Parse(f, {"stray"}), "unexpected argument stray");
  EXPECT_EQ(Parse(f, {"--config", "c", "-h"}), "help");
  EXPECT_EQ(Parse(f, {"--help"}), "help");
}

TEST(Flags, UsageListsEveryFlagWithItsHelp) {
  Parsed p;
  Flags f = Declare(p);
  const std::string u = f.Usage();
  EXPECT_NE(u.find("usage: prog --config V --shard N [--replica N]"), std::string::npos) << u;
  EXPECT_NE(u.find("--replica N  the replica"), std::string::npos) << u;
}

}  // namespace
}  // namespace chat
