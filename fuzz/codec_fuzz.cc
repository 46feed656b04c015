// The client-frame decoders (common/src/codec.cc) on arbitrary frames, built twice:
// codec_json_fuzz (CHAT_FUZZ_JSON=1, the chat.v1.json subprotocol) and codec_proto_fuzz (chat.v1.proto).
//
// Invariants checked, for every frame the decoder accepts:
//   - encode → decode round trips in the same encoding: the re-encoded frame is accepted and encodes
//     to the same bytes (a fixed point; NaN-safe, unlike field comparison);
//   - the frame crosses to the other encoding and back unchanged (protobuf's unknown fields and NaN
//     payload bits aside, which JSON cannot carry), so a client may pick either subprotocol;
//   - a refusal has a reason, short and free of the frame's text beyond field names (protocol.md §3).
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/codec.h"
#include "fuzz_check.h"

namespace {

using chat::WireEncoding;

#if CHAT_FUZZ_JSON
constexpr WireEncoding kEnc = WireEncoding::kJson;
constexpr WireEncoding kOther = WireEncoding::kProto;
#else
constexpr WireEncoding kEnc = WireEncoding::kProto;
constexpr WireEncoding kOther = WireEncoding::kJson;
#endif

// Encodes `frame`, decodes it back (which must succeed) and returns the re-encoding of that.
std::string RoundTrip(const chat::v1::ClientFrame& frame, WireEncoding enc, std::string* first) {
  *first = chat::EncodeClientFrame(frame, enc);
  chat::v1::ClientFrame back;
  std::string error;
  FUZZ_CHECK(chat::DecodeClientFrame(*first, enc, &back, &error));
  return chat::EncodeClientFrame(back, enc);
}

}  // namespace

// protobuf logs every string field with invalid UTF-8 it refuses (the services route this into their
// rate-limited log, common/src/log.cc); here it would only slow the fuzzer down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  chat::v1::ClientFrame frame;
  std::string error;
  if (!chat::DecodeClientFrame(input, kEnc, &frame, &error)) {
    FUZZ_CHECK(!error.empty() && error.size() < 200);
    return 0;
  }
  std::string once;
  FUZZ_CHECK(RoundTrip(frame, kEnc, &once) == once);

  // JSON carries no unknown fields: compare what both encodings can hold.
  frame.DiscardUnknownFields();
  std::string in_other;
  FUZZ_CHECK(RoundTrip(frame, kOther, &in_other) == in_other);
  chat::v1::ClientFrame crossed;
  FUZZ_CHECK(chat::DecodeClientFrame(in_other, kOther, &crossed, &error));
  // Compared as JSON: protobuf keeps a NaN's sign and payload bits, JSON has one "NaN".
  FUZZ_CHECK(chat::EncodeClientFrame(crossed, WireEncoding::kJson) ==
             chat::EncodeClientFrame(frame, WireEncoding::kJson));
  return 0;
}
