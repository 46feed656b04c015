#include "ws_protocol.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstring>

#include "common/codec.h"
#include "common/utf8.h"

namespace chat::gateway::ws {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool IsControl(uint8_t op) { return op >= 8; }

bool KnownOpcode(uint8_t op) { return op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10; }

// Close codes a peer may send (RFC 6455 7.4 and the IANA registry; 1005, 1006 and 1015 are never
// on the wire).
bool ValidPeerCloseCode(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

void Unmask(char* p, size_t n, const uint8_t key[4]) {
  uint32_t k32;
  std::memcpy(&k32, key, 4);
  const uint64_t k64 = (uint64_t(k32) << 32) | k32;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= k64;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

}  // namespace

bool ValidClientKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22))
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) return false;
  return true;
}

std::string AcceptKey(std::string_view client_key) {
  std::string in(client_key);
  in += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

size_t EncodeHeader(Opcode op, uint64_t n, uint8_t out[kMaxHeaderBytes]) {
  out[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(op));
  if (n < 126) {
    out[1] = static_cast<uint8_t>(n);
    return 2;
  }
  if (n <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(n >> 8);
    out[3] = static_cast<uint8_t>(n);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(n >> (56 - 8 * i));
  return 10;
}

std::string ControlFrame(Opcode op, std::string_view payload) {
  payload = payload.substr(0, kMaxControlPayload);
  uint8_t h[kMaxHeaderBytes];
  size_t hn = EncodeHeader(op, payload.size(), h);
  std::string f(reinterpret_cast<char*>(h), hn);
  f += payload;
  return f;
}

std::string CloseFrame(uint16_t code, std::string_view reason) {
  if (code == 0) return ControlFrame(Opcode::kClose, {});
  const size_t n = Utf8PrefixBytes(reason, kMaxControlPayload - 2);
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload += reason.substr(0, n);
  return ControlFrame(Opcode::kClose, payload);
}

// ------------------------------------------------------------------------------------------------
void Reader::Feed(char* data, size_t n) {
  if (!partial_.empty()) {
    partial_.append(data, n);
    in_ = partial_.data();
    in_size_ = partial_.size();
    in_is_partial_ = true;
  } else {
    in_ = data;
    in_size_ = n;
    in_is_partial_ = false;
  }
  pos_ = 0;
}

void Reader::KeepTail() {
  if (in_is_partial_) {
    partial_.erase(0, pos_);
    if (partial_.empty()) std::string().swap(partial_);
  } else if (pos_ < in_size_) {
    partial_.assign(in_ + pos_, in_size_ - pos_);
  }
  in_ = nullptr;
  in_size_ = pos_ = 0;
  in_is_partial_ = false;
}

Reader::Event Reader::Fail(uint16_t code, const char* why) {
  failed_ = true;
  std::string().swap(partial_);
  std::string().swap(message_);
  Event e;
  e.kind = Kind::kError;
  e.close_code = code;
  e.error = why;
  return e;
}

Reader::Event Reader::Next() {
  if (failed_) return Fail(kCloseProtocolError, "input after a protocol error");
  if (release_message_) {
    release_message_ = false;
    std::string().swap(message_);
  }
  for (;;) {
    const size_t avail = in_size_ - pos_;
    const auto* p = reinterpret_cast<const uint8_t*>(in_ + pos_);
    if (avail < 2) break;
    const bool fin = p[0] & 0x80;
    const uint8_t op = p[0] & 0x0F;
    if (p[0] & 0x70) return Fail(kCloseProtocolError, "reserved bits set");
    if (!KnownOpcode(op)) return Fail(kCloseProtocolError, "unknown opcode");
    if (!(p[1] & 0x80)) return Fail(kCloseProtocolError, "client frames must be masked");
    uint64_t len = p[1] & 0x7F;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t(p[2]) << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      if (len >> 63) return Fail(kCloseProtocolError, "frame length out of range");
      hdr = 10;
    }
    if (IsControl(op)) {
      if (!fin) return Fail(kCloseProtocolError, "fragmented control frame");
      if (len > kMaxControlPayload) return Fail(kCloseProtocolError, "control frame too long");
    } else {
      if (op == 0 && !in_message_) return Fail(kCloseProtocolError, "continuation without a message");
      if (op != 0 && in_message_) return Fail(kCloseProtocolError, "new message inside a fragmented one");
      if (len > max_message_ || message_.size() + len > max_message_) return Fail(kCloseTooBig, "message too big");
    }
    if (avail < hdr + 4 + len) break;  // the frame has not fully arrived
    uint8_t key[4];
    std::memcpy(key, p + hdr, 4);
    char* payload = in_ + pos_ + hdr + 4;
    const size_t n = static_cast<size_t>(len);
    Unmask(payload, n, key);
    pos_ += hdr + 4 + n;
    std::string_view body(payload, n);

    Event e;
    switch (static_cast<Opcode>(op)) {
      case Opcode::kPing:
        e.kind = Kind::kPing;
        e.payload = body;
        return e;
      case Opcode::kPong:
        e.kind = Kind::kPong;
        e.payload = body;
        return e;
      case Opcode::kClose:
        if (n == 1) return Fail(kCloseProtocolError, "close payload of one byte");
        e.kind = Kind::kClose;
        if (n >= 2) {
          e.close_code = static_cast<uint16_t>((uint8_t(body[0]) << 8) | uint8_t(body[1]));
          if (!ValidPeerCloseCode(e.close_code)) return Fail(kCloseProtocolError, "invalid close code");
          e.payload = body.substr(2);
          if (!IsValidUtf8(e.payload)) return Fail(kCloseInvalidPayload, "close reason is not UTF-8");
        }
        return e;
      default:
        break;
    }
    if (op != 0) {
      message_text_ = op == static_cast<uint8_t>(Opcode::kText);
      if (fin) {  // the common case: a whole message in one frame, handed out in place
        if (message_text_ && !IsValidUtf8(body)) return Fail(kCloseInvalidPayload, "text message is not UTF-8");
        e.kind = Kind::kMessage;
        e.text = message_text_;
        e.payload = body;
        return e;
      }
      in_message_ = true;
    }
    message_.append(body);
    if (!fin) continue;
    in_message_ = false;
    if (message_text_ && !IsValidUtf8(message_)) return Fail(kCloseInvalidPayload, "text message is not UTF-8");
    release_message_ = true;
    e.kind = Kind::kMessage;
    e.text = message_text_;
    e.payload = message_;
    return e;
  }
  KeepTail();
  return Event{};
}

}  // namespace chat::gateway::ws
