#include "ws_session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <span>

#include "common/status_code.h"
#include "frame_queue.h"
#include "rate_limiter.h"
#include "router.h"
#include "ws_protocol.h"

namespace chat::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Close codes (docs/protocol.md).
constexpr uint16_t kClosePolicy = 1008;
constexpr uint16_t kCloseTryAgainLater = 1013;
constexpr uint16_t kCloseAuthTimeout = 4001;
constexpr uint16_t kCloseSlowConsumer = 4008;

bool IsAuthRequest(v1::ClientFrame::RequestCase c) {
  return c == v1::ClientFrame::kSignUp || c == v1::ClientFrame::kLogIn || c == v1::ClientFrame::kAuthenticate;
}

// Requests whose one-time code is checked (code_checks_per_connection, per-address quotas).
bool IsCodeCheck(v1::ClientFrame::RequestCase c) {
  return c == v1::ClientFrame::kSignUp || c == v1::ClientFrame::kLogIn || c == v1::ClientFrame::kChangePhone ||
         c == v1::ClientFrame::kDeleteAccount;
}

// The close reason when a successful `frame` ends the asking connection's own session (log_out of
// this device or of all, delete_account), else nullptr.
const char* EndsOwnSession(const v1::ClientFrame& frame, uint64_t own_session) {
  if (frame.request_case() == v1::ClientFrame::kDeleteAccount) return "account deleted";
  if (frame.request_case() != v1::ClientFrame::kLogOut) return nullptr;
  const auto& r = frame.log_out();
  return r.all_devices() || r.session_id() == 0 || r.session_id() == own_session ? "signed out" : nullptr;
}

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
//
// The session's life is one State (below); the only other flags are orthogonal to it: a write in
// flight (writing_) and a keep-alive ping unanswered (pinged_).
class WsSession : public SessionHandle, public std::enable_shared_from_this<WsSession> {
 public:
  // In order: a later state never goes back to an earlier one, except kAuthenticating, which
  // returns to kUnauthenticated when its request fails.
  enum class State : uint8_t {
    kUpgrading,        // writing the 101; not yet counted in open_sessions
    kUnauthenticated,  // open; the auth timeout runs
    kAuthenticating,   // an auth request is in flight; other requests but request_code wait for it
    kAuthenticated,    // identity set; in the hub and registered with presence
    kClosing,          // our close frame is queued; no more data frames; input still parsed
    kPeerGone,         // the client closed or broke the protocol: input discarded; our close pending
    kCloseSent,        // our close frame is written; input parsed for the client's close
    kTornDown,         // both closes passed (or input unusable): FIN sent, input discarded until EOF
    kFinished,         // socket closed, unregistered
  };

  WsSession(tcp::socket&& socket, GatewayContext& ctx, Upgrade upgrade)
      : ip_slot_(std::move(upgrade.ip_slot)),
        socket_(std::move(socket)),
        ctx_(ctx),
        enc_(upgrade.encoding),
        id_(ctx.session_ids.Next()),
        timer_(socket_.get_executor()),
        bucket_(ctx.limits.gateway.requests_per_second, ctx.limits.gateway.request_burst),
        reader_(ctx.limits.gateway.max_frame_bytes) {
    if (upgrade.identity) pending_identity_ = std::make_unique<Identity>(*upgrade.identity);
    if (!upgrade.early.empty()) early_ = std::make_unique<std::string>(std::move(upgrade.early));
  }

  // Writes the 101 response, then serves the connection.
  void Start(std::string response) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
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
      if (self->state_ != State::kAuthenticated) return;
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
  void Revoke(std::shared_ptr<const internal::Revocation> r, std::shared_ptr<const SharedEvent> kicked, uint16_t code,
              std::string reason) override {
    net::post(socket_.get_executor(), [self = shared_from_this(), r = std::move(r), kicked = std::move(kicked), code,
                                       reason = std::move(reason)]() mutable {
      if (self->state_ != State::kAuthenticated || !self->RevocationMatches(*r)) return;
      // The kicked event, then the close once it is written.
      self->Enqueue(kicked->Frame(self->enc_));
      self->CloseAfterQueued(code, std::move(reason));
    });
  }
  uint64_t session_id() const override { return id_; }
  int64_t last_request_ms() const override { return last_request_ms_.load(std::memory_order_relaxed); }
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

