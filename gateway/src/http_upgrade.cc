#include "http_upgrade.h"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/codec.h"
#include "ws_protocol.h"
#include "ws_session.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

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

class HttpUpgrade : public std::enable_shared_from_this<HttpUpgrade> {
 public:
  HttpUpgrade(tcp::socket&& socket, GatewayContext& ctx, Admitted admitted)
      : stream_(std::move(socket)), ctx_(ctx), ip_slot_(std::move(admitted.ip_slot)), deadline_(admitted.deadline) {
    if (!admitted.early.empty()) {
      auto b = buffer_.prepare(admitted.early.size());
      net::buffer_copy(b, net::buffer(admitted.early));
      buffer_.commit(admitted.early.size());
    }
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(0);
    stream_.expires_at(deadline_);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpUpgrade::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return;  // timeout, oversized header, garbage: just drop the connection
    auto req = parser_->release();
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (!IsUpgrade(req)) {
      if (path == "/healthz" && req.method() == http::verb::get) {
        if (ctx_.shutting_down) return Respond(http::status::service_unavailable, "shutting down\n");
        return Respond(http::status::ok, "ok\n");
      }
      return Respond(http::status::not_found, "not found\n");
    }
    if (path != "/ws") return Respond(http::status::not_found, "WebSocket endpoint is /ws\n");
    if (req[http::field::sec_websocket_version] != "13")
      return Respond(http::status::upgrade_required, "WebSocket version 13 only\n", "13");
    auto key_field = req[http::field::sec_websocket_key];
    std::string_view key(key_field.data(), key_field.size());
    if (!ws::ValidClientKey(key)) return Respond(http::status::bad_request, "missing or malformed Sec-WebSocket-Key\n");
    if (ctx_.shutting_down) return Respond(http::status::service_unavailable, "gateway restarting\n");
    WireEncoding enc = WireEncoding::kJson;
    auto offered = req[http::field::sec_websocket_protocol];
    if (!offered.empty() && !ChooseSubprotocol(std::string_view(offered.data(), offered.size()), &enc))
      return Respond(http::status::bad_request, "unsupported subprotocol; offer chat.v1.proto or chat.v1.json\n");

    Upgrade upgrade;
    upgrade.encoding = enc;
    std::string_view token;
    auto auth = req[http::field::authorization];
    std::string_view a(auth.data(), auth.size());
    if (a.substr(0, 7) == "Bearer ")
      token = a.substr(7);
    else if (!a.empty())
      return Respond(http::status::unauthorized, "Authorization must be 'Bearer <token>'\n");
    if (token.empty()) token = QueryParam(target, "access_token");
    if (!token.empty()) {
      TokenError err{};
      upgrade.identity = ctx_.auth.Verify(token, &err);
      if (!upgrade.identity)
        return Respond(http::status::unauthorized, err == TokenError::kExpired ? "token expired\n" : "invalid token\n");
    }
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: chat-gateway\r\n"
        "Sec-WebSocket-Accept: " +
        ws::AcceptKey(key) + "\r\n";
    if (!offered.empty()) response += "Sec-WebSocket-Protocol: " + std::string(SubprotocolName(enc)) + "\r\n";
    response += "\r\n";
    upgrade.response = std::move(response);
    upgrade.early = beast::buffers_to_string(buffer_.data());
    upgrade.ip_slot = std::move(ip_slot_);
    StartWsSession(stream_.release_socket(), ctx_, std::move(upgrade));
  }

  static bool IsUpgrade(const http::request<http::empty_body>& req) {
    return req.version() >= 11 && req.method() == http::verb::get &&
           http::token_list(req[http::field::connection]).exists("upgrade") &&
           http::token_list(req[http::field::upgrade]).exists("websocket");
  }

  // `ws_version`: sent as Sec-WebSocket-Version (the answer to an unsupported version).
  void Respond(http::status status, std::string body, const char* ws_version = nullptr) {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    if (ws_version) res->set(http::field::sec_websocket_version, ws_version);
    res->set(http::field::server, "chat-gateway");
    res->set(http::field::content_type, "text/plain");
    res->set(http::field::connection, "close");
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  GatewayContext& ctx_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::unique_ptr<IpLimiter::Slot> ip_slot_;
  const std::chrono::steady_clock::time_point deadline_;
};

}  // namespace

void StartHttpUpgrade(tcp::socket socket, GatewayContext& ctx, Admitted admitted) {
  std::make_shared<HttpUpgrade>(std::move(socket), ctx, std::move(admitted))->Run();
}

}  // namespace chat::gateway
