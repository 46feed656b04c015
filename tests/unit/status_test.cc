// One status code set across the cluster: every client-facing code survives a trip through gRPC.
#include "common/status.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace chat {
namespace {

TEST(Status, EveryCodeRoundTripsThroughGrpc) {
  const auto* desc = v1::StatusCode_descriptor();
  ASSERT_GE(desc->value_count(), 11);
  std::set<grpc::StatusCode> grpc_codes;
  for (int i = 0; i < desc->value_count(); ++i) {
    auto code = static_cast<StatusCode>(desc->value(i)->number());
    grpc::StatusCode g = ToGrpc(code);
    EXPECT_EQ(FromGrpc(g), code) << desc->value(i)->name();
    grpc_codes.insert(g);
  }
  // Distinct client codes stay distinct on the wire.
  EXPECT_EQ(grpc_codes.size(), static_cast<size_t>(desc->value_count()));
  EXPECT_EQ(ToGrpc(v1::OK), grpc::StatusCode::OK);
  EXPECT_EQ(ToGrpc(v1::UNAVAILABLE), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpc(v1::DEADLINE_EXCEEDED), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(Status, GrpcOnlyCodesMapIntoTheDocumentedSet) {
  EXPECT_EQ(FromGrpc(grpc::StatusCode::CANCELLED), v1::UNAVAILABLE);
  EXPECT_EQ(FromGrpc(grpc::StatusCode::ABORTED), v1::UNAVAILABLE);
  EXPECT_EQ(FromGrpc(grpc::StatusCode::OUT_OF_RANGE), v1::INVALID_ARGUMENT);
  EXPECT_EQ(FromGrpc(grpc::StatusCode::UNKNOWN), v1::INTERNAL);
  EXPECT_EQ(FromGrpc(grpc::StatusCode::UNIMPLEMENTED), v1::INTERNAL);
  EXPECT_EQ(FromGrpc(grpc::StatusCode::DATA_LOSS), v1::INTERNAL);
  // Not a gRPC code, yet a value the enum can hold: it has no fixed underlying type, so only 0..31 (the
  // bits its codes 0..16 need) are values of it, and casting 1234 to it, as this test did, is
  // undefined behaviour (UBSan: "load of value 1234, which is not a valid value").
  EXPECT_EQ(FromGrpc(static_cast<grpc::StatusCode>(31)), v1::INTERNAL);
  EXPECT_EQ(ToGrpc(static_cast<StatusCode>(99)), grpc::StatusCode::INTERNAL);
}

TEST(Status, Names) {
  const auto* desc = v1::StatusCode_descriptor();
  for (int i = 0; i < desc->value_count(); ++i)
    EXPECT_EQ(std::string(StatusName(static_cast<StatusCode>(desc->value(i)->number()))), desc->value(i)->name());
  EXPECT_STREQ(StatusName(v1::OK), "OK");
  EXPECT_STREQ(StatusName(v1::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_STREQ(StatusName(v1::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  EXPECT_STREQ(StatusName(static_cast<StatusCode>(99)), "INTERNAL");  // unknown value: never null or empty
}

TEST(Status, HelpersCarryCodeAndMessage) {
  struct Case {
    Status st;
    StatusCode code;
  } cases[] = {
      {InvalidArgument("m"), v1::INVALID_ARGUMENT},
      {PermissionDenied("m"), v1::PERMISSION_DENIED},
      {NotFound("m"), v1::NOT_FOUND},
      {AlreadyExists("m"), v1::ALREADY_EXISTS},
      {FailedPrecondition("m"), v1::FAILED_PRECONDITION},
      {ResourceExhausted("m"), v1::RESOURCE_EXHAUSTED},
      {Unavailable("m"), v1::UNAVAILABLE},
      {DeadlineExceeded("m"), v1::DEADLINE_EXCEEDED},
      {Unauthenticated("m"), v1::UNAUTHENTICATED},
      {Internal("m"), v1::INTERNAL},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(c.st.ok());
    EXPECT_EQ(c.st.code(), c.code) << StatusName(c.code);
    EXPECT_EQ(c.st.message(), "m");
    // Leaving through gRPC and coming back keeps both.
    const grpc::Status wire = ToGrpcStatus(c.st);
    EXPECT_EQ(FromGrpc(wire.error_code()), c.code) << StatusName(c.code);
    EXPECT_EQ(wire.error_message(), "m");
    const Status back = FromPeer(wire);
    EXPECT_EQ(back.code(), c.code);
    EXPECT_EQ(back.message(), "m");
  }
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_TRUE(ToGrpcStatus(OkStatus()).ok());
  EXPECT_TRUE(FromPeer(grpc::Status::OK).ok());
}

TEST(Status, PeerFailureNeverLeaksThePeersMessage) {
  const Status late = PeerFailure("x", grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "secret detail"));
  EXPECT_EQ(late.code(), v1::DEADLINE_EXCEEDED);
  EXPECT_EQ(late.message().find("secret"), std::string::npos);
  const Status down = PeerFailure("x", grpc::Status(grpc::StatusCode::INTERNAL, "secret detail"));
  EXPECT_EQ(down.code(), v1::UNAVAILABLE);
  EXPECT_EQ(down.message().find("secret"), std::string::npos);
}

TEST(Status, ResultHoldsAValueOrTheFailure) {
  Result<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  EXPECT_TRUE(v.status().ok());
  Result<int> e = NotFound("gone");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), v1::NOT_FOUND);
  EXPECT_EQ(e.status().message(), "gone");
}

TEST(Status, TheGuardTurnsAnEscapedExceptionIntoInternal) {
  const grpc::Status st = Guarded("test", []() -> Status { throw std::runtime_error("db detail"); });
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(st.error_message(), "internal error");
  EXPECT_EQ(Guarded("test", [] { return NotFound("no"); }).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace chat
