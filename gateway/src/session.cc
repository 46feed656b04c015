#include "session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>


#include "common/codec.h"
#include "frame_queue.h"
#include "rate_limiter.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Close codes (docs/protocol.md).
constexpr uint16_t kClosePolicy = 1008;
constexpr uint16_t kCloseTryAgainLater = 1013;
constexpr uint16_t kCloseAuthTimeout = 4001;
constexpr uint16_t kCloseSlowConsumer = 4008;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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

bool IsAuthRequest(v1::ClientFrame::RequestCase c) {
  return c == v1::ClientFrame::kSignUp || c == v1::ClientFrame::kLogIn || c == v1::ClientFrame::kAuthenticate;
}

// ------------------------------------------------------------------------------------------------
// A DynamicBuffer over a flat_buffer that admits at most kSlack bytes beyond what it holds. Beast's
// async_read prepares min(1536, max_size() - size()) bytes of the buffer before any data arrives,
// so a plain flat_buffer costs every idle connection 1.5 KiB; this one costs kSlack, and a long
// message simply takes more rounds. Message size is limited by read_message_max, not by this.
class SlackBuffer {
 public:
  static constexpr size_t kSlack = 256;
  using const_buffers_type = beast::flat_buffer::const_buffers_type;
  using mutable_buffers_type = beast::flat_buffer::mutable_buffers_type;
  explicit SlackBuffer(beast::flat_buffer& b) : b_(&b) {}
  size_t size() const { return b_->size(); }
  size_t max_size() const { return std::min(b_->max_size(), b_->size() + kSlack); }
  size_t capacity() const { return b_->capacity(); }
  const_buffers_type data() const { return b_->data(); }
  const_buffers_type cdata() const { return b_->cdata(); }
  mutable_buffers_type prepare(size_t n) { return b_->prepare(n); }
  void commit(size_t n) { b_->commit(n); }
  void consume(size_t n) { b_->consume(n); }

 private:
  beast::flat_buffer* b_;
};

