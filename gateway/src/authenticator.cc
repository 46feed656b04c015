#include "authenticator.h"

#include "common/log.h"

namespace chat::gateway {

std::optional<Identity> Authenticator::Verify(std::string_view token, TokenError* error) const {
  auto claims = signer_.Verify(token, NowMs() / 1000, error);
  if (!claims) return std::nullopt;
  return Identity{claims->user_id, claims->device_id};
}

const char* Authenticator::Refusal(TokenError error) {
  return error == TokenError::kExpired ? "token expired; log in again" : "invalid token";
}

}  // namespace chat::gateway
