// Transport security and bearer tokens through a real server: TLS, mutual
// TLS, missing, wrong and rotated tokens, the open health service, and
// reflection behind the tokens or switched off.
#include <signal.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "client/security.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/client/test_certificates.h"
#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;
namespace reflection = grpc::reflection::v1alpha;

// The test certificates as files for the server's flags.
class CertificateFiles {
 public:
  CertificateFiles() {
    WriteText(path("ca.pem"), kTestCaPem);
    WriteText(path("other-ca.pem"), kOtherCaPem);
    WriteText(path("server.pem"), kServerCertPem);
    WriteText(path("server.key"), kServerKeyPem);
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }

 private:
  TempDir dir_;
};

std::unique_ptr<Client> TlsClient(const ServerProcess& server, bool with_client_certificate,
                                  const std::string& token = "") {
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(60000);
  options.security.root_ca_pem = kTestCaPem;
  options.security.target_name_override = "clca.test";
  if (with_client_certificate) {
    options.security.cert_chain_pem = kClientCertPem;
    options.security.private_key_pem = kClientKeyPem;
  }
  options.security.bearer_token = token;
  return Client::Create(server.address(), options);
}

std::unique_ptr<Client> PlainClient(const ServerProcess& server, const std::string& token = "") {
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(60000);
  options.security.bearer_token = token;
  return Client::Create(server.address(), options);
}

absl::Status ClassifyLeaf(const Client& client) {
  ClassifyOptions options;
  options.model = kTestModel;
  return client.Classify(ReadBytes(TestData("preprocess/leaf_300x300.png")), options).status();
}

// One list_services reflection request with `token` (none when empty).
grpc::Status ListServicesByReflection(const ServerProcess& server, const std::string& token,
                                      std::vector<std::string>* services) {
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto stub = reflection::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!token.empty()) AddBearerToken(token, &context);
  auto stream = stub->ServerReflectionInfo(&context);
  reflection::ServerReflectionRequest request;
  request.set_list_services("");
  stream->Write(request);
  stream->WritesDone();
  reflection::ServerReflectionResponse response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) {
      services->push_back(service.name());
    }
  }
  return stream->Finish();
}

TEST(TlsTest, ServesOverTlsAndRefusesPlaintext) {
  TestRepository repository;
  CertificateFiles files;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--tls-cert", files.path("server.pem"),
                                               "--tls-key", files.path("server.key")}));
  EXPECT_TRUE(ClassifyLeaf(*TlsClient(server, /*with_client_certificate=*/false)).ok());
  const absl::Status plain = ClassifyLeaf(*PlainClient(server));
  EXPECT_EQ(plain.code(), absl::StatusCode::kUnavailable) << plain;
}

TEST(TlsTest, MutualTlsNeedsACertificateTheClientCaSigned) {
  TestRepository repository;
  CertificateFiles files;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(),
                           {"--tls-cert", files.path("server.pem"), "--tls-key",
                            files.path("server.key"), "--tls-client-ca", files.path("ca.pem")}));
  EXPECT_TRUE(ClassifyLeaf(*TlsClient(server, /*with_client_certificate=*/true)).ok());
  EXPECT_FALSE(ClassifyLeaf(*TlsClient(server, /*with_client_certificate=*/false)).ok());
  // The health service needs the certificate too: it is the transport.
  EXPECT_FALSE(TlsClient(server, false)->CheckHealth().ok());

  // A CA that signed neither certificate: the client's is refused.
  ServerProcess strict;
  ASSERT_TRUE(strict.Start(repository.path(), {"--tls-cert", files.path("server.pem"),
                                               "--tls-key", files.path("server.key"),
                                               "--tls-client-ca", files.path("other-ca.pem")}));
  EXPECT_FALSE(ClassifyLeaf(*TlsClient(strict, /*with_client_certificate=*/true)).ok());
}

