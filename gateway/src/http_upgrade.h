#pragma once
// Phase 2 of a connection: the HTTP request (the gateway's only Boost.Beast translation unit,
// http_upgrade.cc). Reads one request by the admission's deadline (handshake_timeout_ms after the
// accept); answers GET /healthz; validates the upgrade (path, version, key, subprotocol) and a token if it
// carries one (Authenticator), then hands the socket to the WebSocket session (ws_session.h).
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "gateway_context.h"

namespace chat::gateway {

// What admission (admission.h) hands on with a connection it let in.
struct Admitted {
  std::unique_ptr<IpLimiter::Slot> ip_slot;        // the client address's place in its quota
  std::string early;                               // bytes read after a PROXY header: the request's start
  std::chrono::steady_clock::time_point deadline;  // handshake_timeout_ms after the accept
};

// Takes ownership of an accepted socket whose executor is a strand of its own.
void StartHttpUpgrade(boost::asio::ip::tcp::socket socket, GatewayContext& ctx, Admitted admitted);

}  // namespace chat::gateway