class WsSession : public SessionHandle, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, GatewayContext& ctx, WireEncoding enc, std::optional<Identity> identity,
            std::unique_ptr<IpLimiter::Slot> ip_slot)
      : ip_slot_(std::move(ip_slot)),
        ws_(std::move(socket)),
        ctx_(ctx),
        enc_(enc),
        pending_identity_(std::move(identity)),
        id_(ctx.session_ids.Next()),
        timer_(ws_.get_executor()),
        bucket_(ctx.limits.requests_per_second, ctx.limits.request_burst) {}

  void Accept(http::request<http::empty_body> req) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts below take over
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::milliseconds(ctx_.limits.handshake_timeout_ms);
    t.idle_timeout = std::chrono::milliseconds(ctx_.limits.idle_timeout_ms);
    t.keep_alive_pings = true;  // ping at idle_timeout/2 of silence, close at idle_timeout
    ws_.set_option(t);
    ws_.read_message_max(ctx_.limits.max_frame_bytes);
    ws_.auto_fragment(false);
    const bool offered = !req[http::field::sec_websocket_protocol].empty();
    const auto proto = std::string(SubprotocolName(enc_));
    ws_.set_option(websocket::stream_base::decorator([offered, proto](websocket::response_type& res) {
      res.set(http::field::server, "chat-gateway");
      if (offered) res.set(http::field::sec_websocket_protocol, proto);
    }));
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::OnAccept, shared_from_this()));
  }

  // ---- SessionHandle (any thread)
  void PushEvent(std::shared_ptr<const SharedEvent> event) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), event = std::move(event)] {
      if (self->identity_.user_id != 0) self->Send(event->Frame(self->enc_));
    });
  }
  void Kick(uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->CloseWith(code, std::move(reason));
    });
  }
  uint64_t session_id() const override { return id_; }
  const internal::SessionRef& presence_ref() const override { return ref_; }

 private:
  void OnAccept(beast::error_code ec) {
    if (ec) return;  // handshake failed or timed out: nothing registered yet
    accepted_ = true;
    ++ctx_.open_sessions;
    ++ctx_.counters.connections_accepted;
    if (ctx_.shutting_down) return CloseWith(1012, "gateway restarting");
    if (static_cast<uint64_t>(ctx_.open_sessions.load()) > ctx_.limits.max_connections) {
      ++ctx_.counters.rejected_full;
      return CloseWith(kCloseTryAgainLater, "gateway full; try another");
    }
    if (pending_identity_) {
      // Token in the upgrade: register with presence before reading the first frame, so any
      // sync the client starts cannot miss a push.
      Identity id = *pending_identity_;
      pending_identity_.reset();
      BecomeAuthenticated(id, [self = shared_from_this()] { self->DoRead(); });
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(ctx_.limits.auth_timeout_ms));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->identity_.user_id == 0) self->CloseWith(kCloseAuthTimeout, "not authenticated in time");
    });
    DoRead();
  }

  // Registers the session (hub + presence); `then` runs on the strand once presence answered.
  void BecomeAuthenticated(const Identity& id, std::function<void()> then) {
    identity_ = id;
    ref_ = Ref();
    timer_.cancel();
    ctx_.hub.Add(id.user_id, shared_from_this());
    ctx_.registrar.Register(ref_, [self = shared_from_this(), then = std::move(then)]() mutable {
      net::post(self->ws_.get_executor(), std::move(then));
    });
  }

  internal::SessionRef Ref() const {
    internal::SessionRef ref;
    ref.set_user_id(identity_.user_id);
    ref.set_device_id(identity_.device_id);
    ref.set_gateway_id(ctx_.instance_id);
    ref.set_session_id(id_);
    return ref;
  }

  void DoRead() {
    if (closing_) return;
    ws_.async_read(read_buffer_, beast::bind_front_handler(&WsSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Finish();  // closed, timed out, or a protocol violation Beast already answered
    std::string data = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    buffer_.shrink_to_fit();  // an idle connection keeps no read buffer (the next read allocates)
    const bool want_text = enc_ == WireEncoding::kJson;
    if (ws_.got_text() != want_text) {
      ++ctx_.counters.bad_frames;
      return CloseWith(kClosePolicy, want_text ? "chat.v1.json takes text frames" : "chat.v1.proto takes binary frames");
    }
    HandleFrame(data);
    DoRead();
  }

  void HandleFrame(const std::string& data) {
    v1::ClientFrame frame;
    std::string error;
    if (!DecodeClientFrame(data, enc_, &frame, &error)) {
      ++ctx_.counters.bad_frames;
      return SendReply(ErrorReply(0, v1::INVALID_ARGUMENT, std::move(error)));
    }
    const uint64_t rid = frame.request_id();
    if (!bucket_.TryTake(SteadyMs())) {
      ++ctx_.counters.rate_limited;
      return SendReply(ErrorReply(rid, v1::RESOURCE_EXHAUSTED, "request rate limit exceeded; slow down"));
    }
    if (inflight_ >= ctx_.limits.max_inflight_requests) {
      ++ctx_.counters.rate_limited;
      return SendReply(ErrorReply(rid, v1::RESOURCE_EXHAUSTED, "too many requests in flight; wait for replies"));
    }
    if (identity_.user_id != 0 && IsAuthRequest(frame.request_case()))
      return SendReply(ErrorReply(rid, v1::FAILED_PRECONDITION, "this connection is already authenticated"));
    if (identity_.user_id == 0 && authenticating_ && frame.request_case() != v1::ClientFrame::kRequestCode)
      return SendReply(ErrorReply(rid, v1::UNAVAILABLE, "authentication in progress; retry after its reply"));
    if (IsAuthRequest(frame.request_case())) {
      authenticating_ = true;
      auth_request_id_ = rid;
    }
    ++inflight_;
    RequestContext rc{identity_, id_, ctx_.instance_id};
    ctx_.router.Handle(rc, frame, [self = shared_from_this()](v1::Reply reply, std::optional<Identity> id) {
      net::post(self->ws_.get_executor(), [self, reply = std::move(reply), id = std::move(id)]() mutable {
        self->OnReply(std::move(reply), std::move(id));
      });
    });
  }

  void OnReply(v1::Reply reply, std::optional<Identity> id) {
    --inflight_;
    if (finished_ || closing_) return;  // the client is gone: never register a dead session
    if (authenticating_ && reply.request_id() == auth_request_id_) authenticating_ = false;
    if (id && id->user_id != 0 && identity_.user_id == 0) {
      BecomeAuthenticated(*id, [self = shared_from_this(), reply = std::move(reply)]() mutable {
        self->SendReply(reply);
      });
      return;
    }
    SendReply(reply);
  }

  static v1::Reply ErrorReply(uint64_t rid, v1::StatusCode code, std::string message) {
    v1::Reply r;
    r.set_request_id(rid);
    r.set_status(code);
    r.set_message(std::move(message));
    return r;
  }

  void SendReply(const v1::Reply& reply) {
    v1::ServerFrame f;
    *f.mutable_reply() = reply;
    Send(std::make_shared<const std::string>(EncodeServerFrame(f, enc_)));
  }

  // One write in flight; the queue is bounded in frames and bytes. Overflow = slow consumer.
  void Send(std::shared_ptr<const std::string> frame) {
    if (closing_) return;
    if (queue_.size() >= ctx_.limits.send_queue_max_frames ||
        queued_bytes_ + frame->size() > ctx_.limits.send_queue_max_bytes) {
      ++ctx_.counters.slow_consumer_kicks;
      return CloseWith(kCloseSlowConsumer, "slow consumer: send queue full; reconnect and sync");
    }
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    writing_ = true;
    ws_.binary(enc_ == WireEncoding::kProto);
    ws_.async_write(net::buffer(*queue_.front()), beast::bind_front_handler(&WsSession::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      queue_.clear();
      queued_bytes_ = 0;
      // If a read is pending it fails too and calls Finish; if not (closing from OnRead), nobody
      // else would. Finish is idempotent.
      return Finish();
    }
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (close_pending_) return StartClose();
    if (!queue_.empty() && !closing_) DoWrite();
  }

  // Starts a graceful close with `code` once the write in flight (if any) is done. Frames still
  // queued are dropped: the client resyncs after reconnecting.
  void CloseWith(uint16_t code, std::string reason) {
    if (closing_ || !accepted_) return;
    closing_ = true;
    timer_.cancel();
    close_reason_.code = code;
    close_reason_.reason = reason.substr(0, 120);
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    // A peer that never reads would hold the close handshake forever: cut it after a deadline.
    timer_.expires_after(std::chrono::milliseconds(std::max<uint32_t>(ctx_.limits.drain_timeout_ms, 1000)));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::get_lowest_layer(self->ws_).close();
      self->Finish();
    });
    if (writing_) {
      close_pending_ = true;
      return;
    }
    StartClose();
  }

  void StartClose() {
    close_pending_ = false;
    // No read may be outstanding (e.g. closing from OnRead), so the close completion finishes
    // the session too; Finish is idempotent.
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->Finish(); });
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    timer_.cancel();
    if (identity_.user_id != 0) {
      ctx_.hub.Remove(identity_.user_id, id_);
      ctx_.registrar.Unregister(ref_);
    }
    if (accepted_) --ctx_.open_sessions;
  }

  std::unique_ptr<IpLimiter::Slot> ip_slot_;  // this connection's place in its address's quota
  websocket::stream<beast::tcp_stream> ws_;
  GatewayContext& ctx_;
  const WireEncoding enc_;
  std::optional<Identity> pending_identity_;
  const uint64_t id_;
  Identity identity_;  // strand only; user_id 0 until authenticated
  internal::SessionRef ref_;  // set once, before the session enters the hub
  beast::flat_buffer buffer_;
  SlackBuffer read_buffer_{buffer_};  // what reads go through (see SlackBuffer)
  net::steady_timer timer_;  // auth timeout, then close deadline
  TokenBucket bucket_;
  uint32_t inflight_ = 0;
  FrameQueue queue_;  // empty = no heap memory (idle connections)
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool accepted_ = false;
  bool authenticating_ = false;  // an auth request is in flight; others wait for its reply
  uint64_t auth_request_id_ = 0;
  bool closing_ = false;
  bool close_pending_ = false;
  bool finished_ = false;
  websocket::close_reason close_reason_;
};

