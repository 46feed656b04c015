// The gateway's RFC 6455 framing (gateway/src/ws_protocol.h) on byte strings: what a client may
// send, split anywhere, and every violation a server must refuse with the right close code.
#include "ws_protocol.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace chat::gateway::ws {
namespace {

// A client frame as a browser would write it: masked with `key`.
std::string ClientFrame(uint8_t first_byte, std::string_view payload, bool masked = true, uint32_t key = 0x37fa213d) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size()));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(uint64_t(payload.size()) >> (8 * i)));
  }
  uint8_t k[4] = {uint8_t(key >> 24), uint8_t(key >> 16), uint8_t(key >> 8), uint8_t(key)};
  if (masked) f.append(reinterpret_cast<char*>(k), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f.push_back(masked ? static_cast<char>(payload[i] ^ k[i & 3]) : payload[i]);
  return f;
}

constexpr uint8_t kFin = 0x80;

struct Seen {
  Reader::Kind kind;
  bool text;
  std::string payload;
  uint16_t code;
};

// Feeds `wire` in pieces of `chunk` bytes and collects every event up to the first error.
std::vector<Seen> Parse(Reader& r, std::string wire, size_t chunk) {
  std::vector<Seen> out;
  for (size_t at = 0; at < wire.size(); at += chunk) {
    std::string piece = wire.substr(at, chunk);  // the reader unmasks in place
    r.Feed(piece.data(), piece.size());
    for (;;) {
      auto e = r.Next();
      if (e.kind == Reader::Kind::kNeedMore) break;
      out.push_back({e.kind, e.text, std::string(e.payload), e.close_code});
      if (e.kind == Reader::Kind::kError) return out;
    }
  }
  return out;
}

std::vector<Seen> Parse(std::string wire, size_t chunk = 1 << 20, size_t max = 1 << 20) {
  Reader r(max);
  return Parse(r, std::move(wire), chunk);
}

uint16_t ErrorCode(const std::vector<Seen>& seen) {
  return !seen.empty() && seen.back().kind == Reader::Kind::kError ? seen.back().code : 0;
}

TEST(WsHandshake, AcceptKeyIsTheRfcExample) {
  EXPECT_EQ(AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, ClientKeyMustBeBase64OfSixteenBytes) {
  EXPECT_TRUE(ValidClientKey("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(ValidClientKey(""));
  EXPECT_FALSE(ValidClientKey("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(ValidClientKey("dGhlIHNhbXBsZSBub25jZ!=="));
  EXPECT_FALSE(ValidClientKey("dGhlIHNhbXBsZSBub25jZQQQ"));
}

TEST(WsFrames, HeaderLengthEncodings) {
  uint8_t h[kMaxHeaderBytes];
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 0, h), 2u);
  EXPECT_EQ(h[0], 0x82);
  EXPECT_EQ(h[1], 0);
  EXPECT_EQ(EncodeHeader(Opcode::kText, 125, h), 2u);
  EXPECT_EQ(h[0], 0x81);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 126, h), 4u);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ((h[2] << 8) | h[3], 126);
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 65535, h), 4u);
  EXPECT_EQ((h[2] << 8) | h[3], 65535);
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 65536, h), 10u);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(h[7], 1);
  EXPECT_EQ(h[8], 0);
  EXPECT_EQ(h[9], 0);
}

TEST(WsFrames, CloseFrameCarriesCodeAndCutsTheReasonAtACharacter) {
  std::string f = CloseFrame(4008, "slow");
  ASSERT_EQ(f.size(), 2u + 2 + 4);
  EXPECT_EQ(uint8_t(f[0]), 0x88);
  EXPECT_EQ(f[1], 6);
  EXPECT_EQ((uint8_t(f[2]) << 8) | uint8_t(f[3]), 4008);
  EXPECT_EQ(f.substr(4), "slow");

  std::string long_reason;
  for (int i = 0; i < 100; ++i) long_reason += "\xc3\xa9";  // "é" x 100 = 200 bytes
  f = CloseFrame(1000, long_reason);
  const size_t reason_bytes = f.size() - 4;
  EXPECT_LE(reason_bytes, 123u);
  EXPECT_EQ(reason_bytes % 2, 0u) << "cut inside a character";
  EXPECT_EQ(CloseFrame(0, "ignored").size(), 2u);
}

