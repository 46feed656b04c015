#include "common/grpc_util.h"

#include <signal.h>

#include <cctype>
#include <stdexcept>

namespace chat {

namespace {

void RequireTlsLoaded(const InternalTlsConfig& tls) {
  if (!tls.insecure_plaintext && (tls.ca_pem.empty() || tls.cert_pem.empty() || tls.key_pem.empty()))
    throw std::runtime_error("internal TLS is not loaded (LoadInternalTls) and insecure_plaintext is not set");
}

}  // namespace

std::string ServerNameOf(std::string_view service_full_name) {
  std::string_view n = service_full_name.substr(service_full_name.rfind('.') + 1);  // npos + 1 = 0
  constexpr std::string_view kSuffix = "Service";
  if (n.size() > kSuffix.size() && n.substr(n.size() - kSuffix.size()) == kSuffix) n.remove_suffix(kSuffix.size());
  std::string out;
  for (char c : n) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out + "-service";
}

std::shared_ptr<grpc::Channel> MakeChannel(const ShardConfig& shard, const InternalTlsConfig& tls,
                                           const std::string& server_name) {
  RequireTlsLoaded(tls);
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 * 1024 * 1024);
  if (tls.insecure_plaintext)
    return grpc::CreateCustomChannel(shard.Target(), grpc::InsecureChannelCredentials(), args);
  // The target names addresses (one per replica), not a host: the server is checked against the
  // service's name instead, which its certificate carries whatever address it listens on.
  args.SetSslTargetNameOverride(server_name);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls.ca_pem;
  ssl.pem_private_key = tls.key_pem;
  ssl.pem_cert_chain = tls.cert_pem;
  return grpc::CreateCustomChannel(shard.Target(), grpc::SslCredentials(ssl), args);
}

std::unique_ptr<grpc::Server> StartServer(const std::string& listen, std::vector<grpc::Service*> services,
                                          const InternalTlsConfig& tls, int max_threads) {
  RequireTlsLoaded(tls);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (max_threads > 0) {
    grpc::ResourceQuota quota("server");
    quota.SetMaxThreads(max_threads);
    builder.SetResourceQuota(quota);
  }
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls.insecure_plaintext) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = tls.ca_pem;
    ssl.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(listen, creds, &port);
  builder.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  for (auto* s : services) builder.RegisterService(s);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot listen on " + listen);
  return server;
}

void WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
}

}  // namespace chat
