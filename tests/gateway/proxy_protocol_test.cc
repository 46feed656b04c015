// The PROXY protocol parser (gateway/src/proxy_protocol.h) on byte strings: v1 and v2, complete,
// byte by byte, truncated, oversized and malformed; and the per-address limits' key of a client
// address (admission.h).
#include "proxy_protocol.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <string>

#include "admission.h"

namespace chat::gateway::proxy {
namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: signature, version/command, family/protocol, then `body` with its length.
std::string V2(uint8_t ver_cmd, uint8_t fam_proto, const std::string& body) {
  std::string h = kSig;
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam_proto));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

// 192.0.2.10:51000 -> 198.51.100.1:443
const std::string kV4Body = Bytes({192, 0, 2, 10, 198, 51, 100, 1, 0xc7, 0x38, 0x01, 0xbb});

// Feeds `header` one byte more at a time: every proper prefix must be kIncomplete, the whole kDone.
Header ByteByByte(const std::string& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    Header h = ParseProxyHeader(std::string_view(header).substr(0, n));
    EXPECT_EQ(h.status, Status::kIncomplete) << "prefix of " << n << " bytes: " << h.error;
    if (h.status != Status::kIncomplete) return h;
  }
  return ParseProxyHeader(header);
}

TEST(ProxyV1, Tcp4GivesTheClientAndLeavesTheRequestAlone) {
  const std::string line = "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n";
  Header h = ParseProxyHeader(line + "GET /ws HTTP/1.1\r\n");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.length, line.size());
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.ToString(), "192.0.2.10");
  EXPECT_EQ(h.source.port, 51000);
  EXPECT_EQ(h.destination.ToString(), "198.51.100.1");
  EXPECT_EQ(h.destination.port, 443);
}

TEST(ProxyV1, Tcp6) {
  Header h = ParseProxyHeader("PROXY TCP6 2001:db8::1 2001:db8::ffff 65535 0\r\n");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.source.family, 6);
  EXPECT_EQ(h.source.ToString(), "2001:db8::1");
  EXPECT_EQ(h.source.port, 65535);
  EXPECT_EQ(h.destination.port, 0);
}

TEST(ProxyV1, UnknownMeansUseTheTcpPeer) {
  for (const std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    Header h = ParseProxyHeader(line);
    ASSERT_EQ(h.status, Status::kDone) << line << h.error;
    EXPECT_FALSE(h.has_address);
    EXPECT_EQ(h.length, line.size());
  }
}

TEST(ProxyV1, EveryPrefixIsIncompleteUntilTheLineEnds) {
  const std::string line = "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n";
  Header h = ByteByByte(line);
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.source.ToString(), "10.0.0.1");
}

TEST(ProxyV1, TheLongestLegalLineIsAcceptedAndOneByteMoreIsNot) {
  // The protocol's own worst case: 107 bytes with the CRLF (UNKNOWN with the longest addresses).
  const std::string addrs =
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  const std::string longest = "PROXY UNKNOWN " + addrs;
  ASSERT_EQ(longest.size(), kMaxV1Bytes);
  EXPECT_EQ(ParseProxyHeader(longest).status, Status::kDone);
  Header tcp6 = ParseProxyHeader("PROXY TCP6 " + addrs);
  ASSERT_EQ(tcp6.status, Status::kDone) << tcp6.error;
  EXPECT_EQ(tcp6.source.ToString(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  // No CR by the 106th byte: refused at once, without waiting for more.
  std::string endless = "PROXY UNKNOWN " + std::string(200, 'x');
  EXPECT_EQ(ParseProxyHeader(endless.substr(0, kMaxV1Bytes - 2)).status, Status::kIncomplete);
  EXPECT_EQ(ParseProxyHeader(endless.substr(0, kMaxV1Bytes - 1)).status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader(endless).status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader(endless.substr(0, 106) + "\r\n").status, Status::kInvalid);  // 108 bytes
}

TEST(ProxyV1, MalformedLinesAreInvalid) {
  for (const std::string bad : {
           "PROXY TCP4 192.0.2.10 198.51.100.1 51000\r\n",        // a port missing
           "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443 7\r\n",  // a field too many
           "PROXY TCP4 192.0.2.10  198.51.100.1 51000 443\r\n",   // two spaces
           "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443 \r\n",   // trailing space
           "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",         // IPv6 under TCP4
           "PROXY TCP6 192.0.2.10 2001:db8::1 1 2\r\n",           // IPv4 under TCP6
           "PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",         // not an address
           "PROXY TCP4 192.0.2.10 198.51.100.1 65536 2\r\n",      // port out of range
           "PROXY TCP4 192.0.2.10 198.51.100.1 080 2\r\n",        // leading zero
           "PROXY TCP4 192.0.2.10 198.51.100.1 -1 2\r\n",         // not a number
           "PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",          // not TCP
           "PROXY tcp4 192.0.2.10 198.51.100.1 1 2\r\n",          // case matters
           "PROXY TCP4 192.0.2.10 198.51.100.1 1 2\rX",           // CR without LF
           "PROXY TCP4 192.0.2.10 198.51.100.1 1 2\n",            // LF without CR
           "PROXY \r\n",                                          // nothing
       }) {
    Header h = ParseProxyHeader(bad);
    EXPECT_EQ(h.status, Status::kInvalid) << "accepted: " << bad;
    EXPECT_FALSE(h.error.empty());
  }
}

TEST(ProxyV1, ABadSignatureIsRefusedAtTheFirstWrongByte) {
  EXPECT_EQ(ParseProxyHeader("P").status, Status::kIncomplete);
  EXPECT_EQ(ParseProxyHeader("PROX").status, Status::kIncomplete);
  EXPECT_EQ(ParseProxyHeader("POST").status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader("PROXY\r\n").status, Status::kInvalid);
  // A client that speaks HTTP straight away (not through the balancer).
  EXPECT_EQ(ParseProxyHeader("G").status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader("GET /ws HTTP/1.1\r\n").status, Status::kInvalid);
}

TEST(ProxyV2, Tcp4WithTheRequestAfterIt) {
  const std::string header = V2(0x21, 0x11, kV4Body);
  Header h = ParseProxyHeader(header + "GET /ws HTTP/1.1\r\n");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.length, 28u);
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.ToString(), "192.0.2.10");
  EXPECT_EQ(h.source.port, 51000);
  EXPECT_EQ(h.destination.ToString(), "198.51.100.1");
  EXPECT_EQ(h.destination.port, 443);
}