// ------------------------------------------------------------------------------------------------
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, GatewayContext& ctx) : stream_(std::move(socket)), ctx_(ctx) {}

  void Run() {
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (ec) return;  // already gone
    verdict_ = ctx_.ip_limiter.Acquire(remote.address().to_string(), SteadyMs(), &ip_slot_);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(0);
    stream_.expires_after(std::chrono::milliseconds(ctx_.limits.handshake_timeout_ms));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return;  // timeout, oversized header, garbage: just drop the connection
    auto req = parser_->release();
    if (verdict_ != IpLimiter::Verdict::kOk) {
      ++ctx_.counters.rejected_ip;
      return Respond(http::status::too_many_requests,
                     verdict_ == IpLimiter::Verdict::kTooMany ? "too many connections from your address\n"
                                                             : "connecting too fast from your address; back off\n");
    }
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (!websocket::is_upgrade(req)) {
      if (path == "/healthz" && req.method() == http::verb::get) {
        if (ctx_.shutting_down) return Respond(http::status::service_unavailable, "shutting down\n");
        return Respond(http::status::ok, "ok\n");
      }
      return Respond(http::status::not_found, "not found\n");
    }
    if (path != "/ws") return Respond(http::status::not_found, "WebSocket endpoint is /ws\n");
    if (ctx_.shutting_down) return Respond(http::status::service_unavailable, "gateway restarting\n");
    WireEncoding enc = WireEncoding::kJson;
    auto offered = req[http::field::sec_websocket_protocol];
    if (!offered.empty() && !ChooseSubprotocol(std::string_view(offered.data(), offered.size()), &enc))
      return Respond(http::status::bad_request, "unsupported subprotocol; offer chat.v1.proto or chat.v1.json\n");

    std::optional<Identity> identity;
    std::string_view token;
    auto auth = req[http::field::authorization];
    std::string_view a(auth.data(), auth.size());
    if (a.substr(0, 7) == "Bearer ") token = a.substr(7);
    else if (!a.empty()) return Respond(http::status::unauthorized, "Authorization must be 'Bearer <token>'\n");
    if (token.empty()) token = QueryParam(target, "access_token");
    if (!token.empty()) {
      TokenError err{};
      auto claims = ctx_.router.VerifyToken(token, &err);
      if (!claims)
        return Respond(http::status::unauthorized,
                       err == TokenError::kExpired ? "token expired\n" : "invalid token\n");
      identity = Identity{claims->user_id, claims->device_id};
    }
    auto ws = std::make_shared<WsSession>(stream_.release_socket(), ctx_, enc, std::move(identity),
                                          std::move(ip_slot_));
    ws->Accept(std::move(req));
  }

  void Respond(http::status status, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
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
  IpLimiter::Verdict verdict_ = IpLimiter::Verdict::kTooFast;
  std::unique_ptr<IpLimiter::Slot> ip_slot_;
};

}  // namespace

void StartHttpSession(tcp::socket socket, GatewayContext& ctx) {
  std::make_shared<HttpSession>(std::move(socket), ctx)->Run();
}

}  // namespace chat::gateway
