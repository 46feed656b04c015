#include "upgrade_request.h"

#include <boost/beast/http/rfc7230.hpp>

#include "ws_protocol.h"

namespace chat::gateway {

namespace http = boost::beast::http;

namespace {

std::string_view QueryParam(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return kv.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return {};
}

bool IsUpgrade(const HttpRequest& req) {
  return req.version() >= 11 && req.method() == http::verb::get &&
         http::token_list(req[http::field::connection]).exists("upgrade") &&
         http::token_list(req[http::field::upgrade]).exists("websocket");
}

UpgradeAnswer Refuse(http::status status, std::string body, const char* ws_version = nullptr) {
  UpgradeAnswer a;
  a.status = status;
  a.body = std::move(body);
  a.ws_version = ws_version;
  return a;
}

std::string_view View(boost::beast::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

void LimitRequestParser(HttpRequestParser& parser) {
  parser.header_limit(8 * 1024);
  parser.body_limit(0);
}

UpgradeAnswer AnswerRequest(const HttpRequest& req, bool shutting_down, const Authenticator& auth) {
  std::string_view target = View(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  if (!IsUpgrade(req)) {
    if (path == "/healthz" && req.method() == http::verb::get) {
      if (shutting_down) return Refuse(http::status::service_unavailable, "shutting down\n");
      return Refuse(http::status::ok, "ok\n");
    }
    return Refuse(http::status::not_found, "not found\n");
  }
  if (path != "/ws") return Refuse(http::status::not_found, "WebSocket endpoint is /ws\n");
  if (req[http::field::sec_websocket_version] != "13")
    return Refuse(http::status::upgrade_required, "WebSocket version 13 only\n", "13");
  std::string_view key = View(req[http::field::sec_websocket_key]);
  if (!ws::ValidClientKey(key)) return Refuse(http::status::bad_request, "missing or malformed Sec-WebSocket-Key\n");
  if (shutting_down) return Refuse(http::status::service_unavailable, "gateway restarting\n");
  UpgradeAnswer a;
  std::string_view offered = View(req[http::field::sec_websocket_protocol]);
  if (!offered.empty() && !ChooseSubprotocol(offered, &a.encoding))
    return Refuse(http::status::bad_request, "unsupported subprotocol; offer chat.v1.proto or chat.v1.json\n");

  std::string_view token;
  std::string_view authorization = View(req[http::field::authorization]);
  if (authorization.substr(0, 7) == "Bearer ")
    token = authorization.substr(7);
  else if (!authorization.empty())
    return Refuse(http::status::unauthorized, "Authorization must be 'Bearer <token>'\n");
  if (token.empty()) token = QueryParam(target, "access_token");
  if (!token.empty()) {
    TokenError err{};
    a.identity = auth.Verify(token, &err);
    if (!a.identity)
      return Refuse(http::status::unauthorized, err == TokenError::kExpired ? "token expired\n" : "invalid token\n");
  }
  a.status = http::status::switching_protocols;
  a.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: chat-gateway\r\n"
      "Sec-WebSocket-Accept: " +
      ws::AcceptKey(key) + "\r\n";
  if (!offered.empty()) a.response += "Sec-WebSocket-Protocol: " + std::string(SubprotocolName(a.encoding)) + "\r\n";
  a.response += "\r\n";
  return a;
}

}  // namespace chat::gateway
