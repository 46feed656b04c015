#include "authenticator.h"

#include <spdlog/spdlog.h>

#include <atomic>

#include "common/log.h"
#include "common/shard.h"
#include "rate_limiter.h"

namespace chat::gateway {

// ---- AccountCache ---------------------------------------------------------------------------------

AccountCache::Entry AccountCache::Look(uint64_t user_id, int64_t now_ms) const {
  std::lock_guard lock(mu_);
  auto it = items_.find(user_id);
  if (it == items_.end()) return Entry::kNone;
  return now_ms - it->second.confirmed_ms < static_cast<int64_t>(ttl_ms_) ? Entry::kFresh : Entry::kStale;
}

void AccountCache::Confirm(uint64_t user_id, int64_t now_ms) {
  if (max_entries_ == 0) return;
  std::lock_guard lock(mu_);
  auto it = items_.find(user_id);
  if (it != items_.end()) {
    it->second.confirmed_ms = now_ms;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  while (items_.size() >= max_entries_) {
    items_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(user_id);
  items_.emplace(user_id, Item{now_ms, lru_.begin()});
}

void AccountCache::Invalidate(uint64_t user_id) {
  std::lock_guard lock(mu_);
  auto it = items_.find(user_id);
  if (it == items_.end()) return;
  lru_.erase(it->second.lru);
  items_.erase(it);
}

size_t AccountCache::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

// ---- Authenticator --------------------------------------------------------------------------------

Authenticator::Authenticator(TokenKeys keys, const GatewayLimits& limits, std::unique_ptr<AccountDirectory> directory,
                             std::function<int64_t()> steady_ms)
    : signer_(std::move(keys)),
      directory_(std::move(directory)),
      steady_ms_(steady_ms ? std::move(steady_ms) : std::function<int64_t()>(SteadyMs)),
      cache_(limits.account_check_cache_ttl_ms, limits.account_check_cache_max_entries) {}

std::optional<Identity> Authenticator::Verify(std::string_view token, TokenError* error) const {
  auto claims = signer_.Verify(token, NowMs() / 1000, error);
  if (!claims) return std::nullopt;
  return Identity{claims->user_id, claims->device_id};
}

void Authenticator::CheckAccount(uint64_t user_id, std::function<void(AccountVerdict)> done) {
  if (!directory_) return done(AccountVerdict::kAdmit);
  if (cache_.Look(user_id, steady_ms_()) == AccountCache::Entry::kFresh) return done(AccountVerdict::kAdmit);
  {
    std::lock_guard lock(mu_);
    auto [it, first] = waiting_.try_emplace(user_id);
    it->second.push_back(std::move(done));
    if (!first) return;  // the RPC in flight answers this one too
  }
  directory_->Check(user_id, [this, user_id](AccountDirectory::Answer a) { Answered(user_id, a); });
}

void Authenticator::Answered(uint64_t user_id, AccountDirectory::Answer answer) {
  AccountVerdict verdict = AccountVerdict::kAdmit;
  switch (answer) {
    case AccountDirectory::Answer::kActive:
      cache_.Confirm(user_id, steady_ms_());
      break;
    case AccountDirectory::Answer::kNotActive:
      cache_.Invalidate(user_id);
      verdict = AccountVerdict::kNoAccount;
      break;
    case AccountDirectory::Answer::kUnreachable:
      // Last known good: an account this gateway confirmed before gets in; an unknown one waits.
      if (cache_.Look(user_id, steady_ms_()) == AccountCache::Entry::kNone) verdict = AccountVerdict::kUnavailable;
      break;
  }
  std::vector<std::function<void(AccountVerdict)>> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(user_id);
    if (it != waiting_.end()) {
      waiters = std::move(it->second);
      waiting_.erase(it);
    }
  }
  for (auto& w : waiters) w(verdict);
}

const char* Authenticator::Refusal(TokenError error) {
  return error == TokenError::kExpired ? "token expired; log in again" : "invalid token";
}

const char* Authenticator::Refusal(AccountVerdict verdict) {
  return verdict == AccountVerdict::kNoAccount ? "account not found; log in again"
                                               : "account check unavailable; retry shortly";
}

}  // namespace chat::gateway
