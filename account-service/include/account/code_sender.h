#pragma once
// Seam: how a one-time code reaches a phone. Implementations are thread-safe.
#include <string>

namespace chat::account {

class CodeSender {
 public:
  virtual ~CodeSender() = default;
  // Delivers `code` to `phone`. Returns false if it could not be handed over (the caller reports
  // UNAVAILABLE). Must never log the phone number unmasked.
  virtual bool Send(const std::string& phone, const std::string& code) = 0;
};

// Development sender: appends "<unix_ms> <phone> <code>\n" to <run_dir>/codes.log (directory
// created if missing). Each line is one O_APPEND write, so several processes may share the file;
// readers take the newest line for a phone.
class FileCodeSender : public CodeSender {
 public:
  explicit FileCodeSender(std::string run_dir);
  bool Send(const std::string& phone, const std::string& code) override;
  const std::string& path() const { return path_; }

 private:
  std::string run_dir_;
  std::string path_;
};

}  // namespace chat::account