  bool closing() const { return state_ >= State::kClosing; }
  bool discarding() const { return state_ == State::kPeerGone || state_ == State::kTornDown; }

  void OnAccept() {
    state_ = State::kUnauthenticated;
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
      if (s.state_ == State::kUnauthenticated || s.state_ == State::kAuthenticating)
        s.CloseWith(kCloseAuthTimeout, "not authenticated in time");
    });
    StartReading();
  }

  // Registers the session (hub + presence); `then` runs on the strand once presence answered.
  void BecomeAuthenticated(const Identity& id, std::function<void()> then) {
    identity_ = id;
    state_ = State::kAuthenticated;
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
      if (!ec && gen == self->timer_gen_ && self->state_ != State::kFinished) on_expiry(*self);
    });
  }

  // Pings after idle_timeout/2 of silence from the client; drops the connection after idle_timeout.
  void ArmKeepAlive() {
    if (closing()) return;
    const int64_t half = std::max<int64_t>(ctx_.limits.gateway.idle_timeout_ms / 2, 1);
    const int64_t due = last_rx_ms_ + (pinged_ ? 2 * half : half);
    const int64_t wait = std::max<int64_t>(due - SteadyMs(), 0);
    ArmTimer(static_cast<uint32_t>(wait), [](WsSession& s) { s.OnKeepAlive(); });
  }

  void OnKeepAlive() {
    if (closing()) return;
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
    if (state_ == State::kFinished) return;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) { self->OnReadable(ec); });
  }

  void OnReadable(boost::system::error_code ec) {
    if (ec) return Finish();
    thread_local std::unique_ptr<char[]> buf(new char[kReadChunk]);
    for (int turn = 0; turn < kReadsPerTurn && state_ != State::kFinished; ++turn) {
      size_t n = socket_.read_some(net::buffer(buf.get(), kReadChunk), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) return Finish();  // EOF or reset: the client is gone
      if (discarding()) continue;
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
          if (!closing()) OnMessage(e.text, e.payload);
          break;
        case ws::Reader::Kind::kPing:
          if (!closing()) QueueControl(ws::ControlFrame(ws::Opcode::kPong, e.payload));
          break;
        case ws::Reader::Kind::kPong:
          break;
        case ws::Reader::Kind::kClose:  // nothing may follow a close frame
          PeerGone(e.close_code == 0 ? ws::kCloseNormal : e.close_code, "");
          return false;
        case ws::Reader::Kind::kError:
          ++ctx_.counters.bad_frames;
          PeerGone(e.close_code, e.error);
          return false;
      }
      if (state_ == State::kFinished) return false;
    }
  }

  // The client closed, or its input became unusable: answer with our close if none is queued yet,
  // discard the rest of the input, and tear down once our close frame is out.
  void PeerGone(uint16_t code, std::string reason) {
    if (!closing()) CloseWith(code, std::move(reason));
    if (state_ == State::kCloseSent)
      Teardown();
    else if (state_ == State::kClosing)
      state_ = State::kPeerGone;
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
    const int64_t now_ms = SteadyMs();
    last_request_ms_.store(now_ms, std::memory_order_relaxed);
    if (!bucket_.TryTake(now_ms)) {
      ++ctx_.counters.rate_limited;
      return SendReply(ErrorReply(rid, v1::RESOURCE_EXHAUSTED, "request rate limit exceeded; slow down"));
    }
    if (inflight_ >= ctx_.limits.gateway.max_inflight_requests) {
      ++ctx_.counters.rate_limited;
      return SendReply(ErrorReply(rid, v1::RESOURCE_EXHAUSTED, "too many requests in flight; wait for replies"));
    }
    if (state_ == State::kAuthenticated && IsAuthRequest(frame.request_case()))
      return SendReply(ErrorReply(rid, v1::FAILED_PRECONDITION, "this connection is already authenticated"));
    if (state_ == State::kAuthenticating && frame.request_case() != v1::ClientFrame::kRequestCode)
      return SendReply(ErrorReply(rid, v1::UNAVAILABLE, "authentication in progress; retry after its reply"));
    const auto kind = frame.request_case();
    const bool code_request = kind == v1::ClientFrame::kRequestCode;
    const bool code_check = IsCodeCheck(kind);
    if (code_request || code_check) {
      // Per connection, before the per-address and per-phone quotas of account-service: counted
      // whatever the answer, for the connection's life.
      const uint32_t cap = code_request ? ctx_.limits.gateway.code_requests_per_connection
                                        : ctx_.limits.gateway.code_checks_per_connection;
      uint32_t& used = code_request ? code_requests_ : code_checks_;
      if (cap > 0 && used >= cap) {
        ++ctx_.counters.rate_limited;
        return SendReply(ErrorReply(rid, v1::RESOURCE_EXHAUSTED,
                                    code_request ? "too many code requests on this connection "
                                                   "(limits.gateway.code_requests_per_connection)"
                                                 : "too many code checks (sign_up, log_in, change_phone, "
                                                   "delete_account) on this connection "
                                                   "(limits.gateway.code_checks_per_connection)"));
      }
      ++used;
    }
    RequestContext rc{identity_,
                      {},
                      id_,
                      ctx_.instance_id,
                      (code_request || code_check) && ip_slot_ ? ip_slot_->client() : std::string()};
    if (IsAuthRequest(frame.request_case())) {
      state_ = State::kAuthenticating;
      auth_request_id_ = rid;
    }
    ++inflight_;
    if (frame.request_case() == v1::ClientFrame::kAuthenticate) {
      // The authentication step: the token and its session are checked here, as for a token in the
      // upgrade; the router only fetches the account.
      TokenError err{};
      auto claimed = ctx_.auth.Verify(frame.authenticate().token(), &err);
      if (!claimed) return OnReply(ErrorReply(rid, v1::UNAUTHENTICATED, Authenticator::Refusal(err)), std::nullopt);
      rc.claimed = *claimed;
      ctx_.auth.CheckAccount(*claimed, [self = shared_from_this(), rc = std::move(rc),
                                        frame = std::move(frame)](Authenticator::AccountVerdict v) mutable {
        net::post(self->socket_.get_executor(), [self, v, rc = std::move(rc), frame = std::move(frame)] {
          using V = Authenticator::AccountVerdict;
          if (v == V::kAdmit) return self->Route(rc, frame);
          self->OnReply(ErrorReply(frame.request_id(), v == V::kNoAccount ? v1::UNAUTHENTICATED : v1::UNAVAILABLE,
                                   Authenticator::Refusal(v)),
                        std::nullopt);
        });
      });
      return;
    }
    Route(rc, frame);
  }

  void Route(const RequestContext& rc, const v1::ClientFrame& frame) {
    const char* ends_session = EndsOwnSession(frame, identity_.session_id);
    ctx_.router.Handle(rc, frame,
                       [self = shared_from_this(), ends_session](v1::Reply reply, std::optional<Identity> id) {
                         net::post(self->socket_.get_executor(),
                                   [self, ends_session, reply = std::move(reply), id = std::move(id)]() mutable {
                                     self->OnReply(std::move(reply), std::move(id), ends_session);
                                   });
                       });
  }

  void OnReply(v1::Reply reply, std::optional<Identity> id, const char* ends_session = nullptr) {
    --inflight_;
    if (closing()) return;  // the client is gone: never register a dead session
    if (state_ == State::kAuthenticating && reply.request_id() == auth_request_id_) state_ = State::kUnauthenticated;
    const bool ok = reply.status() == v1::OK;
    if (ok && reply.has_session()) {
      // The exact claims of the token just issued (sign_up, log_in, refresh_token): a refreshed
      // connection carries the new generation, so revocations of the older ones spare it.
      if (auto claims = ctx_.auth.Verify(reply.session().token(), nullptr)) {
        if (id)
          *id = *claims;
        else if (state_ == State::kAuthenticated && claims->user_id == identity_.user_id &&
                 claims->session_id == identity_.session_id)
          identity_.token_gen = claims->token_gen;
      }
    }
    if (id && id->user_id != 0 && state_ == State::kUnauthenticated) {
      BecomeAuthenticated(*id,
                          [self = shared_from_this(), reply = std::move(reply)]() mutable { self->SendReply(reply); });
      return;
    }
    SendReply(reply);
    if (ok && ends_session) CloseAfterQueued(kCloseSessionEnded, ends_session);
  }

  // Whether a revocation of this session's user covers this connection's token.
  bool RevocationMatches(const internal::Revocation& r) const {
    if (r.skip_session_id() == id_ && r.skip_gateway_id() == ctx_.instance_id) return false;
    if (r.below_gen() != 0 && identity_.token_gen >= r.below_gen()) return false;
    if (r.all_sessions()) return true;
    for (uint64_t s : r.session_ids())
      if (s == identity_.session_id) return true;
    return false;
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
    if (closing() || pending_close_) return false;
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
    if (closing()) return;  // nothing follows our close frame
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
    b.carries_close = state_ == State::kClosing || state_ == State::kPeerGone;
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
      wb_.reset();
      if (state_ == State::kPeerGone)
        Teardown();
      else if (state_ == State::kClosing)
        state_ = State::kCloseSent;
      return;
    }
    if (pending_close_ && queue_.empty()) {
      auto close = std::move(pending_close_);
      return CloseWith(close->code, std::move(close->reason));
    }
    if (control_.empty() && queue_.empty()) return wb_.reset();  // idle sessions keep no scratch
    DoWrite();
  }

  // CloseWith once every frame queued so far is written (a reply or kicked event must not be lost to
  // the close). Frames queued meanwhile go out too.
  void CloseAfterQueued(uint16_t code, std::string reason) {
    if (closing()) return;
    if (queue_.empty() && control_.empty() && !writing_) return CloseWith(code, std::move(reason));
    pending_close_ = std::make_unique<PendingClose>(PendingClose{code, std::move(reason)});
    if (!writing_) DoWrite();
  }

  // Starts a graceful close with `code` once the write in flight (if any) is done. Frames still
  // queued are dropped: the client resyncs after reconnecting.
  void CloseWith(uint16_t code, std::string reason) {
    if (closing() || state_ == State::kUpgrading) return;
    state_ = State::kClosing;
    while (queue_.size() > (writing_ ? wb_->frames : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    // A peer that never reads would hold the close handshake forever: cut it after a deadline.
    ArmTimer(std::max<uint32_t>(ctx_.limits.common.drain_timeout_ms, 1000), [](WsSession& s) { s.Finish(); });
    control_ += ws::CloseFrame(code, reason);
    if (!writing_) DoWrite();
  }

  // Both close frames have passed (or the input is unusable): send FIN and wait for the client's.
  void Teardown() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    state_ = State::kTornDown;
  }

  void Finish() {
    if (state_ == State::kFinished) return;
    const bool accepted = state_ != State::kUpgrading;
    state_ = State::kFinished;
    ++timer_gen_;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (identity_.user_id != 0) {
      ctx_.hub.Remove(identity_.user_id, id_);
      ctx_.registrar.Unregister(ref_);
    }
    if (accepted) --ctx_.open_sessions;
  }

  std::unique_ptr<IpLimiter::Slot> ip_slot_;  // this connection's place in its address's quota
  uint32_t code_requests_ = 0;                // request_code frames so far (code_requests_per_connection)
  uint32_t code_checks_ = 0;                  // sign_up and log_in frames so far (code_checks_per_connection)
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
  std::atomic<int64_t> last_request_ms_{0};  // written on the strand, read by the presence registrar
  ws::Reader reader_;
  int64_t last_rx_ms_ = 0;
  FrameQueue queue_;  // empty = no heap memory (idle connections)
  size_t queued_bytes_ = 0;
  std::string control_;  // control frames waiting for the next write
  struct PendingClose {
    uint16_t code;
    std::string reason;
  };
  std::unique_ptr<PendingClose> pending_close_;  // CloseAfterQueued: once the queue is written
  std::unique_ptr<WriteBatch> wb_;               // only while writing
  uint32_t inflight_ = 0;
  uint64_t auth_request_id_ = 0;  // the request that put the session in kAuthenticating
  State state_ = State::kUpgrading;
  bool writing_ = false;  // a socket write is in flight (wb_ is its scratch)
  bool pinged_ = false;   // a keep-alive ping went out since the client last spoke
};

}  // namespace

void StartWsSession(tcp::socket socket, GatewayContext& ctx, Upgrade upgrade) {
  std::string response = std::move(upgrade.response);
  std::make_shared<WsSession>(std::move(socket), ctx, std::move(upgrade))->Start(std::move(response));
}

}  // namespace chat::gateway
