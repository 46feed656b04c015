#include "session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <span>

#include "common/codec.h"
#include "frame_queue.h"
#include "rate_limiter.h"
#include "ws_protocol.h"

namespace chat::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
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
// One WebSocket connection, framed by ws_protocol. Everything runs on the socket's strand.
//
// Idle cost: the session object, the socket, one pending readiness wait (no buffer) and, once
// authenticated, one keep-alive timer wait. Reads go into a per-thread buffer; an incomplete frame
// is copied into the Reader until it completes. A write carries every queued frame (up to
// kMaxFramesPerWrite) in one gathered socket write; its scratch state lives only while writing.
//
// Closing: CloseWith queues a close frame behind the write in flight and drops frames not yet
// written (the client resyncs). Once both close frames have passed, or the client broke the
// protocol, the send side is shut down and input is discarded until the client closes
// (RFC 6455 7.1.1); drain_timeout_ms bounds all of it. Finish closes the socket.
class WsSession : public SessionHandle, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, GatewayContext& ctx, WireEncoding enc, std::optional<Identity> identity,
            std::unique_ptr<IpLimiter::Slot> ip_slot)
      : ip_slot_(std::move(ip_slot)),
        socket_(std::move(socket)),
        ctx_(ctx),
        enc_(enc),
        id_(ctx.session_ids.Next()),
        timer_(socket_.get_executor()),
        bucket_(ctx.limits.gateway.requests_per_second, ctx.limits.gateway.request_burst),
        reader_(ctx.limits.gateway.max_frame_bytes) {
    if (identity) pending_identity_ = std::make_unique<Identity>(*identity);
  }

  // Writes the 101 response; `early` holds bytes the client sent after its upgrade request.
  void Start(std::string response, std::string early) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (!early.empty()) early_ = std::make_unique<std::string>(std::move(early));
    auto res = std::make_shared<std::string>(std::move(response));
    ArmTimer(ctx_.limits.gateway.handshake_timeout_ms, [](WsSession& s) { s.Finish(); });
    net::async_write(socket_, net::buffer(*res),
                     [self = shared_from_this(), res](boost::system::error_code ec, std::size_t) {
                       if (ec) return self->Finish();
                       self->OnAccept();
                     });
  }

  // ---- SessionHandle (any thread)
  void PushEvents(std::vector<std::shared_ptr<const SharedEvent>> events) override {
    net::post(socket_.get_executor(), [self = shared_from_this(), events = std::move(events)] {
      if (self->identity_.user_id == 0) return;
      for (const auto& e : events)
        if (!self->Enqueue(e->Frame(self->enc_))) return;
      if (!self->writing_) self->DoWrite();
    });
  }
  void Kick(uint16_t code, std::string reason) override {
    net::post(socket_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->CloseWith(code, std::move(reason));
    });
  }
  uint64_t session_id() const override { return id_; }
  const internal::SessionRef& presence_ref() const override { return ref_; }

 private:
  static constexpr size_t kReadChunk = 64 * 1024;
  static constexpr int kReadsPerTurn = 4;  // then yield to other sessions on this thread
  static constexpr size_t kMaxFramesPerWrite = 16;
  static constexpr size_t kMaxBytesPerWrite = 256 * 1024;

  // Scratch of the write in flight: frame headers and the gathered buffers.
  struct WriteBatch {
    std::string control;  // control frames (pong, ping, close) written ahead of the data frames
    uint8_t headers[kMaxFramesPerWrite][ws::kMaxHeaderBytes];
    std::array<net::const_buffer, 1 + 2 * kMaxFramesPerWrite> bufs;
    size_t nbufs = 0;
    size_t frames = 0;  // data frames from the front of queue_
    bool carries_close = false;
  };

  void OnAccept() {
    accepted_ = true;
    ++ctx_.open_sessions;
    ++ctx_.counters.connections_accepted;
    last_rx_ms_ = SteadyMs();
    if (ctx_.shutting_down) return CloseWith(1012, "gateway restarting");
    if (static_cast<uint64_t>(ctx_.open_sessions.load()) > ctx_.limits.gateway.max_connections) {
      ++ctx_.counters.rejected_full;
      return CloseWith(kCloseTryAgainLater, "gateway full; try another");
    }
    if (pending_identity_) {
      // Token in the upgrade: register with presence before reading the first frame, so any
      // sync the client starts cannot miss a push.
      Identity id = *pending_identity_;
      pending_identity_.reset();
      BecomeAuthenticated(id, [self = shared_from_this()] { self->StartReading(); });
      return;
    }
    ArmTimer(ctx_.limits.gateway.auth_timeout_ms, [](WsSession& s) {
      if (s.identity_.user_id == 0) s.CloseWith(kCloseAuthTimeout, "not authenticated in time");
    });
    StartReading();
  }

  // Registers the session (hub + presence); `then` runs on the strand once presence answered.
  void BecomeAuthenticated(const Identity& id, std::function<void()> then) {
    identity_ = id;
    ref_ = Ref();
    ArmKeepAlive();
    ctx_.hub.Add(id.user_id, shared_from_this());
    ctx_.registrar.Register(ref_, [self = shared_from_this(), then = std::move(then)]() mutable {
      net::post(self->socket_.get_executor(), std::move(then));
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

  // ---- timer: one wait at a time; a newer arm makes older completions no-ops
  template <class F>
  void ArmTimer(uint32_t ms, F on_expiry) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([self = shared_from_this(), gen, on_expiry](boost::system::error_code ec) {
      if (!ec && gen == self->timer_gen_ && !self->finished_) on_expiry(*self);
    });
  }

  // Pings after idle_timeout/2 of silence from the client; drops the connection after idle_timeout.
  void ArmKeepAlive() {
    if (closing_) return;
    const int64_t half = std::max<int64_t>(ctx_.limits.gateway.idle_timeout_ms / 2, 1);
    const int64_t due = last_rx_ms_ + (pinged_ ? 2 * half : half);
    const int64_t wait = std::max<int64_t>(due - SteadyMs(), 0);
    ArmTimer(static_cast<uint32_t>(wait), [](WsSession& s) { s.OnKeepAlive(); });
  }

  void OnKeepAlive() {
    if (closing_) return;
    const int64_t silent = SteadyMs() - last_rx_ms_;
    const int64_t half = std::max<int64_t>(ctx_.limits.gateway.idle_timeout_ms / 2, 1);
    if (silent >= 2 * half) return Finish();  // gone without a word: no close handshake to wait for
    if (silent >= half && !pinged_) {
      pinged_ = true;
      QueueControl(ws::ControlFrame(ws::Opcode::kPing, {}));
    }
    ArmKeepAlive();
  }

  // ---- reading
  void StartReading() {
    if (early_) {
      std::unique_ptr<std::string> early = std::move(early_);
      reader_.Feed(early->data(), early->size());
      if (!DrainReader()) return;
    }
    WaitReadable();
  }

  void WaitReadable() {
    if (finished_) return;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) { self->OnReadable(ec); });
  }

  void OnReadable(boost::system::error_code ec) {
    if (ec) return Finish();
    thread_local std::unique_ptr<char[]> buf(new char[kReadChunk]);
    for (int turn = 0; turn < kReadsPerTurn && !finished_; ++turn) {
      size_t n = socket_.read_some(net::buffer(buf.get(), kReadChunk), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) return Finish();  // EOF or reset: the client is gone
      if (discarding_) continue;
      last_rx_ms_ = SteadyMs();
      pinged_ = false;
      reader_.Feed(buf.get(), n);
      if (!DrainReader()) break;
      if (n < kReadChunk) break;
    }
    WaitReadable();
  }

  // Hands every complete frame of the input to its handler. Returns false once the input must
  // stop being parsed (peer close, protocol error, session finished).
  bool DrainReader() {
    for (;;) {
      auto e = reader_.Next();
      switch (e.kind) {
        case ws::Reader::Kind::kNeedMore:
          return true;
        case ws::Reader::Kind::kMessage:
          if (!closing_) OnMessage(e.text, e.payload);
          break;
        case ws::Reader::Kind::kPing:
          if (!closing_) QueueControl(ws::ControlFrame(ws::Opcode::kPong, e.payload));
          break;
        case ws::Reader::Kind::kPong:
          break;
        case ws::Reader::Kind::kClose:
          peer_closed_ = true;
          discarding_ = true;  // nothing may follow a close frame
          if (!closing_)
            CloseWith(e.close_code == 0 ? ws::kCloseNormal : e.close_code, "");
          else if (close_sent_)
            Teardown();
          return false;
        case ws::Reader::Kind::kError:
          ++ctx_.counters.bad_frames;
          discarding_ = true;
          if (!closing_)
            CloseWith(e.close_code, e.error);
          else if (close_sent_)
            Teardown();
          return false;
      }
      if (finished_) return false;
    }
  }

  void OnMessage(bool text, std::string_view data) {
    const bool want_text = enc_ == WireEncoding::kJson;
    if (text != want_text) {
      ++ctx_.counters.bad_frames;
      return CloseWith(kClosePolicy,
                       want_text ? "chat.v1.json takes text frames" : "chat.v1.proto takes binary frames");
    }
    HandleFrame(data);
  }

  void HandleFrame(std::string_view data) {
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
    if (inflight_ >= ctx_.limits.gateway.max_inflight_requests) {
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
      net::post(self->socket_.get_executor(), [self, reply = std::move(reply), id = std::move(id)]() mutable {
        self->OnReply(std::move(reply), std::move(id));
      });
    });
  }

  void OnReply(v1::Reply reply, std::optional<Identity> id) {
    --inflight_;
    if (finished_ || closing_) return;  // the client is gone: never register a dead session
    if (authenticating_ && reply.request_id() == auth_request_id_) authenticating_ = false;
    if (id && id->user_id != 0 && identity_.user_id == 0) {
      BecomeAuthenticated(*id,
                          [self = shared_from_this(), reply = std::move(reply)]() mutable { self->SendReply(reply); });
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

  // ---- writing: one write in flight; the queue is bounded in frames and bytes. Overflow = slow consumer.
  void Send(std::shared_ptr<const std::string> frame) {
    if (Enqueue(std::move(frame)) && !writing_) DoWrite();
  }

  // Queues a data frame without starting a write. False once the session is closing.
  bool Enqueue(std::shared_ptr<const std::string> frame) {
    if (closing_) return false;
    if (queue_.size() >= ctx_.limits.gateway.send_queue_max_frames ||
        queued_bytes_ + frame->size() > ctx_.limits.gateway.send_queue_max_bytes) {
      ++ctx_.counters.slow_consumer_kicks;
      CloseWith(kCloseSlowConsumer, "slow consumer: send queue full; reconnect and sync");
      return false;
    }
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    return true;
  }

  void QueueControl(std::string frame) {
    if (close_queued_) return;  // nothing follows our close frame
    control_ += frame;
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    if (control_.empty() && queue_.empty()) return;
    if (!wb_) wb_ = std::make_unique<WriteBatch>();
    WriteBatch& b = *wb_;
    b.control.swap(control_);
    control_.clear();
    b.nbufs = 0;
    b.frames = 0;
    b.carries_close = close_queued_;
    if (!b.control.empty()) b.bufs[b.nbufs++] = net::buffer(b.control);
    const auto op = enc_ == WireEncoding::kProto ? ws::Opcode::kBinary : ws::Opcode::kText;
    size_t bytes = 0;
    while (b.frames < queue_.size() && b.frames < kMaxFramesPerWrite && !b.carries_close &&
           (b.frames == 0 || bytes < kMaxBytesPerWrite)) {
      const std::string& payload = *queue_[b.frames];
      const size_t hn = ws::EncodeHeader(op, payload.size(), b.headers[b.frames]);
      b.bufs[b.nbufs++] = net::buffer(b.headers[b.frames], hn);
      b.bufs[b.nbufs++] = net::buffer(payload);
      bytes += payload.size();
      ++b.frames;
    }
    writing_ = true;
    net::async_write(socket_, std::span<const net::const_buffer>(b.bufs.data(), b.nbufs),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->OnWrite(ec); });
  }

  void OnWrite(boost::system::error_code ec) {
    writing_ = false;
    if (ec) {
      queue_.clear();
      queued_bytes_ = 0;
      wb_.reset();
      return Finish();
    }
    for (size_t i = 0; i < wb_->frames; ++i) {
      queued_bytes_ -= queue_.front()->size();
      queue_.pop_front();
    }
    if (wb_->carries_close) {
      close_sent_ = true;
      wb_.reset();
      if (peer_closed_ || discarding_) Teardown();
      return;
    }
    if (control_.empty() && queue_.empty()) return wb_.reset();  // idle sessions keep no scratch
    DoWrite();
  }

  // Starts a graceful close with `code` once the write in flight (if any) is done. Frames still
  // queued are dropped: the client resyncs after reconnecting.
  void CloseWith(uint16_t code, std::string reason) {
    if (closing_ || !accepted_ || finished_) return;
    closing_ = true;
    while (queue_.size() > (writing_ ? wb_->frames : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    // A peer that never reads would hold the close handshake forever: cut it after a deadline.
    ArmTimer(std::max<uint32_t>(ctx_.limits.common.drain_timeout_ms, 1000), [](WsSession& s) { s.Finish(); });
    control_ += ws::CloseFrame(code, reason);
    close_queued_ = true;
    if (!writing_) DoWrite();
  }

  // Both close frames have passed (or the input is unusable): send FIN and wait for the client's.
  void Teardown() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    discarding_ = true;
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    ++timer_gen_;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (identity_.user_id != 0) {
      ctx_.hub.Remove(identity_.user_id, id_);
      ctx_.registrar.Unregister(ref_);
    }
    if (accepted_) --ctx_.open_sessions;
  }

  std::unique_ptr<IpLimiter::Slot> ip_slot_;  // this connection's place in its address's quota
  tcp::socket socket_;
  GatewayContext& ctx_;
  const WireEncoding enc_;
  std::unique_ptr<Identity> pending_identity_;  // token from the upgrade, until registered
  std::unique_ptr<std::string> early_;          // bytes sent right behind the upgrade request
  const uint64_t id_;
  Identity identity_;         // strand only; user_id 0 until authenticated
  internal::SessionRef ref_;  // set once, before the session enters the hub
  net::steady_timer timer_;   // handshake, auth timeout, keep-alive, then close deadline
  uint64_t timer_gen_ = 0;
  TokenBucket bucket_;
  ws::Reader reader_;
  int64_t last_rx_ms_ = 0;
  FrameQueue queue_;  // empty = no heap memory (idle connections)
  size_t queued_bytes_ = 0;
  std::string control_;             // control frames waiting for the next write
  std::unique_ptr<WriteBatch> wb_;  // only while writing
  uint32_t inflight_ = 0;
  uint64_t auth_request_id_ = 0;
  bool writing_ = false;
  bool accepted_ = false;
  bool authenticating_ = false;  // an auth request is in flight; others wait for its reply
  bool pinged_ = false;          // a keep-alive ping went out since the client last spoke
  bool closing_ = false;         // our close frame is queued or sent; no more data frames
  bool close_queued_ = false;
  bool close_sent_ = false;
  bool peer_closed_ = false;
  bool discarding_ = false;  // input is read and dropped (after a close frame or a protocol error)
  bool finished_ = false;
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
    stream_.expires_after(std::chrono::milliseconds(ctx_.limits.gateway.handshake_timeout_ms));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return;  // timeout, oversized header, garbage: just drop the connection
    auto req = parser_->release();
    if (verdict_ != IpLimiter::Verdict::kOk) {
      ++ctx_.counters.rejected_ip;
      return Respond(http::status::too_many_requests, verdict_ == IpLimiter::Verdict::kTooMany
                                                          ? "too many connections from your address\n"
                                                          : "connecting too fast from your address; back off\n");
    }
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

    std::optional<Identity> identity;
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
      auto claims = ctx_.router.VerifyToken(token, &err);
      if (!claims)
        return Respond(http::status::unauthorized, err == TokenError::kExpired ? "token expired\n" : "invalid token\n");
      identity = Identity{claims->user_id, claims->device_id};
    }
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: chat-gateway\r\n"
        "Sec-WebSocket-Accept: " +
        ws::AcceptKey(key) + "\r\n";
    if (!offered.empty()) response += "Sec-WebSocket-Protocol: " + std::string(SubprotocolName(enc)) + "\r\n";
    response += "\r\n";
    std::string early = beast::buffers_to_string(buffer_.data());
    auto ws =
        std::make_shared<WsSession>(stream_.release_socket(), ctx_, enc, std::move(identity), std::move(ip_slot_));
    ws->Start(std::move(response), std::move(early));
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
  IpLimiter::Verdict verdict_ = IpLimiter::Verdict::kTooFast;
  std::unique_ptr<IpLimiter::Slot> ip_slot_;
};

}  // namespace

void StartHttpSession(tcp::socket socket, GatewayContext& ctx) {
  std::make_shared<HttpSession>(std::move(socket), ctx)->Run();
}

}  // namespace chat::gateway
