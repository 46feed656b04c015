// The gateway's HTTP upgrade phase without a socket: Beast's request parser with the gateway's limits
// (LimitRequestParser) and the gateway's answer (AnswerRequest, gateway/src/upgrade_request.h), on
// arbitrary request bytes.
//
// Input: byte 0 bit 0 says whether the gateway is shutting down; the rest is what a client sends
// before its first answer.
// Invariants checked:
//   - a 101 carries a well-formed response (the fixed header lines, the accept key of the client's
//     key, a subprotocol line only for a supported offer, no byte of the request) and an identity
//     only from a token signed by the gateway's key; never while shutting down;
//   - a refusal is one of the documented statuses with a one-line text body.
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/token.h"
#include "fuzz_check.h"
#include "upgrade_request.h"
#include "ws_protocol.h"

namespace {

namespace http = boost::beast::http;
using chat::gateway::UpgradeAnswer;

constexpr char kSecret[] = "fuzz-secret-5b0c9e7d2a4f6183c5e7a9b1d3f5e7c9";

size_t Count(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

void CheckUpgrade(const chat::gateway::HttpRequest& req, const UpgradeAnswer& a, bool shutting_down) {
  FUZZ_CHECK(!shutting_down);
  const std::string_view r = a.response;
  FUZZ_CHECK(r.starts_with("HTTP/1.1 101 Switching Protocols\r\n") && r.ends_with("\r\n\r\n"));
  const std::string_view key(req[http::field::sec_websocket_key].data(), req[http::field::sec_websocket_key].size());
  FUZZ_CHECK(chat::gateway::ws::ValidClientKey(key));
  FUZZ_CHECK(r.find("\r\nSec-WebSocket-Accept: " + chat::gateway::ws::AcceptKey(key) + "\r\n") !=
             std::string_view::npos);
  const bool offered = !req[http::field::sec_websocket_protocol].empty();
  FUZZ_CHECK(Count(r, "\r\n") == (offered ? 7u : 6u));  // status, 4 or 5 fields, blank line
  FUZZ_CHECK(Count(r, "\n") == Count(r, "\r\n") && Count(r, "\r") == Count(r, "\r\n"));
  if (offered)
    FUZZ_CHECK(r.find("\r\nSec-WebSocket-Protocol: " + std::string(chat::SubprotocolName(a.encoding)) + "\r\n") !=
               std::string_view::npos);
  if (a.identity) FUZZ_CHECK(a.identity->user_id >= 1 && chat::ValidDeviceId(a.identity->device_id));
}

void CheckRefusal(const UpgradeAnswer& a, bool shutting_down) {
  FUZZ_CHECK(a.response.empty() && !a.identity);
  switch (a.status) {
    case http::status::ok:
      FUZZ_CHECK(!shutting_down);
      break;
    case http::status::not_found:
    case http::status::upgrade_required:
    case http::status::bad_request:
    case http::status::service_unavailable:
    case http::status::unauthorized:
      break;
    default:
      FUZZ_CHECK(!"undocumented status");
  }
  FUZZ_CHECK(!a.body.empty() && a.body.back() == '\n' && Count(a.body, "\n") == 1 && Count(a.body, "\r") == 0);
  FUZZ_CHECK((a.ws_version != nullptr) == (a.status == http::status::upgrade_required));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool shutting_down = data[0] & 1;
  static const chat::GatewayLimits limits;
  static const chat::gateway::Authenticator auth{chat::TokenKeys::Single("fuzz", kSecret), limits, nullptr};

  chat::gateway::HttpRequestParser parser;
  chat::gateway::LimitRequestParser(parser);
  const char* p = reinterpret_cast<const char*>(data) + 1;
  size_t left = size - 1;
  boost::beast::error_code ec;
  while (!parser.is_done()) {  // as http::read feeds it, minus the socket
    const size_t used = parser.put(boost::asio::const_buffer(p, left), ec);
    if (ec || used == 0) return 0;  // need_more (the client would time out), malformed or too large
    p += used;
    left -= used;
  }
  const chat::gateway::HttpRequest req = parser.release();
  const UpgradeAnswer a = chat::gateway::AnswerRequest(req, shutting_down, auth);
  if (a.status == http::status::switching_protocols)
    CheckUpgrade(req, a, shutting_down);
  else
    CheckRefusal(a, shutting_down);
  return 0;
}
