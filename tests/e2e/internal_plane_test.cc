// The internal plane is mutual TLS: a process on the cluster's network that holds no certificate of
// the cluster's CA gets nothing from any service, whatever it sends.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "cluster.h"
#include "common/grpc_util.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Client credentials presenting `cert_dir`'s certificate of `kind` and trusting `ca_dir`'s CA.
std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca_dir, const std::string& cert_dir,
                                              const std::string& kind) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(ca_dir + "/ca.crt");
  if (!cert_dir.empty()) {
    o.pem_cert_chain = ReadFile(cert_dir + "/" + kind + ".crt");
    o.pem_private_key = ReadFile(cert_dir + "/" + kind + ".key");
  }
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> creds,
                                       const std::string& server_name) {
  grpc::ChannelArguments args;
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel("ipv4:" + address, std::move(creds), args);
}

// One call to one service: its status and the size of what came back.
struct Answer {
  grpc::Status status;
  size_t reply_bytes = 0;
  std::string detail;  // what the reply held, for the positive control
};

struct Target {
  std::string service;  // the process kind, which the server's certificate names
  std::string address;
  std::function<Answer(const std::shared_ptr<grpc::Channel>&)> call;
};

template <typename Stub, typename Req, typename Resp>
Answer Call(grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*), Stub& stub, const Req& req,
            std::function<std::string(const Resp&)> describe) {
  auto ctx = MakeContext(5000);
  Resp resp;
  Answer a;
  a.status = (stub.*rpc)(ctx.get(), req, &resp);
  a.reply_bytes = resp.ByteSizeLong();
  a.detail = describe(resp);
  return a;
}

