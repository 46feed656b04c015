#pragma once
// Phase 3 of a connection: the WebSocket session, on the plain socket, framed by ws_protocol (no
// Beast here). The HTTP upgrade phase (http_upgrade.h) validates the request and hands over the
// socket with what it learned; the session writes the 101 and serves the connection from then on.
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "authenticator.h"
#include "common/codec.h"
#include "gateway_context.h"
#include "ip_limiter.h"

namespace chat::gateway {

// What the upgrade phase hands to the session.
struct Upgrade {
  WireEncoding encoding = WireEncoding::kJson;
  std::optional<Identity> identity;          // from a token in the upgrade, already verified
  std::unique_ptr<IpLimiter::Slot> ip_slot;  // this connection's place in its address's quota
  std::string response;                      // the 101 to write first
  std::string early;                         // bytes the client sent right behind its request
};

// Takes ownership of `socket` (whose executor is a strand of its own) and runs the session.
void StartWsSession(boost::asio::ip::tcp::socket socket, GatewayContext& ctx, Upgrade upgrade);

}  // namespace chat::gateway
