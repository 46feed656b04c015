#pragma once
// The PROXY protocol (haproxy's doc/proxy-protocol.txt, versions 1 and 2): the header a balancer
// writes at the start of a TCP connection to tell the server who the client is.
//
// ParseProxyHeader is a pure function of the bytes received so far: no I/O, no state, no Beast, no
// allocation beyond the result; any input is safe (it is a fuzz target as it stands). Call it again
// with more bytes while it answers kIncomplete.
//
// Accepted: v1 "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" and "PROXY UNKNOWN...\r\n"; v2 with
// the LOCAL command (any family) or the PROXY command over TCP/IPv4, TCP/IPv6 or UNSPEC. TLVs after
// the addresses are skipped unread. Refused: UDP and UNIX families, unknown version, command, family
// or protocol values, a v1 line over 107 bytes, a v2 header over kMaxV2Bytes, malformed addresses.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chat::gateway::proxy {

inline constexpr size_t kMaxV1Bytes = 107;  // the whole line with its CRLF (the protocol's own bound)
// The whole v2 header: 16 fixed bytes, the addresses (12 or 36) and TLVs. Balancers send 28..~300;
// the cap bounds what a trusted balancer can make the gateway buffer before HTTP starts.
inline constexpr size_t kMaxV2Bytes = 16 + 2048;

struct Address {
  int family = 0;                   // 4 or 6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4
  uint16_t port = 0;
  // "192.0.2.1", "2001:db8::1". An IPv4-mapped IPv6 address (::ffff:192.0.2.1) prints as its IPv4
  // form, so a client is the same key however the balancer spelled it.
  std::string ToString() const;
};

enum class Status {
  kIncomplete,  // the input is a proper prefix of a header that may still turn out valid
  kDone,        // a complete, valid header occupies the first `length` bytes
  kInvalid,     // not a valid header, whatever bytes follow (decided at the first byte that says so)
};

struct Header {
  Status status = Status::kIncomplete;
  int version = 0;           // 1 or 2 once known (after the first byte)
  size_t length = 0;         // kDone: the header's size; the bytes after it are the client's
  bool has_address = false;  // kDone: false for v2 LOCAL or UNSPEC and v1 UNKNOWN (use the TCP peer)
  Address source;            // has_address: the client
  Address destination;       // has_address: the address the client connected to
  std::string_view error;    // kInvalid: why, as static text
};

// Parses the PROXY header at the start of `data` (the bytes received so far, possibly followed by
// the client's first bytes).
Header ParseProxyHeader(std::string_view data);

}  // namespace chat::gateway::proxy
