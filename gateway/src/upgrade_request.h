#pragma once
// The decision half of the HTTP upgrade phase (http_upgrade.h): what the gateway answers to one
// parsed request, without a socket, so unit tests and the fuzzer (fuzz/http_upgrade_fuzz.cc) run
// exactly what the live path runs. Beast's HTTP message and parser types only, no stream: include
// this from http_upgrade.cc and tests, never from a widely included header.
//
// Pure functions; safe from any thread (Authenticator::Verify is).
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <optional>
#include <string>

#include "authenticator.h"
#include "common/codec.h"

namespace chat::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::empty_body>;
using HttpRequestParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

// Sets the limits a request is read with: an 8 KiB header and no body.
void LimitRequestParser(HttpRequestParser& parser);

// What to answer. `status` is switching_protocols when the connection becomes a WebSocket session;
// then `encoding`, `identity` (from a token in the request, verified) and `response` (the whole 101,
// ending in the blank line) are set. Otherwise `body` (text/plain) and, for a refused version,
// `ws_version` (sent as Sec-WebSocket-Version) are the refusal.
struct UpgradeAnswer {
  boost::beast::http::status status = boost::beast::http::status::not_found;
  std::string body;
  const char* ws_version = nullptr;
  WireEncoding encoding = WireEncoding::kJson;
  std::optional<Identity> identity;
  std::string response;
};

// The answer to `req` (GET /healthz, or the WebSocket upgrade on /ws with version, key, subprotocol
// and an optional token checked); `shutting_down` is the gateway's state. The per-address verdict is
// the caller's (it comes first).
UpgradeAnswer AnswerRequest(const HttpRequest& req, bool shutting_down, const Authenticator& auth);

}  // namespace chat::gateway
