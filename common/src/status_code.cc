#include "common/status_code.h"

namespace chat {

const char* StatusName(StatusCode code) {
  const std::string& name = v1::StatusCode_Name(code);
  return name.empty() ? "INTERNAL" : name.c_str();
}

}  // namespace chat
