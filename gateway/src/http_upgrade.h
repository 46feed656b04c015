#pragma once
// Phase 2 of a connection: the HTTP request (the gateway's only Boost.Beast translation unit,
// http_upgrade.cc). Reads one request within handshake_timeout_ms; answers GET /healthz; applies the
// per-address verdict; validates the upgrade (path, version, key, subprotocol) and a token if it
// carries one (Authenticator), then hands the socket to the WebSocket session (ws_session.h).
#include <boost/asio/ip/tcp.hpp>

#include "gateway_context.h"

namespace chat::gateway {

// Takes ownership of an accepted socket whose executor is a strand of its own.
void StartHttpUpgrade(boost::asio::ip::tcp::socket socket, GatewayContext& ctx);

}  // namespace chat::gateway
