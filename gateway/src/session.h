#pragma once
// Entry point of the connection phases implemented in session.cc (the only Beast translation unit
// of the gateway: Beast's HTTP parser reads the upgrade request; WebSocket framing is our own,
// ws_protocol.h):
//   HttpSession: reads one HTTP request within handshake_timeout; answers /healthz; validates the
//                upgrade (path, version, key, subprotocol, token) and hands the socket on.
//   WsSession:   the WebSocket session on the plain socket; implements SessionHandle.
#include <boost/asio/ip/tcp.hpp>

#include "gateway_context.h"

namespace chat::gateway {

// Takes ownership of an accepted socket whose executor is a strand of its own.
void StartHttpSession(boost::asio::ip::tcp::socket socket, GatewayContext& ctx);

}  // namespace chat::gateway
