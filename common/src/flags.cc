#include "common/flags.h"

#include <charconv>
#include <cstdlib>
#include <iostream>

namespace chat {

Flags::Flags(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

Flags& Flags::Add(std::string name, std::string* out, std::string help, bool required) {
  flags_.push_back(Flag{std::move(name), std::move(help), required, false, [out](const std::string& v) {
                          *out = v;
                          return true;
                        }});
  return *this;
}

Flags& Flags::Add(std::string name, int* out, std::string help, bool required) {
  flags_.push_back(Flag{std::move(name), std::move(help), required, true, [out](const std::string& v) {
                          int n = 0;
                          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                          if (ec != std::errc() || p != v.data() + v.size()) return false;
                          *out = n;
                          return true;
                        }});
  return *this;
}

std::string Flags::TryParse(int argc, char** argv) {
  for (auto& f : flags_) f.seen = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return "help";
    if (arg.rfind("--", 0) != 0) return "unexpected argument " + arg;
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    Flag* flag = nullptr;
    for (auto& f : flags_)
      if (f.name == name) flag = &f;
    if (!flag) return "unknown flag --" + name;
    if (!has_value) {
      if (i + 1 >= argc) return "missing value for --" + name;
      value = argv[++i];
    }
    if (!flag->set(value)) return "bad value for --" + name + ": " + value + (flag->is_int ? " (not an integer)" : "");
    flag->seen = true;
  }
  for (const auto& f : flags_)
    if (f.required && !f.seen) return "--" + f.name + " is required";
  return "";
}

void Flags::Parse(int argc, char** argv) {
  const std::string why = TryParse(argc, argv);
  if (why.empty()) return;
  if (why == "help") {
    std::cout << Usage();
    std::exit(0);
  }
  Fail(why);
}

std::string Flags::Usage() const {
  std::string u = summary_ + "\nusage: " + program_;
  for (const auto& f : flags_) {
    const std::string v = f.is_int ? " N" : " V";
    u += f.required ? " --" + f.name + v : " [--" + f.name + v + "]";
  }
  u += "\n";
  for (const auto& f : flags_) u += "  --" + f.name + (f.is_int ? " N" : " V") + "  " + f.help + "\n";
  return u;
}

void Flags::Fail(const std::string& why) const {
  std::cerr << program_ << ": " << why << "\n" << Usage();
  std::exit(2);
}

}  // namespace chat
