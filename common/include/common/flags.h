#pragma once
// The one command-line parser of every process: `--name value` or `--name=value` flags, declared with
// their help text, parsed once in main(). No positional arguments.
//
// Contract: Parse() either fills every declared output and returns, or exits the process: status 0
// after printing the usage for --help/-h, status 2 with the reason and the usage on stderr for an
// unknown flag, a missing value, a value of the wrong type, or a required flag left out.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace chat {

class Flags {
 public:
  // `program` names the process in messages; `summary` is the first line of the usage.
  Flags(std::string program, std::string summary);

  Flags& Add(std::string name, std::string* out, std::string help, bool required = false);
  Flags& Add(std::string name, int* out, std::string help, bool required = false);

  void Parse(int argc, char** argv);
  // The same without exiting: returns the reason it would exit 2 for, or "" when everything parsed.
  // "--help" is returned as "help". Tests use it.
  std::string TryParse(int argc, char** argv);

  std::string Usage() const;
  const std::string& program() const { return program_; }

  // Prints "<program>: <why>", the usage, and exits 2 (also for checks main() makes after Parse).
  [[noreturn]] void Fail(const std::string& why) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    bool required;
    bool is_int;
    std::function<bool(const std::string&)> set;  // false: the value does not parse
    bool seen = false;
  };
  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
};

}  // namespace chat
