#pragma once
// One client WebSocket connection to a gateway, speaking the chat.v1 protocol.
//
// Threads: every public method of Connection may be called from any thread, concurrently. The
// socket is owned by a private I/O thread (one per Connection); callers only enqueue writes and
// wait on queues filled by that thread. No method throws; failures come back as statuses.
//
// This header is deliberately free of Boost.Beast/Asio (see client/src/connection.cc).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/v1/client.pb.h"
#include "common/codec.h"

namespace chat::client {

inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};
// Largest server message accepted; a bigger one fails the connection (close code 1009).
inline constexpr size_t kMaxIncomingMessageBytes = 16u << 20;

struct ConnectOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/ws";
  // The encoding offered as subprotocol. The one actually used is what the server selects (see
  // Connection::encoding()).
  WireEncoding encoding = WireEncoding::kProto;
  // Empty: connect unauthenticated. Otherwise sent as "Authorization: Bearer <token>", or as the
  // query parameter access_token when token_in_query is set.
  std::string token;
  bool token_in_query = false;
  // Offered Sec-WebSocket-Protocol values, verbatim, instead of the one derived from `encoding`
  // (tests use it to offer junk). Empty = derived. To offer no subprotocol at all, set
  // offer_no_subprotocol.
  std::vector<std::string> subprotocols_override;
  bool offer_no_subprotocol = false;
  // Non-empty: the local end is bound to this address before connecting (tests play clients on
  // several addresses with 127.0.0.x sources). Empty: the system picks.
  std::string source_address;
  // Limit for connect + upgrade, for Close(), and the default for Call().
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Set: called with every WebSocket message received, as received (JSON text or protobuf bytes),
  // before it is decoded, on the connection's I/O thread (it must not block). Tests record frames.
  std::function<void(const std::string&)> on_received;

  // Parses "ws://host:port/path[?query]" (port defaults to 80; path to "/"). Only ws:// is
  // supported. Leaves *out untouched and returns false on anything else. Keeps the other fields.
  static bool ParseUrl(const std::string& url, ConnectOptions* out);
  // "ws://host:port/path", for messages.
  std::string Url() const;
};

class Connection {
 public:
  // Connects and performs the WebSocket upgrade within options.timeout. On failure returns
  // nullptr, a reason in *error (if non-null) and, when the server answered the upgrade with an
  // HTTP error, its status in *http_status (e.g. 401, 400; 0 if no HTTP answer was received;
  // 101 on success).
  static std::unique_ptr<Connection> Connect(const ConnectOptions& options, std::string* error,
                                             int* http_status = nullptr);

  // Closes (code 1000, bounded by options.timeout) if still open, then stops the I/O thread.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends `frame` and waits for the Reply carrying its request_id. A request_id of 0 is replaced
  // by a fresh one (unique within this connection). Never throws:
  //  - no reply within `timeout` -> Reply{status: DEADLINE_EXCEEDED}; a reply arriving later for
  //    that id is discarded;
  //  - connection closed (before or while waiting) -> Reply{status: UNAVAILABLE}, message says
  //    why (close code and reason).
  v1::Reply Call(v1::ClientFrame frame, std::chrono::milliseconds timeout);
  v1::Reply Call(v1::ClientFrame frame);  // with options.timeout

  // Server-pushed events, in arrival order. Returns nullopt when none arrives within `timeout`
  // (or the connection is closed and none is queued).
  std::optional<v1::Event> NextEvent(std::chrono::milliseconds timeout);
  // Waits for the first queued or arriving event satisfying `pred`, removes and returns it.
  // Events that do not match stay queued, in order, for later NextEvent/WaitEvent calls.
  // `pred` runs on the caller's thread with an internal lock held: keep it cheap, and never call
  // back into this Connection from it.
  std::optional<v1::Event> WaitEvent(const std::function<bool(const v1::Event&)>& pred,
                                     std::chrono::milliseconds timeout);
  // Number of events queued right now.
  size_t PendingEvents() const;

  // Replies whose request_id matches no outstanding Call (e.g. request_id 0 for a frame the
  // server could not decode, or replies to frames sent with SendRaw), in arrival order.
  std::optional<v1::Reply> NextUnmatchedReply(std::chrono::milliseconds timeout);

  // Queues `bytes` as one WebSocket message, binary or text, exactly as given (for bad-input
  // tests). Returns false if the connection is already closed. Sends are ordered with Call's.
  bool SendRaw(std::string bytes, bool binary);
  // Encodes `frame` with the negotiated encoding and queues it without waiting for the reply
  // (the reply then shows up in NextUnmatchedReply). Returns false if closed.
  bool Send(const v1::ClientFrame& frame);

  // Waits until the connection is closed (by either side or by a network error). On true,
  // *close_code gets the code the server sent in its close frame (1006 if the connection ended
  // without one) and *reason its reason.
  bool WaitClosed(std::chrono::milliseconds timeout, uint16_t* close_code = nullptr, std::string* reason = nullptr);
  bool is_open() const;
  // Sends a close frame after every queued message and waits (options.timeout at most) for the
  // close handshake. Idempotent.
  void Close(uint16_t code = 1000);

  // The encoding in use: the subprotocol the server selected; JSON if it selected none.
  WireEncoding encoding() const;
  // The Sec-WebSocket-Protocol value the server answered with ("" if none).
  std::string negotiated_subprotocol() const;
  const ConnectOptions& options() const;

  // Diagnostics for protocol tests. frame_type_mismatches: messages whose frame type did not
  // match the encoding (text on proto or binary on JSON); they are still decoded and delivered.
  // undecodable_messages: messages that did not decode as a ServerFrame; they are dropped.
  uint64_t frame_type_mismatches() const;
  uint64_t undecodable_messages() const;

  class Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chat::client