TEST(InternalPlane, AProcessWithoutAClusterCertificateGetsNothingFromAnyService) {
  TestCluster cluster(ClusterOptions{.chat_shards = 1, .gateways = 1});
  User alice = cluster.SignUp(0, WireEncoding::kJson, "alice");
  User bob = cluster.SignUp(0, WireEncoding::kJson, "bob");
  cluster.MakeFriends(alice, bob);
  const std::string conversation = DirectConversationId(alice.id, bob.id);
  SendTextOk(alice.c(), conversation, "for alice and bob only");

  const ClusterConfig& cfg = cluster.config();
  internal::UserIdRequest who;
  who.set_user_id(alice.id);
  const std::vector<Target> targets = {
      {"account-service", cfg.account[0].addresses[0],
       [&](const std::shared_ptr<grpc::Channel>& ch) {
         auto stub = internal::AccountService::NewStub(ch);
         return Call<internal::AccountService::Stub, internal::UserIdRequest, v1::Account>(
             &internal::AccountService::Stub::GetAccount, *stub, who, [](const v1::Account& a) { return a.phone(); });
       }},
      {"presence-service", cfg.presence[0].addresses[0],
       [&](const std::shared_ptr<grpc::Channel>& ch) {
         auto stub = internal::PresenceService::NewStub(ch);
         internal::LookupRequest req;
         req.add_user_ids(alice.id);
         return Call<internal::PresenceService::Stub, internal::LookupRequest, internal::LookupResult>(
             &internal::PresenceService::Stub::Lookup, *stub, req,
             [](const internal::LookupResult& r) { return std::to_string(r.sessions_size()) + " session(s)"; });
       }},
      {"chat-service", cfg.chat[0].addresses[0],
       [&](const std::shared_ptr<grpc::Channel>& ch) {
         auto stub = internal::ChatService::NewStub(ch);
         return Call<internal::ChatService::Stub, internal::UserIdRequest, v1::ConversationsResult>(
             &internal::ChatService::Stub::ListConversations, *stub, who, [](const v1::ConversationsResult& r) {
               return std::to_string(r.conversations_size()) + " conversation(s)";
             });
       }},
      {"group-service", cfg.group[0].addresses[0],
       [&](const std::shared_ptr<grpc::Channel>& ch) {
         auto stub = internal::GroupService::NewStub(ch);
         return Call<internal::GroupService::Stub, internal::UserIdRequest, v1::GroupsResult>(
             &internal::GroupService::Stub::ListMyGroups, *stub, who,
             [](const v1::GroupsResult& r) { return std::to_string(r.groups_size()) + " group(s)"; });
       }},
  };

  const std::string& ours = TestCertsDir();
  const std::string theirs = MakeCerts();  // another CA, with certificates for every kind
  for (const Target& t : targets) {
    SCOPED_TRACE(t.service + " on " + t.address);
    // The control: a cluster member (here with the gateway's certificate) is served, so what fails
    // below fails for want of a certificate and for nothing else.
    const Answer member = t.call(Channel(t.address, Tls(ours, ours, "gateway"), t.service));
    ASSERT_TRUE(member.status.ok()) << member.status.error_message();
    if (t.service == "account-service") EXPECT_EQ(member.detail, alice.phone);
    if (t.service == "presence-service") EXPECT_EQ(member.detail, "1 session(s)");
    if (t.service == "chat-service") EXPECT_EQ(member.detail, "1 conversation(s)");

    struct Intruder {
      const char* what;
      std::shared_ptr<grpc::Channel> channel;
    };
    const Intruder intruders[] = {
        {"plain text, no TLS", Channel(t.address, grpc::InsecureChannelCredentials(), "")},
        {"TLS trusting the cluster CA, no client certificate", Channel(t.address, Tls(ours, "", ""), t.service)},
        {"a certificate of another CA (for the same kind)",
         Channel(t.address, Tls(ours, theirs, "gateway"), t.service)},
    };
    for (const Intruder& in : intruders) {
      const Answer a = t.call(in.channel);
      EXPECT_EQ(a.status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << in.what << ": " << a.status.error_code() << " " << a.status.error_message();
      EXPECT_EQ(a.reply_bytes, 0u) << in.what << " got data: " << a.detail;
    }
  }
}

// Callers check the server too: a process holding another CA's certificate cannot pose as a
// service, and a cluster member's certificate for one kind does not pass for another kind.
TEST(InternalPlane, ChannelsAcceptOnlyTheServiceTheyCalled) {
  TestCluster cluster(ClusterOptions{.chat_shards = 1, .gateways = 1});
  const ClusterConfig& cfg = cluster.config();
  const std::string& ours = TestCertsDir();
  const std::string theirs = MakeCerts();
  internal::UserIdRequest who;
  who.set_user_id(1);
  auto get_account = [&](const std::shared_ptr<grpc::Channel>& ch) {
    auto stub = internal::AccountService::NewStub(ch);
    return Call<internal::AccountService::Stub, internal::UserIdRequest, v1::Account>(
        &internal::AccountService::Stub::GetAccount, *stub, who, [](const v1::Account& a) { return a.phone(); });
  };
  const std::string account = cfg.account[0].addresses[0];
  // A member that trusts only another CA refuses the real account-service (its certificate does not
  // chain), and one that expects chat-service at this address refuses account-service's certificate.
  const Answer other_ca = get_account(Channel(account, Tls(theirs, theirs, "gateway"), "account-service"));
  EXPECT_EQ(other_ca.status.error_code(), grpc::StatusCode::UNAVAILABLE) << other_ca.status.error_message();
  const Answer wrong_name = get_account(Channel(account, Tls(ours, ours, "gateway"), "chat-service"));
  EXPECT_EQ(wrong_name.status.error_code(), grpc::StatusCode::UNAVAILABLE) << wrong_name.status.error_message();
  // And the service name each stub checks is the one make-certs puts in the certificate.
  EXPECT_EQ(ServerNameOf(internal::AccountService::service_full_name()), "account-service");
  EXPECT_EQ(ServerNameOf(internal::ChatService::service_full_name()), "chat-service");
  EXPECT_EQ(ServerNameOf(internal::GroupService::service_full_name()), "group-service");
  EXPECT_EQ(ServerNameOf(internal::PresenceService::service_full_name()), "presence-service");
  // The control: the right name and CA are served (NOT_FOUND: user 1 does not exist, and the call
  // reached the service to find that out).
  const Answer ok = get_account(Channel(account, Tls(ours, ours, "gateway"), "account-service"));
  EXPECT_NE(ok.status.error_code(), grpc::StatusCode::UNAVAILABLE) << ok.status.error_message();
}

}  // namespace
}  // namespace chat::e2e
