#include "http_upgrade.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/codec.h"
#include "upgrade_request.h"
#include "ws_session.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

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
    LimitRequestParser(*parser_);
    stream_.expires_at(deadline_);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpUpgrade::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return;  // timeout, oversized header, garbage: just drop the connection
    auto req = parser_->release();
    UpgradeAnswer answer = AnswerRequest(req, ctx_.shutting_down, ctx_.auth);
    if (answer.status != http::status::switching_protocols)
      return Respond(answer.status, std::move(answer.body), answer.ws_version);
    Upgrade upgrade;
    upgrade.encoding = answer.encoding;
    upgrade.identity = std::move(answer.identity);
    upgrade.response = std::move(answer.response);
    upgrade_ = std::move(upgrade);
    if (!upgrade_.identity) return Accept();
    // The account the token names must exist and be active (Authenticator: cached, one RPC at most).
    ctx_.auth.CheckAccount(*upgrade_.identity, [self = shared_from_this()](Authenticator::AccountVerdict v) {
      net::post(self->stream_.get_executor(), [self, v] { self->OnAccountChecked(v); });
    });
  }

  void OnAccountChecked(Authenticator::AccountVerdict verdict) {
    using V = Authenticator::AccountVerdict;
    if (verdict == V::kNoAccount) return Respond(http::status::unauthorized, "account not found\n");
    if (verdict == V::kUnavailable)
      return Respond(http::status::service_unavailable, "account check unavailable; retry shortly\n");
    Accept();
  }

  void Accept() {
    upgrade_.early = beast::buffers_to_string(buffer_.data());
    upgrade_.ip_slot = std::move(ip_slot_);
    StartWsSession(stream_.release_socket(), ctx_, std::move(upgrade_));
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
  std::optional<HttpRequestParser> parser_;
  std::unique_ptr<IpLimiter::Slot> ip_slot_;
  const std::chrono::steady_clock::time_point deadline_;
  Upgrade upgrade_;  // what the session gets, filled by OnRead (the account check runs in between)
};

}  // namespace

void StartHttpUpgrade(tcp::socket socket, GatewayContext& ctx, Admitted admitted) {
  std::make_shared<HttpUpgrade>(std::move(socket), ctx, std::move(admitted))->Run();
}

}  // namespace chat::gateway
