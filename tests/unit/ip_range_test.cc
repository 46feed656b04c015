// IP ranges (gateways[].trusted_proxies): parsing and matching, IPv4 and IPv6.
#include "common/ip_range.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <string>

namespace chat {
namespace {

// Whether `range` contains `address` (an IPv4 or IPv6 address in text).
bool Contains(const std::string& range, const std::string& address) {
  auto r = ParseIpRange(range);
  EXPECT_TRUE(r) << range;
  if (!r) return false;
  std::array<uint8_t, 16> b{};
  if (inet_pton(AF_INET, address.c_str(), b.data()) == 1) return RangeContains(*r, b.data(), 4);
  EXPECT_EQ(inet_pton(AF_INET6, address.c_str(), b.data()), 1) << address;
  return RangeContains(*r, b.data(), 16);
}

TEST(IpRange, ABareAddressIsASingleHost) {
  EXPECT_TRUE(Contains("10.1.2.3", "10.1.2.3"));
  EXPECT_FALSE(Contains("10.1.2.3", "10.1.2.4"));
  EXPECT_TRUE(Contains("2001:db8::7", "2001:db8::7"));
  EXPECT_FALSE(Contains("2001:db8::7", "2001:db8::8"));
}

TEST(IpRange, CidrBlocksMatchTheirPrefixOnly) {
  EXPECT_TRUE(Contains("10.0.0.0/8", "10.255.0.1"));
  EXPECT_FALSE(Contains("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(Contains("192.168.4.0/22", "192.168.7.255"));
  EXPECT_FALSE(Contains("192.168.4.0/22", "192.168.8.0"));
  EXPECT_FALSE(Contains("192.168.4.0/22", "192.168.3.255"));
  EXPECT_TRUE(Contains("0.0.0.0/0", "203.0.113.9"));
  EXPECT_TRUE(Contains("fd00::/8", "fd12:3456::1"));
  EXPECT_FALSE(Contains("fd00::/8", "fe80::1"));
  EXPECT_TRUE(Contains("2001:db8:1::/49", "2001:db8:1:7fff::1"));
  EXPECT_FALSE(Contains("2001:db8:1::/49", "2001:db8:1:8000::1"));
}

TEST(IpRange, FamiliesDoNotMixButMappedIpv4MatchesAsIpv4) {
  EXPECT_FALSE(Contains("10.0.0.0/8", "::1"));
  EXPECT_FALSE(Contains("::/0", "10.0.0.1"));
  EXPECT_TRUE(Contains("10.0.0.0/8", "::ffff:10.9.8.7"));  // a dual-stack socket's view of an IPv4 peer
  EXPECT_FALSE(Contains("10.0.0.0/8", "::ffff:11.9.8.7"));
}

TEST(IpRange, RefusesWhatIsNotAnAddressOrABlock) {
  for (const char* bad :
       {"", "lb.example.com", "10.0.0", "10.0.0.256", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/08",
        "10.0.0.0/8/8", "10.0.0.1/8", "::1/129", "2001:db8::1/32", " 10.0.0.1", "10.0.0.1 ", "010.0.0.1"})
    EXPECT_FALSE(ParseIpRange(bad)) << "accepted \"" << bad << "\"";
  auto r = ParseIpRange("172.16.0.0/12");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->family, 4);
  EXPECT_EQ(r->prefix_bits, 12);
  EXPECT_EQ(ParseIpRange("::1")->prefix_bits, 128);
}

}  // namespace
}  // namespace chat
