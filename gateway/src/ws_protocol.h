#pragma once
// The server side of RFC 6455 framing, without sockets: the opening-handshake key, frame headers
// for what the gateway writes, and an incremental reader of what clients write.
//
// The gateway frames WebSocket itself rather than through Beast's websocket::stream because an
// idle connection must cost next to nothing: Beast keeps ~2.5 KiB of stream state plus a pending
// read chain per connection, while a session here waits for readability with no buffer and reads
// into a per-thread buffer. Writing ourselves also lets one socket write carry many frames.
//
// Pure functions and a single-owner class; no threads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chat::gateway::ws {

enum class Opcode : uint8_t { kContinuation = 0, kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10 };

// Close codes of RFC 6455 section 7.4.1 that the framing layer itself sends.
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kCloseTooBig = 1009;

inline constexpr size_t kMaxHeaderBytes = 10;  // server frames are unmasked
inline constexpr size_t kMaxControlPayload = 125;

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string AcceptKey(std::string_view client_key);
// A Sec-WebSocket-Key must be the base64 encoding of 16 bytes (24 characters).
bool ValidClientKey(std::string_view client_key);

// Writes the header of one final, unmasked frame with `payload_bytes` of payload; returns its size.
size_t EncodeHeader(Opcode op, uint64_t payload_bytes, uint8_t out[kMaxHeaderBytes]);
// A whole control frame (payload truncated to 125 bytes).
std::string ControlFrame(Opcode op, std::string_view payload);
// A close frame; the reason is cut to fit 125 bytes at a UTF-8 boundary. code 0 = no status.
std::string CloseFrame(uint16_t code, std::string_view reason);

// Parses the frames a client sends, reassembling fragmented messages, checking what RFC 6455
// requires of a server (masking, reserved bits, opcodes, control-frame rules, UTF-8 of text and
// close reasons) and the message size limit.
//
// Memory: nothing while the input holds whole frames; an incomplete frame's bytes (at most the size
// limit plus a header) and an unfinished fragmented message are kept until they complete, then
// released.
//
// Usage: Feed(data) with what arrived, then call Next() until it returns kNeedMore or kError. The
// input is unmasked in place, so it must stay valid and untouched until Next() says kNeedMore.
// Views in an Event are valid until the next call to Next() or Feed().
class Reader {
 public:
  enum class Kind { kNeedMore, kMessage, kPing, kPong, kClose, kError };
  struct Event {
    Kind kind = Kind::kNeedMore;
    bool text = false;            // kMessage: a text message (else binary)
    std::string_view payload;     // kMessage, kPing, kPong: the payload; kClose: the reason
    uint16_t close_code = 0;      // kClose: the peer's code (0 = none given); kError: the code to close with
    const char* error = nullptr;  // kError: why, for logs and the close reason
  };

  explicit Reader(size_t max_message_bytes) : max_message_(max_message_bytes) {}

  void Feed(char* data, size_t n);
  Event Next();

  // Bytes held between calls (incomplete frame + unfinished message); for tests and accounting.
  size_t buffered() const { return partial_.size() + message_.size(); }

 private:
  Event Fail(uint16_t code, const char* why);
  void KeepTail();

  size_t max_message_;
  char* in_ = nullptr;  // the current input window: the caller's buffer or partial_
  size_t in_size_ = 0;
  size_t pos_ = 0;
  bool in_is_partial_ = false;
  std::string partial_;  // bytes of a frame that has not fully arrived
  std::string message_;  // fragments of an unfinished message
  bool in_message_ = false;
  bool message_text_ = false;
  bool release_message_ = false;  // message_ was handed out; clear it on the next call
  bool failed_ = false;
};

}  // namespace chat::gateway::ws
