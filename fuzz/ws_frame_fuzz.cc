// The gateway's WebSocket frame reader (gateway/src/ws_protocol.h) on arbitrary client bytes.
//
// Input: byte 0 seeds how the rest is cut into reads; the rest is what a client sends.
// Invariants checked:
//   - reading the bytes in one piece and cut into reads yields the same events (the reader is
//     incremental: where a read ends must not matter);
//   - nothing handed out breaks what the reader promises: a message within the size limit, text and
//     close reasons valid UTF-8, close codes a peer may send; the bytes held between reads stay
//     within the size limit plus a header; after an error every call is an error;
//   - a frame the gateway's own encoder writes (CloseFrame), masked as a client would, reads back.
#include <cstdint>
#include <string>
#include <vector>

#include "common/utf8.h"
#include "fuzz_check.h"
#include "ws_protocol.h"

namespace {

using chat::gateway::ws::Reader;

constexpr size_t kMaxMessage = 1000;  // small, so the fuzzer reaches the limit
constexpr size_t kMaxFrameHeader = 14;

struct Seen {
  Reader::Kind kind;
  bool text;
  std::string payload;
  uint16_t close_code;
  std::string error;
  bool operator==(const Seen&) const = default;
};

void CheckEvent(const Reader::Event& e) {
  switch (e.kind) {
    case Reader::Kind::kMessage:
      FUZZ_CHECK(e.payload.size() <= kMaxMessage);
      if (e.text) FUZZ_CHECK(chat::IsValidUtf8(e.payload));
      break;
    case Reader::Kind::kPing:
    case Reader::Kind::kPong:
      FUZZ_CHECK(e.payload.size() <= chat::gateway::ws::kMaxControlPayload);
      break;
    case Reader::Kind::kClose:
      FUZZ_CHECK(e.payload.size() + 2 <= chat::gateway::ws::kMaxControlPayload);
      FUZZ_CHECK(chat::IsValidUtf8(e.payload));
      FUZZ_CHECK(e.close_code == 0 || (e.close_code >= 1000 && e.close_code < 5000));
      break;
    case Reader::Kind::kError:
      FUZZ_CHECK(e.error != nullptr);
      FUZZ_CHECK(e.close_code == chat::gateway::ws::kCloseProtocolError ||
                 e.close_code == chat::gateway::ws::kCloseInvalidPayload ||
                 e.close_code == chat::gateway::ws::kCloseTooBig);
      break;
    case Reader::Kind::kNeedMore:
      break;
  }
}

// Feeds `data` cut into reads of the sizes `cuts` yields (0 = the rest); returns every event up to
// the first error.
template <typename Cuts>
std::vector<Seen> ReadAll(std::string data, Cuts cuts) {
  Reader reader(kMaxMessage);
  std::vector<Seen> seen;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = cuts();
    if (n == 0 || n > data.size() - pos) n = data.size() - pos;
    reader.Feed(data.data() + pos, n);
    pos += n;
    for (;;) {
      Reader::Event e = reader.Next();
      CheckEvent(e);
      if (e.kind == Reader::Kind::kNeedMore) break;
      seen.push_back({e.kind, e.text, std::string(e.payload), e.close_code, e.error ? e.error : ""});
      if (e.kind == Reader::Kind::kError) {
        FUZZ_CHECK(reader.Next().kind == Reader::Kind::kError);
        return seen;
      }
    }
    FUZZ_CHECK(reader.buffered() <= kMaxMessage + kMaxFrameHeader);
  }
  return seen;
}

// `frame` as a client would send it: the mask bit set and a zero key (so the payload is unchanged).
std::string MaskedWithZeroKey(const std::string& frame) {
  const size_t hdr = (frame[1] & 0x7F) == 126 ? 4 : (frame[1] & 0x7F) == 127 ? 10 : 2;
  std::string out = frame.substr(0, hdr);
  out[1] = static_cast<char>(out[1] | 0x80);
  out.append(4, '\0');
  out += frame.substr(hdr);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint32_t state = data[0];
  const std::string stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::vector<Seen> whole = ReadAll(stream, [] { return size_t{0}; });
  const std::vector<Seen> cut = ReadAll(stream, [&state] {
    state = state * 1103515245u + 12345u;
    return size_t{1} + (state >> 16) % 23;  // reads of 1..23 bytes: every header split happens
  });
  FUZZ_CHECK(whole == cut);

  // The gateway's own close frame, for a reason made of the same bytes, reads back as sent.
  const std::string reason = stream.substr(0, chat::Utf8PrefixBytes(stream, stream.size()));
  if (chat::IsValidUtf8(reason)) {
    const std::string frame = chat::gateway::ws::CloseFrame(chat::gateway::ws::kCloseNormal, reason);
    FUZZ_CHECK(frame.size() <= 2 + chat::gateway::ws::kMaxControlPayload);
    const std::vector<Seen> back = ReadAll(MaskedWithZeroKey(frame), [] { return size_t{0}; });
    FUZZ_CHECK(back.size() == 1 && back[0].kind == Reader::Kind::kClose);
    FUZZ_CHECK(back[0].close_code == chat::gateway::ws::kCloseNormal);
    FUZZ_CHECK(reason.substr(0, back[0].payload.size()) == back[0].payload);
  }
  return 0;
}
