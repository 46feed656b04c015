// The client wire codec: both encodings, what the JSON looks like, what bad input does, UTF-8
// checks, and a deterministic fuzz loop over the decoder.
#include "common/codec.h"

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace chat {
namespace {

using google::protobuf::util::MessageDifferencer;

v1::ClientFrame SampleSend() {
  v1::ClientFrame f;
  f.set_request_id(18446744073709551615ULL);
  auto* send = f.mutable_send_message();
  send->set_conversation_id("d.3.5");
  send->set_client_msg_id("cm-1");
  send->mutable_content()->mutable_text()->set_text("héllo 世界 😀 \"quoted\" \\ \n");
  return f;
}

std::vector<v1::ClientFrame> SampleFrames() {
  std::vector<v1::ClientFrame> frames;
  frames.push_back(SampleSend());
  v1::ClientFrame f;
  f.set_request_id(7);
  f.mutable_get_me();
  frames.push_back(f);
  f.Clear();
  f.set_request_id(8);
  auto* cg = f.mutable_create_group();
  cg->set_name("team");
  for (uint64_t id : {1ULL, 9007199254740993ULL, 9223372036854775807ULL}) cg->add_member_ids(id);
  frames.push_back(f);
  f.Clear();
  f.set_request_id(9);
  auto* h = f.mutable_get_history();
  h->set_conversation_id("g.12");
  h->set_before_seq(100);
  h->set_backward(true);
  h->set_limit(20);
  frames.push_back(f);
  f.Clear();
  f.set_request_id(10);
  auto* m = f.mutable_send_message()->mutable_content()->mutable_media();
  m->set_kind(v1::MEDIA_KIND_IMAGE);
  m->set_size_bytes(1ULL << 40);
  frames.push_back(f);
  f.Clear();  // a frame with nothing set
  frames.push_back(f);
  return frames;
}

TEST(Codec, ClientFrameRoundTripsInBothEncodings) {
  for (WireEncoding enc : {WireEncoding::kProto, WireEncoding::kJson}) {
    for (const auto& frame : SampleFrames()) {
      std::string wire = EncodeClientFrame(frame, enc);
      v1::ClientFrame back;
      std::string err;
      ASSERT_TRUE(DecodeClientFrame(wire, enc, &back, &err)) << err << " wire: " << wire;
      EXPECT_TRUE(MessageDifferencer::Equals(frame, back))
          << "enc " << int(enc) << "\nsent " << frame.DebugString() << "\ngot " << back.DebugString();
    }
  }
}

TEST(Codec, ServerFrameRoundTripsInBothEncodings) {
  v1::ServerFrame reply;
  reply.mutable_reply()->set_request_id(5);
  reply.mutable_reply()->set_status(v1::NOT_FOUND);
  reply.mutable_reply()->set_message("no such user");
  v1::ServerFrame event;
  auto* msg = event.mutable_event()->mutable_message()->mutable_message();
  msg->set_conversation_id("g.1");
  msg->set_seq(12345678901234ULL);
  msg->set_server_time_ms(-5);
  msg->mutable_content()->mutable_location()->set_latitude(31.2);
  for (WireEncoding enc : {WireEncoding::kProto, WireEncoding::kJson}) {
    for (const auto& frame : {reply, event}) {
      v1::ServerFrame back;
      std::string err;
      ASSERT_TRUE(DecodeServerFrame(EncodeServerFrame(frame, enc), enc, &back, &err)) << err;
      EXPECT_TRUE(MessageDifferencer::Equals(frame, back)) << back.DebugString();
    }
  }
}

TEST(Codec, JsonIsCanonicalLowerCamelCaseWithUint64AsStrings) {
  std::string json = EncodeClientFrame(SampleSend(), WireEncoding::kJson);
  EXPECT_NE(json.find("\"requestId\":\"18446744073709551615\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"sendMessage\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"conversationId\":\"d.3.5\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"clientMsgId\":\"cm-1\""), std::string::npos) << json;
  EXPECT_EQ(json.find("request_id"), std::string::npos) << json;
  EXPECT_EQ(json.find("conversation_id"), std::string::npos) << json;

  v1::ServerFrame f;
  f.mutable_reply()->set_request_id(3);
  f.mutable_reply()->set_status(v1::UNAUTHENTICATED);
  std::string sj = EncodeServerFrame(f, WireEncoding::kJson);
  EXPECT_NE(sj.find("\"requestId\":\"3\""), std::string::npos) << sj;
  EXPECT_NE(sj.find("\"status\":\"UNAUTHENTICATED\""), std::string::npos) << sj;  // enums by name
}

TEST(Codec, JsonAcceptsNumbersStringsAndProtoNamesForUint64) {
  struct Case {
    const char* json;
    uint64_t request_id;
  } cases[] = {
      {R"({"requestId": 7, "getMe": {}})", 7},
      {R"({"requestId": "7", "getMe": {}})", 7},
      {R"({"request_id": "8", "get_me": {}})", 8},
      {R"({"requestId": "18446744073709551615", "getMe": {}})", 18446744073709551615ULL},
      {R"( { "getMe" : { } , "requestId" : 9 } )", 9},
  };
  for (const auto& c : cases) {
    v1::ClientFrame f;
    std::string err;
    ASSERT_TRUE(DecodeClientFrame(c.json, WireEncoding::kJson, &f, &err)) << c.json << ": " << err;
    EXPECT_EQ(f.request_id(), c.request_id) << c.json;
    EXPECT_EQ(f.request_case(), v1::ClientFrame::kGetMe) << c.json;
  }
  v1::ClientFrame f;
  std::string err;
  ASSERT_TRUE(DecodeClientFrame(R"({"requestId":"1","createGroup":{"name":"x","memberIds":[1,"2",9007199254740993]}})",
                                WireEncoding::kJson, &f, &err))
      << err;
  ASSERT_EQ(f.create_group().member_ids_size(), 3);
  EXPECT_EQ(f.create_group().member_ids(2), 9007199254740993ULL);
}

TEST(Codec, JsonIgnoresUnknownFields) {
  v1::ClientFrame f;
  std::string err;
  ASSERT_TRUE(
      DecodeClientFrame(R"({"requestId":"4","fromTheFuture":{"x":[1,2,{"y":null}]},"getMe":{"alsoNew":true},"z":"s"})",
                        WireEncoding::kJson, &f, &err))
      << err;
  EXPECT_EQ(f.request_id(), 4u);
  EXPECT_EQ(f.request_case(), v1::ClientFrame::kGetMe);
}

TEST(Codec, ProtoIgnoresUnknownFields) {
  std::string wire = EncodeClientFrame(SampleSend(), WireEncoding::kProto);
  wire += std::string("\xf8\x3e\x05", 3);    // field 1007, varint 5
  wire += std::string("\x82\x3f\x02hi", 5);  // field 1008, bytes "hi"
  v1::ClientFrame f;
  std::string err;
  ASSERT_TRUE(DecodeClientFrame(wire, WireEncoding::kProto, &f, &err)) << err;
  EXPECT_EQ(f.send_message().conversation_id(), "d.3.5");
}

TEST(Codec, MalformedJsonIsRefusedWithAReason) {
  for (const char* bad :
       {"", "{", "}", "not json", "[]", "null", "42", "\"s\"", R"({"requestId": {}})", R"({"requestId": []})",
        R"({"requestId": "abc"})", R"({"requestId": -1})", R"({"requestId": 1.5})",
        R"({"requestId": "18446744073709551616"})", R"({"getMe": 5})", R"({"sendMessage": {"conversationId": 5}})",
        R"({"sendMessage": {"content": {"text": {"text": ["a"]}}}})", R"({"requestId": 1} trailing)",
        "{\"requestId\": \"1\xff\"}"}) {
    v1::ClientFrame f;
    std::string err;
    EXPECT_FALSE(DecodeClientFrame(bad, WireEncoding::kJson, &f, &err)) << "accepted: " << bad;
    EXPECT_FALSE(err.empty()) << "no reason for: " << bad;
    EXPECT_LE(err.size(), 300u) << "reason too long for a client: " << err;
  }
}

TEST(Codec, AJsonErrorNeverEchoesWhatTheClientSent) {
  // protocol.md §3: error messages carry no frame content (a phone number typed into the wrong field
  // must not come back in a reply, nor land in a log line that quotes it).
  for (const char* bad :
       {R"({"requestId": "+1 555-1234567"})", R"({"requestId": "15551234567x"})",
        R"({"sendMessage": {"conversationId": 15551234567}, "x": "+15551234567"})",
        "{\"requestId\": \"+15551234567\",\n\"getMe\": 15551234567}", R"({"requestId": 1} +15551234567)"}) {
    v1::ClientFrame f;
    std::string err;
    ASSERT_FALSE(DecodeClientFrame(bad, WireEncoding::kJson, &f, &err)) << bad;
    EXPECT_EQ(err.find("5551234567"), std::string::npos) << "echoed: " << err;
    EXPECT_EQ(err.rfind("frame is not valid protocol JSON", 0), 0u) << err;
  }
}

TEST(Codec, TwoRequestsInOneFrameAreRefusedInBothEncodings) {
  v1::ClientFrame a, b;
  a.set_request_id(7);
  a.mutable_get_me();
  b.mutable_list_contacts();
  v1::ClientFrame second_send;
  second_send.mutable_send_message()->set_conversation_id("d.1.2");
  v1::ClientFrame first_send = second_send;
  first_send.set_request_id(8);
  // Concatenated protobuf messages merge: get_me then list_contacts, and one send_message twice.
  for (const std::string& wire : {a.SerializeAsString() + b.SerializeAsString(),
                                  first_send.SerializeAsString() + second_send.SerializeAsString()}) {
    v1::ClientFrame f;
    std::string err;
    EXPECT_FALSE(DecodeClientFrame(wire, WireEncoding::kProto, &f, &err));
    EXPECT_EQ(err, "frame holds more than one request");
  }
  v1::ClientFrame f;
  std::string err;
  EXPECT_FALSE(DecodeClientFrame(R"({"requestId":"7","getMe":{},"listContacts":{}})", WireEncoding::kJson, &f, &err));
  EXPECT_FALSE(err.empty());
  // One request, and none, still decode.
  EXPECT_TRUE(DecodeClientFrame(a.SerializeAsString(), WireEncoding::kProto, &f, &err)) << err;
  v1::ClientFrame only_id;
  only_id.set_request_id(3);
  EXPECT_TRUE(DecodeClientFrame(only_id.SerializeAsString(), WireEncoding::kProto, &f, &err)) << err;
}

TEST(Codec, InvalidProtobufIsRefusedWithAReason) {
  for (std::string bad : {std::string("\xff\xff\xff", 3), std::string("\x08", 1), std::string("\x00", 1),
                          std::string("\x0a\x05"
                                      "ab",
                                      4),
                          std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12), std::string("\x0f", 1),
                          std::string("\xf2\x01\x10", 3)}) {
    v1::ClientFrame f;
    std::string err;
    EXPECT_FALSE(DecodeClientFrame(bad, WireEncoding::kProto, &f, &err)) << "accepted " << bad.size() << " bytes";
    EXPECT_FALSE(err.empty());
  }
}

TEST(Codec, EmptyProtoIsAnEmptyFrame) {
  v1::ClientFrame f = SampleSend();  // decoding replaces whatever was there
  std::string err;
  ASSERT_TRUE(DecodeClientFrame("", WireEncoding::kProto, &f, &err)) << err;
  EXPECT_EQ(f.request_id(), 0u);
  EXPECT_EQ(f.request_case(), v1::ClientFrame::REQUEST_NOT_SET);
}

TEST(Codec, DecodingReplacesThePreviousFrame) {
  // A session reuses one ClientFrame object: nothing of an earlier frame may leak into the next.
  for (WireEncoding enc : {WireEncoding::kProto, WireEncoding::kJson}) {
    v1::ClientFrame f;
    std::string err;
    ASSERT_TRUE(DecodeClientFrame(EncodeClientFrame(SampleSend(), enc), enc, &f, &err)) << err;
    v1::ClientFrame small;
    small.set_request_id(2);
    small.mutable_get_me();
    ASSERT_TRUE(DecodeClientFrame(EncodeClientFrame(small, enc), enc, &f, &err)) << err;
    EXPECT_TRUE(MessageDifferencer::Equals(f, small)) << int(enc) << ": " << f.DebugString();
  }
}

TEST(Codec, ChooseSubprotocol) {
  struct Case {
    const char* offered;
    bool ok;
    WireEncoding enc;
  } cases[] = {
      {"chat.v1.json", true, WireEncoding::kJson},
      {"chat.v1.proto", true, WireEncoding::kProto},
      {"x, chat.v1.proto", true, WireEncoding::kProto},
      {"chat.v1.json, chat.v1.proto", true, WireEncoding::kProto},
      {"chat.v1.proto,chat.v1.json", true, WireEncoding::kProto},
      {"  chat.v1.json  ", true, WireEncoding::kJson},
      {"foo,\tchat.v1.json", true, WireEncoding::kJson},
      {"", false, WireEncoding::kJson},
      {"foo", false, WireEncoding::kJson},
      {",", false, WireEncoding::kJson},
      {"chat.v1.jsonx", false, WireEncoding::kJson},
      {"chat.v1", false, WireEncoding::kJson},
      {"chat.v2.proto, foo", false, WireEncoding::kJson},
  };
  for (const auto& c : cases) {
    WireEncoding got = c.enc == WireEncoding::kJson ? WireEncoding::kProto : WireEncoding::kJson;
    EXPECT_EQ(ChooseSubprotocol(c.offered, &got), c.ok) << "'" << c.offered << "'";
    if (c.ok) {
      EXPECT_EQ(got, c.enc) << "'" << c.offered << "'";
    }
  }
  EXPECT_EQ(SubprotocolName(WireEncoding::kProto), "chat.v1.proto");
  EXPECT_EQ(SubprotocolName(WireEncoding::kJson), "chat.v1.json");
}

// Counts libprotobuf's own log lines instead of printing them, for the scope of one test.
// (proto3 parsing logs an ERROR line for every string field with invalid UTF-8.)
class ProtobufLogSilencer {
 public:
  ProtobufLogSilencer() : previous_(google::protobuf::SetLogHandler(&Count)) { count_ = 0; }
  ~ProtobufLogSilencer() { google::protobuf::SetLogHandler(previous_); }
  static int count() { return count_; }

 private:
  static void Count(google::protobuf::LogLevel, const char*, int, const std::string&) { ++count_; }
  static inline int count_ = 0;
  google::protobuf::LogHandler* previous_;
};

TEST(Codec, FuzzedInputNeverCrashes) {
  // Deterministic: a fixed seed, half pure noise, half mutations of valid frames in each encoding.
  ProtobufLogSilencer silence_invalid_utf8_logs;
  std::mt19937 rng(20240601);
  std::vector<std::string> seeds[2];
  for (const auto& f : SampleFrames()) {
    seeds[0].push_back(EncodeClientFrame(f, WireEncoding::kProto));
    seeds[1].push_back(EncodeClientFrame(f, WireEncoding::kJson));
  }
  const WireEncoding encs[2] = {WireEncoding::kProto, WireEncoding::kJson};
  int decoded[2] = {0, 0};
  for (int i = 0; i < 20000; ++i) {
    std::string data;
    if (i % 2 == 0) {
      data.resize(rng() % 256);
      for (auto& c : data) c = static_cast<char>(rng() & 0xff);
    } else {
      const auto& pool = seeds[(i / 2) % 2];
      data = pool[rng() % pool.size()];
      int edits = 1 + rng() % 4;
      for (int e = 0; e < edits && !data.empty(); ++e) {
        size_t pos = rng() % data.size();
        switch (rng() % 4) {
          case 0:
            data[pos] = static_cast<char>(rng() & 0xff);
            break;
          case 1:
            data.erase(pos, 1 + rng() % 8);
            break;
          case 2:
            data.insert(pos, 1, static_cast<char>(rng() & 0xff));
            break;
          case 3:
            data.resize(pos);
            break;
        }
      }
    }
    for (int e = 0; e < 2; ++e) {
      v1::ClientFrame f;
      std::string err;
      if (DecodeClientFrame(data, encs[e], &f, &err)) {
        ++decoded[e];
        // Whatever decodes must re-encode and decode to the same frame (compared by encoding, so
        // a fuzzed NaN double compares equal to itself).
        std::string again = EncodeClientFrame(f, encs[e]);
        v1::ClientFrame g;
        ASSERT_TRUE(DecodeClientFrame(again, encs[e], &g, &err)) << err;
        EXPECT_EQ(EncodeClientFrame(g, encs[e]), again);
      } else {
        EXPECT_FALSE(err.empty());
      }
    }
  }
  // The loop reached past the first byte: some mutated frames still decode.
  EXPECT_GT(decoded[0], 0);
  EXPECT_GT(decoded[1], 0);
}

}  // namespace
}  // namespace chat
