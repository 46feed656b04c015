// The gateway's PROXY protocol parser (gateway/src/proxy_protocol.h) on arbitrary bytes: what a
// trusted balancer, or something that got between it and the gateway, writes first.
//
// Invariants checked:
//   - a complete header has a version (1 or 2) and a refusal has a reason;
//   - kDone: the header fits in the input and under its version's bound, the same bytes alone give
//     the same header (the client's bytes after it never change it), and every shorter prefix of it
//     was kIncomplete (the gateway reads in pieces and must not decide early);
//   - kIncomplete: the input is under the bound, and any prefix of it is kIncomplete too;
//   - kInvalid: more bytes never make it valid;
//   - an address is IPv4 or IPv6 and prints as a non-empty text without spaces.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "proxy_protocol.h"

namespace {

namespace proxy = chat::gateway::proxy;

void CheckAddress(const proxy::Address& a) {
  FUZZ_CHECK(a.family == 4 || a.family == 6);
  const std::string text = a.ToString();
  FUZZ_CHECK(!text.empty() && text.size() <= 45);
  FUZZ_CHECK(text.find(' ') == std::string::npos);
}

bool SameAddress(const proxy::Address& a, const proxy::Address& b) {
  return a.family == b.family && a.bytes == b.bytes && a.port == b.port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const proxy::Header h = proxy::ParseProxyHeader(in);
  FUZZ_CHECK(h.version >= 0 && h.version <= 2);  // 0 until a first byte names one
  switch (h.status) {
    case proxy::Status::kDone: {
      FUZZ_CHECK(h.version == 1 || h.version == 2);
      FUZZ_CHECK(h.length > 0 && h.length <= in.size());
      FUZZ_CHECK(h.length <= (h.version == 1 ? proxy::kMaxV1Bytes : proxy::kMaxV2Bytes));
      const proxy::Header alone = proxy::ParseProxyHeader(in.substr(0, h.length));
      FUZZ_CHECK(alone.status == proxy::Status::kDone && alone.length == h.length);
      FUZZ_CHECK(alone.has_address == h.has_address);
      if (h.has_address) {
        CheckAddress(h.source);
        CheckAddress(h.destination);
        FUZZ_CHECK(SameAddress(alone.source, h.source) && SameAddress(alone.destination, h.destination));
      }
      for (size_t cut = 0; cut < h.length; ++cut)
        FUZZ_CHECK(proxy::ParseProxyHeader(in.substr(0, cut)).status == proxy::Status::kIncomplete);
      break;
    }
    case proxy::Status::kIncomplete:
      FUZZ_CHECK(in.size() < proxy::kMaxV2Bytes);
      FUZZ_CHECK(proxy::ParseProxyHeader(in.substr(0, in.size() / 2)).status == proxy::Status::kIncomplete);
      break;
    case proxy::Status::kInvalid: {
      FUZZ_CHECK(!h.error.empty());
      std::string more(in);
      more += "\r\n";
      FUZZ_CHECK(proxy::ParseProxyHeader(more).status == proxy::Status::kInvalid);
      more.append(40, '\0');
      FUZZ_CHECK(proxy::ParseProxyHeader(more).status == proxy::Status::kInvalid);
      break;
    }
  }
  return 0;
}
