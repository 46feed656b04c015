#include "proxy_protocol.h"

#include <arpa/inet.h>

#include <cstring>

namespace chat::gateway::proxy {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr size_t kV2Fixed = 16;

Header Incomplete(int version) {
  Header h;
  h.version = version;
  return h;
}

Header Invalid(int version, std::string_view why) {
  Header h;
  h.status = Status::kInvalid;
  h.version = version;
  h.error = why;
  return h;
}

// A decimal port: 1..5 digits, no leading zero (except "0" itself), at most 65535.
bool ParsePort(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

bool ParseAddress(std::string_view s, int family, Address* out) {
  char text[INET6_ADDRSTRLEN] = {};
  if (s.empty() || s.size() >= sizeof text) return false;
  std::memcpy(text, s.data(), s.size());
  out->family = family;
  return inet_pton(family == 4 ? AF_INET : AF_INET6, text, out->bytes.data()) == 1;
}

// The line without its CRLF, after "PROXY ".
Header ParseV1Line(std::string_view line, size_t length) {
  std::string_view fields[6];
  size_t n = 0;
  while (n < 6) {
    size_t sp = line.find(' ');
    fields[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(sp + 1);
  }
  Header h;
  h.version = 1;
  h.length = length;
  if (fields[0] == "UNKNOWN") {  // the balancer does not know the client: the rest is to be ignored
    h.status = Status::kDone;
    return h;
  }
  int family = fields[0] == "TCP4" ? 4 : fields[0] == "TCP6" ? 6 : 0;
  if (family == 0) return Invalid(1, "v1: protocol must be TCP4, TCP6 or UNKNOWN");
  if (n != 5 || !line.empty()) return Invalid(1, "v1: expected source, destination and two ports");
  if (!ParseAddress(fields[1], family, &h.source) || !ParseAddress(fields[2], family, &h.destination))
    return Invalid(1, "v1: malformed address");
  if (!ParsePort(fields[3], &h.source.port) || !ParsePort(fields[4], &h.destination.port))
    return Invalid(1, "v1: malformed port");
  h.status = Status::kDone;
  h.has_address = true;
  return h;
}

Header ParseV1(std::string_view data) {
  const size_t prefix = std::min(data.size(), kV1Prefix.size());
  if (data.substr(0, prefix) != kV1Prefix.substr(0, prefix)) return Invalid(1, "not a PROXY header");
  // The CR must come by the 106th byte so that the line with its LF fits in kMaxV1Bytes.
  const size_t scan = std::min(data.size(), kMaxV1Bytes - 1);
  for (size_t i = prefix; i < scan; ++i) {
    const char c = data[i];
    if (c == '\r') {
      if (i + 1 == data.size()) return Incomplete(1);
      if (data[i + 1] != '\n') return Invalid(1, "v1: CR not followed by LF");
      return ParseV1Line(data.substr(kV1Prefix.size(), i - kV1Prefix.size()), i + 2);
    }
    if (c < 0x20 || c > 0x7e) return Invalid(1, "v1: control or non-ASCII byte in the line");
  }
  if (data.size() >= kMaxV1Bytes - 1) return Invalid(1, "v1: line longer than 107 bytes");
  return Incomplete(1);
}

Header ParseV2(std::string_view data) {
  const size_t sig = std::min(data.size(), sizeof kV2Signature);
  if (std::memcmp(data.data(), kV2Signature, sig) != 0) return Invalid(2, "not a PROXY header");
  if (data.size() < 13) return Incomplete(2);
  const auto ver_cmd = static_cast<uint8_t>(data[12]);
  if ((ver_cmd >> 4) != 2) return Invalid(2, "v2: version must be 2");
  const uint8_t command = ver_cmd & 0x0f;
  if (command > 1) return Invalid(2, "v2: command must be LOCAL or PROXY");
  if (data.size() < 14) return Incomplete(2);
  const auto fam_proto = static_cast<uint8_t>(data[13]);
  const uint8_t family = fam_proto >> 4;
  const uint8_t transport = fam_proto & 0x0f;
  size_t need_addr = 0;  // address bytes the PROXY command needs; LOCAL ignores the family byte
  if (command == 1) {
    if (family == 0 && transport == 0) {
      need_addr = 0;  // UNSPEC: the balancer does not know the client
    } else if (transport != 1) {
      return Invalid(2, "v2: only TCP (STREAM) connections are accepted");
    } else if (family == 1) {
      need_addr = 12;
    } else if (family == 2) {
      need_addr = 36;
    } else {
      return Invalid(2, "v2: address family must be IPv4, IPv6 or UNSPEC");
    }
  }
  if (data.size() < kV2Fixed) return Incomplete(2);
  const size_t length = kV2Fixed + ((size_t(uint8_t(data[14])) << 8) | uint8_t(data[15]));
  if (length > kMaxV2Bytes) return Invalid(2, "v2: header longer than the gateway accepts");
  if (length - kV2Fixed < need_addr) return Invalid(2, "v2: address block shorter than its family needs");
  if (data.size() < length) return Incomplete(2);

  Header h;
  h.status = Status::kDone;
  h.version = 2;
  h.length = length;
  if (command == 0 || need_addr == 0) return h;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data()) + kV2Fixed;
  const size_t alen = family == 1 ? 4 : 16;
  h.has_address = true;
  h.source.family = h.destination.family = family == 1 ? 4 : 6;
  std::memcpy(h.source.bytes.data(), p, alen);
  std::memcpy(h.destination.bytes.data(), p + alen, alen);
  h.source.port = static_cast<uint16_t>((p[2 * alen] << 8) | p[2 * alen + 1]);
  h.destination.port = static_cast<uint16_t>((p[2 * alen + 2] << 8) | p[2 * alen + 3]);
  return h;  // TLVs, if any, fill the rest of `length`: skipped
}

}  // namespace

std::string Address::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == 6 && std::memcmp(bytes.data(), kMapped, 12) == 0) {
    inet_ntop(AF_INET, bytes.data() + 12, text, sizeof text);
  } else if (family == 4 || family == 6) {
    inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes.data(), text, sizeof text);
  }
  return text;
}

Header ParseProxyHeader(std::string_view data) {
  if (data.empty()) return {};
  if (data[0] == 'P') return ParseV1(data);
  if (data[0] == '\r') return ParseV2(data);
  return Invalid(0, "not a PROXY header");
}

}  // namespace chat::gateway::proxy