TEST(ProxyV2, Tcp6) {
  std::string body = Bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});  // 2001:db8::1
  body += Bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});                         // ::1
  body += Bytes({0x30, 0x39, 0x1f, 0x90});                                                    // 12345, 8080
  Header h = ParseProxyHeader(V2(0x21, 0x21, body));
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.source.family, 6);
  EXPECT_EQ(h.source.ToString(), "2001:db8::1");
  EXPECT_EQ(h.source.port, 12345);
  EXPECT_EQ(h.destination.ToString(), "::1");
  EXPECT_EQ(h.destination.port, 8080);
}

TEST(ProxyV2, AnIpv4MappedSourceIsTheIpv4Client) {
  std::string body = Bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7});
  body += std::string(16, '\0') + Bytes({0, 1, 0, 2});
  Header h = ParseProxyHeader(V2(0x21, 0x21, body));
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.source.ToString(), "203.0.113.7");
}

TEST(ProxyV2, LocalMeansUseTheTcpPeerWhateverTheFamilyByte) {
  for (uint8_t fam : {0x00, 0x11, 0x31, 0xff}) {
    Header h = ParseProxyHeader(V2(0x20, fam, ""));
    ASSERT_EQ(h.status, Status::kDone) << int(fam) << " " << h.error;
    EXPECT_FALSE(h.has_address);
    EXPECT_EQ(h.length, 16u);
  }
  Header h = ParseProxyHeader(V2(0x20, 0x11, kV4Body));  // a health check may carry addresses: ignored
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_FALSE(h.has_address);
  EXPECT_EQ(h.length, 28u);
}

TEST(ProxyV2, UnspecMeansUseTheTcpPeer) {
  Header h = ParseProxyHeader(V2(0x21, 0x00, ""));
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_FALSE(h.has_address);
}

TEST(ProxyV2, TlvsAreSkipped) {
  // PP2_TYPE_ALPN "h2" and PP2_TYPE_AUTHORITY "chat.example": skipped, counted in the length.
  std::string tlvs = Bytes({0x01, 0x00, 0x02}) + "h2" + Bytes({0x02, 0x00, 0x0c}) + "chat.example";
  const std::string header = V2(0x21, 0x11, kV4Body + tlvs);
  Header h = ParseProxyHeader(header + "GET");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.length, header.size());
  EXPECT_EQ(h.source.ToString(), "192.0.2.10");
}

TEST(ProxyV2, EveryPrefixIsIncompleteUntilTheDeclaredLength) {
  Header h = ByteByByte(V2(0x21, 0x11, kV4Body + std::string(40, '\x7')));
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.length, 16u + 12 + 40);
}

TEST(ProxyV2, TruncatedHeadersStayIncomplete) {
  const std::string header = V2(0x21, 0x11, kV4Body);
  for (size_t n : {1u, 11u, 12u, 13u, 15u, 16u, 27u})
    EXPECT_EQ(ParseProxyHeader(header.substr(0, n)).status, Status::kIncomplete) << n << " bytes";
}

TEST(ProxyV2, ABadSignatureIsRefusedAtTheFirstWrongByte) {
  EXPECT_EQ(ParseProxyHeader("\r\n\r").status, Status::kIncomplete);
  EXPECT_EQ(ParseProxyHeader("\r\n\r\n\r\n").status, Status::kInvalid);  // not the NUL
  std::string sig = kSig;
  sig[9] = 'X';
  EXPECT_EQ(ParseProxyHeader(sig.substr(0, 9)).status, Status::kIncomplete);
  EXPECT_EQ(ParseProxyHeader(sig.substr(0, 10)).status, Status::kInvalid);
}