TEST(TlsTest, BadFlagsStopTheServerWithAMessage) {
  TestRepository repository;
  CertificateFiles files;
  {
    ServerProcess server;
    EXPECT_FALSE(server.Start(repository.path(), {"--tls-cert", files.path("server.pem")}));
    EXPECT_THAT(server.output(), HasSubstr("--tls-cert and --tls-key go together"));
  }
  {
    ServerProcess server;
    EXPECT_FALSE(server.Start(repository.path(), {"--tls-client-ca", files.path("ca.pem")}));
    EXPECT_THAT(server.output(), HasSubstr("--tls-client-ca needs --tls-cert"));
  }
  {
    ServerProcess server;
    EXPECT_FALSE(server.Start(repository.path(), {"--tls-cert", files.path("ca.pem"),
                                                  "--tls-key", files.path("labels.txt")}));
  }
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = (dir_.path() / "tokens").string();
    WriteText(tokens_, "# operators\ntoken-one\n\n  token-two  \n");
  }
  std::string tokens_;
  TestRepository repository_;
  TempDir dir_;
};

TEST_F(TokenTest, EveryClassifierCallNeedsAKnownToken) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository_.path(), {"--auth-tokens", tokens_}));
  for (const std::string token : {"", "token-three", "token-on", "Bearer token-one"}) {
    SCOPED_TRACE(token);
    auto client = PlainClient(server, token);
    const absl::Status status = ClassifyLeaf(*client);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
    EXPECT_THAT(status.message(), HasSubstr("authorization: Bearer <token>"));
    if (!token.empty()) {
      EXPECT_THAT(status.message(), ::testing::Not(HasSubstr(token)));
    }
    EXPECT_EQ(client->ListModels().status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(client->GetModel(kTestModel).status().code(), absl::StatusCode::kUnauthenticated);
    v1::ClassifyStreamRequest item;
    item.set_request_id("a");
    item.mutable_request()->set_model(kTestModel);
    EXPECT_EQ(client->ClassifyBatchStream({item}).status().code(),
              absl::StatusCode::kUnauthenticated);
    // Probes need no token.
    EXPECT_TRUE(client->CheckHealth().ok());
  }
  for (const std::string token : {"token-one", "token-two"}) {
    auto client = PlainClient(server, token);
    EXPECT_TRUE(ClassifyLeaf(*client).ok()) << token;
    EXPECT_TRUE(client->ListModels().ok());
  }
}

TEST_F(TokenTest, TokensRotateOnSighupAndABrokenFileKeepsTheOldOnes) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository_.path(), {"--auth-tokens", tokens_}));
  ASSERT_TRUE(ClassifyLeaf(*PlainClient(server, "token-one")).ok());
  WriteText(tokens_, "token-new\n");
  server.Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return ClassifyLeaf(*PlainClient(server, "token-new")).ok(); }));
  EXPECT_EQ(ClassifyLeaf(*PlainClient(server, "token-one")).code(),
            absl::StatusCode::kUnauthenticated);
  // A file without tokens is refused; the rotated token stays valid.
  WriteText(tokens_, "# nothing\n");
  server.Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return server.ReadOutput().find("tokens_reload_failed") !=
                                   std::string::npos; }));
  EXPECT_TRUE(ClassifyLeaf(*PlainClient(server, "token-new")).ok());
}

TEST_F(TokenTest, ReflectionFollowsTheTokenRuleOrIsOff) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository_.path(), {"--auth-tokens", tokens_}));
  std::vector<std::string> services;
  EXPECT_EQ(ListServicesByReflection(server, "", &services).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(services.empty());
  ASSERT_TRUE(ListServicesByReflection(server, "token-two", &services).ok());
  EXPECT_THAT(services, ::testing::Contains("clca.v1.Classifier"));

  ServerProcess quiet;
  ASSERT_TRUE(quiet.Start(repository_.path(), {"--reflection", "false"}));
  services.clear();
  EXPECT_EQ(ListServicesByReflection(quiet, "", &services).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(TokenTest, AFileWithoutTokensStopsTheServer) {
  WriteText(tokens_, "\n# none\n");
  ServerProcess server;
  EXPECT_FALSE(server.Start(repository_.path(), {"--auth-tokens", tokens_}));
  EXPECT_THAT(server.output(), HasSubstr("holds no token"));
}

}  // namespace
}  // namespace clca::testing