TEST(WsReader, WholeMessagesInOneRead) {
  auto seen = Parse(ClientFrame(kFin | 1, "hello") + ClientFrame(kFin | 2, std::string("\0\1\2", 3)));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].kind, Reader::Kind::kMessage);
  EXPECT_TRUE(seen[0].text);
  EXPECT_EQ(seen[0].payload, "hello");
  EXPECT_FALSE(seen[1].text);
  EXPECT_EQ(seen[1].payload, std::string("\0\1\2", 3));
}

TEST(WsReader, AnySplitOfTheInputGivesTheSameMessages) {
  std::string big(70000, 'x');  // 64-bit length form
  std::string mid(300, 'y');    // 16-bit length form
  std::string wire = ClientFrame(kFin | 1, "a") + ClientFrame(2, "fr") + ClientFrame(kFin | 9, "p") +
                     ClientFrame(kFin | 0, "ag") + ClientFrame(kFin | 2, big) + ClientFrame(kFin | 1, mid) +
                     ClientFrame(kFin | 10, "");
  for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(4096), size_t(1) << 20}) {
    Reader r(1 << 20);
    auto seen = Parse(r, wire, chunk);
    ASSERT_EQ(seen.size(), 6u) << chunk;
    EXPECT_EQ(seen[0].payload, "a");
    EXPECT_EQ(seen[1].kind, Reader::Kind::kPing) << "a control frame between fragments comes first";
    EXPECT_EQ(seen[1].payload, "p");
    EXPECT_EQ(seen[2].kind, Reader::Kind::kMessage);
    EXPECT_FALSE(seen[2].text);
    EXPECT_EQ(seen[2].payload, "frag");
    EXPECT_EQ(seen[3].payload, big);
    EXPECT_EQ(seen[4].payload, mid);
    EXPECT_TRUE(seen[4].text);
    EXPECT_EQ(seen[5].kind, Reader::Kind::kPong);
    EXPECT_EQ(r.buffered(), 0u) << "nothing is kept once every frame is complete (chunk " << chunk << ")";
  }
}

TEST(WsReader, KeepsOnlyTheIncompleteFrame) {
  Reader r(1 << 20);
  std::string wire = ClientFrame(kFin | 2, "done") + ClientFrame(kFin | 2, std::string(1000, 'z'));
  std::string first = wire.substr(0, 10 + 8 + 500);
  r.Feed(first.data(), first.size());
  auto e = r.Next();
  EXPECT_EQ(e.payload, "done");
  EXPECT_EQ(r.Next().kind, Reader::Kind::kNeedMore);
  EXPECT_EQ(r.buffered(), first.size() - 10);
  std::string rest = wire.substr(first.size());
  r.Feed(rest.data(), rest.size());
  e = r.Next();
  EXPECT_EQ(e.payload, std::string(1000, 'z'));
  EXPECT_EQ(r.Next().kind, Reader::Kind::kNeedMore);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(WsReader, CloseFrames) {
  auto seen = Parse(ClientFrame(kFin | 8, ""));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, Reader::Kind::kClose);
  EXPECT_EQ(seen[0].code, 0);

  seen = Parse(ClientFrame(kFin | 8, std::string("\x03\xe8", 2) + "bye"));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].code, 1000);
  EXPECT_EQ(seen[0].payload, "bye");

  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 8, "\x03"))), kCloseProtocolError) << "one-byte payload";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 8, std::string("\x03\xed", 2)))), kCloseProtocolError)
      << "1005 never goes on the wire";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 8, std::string("\x03\xe8\xff", 3)))), kCloseInvalidPayload);
}

