// account-service against a real PostgreSQL, one shard in-process, events into a fake.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "account/validation.h"
#include "account_fixture.h"
#include "account_test_util.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/token.h"
#include "common/utf8.h"

namespace chat::account {
namespace {

using testing::AccountServiceTest;
using testing::CodeLines;
using testing::kPhoneA;
using testing::kPhoneB;
using testing::kPhoneC;
using testing::NewestCode;
using testing::OtherCode;
using testing::Shard;
using testing::TempDir;

TEST_F(AccountServiceTest, RequestCodeSignUpAndLogInWithTheCodeFromTheFile) {
  v1::RequestCodeResult rc;
  ASSERT_TRUE(RequestCode(kPhoneA, &rc).ok());
  EXPECT_EQ(rc.expires_in_s(), 300);
  const std::string code = Code(kPhoneA);
  ASSERT_TRUE(std::regex_match(code, std::regex("^[0-9]{6}$"))) << code;

  v1::SessionResult s;
  auto st = SignUp(kPhoneA, code, "Alice", &s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const uint64_t id = s.account().profile().user_id();
  EXPECT_GT(id, 0u);
  EXPECT_LE(id, uint64_t{INT64_MAX});
  EXPECT_EQ(ShardOfUser(id, 1), 0u);
  EXPECT_EQ(s.account().phone(), kPhoneA);
  EXPECT_EQ(s.account().profile().display_name(), "Alice");
  EXPECT_TRUE(std::regex_match(s.account().profile().handle(), std::regex("^u_[a-z0-9]{10}$")))
      << s.account().profile().handle();
  EXPECT_EQ(s.token_expires_ms(), (now_ms_ / 1000 + 30ll * 24 * 3600) * 1000);

  // The token verifies with the cluster secret and names this user and device.
  TokenSigner signer(config_.token_keys);
  TokenError err;
  auto claims = signer.Verify(s.token(), now_ms_ / 1000, &err);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->user_id, id);
  EXPECT_EQ(claims->device_id, "phone-1");
  EXPECT_FALSE(TokenSigner(TokenKeys::Single("test", "another-secret-0123456789"))
                   .Verify(s.token(), now_ms_ / 1000)
                   .has_value());

  // The code was consumed.
  v1::SessionResult again;
  st = LogIn(kPhoneA, code, &again);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Log in on a second device with a new code.
  Advance(31 * 1000);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code2 = Code(kPhoneA);
  v1::SessionResult login;
  st = LogIn(kPhoneA, code2, &login, "tablet-2");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(login.account().profile().user_id(), id);
  EXPECT_EQ(login.account().profile().handle(), s.account().profile().handle());
  auto c2 = signer.Verify(login.token(), now_ms_ / 1000);
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(c2->device_id, "tablet-2");

  // The own account carries the phone.
  grpc::ServerContext ctx;
  internal::UserIdRequest ureq;
  ureq.set_user_id(id);
  v1::Account acc;
  ASSERT_TRUE(svc().GetAccount(&ctx, &ureq, &acc).ok());
  EXPECT_EQ(acc.phone(), kPhoneA);
  EXPECT_EQ(acc.profile().display_name(), "Alice");
}

TEST_F(AccountServiceTest, ACodeSentBeforeTheSignerChangedStillWorksAndNewTokensNameTheNewKey) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  // Rotation step 2 (docs/security.md): the old key still verifies, a new one signs.
  const TokenKey old_key = config_.token_keys.keys.at(0);
  config_.token_keys.keys.push_back({"next", "account-test-next-secret-9f1c3b7a5e2d", false});
  config_.token_keys.signing_key_id = "next";
  Start();
  v1::SessionResult s;
  auto st = SignUp(kPhoneA, code, "Alice", &s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(s.token().rfind("v2.next.", 0), 0u) << s.token();
  EXPECT_TRUE(TokenSigner(config_.token_keys).Verify(s.token(), now_ms_ / 1000).has_value());
  // A verifier that only knows the old key refuses the new token.
  TokenError err{};
  EXPECT_FALSE(TokenSigner(TokenKeys{{old_key}, old_key.id}).Verify(s.token(), now_ms_ / 1000, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
}

TEST_F(AccountServiceTest, CheckAccountSaysWhetherTheTokensSessionIsLiveAndNothingElse) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  v1::SessionResult s;
  ASSERT_TRUE(SignUp(kPhoneA, Code(kPhoneA), "Alice", &s).ok());
  internal::SessionKey k = Key(s);
  EXPECT_NE(k.session_id(), 0u);
  EXPECT_EQ(k.session_id(), s.session_id());
  EXPECT_EQ(k.token_gen(), 1u);
  grpc::ServerContext ctx;
  internal::AccountCheckResult res;
  ASSERT_TRUE(svc().CheckAccount(&ctx, &k, &res).ok());
  EXPECT_TRUE(res.active());
  // The reply carries the flag alone: no phone number reaches a gateway this way.
  EXPECT_EQ(res.ByteSizeLong(), 2u);
  // No such account; a real account with another session id, a later generation, or none at all
  // (a token from before sessions).
  internal::SessionKey other = k;
  other.set_user_id((uint64_t{1} << 62) + 4242);
  EXPECT_FALSE(Admitted(other));
  other = k;
  other.set_session_id(k.session_id() ^ 1);
  EXPECT_FALSE(Admitted(other));
  other = k;
  other.set_token_gen(2);
  EXPECT_FALSE(Admitted(other));
  other = k;
  other.set_session_id(0);
  other.set_token_gen(0);
  EXPECT_FALSE(Admitted(other));
  // Expired with the token.
  Advance(static_cast<int64_t>(config_.limits.account.token_ttl_s) * 1000 + 1);
  EXPECT_FALSE(Admitted(k));
  k.set_user_id(0);
  EXPECT_EQ(svc().CheckAccount(&ctx, &k, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AccountServiceTest, CodeFileLinesHaveTimePhoneAndCode) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  std::ifstream in(config_.run_dir + "/codes.log");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_TRUE(std::regex_match(line, std::regex("^[0-9]{13} \\+8613800131234 [0-9]{6}$"))) << line;
}

TEST_F(AccountServiceTest, WrongCodeIsRejectedAndTheRightOneStillWorks) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  v1::SessionResult s;
  auto st = SignUp(kPhoneA, OtherCode(code), "Alice", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "wrong or expired code");
  st = SignUp(kPhoneA, code, "Alice", &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AccountServiceTest, NoCodeRequestedIsRejected) {
  v1::SessionResult s;
  auto st = SignUp(kPhoneA, "123456", "Alice", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AccountServiceTest, TooManyTriesBurnTheCode) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  v1::SessionResult s;
  for (int i = 0; i < 5; ++i) {
    auto st = SignUp(kPhoneA, OtherCode(code), "Alice", &s);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << "try " << i;
  }
  auto st = SignUp(kPhoneA, code, "Alice", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "too many attempts; request a new code");
  // A new code starts over.
  Advance(30 * 1000);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  st = SignUp(kPhoneA, Code(kPhoneA), "Alice", &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AccountServiceTest, ExpiredCodeIsRejected) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  Advance(300 * 1000);
  v1::SessionResult s;
  auto st = SignUp(kPhoneA, code, "Alice", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st.error_message(), "wrong or expired code");
}

TEST_F(AccountServiceTest, ResendIntervalIsEnforcedPerPhone) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  auto st = RequestCode(kPhoneA);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "wait 30 s before requesting another code");
  EXPECT_TRUE(RequestCode(kPhoneB).ok());  // other phones are not affected
  Advance(10 * 1000);
  st = RequestCode(kPhoneA);
  EXPECT_EQ(st.error_message(), "wait 20 s before requesting another code");
  EXPECT_EQ(RetryAfterMs(st), 20 * 1000);
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 1);
  Advance(20 * 1000);
  EXPECT_TRUE(RequestCode(kPhoneA).ok());
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 2);
  // Only the newest code is valid.
  v1::SessionResult s;
  st = SignUp(kPhoneA, Code(kPhoneA), "Alice", &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AccountServiceTest, ResendIntervalComesFromConfig) {
  config_.limits.account.code_resend_interval_s = 5;
  Start();
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  EXPECT_EQ(RequestCode(kPhoneA).error_message(), "wait 5 s before requesting another code");
  Advance(5000);
  EXPECT_TRUE(RequestCode(kPhoneA).ok());
}

TEST_F(AccountServiceTest, OneAccountPerPhone) {
  auto first = NewUser(kPhoneA, "Alice");
  Advance(31 * 1000);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  v1::SessionResult s;
  auto st = SignUp(kPhoneA, code, "Alice again", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(st.error_message().find(kPhoneA), std::string::npos);
  // The code was not spent on the failed sign-up: it logs in to the existing account.
  st = LogIn(kPhoneA, code, &s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(s.account().profile().user_id(), first.account().profile().user_id());
  EXPECT_EQ(s.account().profile().display_name(), "Alice");
}

TEST_F(AccountServiceTest, ConcurrentSignUpsOfOnePhoneCreateOneAccount) {
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  std::vector<grpc::Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      v1::SessionResult s;
      results[i] = SignUp(kPhoneA, code, "Alice", &s, "dev-" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const auto& st : results) {
    if (st.ok())
      ++ok;
    else
      EXPECT_TRUE(st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                  st.error_code() == grpc::StatusCode::ALREADY_EXISTS)
          << st.error_code() << " " << st.error_message();
  }
  EXPECT_EQ(ok, 1);
}

TEST_F(AccountServiceTest, StoreInsertOfATakenPhoneReportsNoInsertInsteadOfThrowing) {
  auto a = NewUser(kPhoneA, "Alice");
  auto lease = shard_->pool.Acquire();
  pqxx::work t(*lease);
  UserRow dup{a.account().profile().user_id() + 1, kPhoneA, "u_zzzzzzzzzz", "X", now_ms_};
  EXPECT_FALSE(store::InsertUser(t, dup));
  UserRow dup_handle{a.account().profile().user_id() + 1, kPhoneB, LowerAscii(a.account().profile().handle()), "X",
                     now_ms_};
  dup_handle.handle[0] = 'U';  // same handle, other case
  EXPECT_FALSE(store::InsertUser(t, dup_handle));
}

TEST_F(AccountServiceTest, LogInOfAnUnknownPhoneNeedsTheCodeFirst) {
  ASSERT_TRUE(RequestCode(kPhoneC).ok());
  const std::string code = Code(kPhoneC);
  v1::SessionResult s;
  auto st = LogIn(kPhoneC, OtherCode(code), &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);  // reveals nothing
  st = LogIn(kPhoneC, code, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "no account for this phone number; sign up first");
  // The same code can then be used to sign up.
  st = SignUp(kPhoneC, code, "Carol", &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AccountServiceTest, InvalidInputIsRejectedWithoutSpendingTries) {
  EXPECT_EQ(RequestCode("13800131234").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RequestCode("+86 1380013123").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RequestCode("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  v1::SessionResult s;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(SignUp(kPhoneA, code, "", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, code, std::string(33, 'a'), &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, code, "bad\x01name", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, code, "bad\xFFutf8", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, code, "Alice", &s, "bad device").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, code, "Alice", &s, "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, "12345", "Alice", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(SignUp(kPhoneA, "12345a", "Alice", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto st = SignUp(kPhoneA, code, "Alice", &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AccountServiceTest, RefreshTokenAndDisplayName) {
  auto a = NewUser(kPhoneA, "Alice");
  const uint64_t id = a.account().profile().user_id();
  Advance(1000 * 1000);
  v1::SessionResult r;
  ASSERT_TRUE(Refresh(Key(a), &r).ok());
  EXPECT_GT(r.token_expires_ms(), a.token_expires_ms());
  auto claims = TokenSigner(config_.token_keys).Verify(r.token(), now_ms_ / 1000);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->user_id, id);
  internal::SessionKey nobody = Key(a);
  nobody.set_user_id(12345);
  EXPECT_EQ(Refresh(nobody, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  grpc::ServerContext ctx;
  internal::SetDisplayNameRequest sreq;
  sreq.set_user_id(id);
  sreq.set_display_name("\xE5\xBC\xA0\xE4\xB8\x89");
  v1::Account acc;
  ASSERT_TRUE(svc().SetDisplayName(&ctx, &sreq, &acc).ok());
  EXPECT_EQ(acc.profile().display_name(), "\xE5\xBC\xA0\xE4\xB8\x89");
  sreq.set_display_name("");
  EXPECT_EQ(svc().SetDisplayName(&ctx, &sreq, &acc).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AccountServiceTest, HandleLookupIsCaseInsensitiveAndValidated) {
  auto a = NewUser(kPhoneA, "Alice");
  std::string handle = a.account().profile().handle();
  std::string upper = handle;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  grpc::ServerContext ctx;
  v1::LookupUserRequest req;
  v1::UserProfile p;
  req.set_handle(upper);
  auto st = svc().LookupHandle(&ctx, &req, &p);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(p.user_id(), a.account().profile().user_id());
  EXPECT_EQ(p.handle(), handle);
  EXPECT_EQ(p.SerializeAsString().find(kPhoneA), std::string::npos);

  req.set_handle("u_nobody0000");
  EXPECT_EQ(svc().LookupHandle(&ctx, &req, &p).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_handle(std::string(21, 'a'));
  EXPECT_EQ(svc().LookupHandle(&ctx, &req, &p).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_handle("bad handle");
  EXPECT_EQ(svc().LookupHandle(&ctx, &req, &p).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_handle("");
  EXPECT_EQ(svc().LookupHandle(&ctx, &req, &p).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

class HandleTest : public AccountServiceTest {
 protected:
  static constexpr int64_t kDayMs = 24ll * 3600 * 1000;
  grpc::Status SetHandle(uint64_t user, const std::string& handle, v1::Account* out = nullptr) {
    grpc::ServerContext ctx;
    internal::SetHandleRequest req;
    req.set_user_id(user);
    req.set_handle(handle);
    v1::Account local;
    return svc().SetHandle(&ctx, &req, out ? out : &local);
  }
  // The user id a lookup of `handle` finds, 0 for NOT_FOUND.
  uint64_t Lookup(const std::string& handle) {
    grpc::ServerContext ctx;
    v1::LookupUserRequest req;
    req.set_handle(handle);
    v1::UserProfile p;
    auto st = svc().LookupHandle(&ctx, &req, &p);
    EXPECT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::NOT_FOUND) << st.error_message();
    return st.ok() ? p.user_id() : 0;
  }
  static uint64_t Id(const v1::SessionResult& s) { return s.account().profile().user_id(); }
};

TEST_F(HandleTest, ASetHandleResolvesCaseInsensitivelyAndTheOldOneStopsAtOnce) {
  const auto a = NewUser(kPhoneA, "Alice");
  const std::string random = a.account().profile().handle();
  ASSERT_EQ(Lookup(random), Id(a));
  v1::Account acc;
  auto st = SetHandle(Id(a), "Alice_Wonder", &acc);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(acc.profile().handle(), "Alice_Wonder");
  EXPECT_EQ(Lookup("alice_wonder"), Id(a));
  EXPECT_EQ(Lookup("ALICE_WONDER"), Id(a));
  EXPECT_EQ(Lookup(random), 0u) << "the old handle stops resolving at once";
  // Exact lookups only: never a prefix.
  EXPECT_EQ(Lookup("alice_wonde"), 0u);
  // Another letter case of one's own handle is no change (no interval, no claim).
  ASSERT_TRUE(SetHandle(Id(a), "alice_WONDER", &acc).ok());
  EXPECT_EQ(acc.profile().handle(), "alice_WONDER");
}

TEST_F(HandleTest, UniqueCaseInsensitivelyAndReservedOrMalformedAreRefused) {
  const auto a = NewUser(kPhoneA, "Alice");
  const auto b = NewUser(kPhoneB, "Bob");
  ASSERT_TRUE(SetHandle(Id(a), "sunflower").ok());
  auto st = SetHandle(Id(b), "SunFlower");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(st.error_message(), "this handle is taken");
  for (const char* reserved : {"u_abcdefghij", "U_myname", "admin_bob", "Official1", "support-desk", "everyone",
                               "WeChatTeam", "deleted_user"}) {
    st = SetHandle(Id(b), reserved);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << reserved;
    EXPECT_EQ(st.error_message(), "this handle is reserved") << reserved;
  }
  for (const char* bad : {"short", "1startsdigit", "has space1", "toolong_abcdefghijklm", "", "_under1", "naïve12"}) {
    st = SetHandle(Id(b), bad);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  EXPECT_TRUE(SetHandle(Id(b), "bob-1984").ok());
  EXPECT_EQ(SetHandle(uint64_t{1} << 63, "anything1").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(HandleTest, OncePerIntervalAndTheOldHandleIsHeldForItsOwner) {
  const int64_t start = now_ms_;
  const auto a = NewUser(kPhoneA, "Alice");
  const auto b = NewUser(kPhoneB, "Bob");
  ASSERT_TRUE(SetHandle(Id(a), "first_name").ok());
  auto st = SetHandle(Id(a), "second_name");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(),
            "a handle can be changed once every 365 days (limits.account.handle_change_interval_s)");
  EXPECT_EQ(RetryAfterMs(st), 365 * kDayMs);
  EXPECT_EQ(Lookup("second_name"), 0u);
  EXPECT_EQ(SetHandle(Id(b), "second_name").error_code(), grpc::StatusCode::OK) << "a refused change claims nothing";

  now_ms_ = start + 365 * kDayMs;
  ASSERT_TRUE(SetHandle(Id(a), "third_name").ok());
  EXPECT_EQ(Lookup("first_name"), 0u);
  // The released handle is nobody else's for handle_hold_s ...
  now_ms_ = start + 365 * kDayMs + 90 * kDayMs - 1;
  EXPECT_EQ(SetHandle(Id(b), "first_name").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // ... and then anyone's.
  now_ms_ = start + 365 * kDayMs + 90 * kDayMs;
  ASSERT_TRUE(SetHandle(Id(b), "first_name").ok());
  EXPECT_EQ(Lookup("first_name"), Id(b));
  // b's previous handle is held for b now (the interval, from config, off to show it).
  config_.limits.account.handle_change_interval_s = 0;
  Start();
  EXPECT_EQ(SetHandle(Id(a), "second_name").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(SetHandle(Id(b), "second_name").ok()) << "its holder may take it back";
}

TEST_F(HandleTest, BadClaimsFromPeersAreRefusedAndChangeNothing) {
  const auto a = NewUser(kPhoneA, "Alice");
  auto claim = [&](const std::string& handle_lower, uint64_t user) {
    grpc::ServerContext ctx;
    internal::HandleClaim c;
    c.set_handle_lower(handle_lower);
    c.set_user_id(user);
    v1::Empty e;
    return svc().ClaimHandle(&ctx, &c, &e);
  };
  EXPECT_EQ(claim("NotLower1", Id(a)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(claim("bad handle", Id(a)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(claim("fine_name", 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(claim("fine_name", uint64_t{1} << 63).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A release by someone who does not hold it changes nothing.
  ASSERT_TRUE(SetHandle(Id(a), "fine_name").ok());
  grpc::ServerContext ctx;
  internal::HandleClaim c;
  c.set_handle_lower("fine_name");
  c.set_user_id(Id(a) + 1);
  c.set_hold_until_ms(0);
  v1::Empty e;
  EXPECT_TRUE(svc().ReleaseHandle(&ctx, &c, &e).ok());
  EXPECT_EQ(claim("fine_name", Id(a) + 1).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Lookup("fine_name"), Id(a));
}

TEST_F(AccountServiceTest, GetProfilesOmitsUnknownIdsAndIsCapped) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  grpc::ServerContext ctx;
  v1::GetProfilesRequest req;
  req.add_user_ids(b.account().profile().user_id());
  req.add_user_ids(777);
  req.add_user_ids(a.account().profile().user_id());
  req.add_user_ids(b.account().profile().user_id());
  req.add_user_ids(UINT64_MAX);
  v1::ProfilesResult res;
  ASSERT_TRUE(svc().GetProfiles(&ctx, &req, &res).ok());
  ASSERT_EQ(res.profiles_size(), 2);
  EXPECT_EQ(res.profiles(0).display_name(), "Bob");
  EXPECT_EQ(res.profiles(1).display_name(), "Alice");
  const std::string bytes = res.SerializeAsString();
  EXPECT_EQ(bytes.find(kPhoneA), std::string::npos);
  EXPECT_EQ(bytes.find(kPhoneB), std::string::npos);

  v1::GetProfilesRequest big;
  for (int i = 1; i <= 1001; ++i) big.add_user_ids(i);
  EXPECT_EQ(svc().GetProfiles(&ctx, &big, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Every reply and event other users can see must not contain a phone number.
void ExpectNoPhones(const google::protobuf::Message& m, const char* what) {
  const std::string bytes = m.SerializeAsString();
  for (const char* phone : {kPhoneA, kPhoneB, kPhoneC}) {
    EXPECT_EQ(bytes.find(phone), std::string::npos) << what << " contains " << phone;
    EXPECT_EQ(bytes.find(std::string(phone).substr(1)), std::string::npos) << what << " contains digits of " << phone;
  }
}

TEST_F(AccountServiceTest, FriendRequestAcceptContactsAndEvents) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t ida = a.account().profile().user_id();
  const uint64_t idb = b.account().profile().user_id();
  shard_->events.Take();

  // Alice asks Bob.
  Advance(1000);
  const int64_t sent_at = now_ms_;
  v1::SendFriendRequestResult sres;
  auto st = SendRequest(ida, idb, "hi Bob, it's Alice", &sres);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(sres.already_friends());

  auto events = shard_->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user_ids, std::vector<uint64_t>{idb});
  ASSERT_TRUE(events[0].event.has_friend_request());
  const auto& fr = events[0].event.friend_request().request();
  EXPECT_EQ(fr.from().user_id(), ida);
  EXPECT_EQ(fr.from().display_name(), "Alice");
  EXPECT_EQ(fr.from().handle(), a.account().profile().handle());
  EXPECT_EQ(fr.to_user_id(), idb);
  EXPECT_EQ(fr.greeting(), "hi Bob, it's Alice");
  EXPECT_EQ(fr.source(), v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH);
  EXPECT_EQ(fr.created_ms(), sent_at);
  ExpectNoPhones(events[0].event, "friend request event");

  // Bob sees it; Alice has nothing pending.
  auto reqs = Requests(idb);
  ASSERT_EQ(reqs.requests_size(), 1);
  EXPECT_EQ(reqs.requests(0).from().user_id(), ida);
  EXPECT_EQ(reqs.requests(0).greeting(), "hi Bob, it's Alice");
  EXPECT_EQ(reqs.requests(0).created_ms(), sent_at);
  ExpectNoPhones(reqs, "friend request list");
  EXPECT_EQ(Requests(ida).requests_size(), 0);
  EXPECT_TRUE(CheckFriends(ida, {idb}).empty());

  // Bob accepts.
  Advance(1000);
  v1::Contact contact;
  st = Accept(idb, ida, &contact, 99);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(contact.profile().user_id(), ida);
  EXPECT_EQ(contact.profile().display_name(), "Alice");
  EXPECT_EQ(contact.conversation_id(), DirectConversationId(ida, idb));
  EXPECT_EQ(contact.since_ms(), now_ms_);
  ExpectNoPhones(contact, "accept reply");

  events = shard_->events.Take();
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    ASSERT_EQ(e.user_ids.size(), 1u);
    ASSERT_TRUE(e.event.has_friend_added());
    ExpectNoPhones(e.event, "friend added event");
    const auto& c = e.event.friend_added().contact();
    EXPECT_EQ(c.conversation_id(), DirectConversationId(ida, idb));
    if (e.user_ids[0] == idb) {
      EXPECT_EQ(c.profile().user_id(), ida);
      EXPECT_EQ(e.skip_session_id, 99u);  // the accepting session has the reply
    } else {
      EXPECT_EQ(e.user_ids[0], ida);
      EXPECT_EQ(c.profile().user_id(), idb);
      EXPECT_EQ(c.profile().display_name(), "Bob");
      EXPECT_EQ(e.skip_session_id, 0u);
    }
  }

  // Both sides list each other; the request is gone.
  auto ca = Contacts(ida);
  ASSERT_EQ(ca.contacts_size(), 1);
  EXPECT_EQ(ca.contacts(0).profile().user_id(), idb);
  EXPECT_EQ(ca.contacts(0).conversation_id(), DirectConversationId(ida, idb));
  ExpectNoPhones(ca, "contacts of Alice");
  auto cb = Contacts(idb);
  ASSERT_EQ(cb.contacts_size(), 1);
  EXPECT_EQ(cb.contacts(0).profile().user_id(), ida);
  ExpectNoPhones(cb, "contacts of Bob");
  EXPECT_EQ(Requests(idb).requests_size(), 0);

  auto c = NewUser(kPhoneC, "Carol");
  const uint64_t idc = c.account().profile().user_id();
  EXPECT_EQ(CheckFriends(ida, {idc, idb, ida, 424242}), std::vector<uint64_t>{idb});
  EXPECT_EQ(CheckFriends(idb, {ida}), std::vector<uint64_t>{ida});
  EXPECT_TRUE(CheckFriends(idc, {ida, idb}).empty());

  // Asking a friend again is a no-op.
  shard_->events.Take();
  st = SendRequest(idb, ida, "hello again", &sres);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(sres.already_friends());
  EXPECT_TRUE(shard_->events.Take().empty());
  EXPECT_EQ(Requests(ida).requests_size(), 0);

  // Accepting twice fails cleanly (the request is consumed).
  EXPECT_EQ(Accept(idb, ida, &contact).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AccountServiceTest, ResendingARequestRefreshesItAndListsNewestFirst) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  auto c = NewUser(kPhoneC, "Carol");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id(),
                 idc = c.account().profile().user_id();
  ASSERT_TRUE(SendRequest(ida, idc, "first").ok());
  Advance(1000);
  ASSERT_TRUE(SendRequest(idb, idc, "from bob").ok());
  Advance(1000);
  ASSERT_TRUE(SendRequest(ida, idc, "second").ok());
  auto reqs = Requests(idc);
  ASSERT_EQ(reqs.requests_size(), 2);
  EXPECT_EQ(reqs.requests(0).from().user_id(), ida);
  EXPECT_EQ(reqs.requests(0).greeting(), "second");
  EXPECT_EQ(reqs.requests(1).from().user_id(), idb);
}

TEST_F(AccountServiceTest, CrossedRequestsEndAsOneFriendship) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id();
  ASSERT_TRUE(SendRequest(ida, idb, "hi Bob").ok());
  ASSERT_TRUE(SendRequest(idb, ida, "hi Alice").ok());
  v1::Contact contact;
  ASSERT_TRUE(Accept(idb, ida, &contact).ok());
  // Bob's request to Alice is moot now: no longer listed, and accepting it changes nothing.
  EXPECT_EQ(Requests(ida).requests_size(), 0);
  EXPECT_TRUE(Accept(ida, idb, &contact).ok());
  EXPECT_EQ(Contacts(ida).contacts_size(), 1);
  EXPECT_EQ(Contacts(idb).contacts_size(), 1);
}

TEST_F(AccountServiceTest, AcceptWithoutARequestIsNotFound) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id();
  v1::Contact contact;
  auto st = Accept(idb, ida, &contact);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "no pending friend request from this user");
  // A request only lets its receiver accept, not its sender.
  ASSERT_TRUE(SendRequest(ida, idb, "hi").ok());
  EXPECT_EQ(Accept(ida, idb, &contact).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Contacts(ida).contacts().empty());
  EXPECT_TRUE(Contacts(idb).contacts().empty());
}

TEST_F(AccountServiceTest, FriendRequestsExpire) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id();
  ASSERT_TRUE(SendRequest(ida, idb, "hi").ok());
  Advance(30ll * 24 * 3600 * 1000 + 1);
  EXPECT_EQ(Requests(idb).requests_size(), 0);
  v1::Contact contact;
  EXPECT_EQ(Accept(idb, ida, &contact).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AccountServiceTest, FriendRequestValidation) {
  auto a = NewUser(kPhoneA, "Alice");
  const uint64_t ida = a.account().profile().user_id();
  EXPECT_EQ(SendRequest(ida, ida, "me").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SendRequest(ida, 4242, "hi").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(SendRequest(0, ida, "hi").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t idb = b.account().profile().user_id();
  EXPECT_EQ(SendRequest(ida, idb, std::string(51, 'x')).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(SendRequest(ida, idb, std::string(50, 'x')).ok());
  EXPECT_EQ(SendRequest(ida, idb, "bad\xC3").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ServerContext ctx;
  internal::CheckFriendsRequest creq;
  creq.set_user_id(ida);
  for (int i = 1; i <= 1001; ++i) creq.add_other_ids(i);
  internal::CheckFriendsResult cres;
  EXPECT_EQ(svc().CheckFriends(&ctx, &creq, &cres).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// The unsafe-text probes of issue 9 item 5 against names and greetings; the NFC form is what is stored.
TEST_F(AccountServiceTest, UnsafeNamesAndGreetingsAreRefusedAndTheNfcFormIsStored) {
  const std::vector<std::string> unsafe{"\x1b[2JAlice",
                                        std::string("Al\0ice", 6),
                                        "Alice\r",
                                        "Alice\xE2\x80\xAE"
                                        "ecila",  // ESC, NUL, CR, U+202E
                                        "Al\xE2\x80\x8Bice",
                                        "\xEF\xBB\xBF"
                                        "Alice",
                                        "Alice\xF3\xA0\x80\x81",  // U+200B, BOM, U+E0001
                                        "   ",
                                        "\xE3\x85\xA4"};  // blank, HANGUL FILLER
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  const std::string code = Code(kPhoneA);
  v1::SessionResult s;
  for (const std::string& bad : unsafe) {
    auto st = SignUp(kPhoneA, code, bad, &s);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.error_message().rfind("display name ", 0), 0u) << st.error_message();
  }
  ASSERT_TRUE(SignUp(kPhoneA, code, "Zo\xC3\xAB", &s).ok()) << "the code still works after the refusals";
  const uint64_t ida = s.account().profile().user_id();

  grpc::ServerContext ctx;
  internal::SetDisplayNameRequest sreq;
  sreq.set_user_id(ida);
  v1::Account acc;
  for (const std::string& bad : unsafe) {
    sreq.set_display_name(bad);
    EXPECT_EQ(svc().SetDisplayName(&ctx, &sreq, &acc).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << EscapeForTerminal(bad);
  }
  sreq.set_display_name("Rene\xCC\x81");  // e + U+0301
  ASSERT_TRUE(svc().SetDisplayName(&ctx, &sreq, &acc).ok());
  EXPECT_EQ(acc.profile().display_name(), "Ren\xC3\xA9");

  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t idb = b.account().profile().user_id();
  for (const std::string& bad : unsafe) {
    auto st = SendRequest(ida, idb, bad);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.error_message().rfind("greeting ", 0), 0u) << st.error_message();
  }
  EXPECT_EQ(Requests(idb).requests_size(), 0) << "a refused request was stored";
  ASSERT_TRUE(SendRequest(ida, idb,
                          "Gru\xC3\x9F"
                          "e aus Ko\xCC\x88ln")
                  .ok());
  auto pending = Requests(idb);
  ASSERT_EQ(pending.requests_size(), 1);
  EXPECT_EQ(pending.requests(0).greeting(),
            "Gru\xC3\x9F"
            "e aus K\xC3\xB6ln");
  EXPECT_EQ(pending.requests(0).from().display_name(), "Ren\xC3\xA9");
}

TEST_F(AccountServiceTest, FriendCapIsEnforcedOnBothSides) {
  config_.limits.account.max_friends = 1;
  Start();
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  auto c = NewUser(kPhoneC, "Carol");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id(),
                 idc = c.account().profile().user_id();
  v1::Contact contact;
  ASSERT_TRUE(SendRequest(ida, idb, "hi").ok());
  ASSERT_TRUE(Accept(idb, ida, &contact).ok());

  // The acceptor (Alice) is full.
  ASSERT_TRUE(SendRequest(idc, ida, "hi").ok());
  auto st = Accept(ida, idc, &contact);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "friend limit of 1 reached");

  // The requester (Bob) is full: nothing half-done is left behind.
  ASSERT_TRUE(SendRequest(idb, idc, "hi").ok());
  st = Accept(idc, idb, &contact);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Contacts(idc).contacts().empty());
  EXPECT_EQ(Contacts(idb).contacts_size(), 1);
}

TEST_F(AccountServiceTest, PutFriendEdgeIsIdempotent) {
  auto a = NewUser(kPhoneA, "Alice");
  auto b = NewUser(kPhoneB, "Bob");
  const uint64_t ida = a.account().profile().user_id(), idb = b.account().profile().user_id();
  grpc::ServerContext ctx;
  internal::FriendEdge edge;
  edge.set_user_id(ida);
  edge.set_friend_id(idb);
  edge.set_since_ms(now_ms_ - 5000);
  v1::Empty empty;
  ASSERT_TRUE(svc().PutFriendEdge(&ctx, &edge, &empty).ok());
  edge.set_since_ms(now_ms_);
  ASSERT_TRUE(svc().PutFriendEdge(&ctx, &edge, &empty).ok());
  auto ca = Contacts(ida);
  ASSERT_EQ(ca.contacts_size(), 1);
  EXPECT_EQ(ca.contacts(0).since_ms(), now_ms_ - 5000);  // the first write wins
  edge.set_friend_id(ida);
  EXPECT_EQ(svc().PutFriendEdge(&ctx, &edge, &empty).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ---------------------------------------------------------------------------------------------
// Abuse limits on phone verification (injected clock, no sleeps).

class CodeLimitsTest : public AccountServiceTest {
 protected:
  static constexpr int64_t kDayMs = 24ll * 3600 * 1000;
  // Requests codes for `phone` until `n` were sent, stepping past the resend interval each time.
  void SendCodes(const std::string& phone, int n) {
    for (int i = 0; i < n; ++i) {
      auto st = RequestCode(phone);
      ASSERT_TRUE(st.ok()) << "code " << i << ": " << st.error_message();
      Advance(31 * 1000);
    }
  }
};

TEST_F(CodeLimitsTest, DailyCapPerPhoneSameAnswerWithOrWithoutAccount) {
  const int64_t start = now_ms_;
  NewUser(kPhoneA, "Alice");  // kPhoneA has an account and used 1 code; kPhoneB has none
  Advance(31 * 1000);
  SendCodes(kPhoneA, 9);
  SendCodes(kPhoneB, 10);
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 10);
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneB), 10);

  auto a = RequestCode(kPhoneA);
  auto b = RequestCode(kPhoneB);
  EXPECT_EQ(a.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(a.error_message(), "too many codes requested for this number today; try again tomorrow");
  EXPECT_EQ(b.error_code(), a.error_code());
  EXPECT_EQ(b.error_message(), a.error_message());
  // The wait is until the phone's window ends (a day after its first code).
  EXPECT_EQ(RetryAfterMs(a), start + kDayMs - now_ms_);
  EXPECT_EQ(RetryAfterMs(b), start + 10 * 31 * 1000 + kDayMs - now_ms_);  // after kPhoneA's 10 codes
  // Still refused just before the window of kPhoneA ends, and nothing more was sent.
  now_ms_ = start + kDayMs - 1;
  EXPECT_EQ(RequestCode(kPhoneA).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 10);
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneC), 0);
  EXPECT_TRUE(RequestCode(kPhoneC).ok());  // other phones are not affected

  // 24 h after the window's first code a new window starts, and the new code works.
  now_ms_ = start + kDayMs;
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  v1::SessionResult s;
  auto st = LogIn(kPhoneA, Code(kPhoneA), &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 11);
}

TEST_F(CodeLimitsTest, UsingACodeDoesNotResetTheDailyCap) {
  config_.limits.account.max_codes_per_phone_per_day = 2;
  Start();
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  v1::SessionResult s;
  ASSERT_TRUE(SignUp(kPhoneA, Code(kPhoneA), "Alice", &s).ok());
  // A used code does not hold back the next request (no resend interval after a successful log-in).
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  ASSERT_TRUE(LogIn(kPhoneA, Code(kPhoneA), &s).ok());
  Advance(31 * 1000);
  auto st = RequestCode(kPhoneA);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "too many codes requested for this number today; try again tomorrow");
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneA), 2);
}

TEST_F(CodeLimitsTest, StorePutCodeChecksIntervalAndDailyCapInOneStatement) {
  auto put = [&](int64_t now, uint32_t max_per_day) {
    auto conn = shard_->pool.Acquire();
    pqxx::work t(*conn);
    bool ok = store::PutCode(t, kPhoneA, "h" + std::to_string(now), now + 300000, now, now - 30000, now - kDayMs,
                             max_per_day);
    t.commit();
    return ok;
  };
  const int64_t t0 = now_ms_;
  EXPECT_TRUE(put(t0, 2));
  EXPECT_FALSE(put(t0 + 29999, 2));  // resend interval
  EXPECT_TRUE(put(t0 + 30000, 2));
  EXPECT_FALSE(put(t0 + 60000, 2));  // daily cap
  EXPECT_TRUE(put(t0 + 60000, 3));   // the cap is the caller's limit
  EXPECT_FALSE(put(t0 + kDayMs - 1, 3));
  EXPECT_TRUE(put(t0 + kDayMs, 3));  // new window
  auto conn = shard_->pool.Acquire();
  pqxx::work t(*conn);
  auto row = store::GetCode(t, kPhoneA);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->day_start_ms, t0 + kDayMs);
  EXPECT_EQ(row->day_count, 1);
  EXPECT_EQ(row->tries, 0);
}

// Issue 10: wrong codes lock the code they were entered for, never the phone (a stranger who knows
// a number must not lock its owner out). 4 codes x 5 wrong tries used to lock the phone for a day.
TEST_F(CodeLimitsTest, WrongCodesKillTheCodeButNeverLockThePhone) {
  NewUser(kPhoneA, "Alice");
  for (int c = 0; c < 4; ++c) {
    Advance(31 * 1000);
    ASSERT_TRUE(RequestCode(kPhoneA).ok());
    const std::string code = Code(kPhoneA);
    v1::SessionResult s;
    for (uint32_t i = 0; i < config_.limits.account.code_max_tries; ++i)
      ASSERT_EQ(LogIn(kPhoneA, OtherCode(code), &s).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    // The code is dead, even when right.
    auto st = LogIn(kPhoneA, code, &s);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(), "too many attempts; request a new code");
  }
  // The owner's next code works.
  Advance(31 * 1000);
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  v1::SessionResult s;
  auto st = LogIn(kPhoneA, Code(kPhoneA), &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
  // Malformed codes are not guesses: they never reach the code.
  ASSERT_TRUE((Advance(31 * 1000), RequestCode(kPhoneA).ok()));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(LogIn(kPhoneA, "12345", &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto conn = shard_->pool.Acquire();
  pqxx::work t(*conn);
  EXPECT_EQ(store::GetCode(t, kPhoneA)->tries, 0);
}

TEST_F(CodeLimitsTest, ShardBudgetCapsCodesPerMinuteAndRefusalsCostNothing) {
  config_.limits.account.max_codes_per_shard_per_minute = 3;
  Start();
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  // Refused by the resend interval: no code went out, so no budget was used.
  EXPECT_EQ(RequestCode(kPhoneA).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(RequestCode(kPhoneB).ok());
  ASSERT_TRUE(RequestCode(kPhoneC).ok());
  const std::string kPhoneD = "+33612345678";
  auto st = RequestCode(kPhoneD);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "verification temporarily unavailable; retry later");
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneD), 0);
  // The refused request did not count against kPhoneD's own limits: after a refill it goes out.
  Advance(19 * 1000);
  EXPECT_EQ(RequestCode(kPhoneD).error_code(), grpc::StatusCode::UNAVAILABLE);
  Advance(1000);  // 20 s = one token at 3 per minute
  ASSERT_TRUE(RequestCode(kPhoneD).ok());
  EXPECT_EQ(CodeLines(config_.run_dir, kPhoneD), 1);
  EXPECT_EQ(RequestCode("+33612345679").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(CodeLimitsTest, StorePurgeDeletesOnlyDeadRowsInBoundedBatches) {
  auto count = [&] {
    auto conn = shard_->pool.Acquire();
    pqxx::nontransaction n(*conn);
    return n.exec("SELECT count(*) FROM phone_codes")[0][0].as<int>();
  };
  auto purge = [&](int max_rows) {
    auto conn = shard_->pool.Acquire();
    pqxx::work t(*conn);
    int n = store::PurgeExpiredCodes(t, now_ms_ - kDayMs, max_rows);
    t.commit();
    return n;
  };
  const int64_t t0 = now_ms_;
  ASSERT_TRUE(RequestCode(kPhoneA).ok());
  ASSERT_TRUE(RequestCode(kPhoneB).ok());
  v1::SessionResult s;
  ASSERT_TRUE(SignUp(kPhoneB, Code(kPhoneB), "Bob", &s).ok());  // used: code blanked, row kept
  ASSERT_TRUE(RequestCode(kPhoneC).ok());
  EXPECT_EQ(count(), 3);
  // A day later the codes are long expired, but the windows are not over yet: nothing goes.
  now_ms_ = t0 + kDayMs - 1;
  EXPECT_EQ(purge(100), 0);
  // A new window for kPhoneC keeps its row.
  now_ms_ = t0 + kDayMs;
  ASSERT_TRUE(RequestCode(kPhoneC).ok());
  now_ms_ = t0 + kDayMs + 300 * 1000 + 1;
  EXPECT_EQ(purge(1), 1);  // bounded batch
  EXPECT_EQ(purge(100), 1);
  EXPECT_EQ(purge(100), 0);
  EXPECT_EQ(count(), 1);
  auto conn = shard_->pool.Acquire();
  pqxx::work t(*conn);
  EXPECT_TRUE(store::GetCode(t, kPhoneC).has_value());
}

TEST_F(CodeLimitsTest, RequestCodePurgesDeadRowsPeriodically) {
  auto has_row = [&](const std::string& phone) {
    auto conn = shard_->pool.Acquire();
    pqxx::work t(*conn);
    return store::GetCode(t, phone).has_value();
  };
  ASSERT_TRUE(RequestCode(kPhoneA).ok());  // request 1
  Advance(2 * kDayMs);
  // Requests 2 .. kPurgeEveryRequestCodes - 1 (refused by the resend interval) do not purge yet.
  ASSERT_TRUE(RequestCode(kPhoneB).ok());
  for (uint64_t i = 3; i < kPurgeEveryRequestCodes; ++i)
    ASSERT_EQ(RequestCode(kPhoneB).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(has_row(kPhoneA));
  EXPECT_EQ(RequestCode(kPhoneB).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(has_row(kPhoneA));
  EXPECT_TRUE(has_row(kPhoneB));
}

}  // namespace
}  // namespace chat::account
