#include "authenticator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "common/log.h"
#include "common/shard.h"
#include "rate_limiter.h"

namespace chat::gateway {

// ---- AccountCache ---------------------------------------------------------------------------------

AccountCache::Entry AccountCache::Look(const TokenRef& token, int64_t now_ms) const {
  std::lock_guard lock(mu_);
  auto it = items_.find(token.user_id);
  if (it == items_.end()) return Entry::kNone;
  for (const Token& t : it->second.tokens)
    if (t.session_id == token.session_id && t.token_gen == token.token_gen)
      return now_ms - t.confirmed_ms < static_cast<int64_t>(ttl_ms_) ? Entry::kFresh : Entry::kStale;
  return Entry::kNone;
}

void AccountCache::Confirm(const TokenRef& token, int64_t now_ms) {
  if (max_entries_ == 0) return;
  std::lock_guard lock(mu_);
  auto it = items_.find(token.user_id);
  if (it == items_.end()) {
    while (items_.size() >= max_entries_) {
      items_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(token.user_id);
    it = items_.emplace(token.user_id, Item{{}, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  auto& tokens = it->second.tokens;
  for (Token& t : tokens)
    if (t.session_id == token.session_id && t.token_gen == token.token_gen) {
      t.confirmed_ms = now_ms;
      return;
    }
  if (tokens.size() >= kTokensPerUser)
    tokens.erase(std::min_element(tokens.begin(), tokens.end(),
                                  [](const Token& a, const Token& b) { return a.confirmed_ms < b.confirmed_ms; }));
  tokens.push_back(Token{token.session_id, token.token_gen, now_ms});
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
  return Identity{claims->user_id, claims->device_id, claims->session_id, claims->token_gen};
}

void Authenticator::CheckAccount(const Identity& id, std::function<void(AccountVerdict)> done) {
  if (!directory_) return done(AccountVerdict::kAdmit);
  const TokenRef token = TokenRef::Of(id);
  if (cache_.Look(token, steady_ms_()) == AccountCache::Entry::kFresh) return done(AccountVerdict::kAdmit);
  {
    std::lock_guard lock(mu_);
    auto [it, first] = waiting_.try_emplace(token);
    it->second.push_back(std::move(done));
    if (!first) return;  // the RPC in flight answers this one too
  }
  directory_->Check(token, [this, token](AccountDirectory::Answer a) { Answered(token, a); });
}

void Authenticator::Answered(const TokenRef& token, AccountDirectory::Answer answer) {
  AccountVerdict verdict = AccountVerdict::kAdmit;
  switch (answer) {
    case AccountDirectory::Answer::kActive:
      cache_.Confirm(token, steady_ms_());
      break;
    case AccountDirectory::Answer::kNotActive:
      cache_.Invalidate(token.user_id);
      verdict = AccountVerdict::kNoAccount;
      break;
    case AccountDirectory::Answer::kUnreachable:
      // Last known good: a token this gateway confirmed before gets in; an unknown one waits.
      if (cache_.Look(token, steady_ms_()) == AccountCache::Entry::kNone) verdict = AccountVerdict::kUnavailable;
      break;
  }
  std::vector<std::function<void(AccountVerdict)>> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(token);
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
  return verdict == AccountVerdict::kNoAccount ? "session ended or account not found; log in again"
                                               : "account check unavailable; retry shortly";
}

}  // namespace chat::gateway
