#pragma once
// Phase 1b of a connection, between the accept (listener.h) and the HTTP request (http_upgrade.h):
// who the client is, and whether its address may connect at all.
//
// The client address is the TCP peer, unless the peer is a trusted balancer
// (gateways[].trusted_proxies): then the connection must begin with a PROXY header (v1 or v2,
// proxy_protocol.h), read within handshake_timeout_ms of the accept and in at most
// proxy::kMaxV2Bytes, and the header's source is the client address (its LOCAL / UNKNOWN forms,
// e.g. the balancer's health checks, mean the balancer itself). A trusted peer whose header is
// missing, malformed or late is closed without a reply. From any other peer no PROXY header is
// accepted: its bytes go to the HTTP parser, which refuses them.
//
// The per-address limits (IpLimiter) are applied to the client address before any byte of HTTP is
// read: at the accept for a direct client, right after the header for a balanced one. A refused
// connection gets a fixed HTTP 429 response, written without reading the request, and is closed
// at once (docs/protocol.md §2).
//
// Threads: StartAdmission runs on the accept handler's thread; everything after it on the socket's
// strand.
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <vector>

#include "common/ip_range.h"
#include "gateway_context.h"
#include "proxy_protocol.h"

namespace chat::gateway {

// Whether `peer` is in `trusted` (IPv4-mapped IPv6 peers match IPv4 ranges).
bool IsTrustedProxy(const std::vector<IpRange>& trusted, const boost::asio::ip::address& peer);
// The IpLimiter key of a client address: an IPv4 address (or IPv4-mapped IPv6 address) as its IPv4
// text; an IPv6 address as its network of `v6_prefix_bits` (limits.gateway.ip_limit_v6_prefix_bits,
// "2001:db8:1:2::/64"), since one subscriber or host is given a whole /64 and picks addresses in it at
// will; 128 keys the address itself, as its text.
std::string ClientKey(const boost::asio::ip::address& address, uint32_t v6_prefix_bits);
std::string ClientKey(const proxy::Address& address, uint32_t v6_prefix_bits);

// Takes ownership of an accepted socket whose executor is a strand of its own.
void StartAdmission(boost::asio::ip::tcp::socket socket, GatewayContext& ctx);

}  // namespace chat::gateway