TEST(ProxyV2, UnknownVersionCommandFamilyOrProtocolIsInvalid) {
  struct Case {
    uint8_t ver_cmd, fam_proto;
    const char* what;
  };
  for (const Case& c :
       {Case{0x11, 0x11, "version 1 in a v2 header"}, Case{0x31, 0x11, "version 3"}, Case{0x22, 0x11, "command 2"},
        Case{0x2f, 0x11, "command 15"}, Case{0x21, 0x41, "family 4"}, Case{0x21, 0xf1, "family 15"},
        Case{0x21, 0x31, "UNIX stream"}, Case{0x21, 0x12, "UDP over IPv4"}, Case{0x21, 0x22, "UDP over IPv6"},
        Case{0x21, 0x13, "protocol 3"}, Case{0x21, 0x10, "IPv4 with protocol UNSPEC"},
        Case{0x21, 0x01, "UNSPEC with STREAM"}}) {
    // Decided as soon as the offending byte is in, before the length or the addresses.
    Header h = ParseProxyHeader(V2(c.ver_cmd, c.fam_proto, kV4Body).substr(0, 14));
    EXPECT_EQ(h.status, Status::kInvalid) << c.what;
    EXPECT_EQ(ParseProxyHeader(V2(c.ver_cmd, c.fam_proto, std::string(36, '\1'))).status, Status::kInvalid) << c.what;
  }
}

TEST(ProxyV2, AddressBlockShorterThanItsFamilyIsInvalid) {
  EXPECT_EQ(ParseProxyHeader(V2(0x21, 0x11, kV4Body.substr(0, 11))).status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader(V2(0x21, 0x21, std::string(35, '\0'))).status, Status::kInvalid);
  // Known from the 16 fixed bytes alone: no waiting for bytes that could not fix it.
  EXPECT_EQ(ParseProxyHeader(V2(0x21, 0x21, std::string(20, '\0')).substr(0, 16)).status, Status::kInvalid);
}

TEST(ProxyV2, OversizedHeaderIsRefusedFromItsLengthField) {
  std::string fixed = V2(0x21, 0x11, "").substr(0, 14);
  const size_t body = kMaxV2Bytes - 16 + 1;
  fixed.push_back(static_cast<char>(body >> 8));
  fixed.push_back(static_cast<char>(body & 0xff));
  EXPECT_EQ(ParseProxyHeader(fixed).status, Status::kInvalid);
  EXPECT_EQ(ParseProxyHeader(V2(0x21, 0x11, kV4Body + std::string(kMaxV2Bytes - 28, '\0'))).status, Status::kDone);
}

TEST(ProxyProtocol, EmptyInputIsIncompleteAndAnythingElseIsSafe) {
  EXPECT_EQ(ParseProxyHeader("").status, Status::kIncomplete);
  // Every one- and two-byte input gets an answer without reading past its end (ASan watches).
  for (int a = 0; a < 256; ++a) {
    std::string one(1, static_cast<char>(a));
    Header h = ParseProxyHeader(one);
    EXPECT_EQ(h.status, a == 'P' || a == '\r' ? Status::kIncomplete : Status::kInvalid) << a;
    for (int b = 0; b < 256; ++b) ParseProxyHeader(one + static_cast<char>(b));
  }
}

// The per-address limits' key (admission.h): IPv4 by address, IPv6 by network.
TEST(ClientKey, Ipv6IsLimitedByItsNetworkAndIpv4ByItsAddress) {
  namespace ip = boost::asio::ip;
  EXPECT_EQ(ClientKey(ip::make_address("192.0.2.7"), 64), "192.0.2.7");
  EXPECT_EQ(ClientKey(ip::make_address("::ffff:192.0.2.7"), 64), "192.0.2.7");
  // Two addresses of one /64 (one household, one host) are one client; the next /64 is another.
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8:1:2:aaaa::1"), 64), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8:1:2:ffff:1:2:3"), 64), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8:1:3::1"), 64), "2001:db8:1:3::/64");
  // Other prefixes, on and off a byte boundary; 128 is the address itself.
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8:1:2ff::1"), 56), "2001:db8:1:200::/56");
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8:1:2ff::1"), 60), "2001:db8:1:2f0::/60");
  EXPECT_EQ(ClientKey(ip::make_address("2001:db8::1"), 128), "2001:db8::1");
  // A balancer's PROXY header gives the same key as a direct connection from that address.
  const Header h = ParseProxyHeader("PROXY TCP6 2001:db8:1:2:aaaa::1 2001:db8::2 4000 443\r\n");
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_EQ(ClientKey(h.source, 64), "2001:db8:1:2::/64");
  const Header v4 = ParseProxyHeader("PROXY TCP4 192.0.2.7 198.51.100.1 4000 443\r\n");
  ASSERT_EQ(v4.status, Status::kDone);
  EXPECT_EQ(ClientKey(v4.source, 64), "192.0.2.7");
}

}  // namespace
}  // namespace chat::gateway::proxy
