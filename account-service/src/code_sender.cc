#include "account/code_sender.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "account/validation.h"
#include "common/log.h"

namespace chat::account {

FileCodeSender::FileCodeSender(std::string run_dir) : run_dir_(std::move(run_dir)), path_(run_dir_ + "/codes.log") {}

bool FileCodeSender::Send(const std::string& phone, const std::string& code) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir_, ec);
  if (ec) {
    spdlog::error("code sender: cannot create {}: {}", run_dir_, ec.message());
    return false;
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::error("code sender: cannot open {}: {}", path_, std::strerror(errno));
    return false;
  }
  const std::string line = std::to_string(NowMs()) + " " + phone + " " + code + "\n";
  ssize_t n = ::write(fd, line.data(), line.size());  // one write per line: appends never interleave
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) {
    spdlog::error("code sender: write to {} failed: {}", path_, std::strerror(err));
    return false;
  }
  spdlog::debug("code sent to {}", MaskPhone(phone));
  return true;
}

}  // namespace chat::account
