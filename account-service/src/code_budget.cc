#include "account/code_budget.h"

#include <algorithm>

namespace chat::account {

namespace {
constexpr double kMinuteMs = 60.0 * 1000;
}  // namespace

CodeSendBudget::CodeSendBudget(uint32_t per_minute) : capacity_(per_minute), tokens_(per_minute) {}

bool CodeSendBudget::TryTake(int64_t now_ms) {
  std::lock_guard lk(mu_);
  if (last_ms_ != 0 && now_ms > last_ms_)
    tokens_ = std::min(capacity_, tokens_ + static_cast<double>(now_ms - last_ms_) * capacity_ / kMinuteMs);
  if (last_ms_ == 0 || now_ms > last_ms_) last_ms_ = now_ms;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void CodeSendBudget::Refund() {
  std::lock_guard lk(mu_);
  tokens_ = std::min(capacity_, tokens_ + 1.0);
}

}  // namespace chat::account
