#pragma once
// The gateway's authentication step: a token is verified here, locally (HMAC and expiry, no RPC),
// whether it arrives in the HTTP upgrade (Authorization header or access_token) or in an
// authenticate request. The router never sees a token: it gets the verified Identity.
//
// Threads: immutable after construction; Verify may run on any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/token.h"

namespace chat::gateway {

// Who a connection speaks for.
struct Identity {
  uint64_t user_id = 0;  // 0 = not authenticated
  std::string device_id;
};

class Authenticator {
 public:
  explicit Authenticator(const std::string& secret) : signer_(secret) {}
  // The identity a valid, unexpired token names; nullopt (and *error) otherwise.
  std::optional<Identity> Verify(std::string_view token, TokenError* error) const;
  // What a client is told about a refused token.
  static const char* Refusal(TokenError error);

 private:
  TokenSigner signer_;
};

}  // namespace chat::gateway