TEST(WsReader, ProtocolViolationsCloseWith1002) {
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 2, "x", /*masked=*/false))), kCloseProtocolError) << "unmasked";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 0x40 | 2, "x"))), kCloseProtocolError) << "RSV1 without extension";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 3, "x"))), kCloseProtocolError) << "reserved opcode";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(9, "x"))), kCloseProtocolError) << "fragmented ping";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 9, std::string(126, 'p')))), kCloseProtocolError) << "long ping";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 0, "x"))), kCloseProtocolError) << "continuation first";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(1, "a") + ClientFrame(kFin | 1, "b"))), kCloseProtocolError)
      << "new message inside a fragmented one";
  std::string huge = ClientFrame(kFin | 2, "");
  huge[1] = static_cast<char>(0x80 | 127);
  huge.insert(2, std::string("\x80\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(ErrorCode(Parse(huge)), kCloseProtocolError) << "64-bit length with the top bit set";
}

TEST(WsReader, TooBigMessagesCloseWith1009BeforeTheyArrive) {
  const size_t max = 1000;
  EXPECT_EQ(Parse(ClientFrame(kFin | 2, std::string(1000, 'a')), 1 << 20, max).size(), 1u);
  // Refused on the header alone: only the first 14 bytes are fed.
  Reader r(max);
  std::string head = ClientFrame(kFin | 2, std::string(1001, 'a')).substr(0, 14);
  r.Feed(head.data(), head.size());
  auto e = r.Next();
  EXPECT_EQ(e.kind, Reader::Kind::kError);
  EXPECT_EQ(e.close_code, kCloseTooBig);
  // Fragments count together.
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(2, std::string(600, 'a')) + ClientFrame(kFin | 0, std::string(401, 'a')),
                            1 << 20, max)),
            kCloseTooBig);
}

TEST(WsReader, TextMustBeUtf8) {
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 1, "bad \xc3\x28"))), kCloseInvalidPayload);
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(1, "\xe2\x82") + ClientFrame(kFin | 0, "\xac"))), 0)
      << "a character split across fragments is fine";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(1, "ok") + ClientFrame(kFin | 0, "\xed\xa0\x80"))), kCloseInvalidPayload)
      << "a surrogate in the last fragment";
  EXPECT_EQ(ErrorCode(Parse(ClientFrame(kFin | 2, "\xff\xfe"))), 0) << "binary is not checked";
}

TEST(WsReader, NothingIsParsedAfterAnError) {
  Reader r(1 << 20);
  std::string bad = ClientFrame(kFin | 2, "x", false) + ClientFrame(kFin | 2, "y");
  r.Feed(bad.data(), bad.size());
  EXPECT_EQ(r.Next().kind, Reader::Kind::kError);
  EXPECT_EQ(r.Next().kind, Reader::Kind::kError);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(WsReader, ArbitraryBytesNeverHoldMoreThanTheLimit) {
  // Random input, random splits (fixed seeds): the reader either parses or fails cleanly, and what it
  // holds between reads never exceeds one message plus one frame header.
  const size_t max = 1000;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    Reader r(max);
    bool failed = false;
    for (int round = 0; round < 200 && !failed; ++round) {
      std::string piece(rng() % 300, '\0');
      for (auto& c : piece) c = static_cast<char>(rng());
      if (rng() % 2) piece[0] = static_cast<char>(0x80 | (rng() % 3));  // often a plausible header
      if (piece.size() > 1 && rng() % 2) piece[1] = static_cast<char>(0x80 | (rng() % 126));
      r.Feed(piece.data(), piece.size());
      for (;;) {
        auto e = r.Next();
        if (e.kind == Reader::Kind::kNeedMore) break;
        if (e.kind == Reader::Kind::kError) {
          failed = true;
          break;
        }
        if (e.kind == Reader::Kind::kMessage) ASSERT_LE(e.payload.size(), max);
      }
      ASSERT_LE(r.buffered(), 2 * max + 14) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace chat::gateway::ws
