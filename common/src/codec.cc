#include "common/codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/wire_format_lite.h>

namespace chat {

namespace pbu = google::protobuf::util;

bool ChooseSubprotocol(std::string_view offered, WireEncoding* out) {
  bool json = false, proto = false;
  size_t pos = 0;
  while (pos <= offered.size()) {
    size_t comma = offered.find(',', pos);
    if (comma == std::string_view::npos) comma = offered.size();
    std::string_view tok = offered.substr(pos, comma - pos);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    if (tok == kSubprotocolProto) proto = true;
    if (tok == kSubprotocolJson) json = true;
    pos = comma + 1;
  }
  if (proto)
    *out = WireEncoding::kProto;
  else if (json)
    *out = WireEncoding::kJson;
  return proto || json;
}

std::string_view SubprotocolName(WireEncoding enc) {
  return enc == WireEncoding::kProto ? kSubprotocolProto : kSubprotocolJson;
}

namespace {
// The parser's `message` reduced to what is safe to echo: the field path it names (known field
// names only: unknown fields are ignored, never reported) and the kind of error, no value.
std::string WithoutFrameText(const std::string& message) {
  std::string path;
  if (!message.empty() && message[0] == '(') {
    const size_t end = message.find(')');
    if (end != std::string::npos && end < 120) path = message.substr(0, end + 1);
  }
  const char* what =
      message.find("invalid value") != std::string::npos ? "invalid value for the field's type" : "malformed JSON";
  return path.empty() ? what : path + ": " + what;
}

// How many top-level fields of ClientFrame's `request` oneof a protobuf frame holds (a repeated
// field counts each time). Reads tags and skips values: a few steps per frame.
int RequestFieldsIn(std::string_view data) {
  static const std::vector<bool> is_request = [] {
    std::vector<bool> v;
    const auto* oneof = v1::ClientFrame::descriptor()->FindOneofByName("request");
    for (int i = 0; oneof && i < oneof->field_count(); ++i) {
      const int n = oneof->field(i)->number();
      if (static_cast<size_t>(n) >= v.size()) v.resize(n + 1, false);
      v[n] = true;
    }
    return v;
  }();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                                            static_cast<int>(data.size()));
  int count = 0;
  while (const uint32_t tag = in.ReadTag()) {
    const int n = google::protobuf::internal::WireFormatLite::GetTagFieldNumber(tag);
    if (static_cast<size_t>(n) < is_request.size() && is_request[n]) ++count;
    if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) break;
  }
  return count;
}

template <typename M>
bool Decode(std::string_view data, WireEncoding enc, M* out, std::string* error) {
  if (enc == WireEncoding::kProto) {
    if (!out->ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      *error = "frame is not a valid protobuf message";
      return false;
    }
    return true;
  }
  pbu::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto st = pbu::JsonStringToMessage(google::protobuf::StringPiece(data.data(), data.size()), out, opts);
  if (!st.ok()) {
    // The parser's message quotes the offending value, which may be anything the client sent (a phone
    // number): keep the field, never the frame's text.
    *error = "frame is not valid protocol JSON: " + WithoutFrameText(std::string(st.message()));
    return false;
  }
  return true;
}

template <typename M>
std::string Encode(const M& m, WireEncoding enc) {
  std::string out;
  if (enc == WireEncoding::kProto) {
    m.SerializeToString(&out);
    return out;
  }
  pbu::JsonPrintOptions opts;
  opts.preserve_proto_field_names = false;  // canonical lowerCamelCase
  (void)pbu::MessageToJsonString(m, &out, opts);
  return out;
}
}  // namespace

bool DecodeClientFrame(std::string_view d, WireEncoding e, v1::ClientFrame* o, std::string* err) {
  if (!Decode(d, e, o, err)) return false;
  // protobuf keeps the last of two oneof members (and merges a repeated one): refuse such a frame
  // instead of answering one request the client did not mean (protocol.md §3). JSON's parser already
  // refuses a second member of a oneof.
  if (e == WireEncoding::kProto && RequestFieldsIn(d) > 1) {
    *err = "frame holds more than one request";
    return false;
  }
  return true;
}
bool DecodeServerFrame(std::string_view d, WireEncoding e, v1::ServerFrame* o, std::string* err) {
  return Decode(d, e, o, err);
}
std::string EncodeServerFrame(const v1::ServerFrame& f, WireEncoding e) { return Encode(f, e); }
std::string EncodeClientFrame(const v1::ClientFrame& f, WireEncoding e) { return Encode(f, e); }

}  // namespace chat
