// TLS and bearer tokens in the client: reading the files and the errors that
// name them, the token on every call of clca::Client and of RunPerf, TLS and
// mutual TLS against an in-process server, and clca-client's flags.
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/client.h"
#include "client/perf.h"
#include "client/security.h"
#include "tests/client/fake_server.h"
#include "tests/client/test_certificates.h"

namespace clca {
namespace {

using ::clca::testing::CliRun;
using ::clca::testing::FakeServer;
using ::clca::testing::FakeServerOptions;
using ::clca::testing::RunCli;
using ::clca::testing::ScratchDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// ---------------------------------------------------------------------------
// The token file.

TEST(ParseBearerTokenTest, FirstNonEmptyLineTrimmed) {
  EXPECT_EQ(*ParseBearerToken("abc.DEF-123_~+/="), "abc.DEF-123_~+/=");
  EXPECT_EQ(*ParseBearerToken("\n  \n\t tok3n \r\nsecond line\n"), "tok3n");
  EXPECT_EQ(*ParseBearerToken("tok\r\n"), "tok");
}

TEST(ParseBearerTokenTest, RefusesNoTokenAndWhatAHeaderCannotCarry) {
  for (const char* text : {"", "\n\n", "  \t \r\n"}) {
    const absl::StatusOr<std::string> token = ParseBearerToken(text);
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(token.status().message()), HasSubstr("no token"));
  }
  for (const char* text : {"two words", "Bearer abc", "caf\xc3\xa9", "nul\x01"}) {
    const absl::StatusOr<std::string> token = ParseBearerToken(text);
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(token.status().message()), HasSubstr("printable ASCII"));
  }
}

// ---------------------------------------------------------------------------
// LoadClientSecurity.

TEST(LoadClientSecurityTest, NothingGivenIsPlaintextWithoutAToken) {
  const absl::StatusOr<ClientSecurity> security = LoadClientSecurity({});
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_FALSE(security->UsesTls());
  EXPECT_TRUE(security->bearer_token.empty());
}

TEST(LoadClientSecurityTest, ReadsEveryFile) {
  ScratchDir dir;
  ClientSecurityFiles files;
  files.tls_ca = dir.Write("ca.pem", testing::kTestCaPem);
  files.tls_cert = dir.Write("client.pem", testing::kClientCertPem);
  files.tls_key = dir.Write("client.key", testing::kClientKeyPem);
  files.tls_server_name = "clca.test";
  files.token_file = dir.Write("token", "\n  s3cret  \n");
  files.token_from_environment = "ignored-when-a-file-is-given";
  const absl::StatusOr<ClientSecurity> security = LoadClientSecurity(files);
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_TRUE(security->UsesTls());
  EXPECT_EQ(security->root_ca_pem, testing::kTestCaPem);
  EXPECT_EQ(security->cert_chain_pem, testing::kClientCertPem);
  EXPECT_EQ(security->private_key_pem, testing::kClientKeyPem);
  EXPECT_EQ(security->target_name_override, "clca.test");
  EXPECT_EQ(security->bearer_token, "s3cret");

  const grpc::SslCredentialsOptions ssl = MakeSslOptions(*security);
  EXPECT_EQ(ssl.pem_root_certs, testing::kTestCaPem);
  EXPECT_EQ(ssl.pem_cert_chain, testing::kClientCertPem);
  EXPECT_EQ(ssl.pem_private_key, testing::kClientKeyPem);
}

TEST(LoadClientSecurityTest, TokenFromTheEnvironmentWithoutAFile) {
  ClientSecurityFiles files;
  files.token_from_environment = " from-env\n";
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity(files);
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_EQ(security->bearer_token, "from-env");
  EXPECT_FALSE(security->UsesTls());

  files.token_from_environment = "has space";
  security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()), HasSubstr("CLCA_TOKEN: "));
}

TEST(LoadClientSecurityTest, WhatImpliesTls) {
  ClientSecurity security;
  EXPECT_FALSE(security.UsesTls());
  security.tls = true;
  EXPECT_TRUE(security.UsesTls());
  security = {};
  security.root_ca_pem = testing::kTestCaPem;
  EXPECT_TRUE(security.UsesTls());
  security = {};
  security.cert_chain_pem = testing::kClientCertPem;
  EXPECT_TRUE(security.UsesTls());
  security = {};
  security.bearer_token = "token";
  security.target_name_override = "";
  EXPECT_FALSE(security.UsesTls());

  ClientSecurityFiles files;
  files.tls = true;
  EXPECT_TRUE(LoadClientSecurity(files)->UsesTls());
}

TEST(LoadClientSecurityTest, MissingFilesAreNotFoundAndNameTheFlagAndPath) {
  ScratchDir dir;
  const std::string missing = dir.Path("missing.pem");
  struct Case {
    const char* flag;
    ClientSecurityFiles files;
  };
  std::vector<Case> cases(4);
  cases[0] = {"--tls-ca", {}};
  cases[0].files.tls_ca = missing;
  cases[1] = {"--tls-cert", {}};
  cases[1].files.tls_cert = missing;
  cases[1].files.tls_key = dir.Write("client.key", testing::kClientKeyPem);
  cases[2] = {"--tls-key", {}};
  cases[2].files.tls_cert = dir.Write("client.pem", testing::kClientCertPem);
  cases[2].files.tls_key = missing;
  cases[3] = {"--token-file", {}};
  cases[3].files.token_file = missing;
  for (const Case& c : cases) {
    const absl::StatusOr<ClientSecurity> security = LoadClientSecurity(c.files);
    EXPECT_EQ(security.status().code(), absl::StatusCode::kNotFound) << c.flag;
    EXPECT_EQ(security.status().message(), std::string(c.flag) + ": no such file: " + missing);
  }
}

TEST(LoadClientSecurityTest, UnusableFilesAreInvalidArguments) {
  ScratchDir dir;
  ClientSecurityFiles files;
  files.tls_ca = dir.Write("not-pem.txt", "just text");
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()),
              HasSubstr("--tls-ca: " + files.tls_ca + " holds no PEM block"));

  files.tls_ca = dir.Path("");  // the directory itself
  security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()), HasSubstr("is a directory"));

  files = {};
  files.token_file = dir.Write("empty-token", "\n \n");
  security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(security.status().message(),
            "--token-file: " + files.token_file + ": no token: every line is empty");
}

TEST(LoadClientSecurityTest, CertificateAndKeyComeTogether) {
  ScratchDir dir;
  ClientSecurityFiles files;
  files.tls_cert = dir.Write("client.pem", testing::kClientCertPem);
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()), HasSubstr("--tls-cert needs --tls-key"));

  files = {};
  files.tls_key = dir.Write("client.key", testing::kClientKeyPem);
  security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()), HasSubstr("--tls-key needs --tls-cert"));
}

TEST(LoadClientSecurityTest, ServerNameNeedsTls) {
  ClientSecurityFiles files;
  files.tls_server_name = "clca.test";
  const absl::StatusOr<ClientSecurity> security = LoadClientSecurity(files);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(security.status().message()), HasSubstr("--tls-server-name"));
}

TEST(ValidateClientSecurityTest, ChecksWhatIsSetDirectly) {
  ClientSecurity security;
  EXPECT_TRUE(ValidateClientSecurity(security).ok());
  security.cert_chain_pem = testing::kClientCertPem;
  EXPECT_EQ(ValidateClientSecurity(security).code(), absl::StatusCode::kInvalidArgument);
  security.private_key_pem = testing::kClientKeyPem;
  EXPECT_TRUE(ValidateClientSecurity(security).ok());
  security.bearer_token = "line\nbreak";
  EXPECT_EQ(ValidateClientSecurity(security).code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The token on the wire.

ClientOptions WithToken(const std::string& token) {
  ClientOptions options;
  options.timeout = std::chrono::seconds(10);
  options.security.bearer_token = token;
  return options;
}

TEST(BearerTokenTest, EveryClientCallCarriesIt) {
  FakeServer server;
  ASSERT_TRUE(server.running());
  std::unique_ptr<Client> client = Client::Create(server.address(), WithToken("tok-1"));
  ASSERT_TRUE(client->ListModels().ok());
  ASSERT_TRUE(client->GetModel(testing::kFakeModel).ok());
  ClassifyOptions classify;
  classify.model = testing::kFakeModel;
  ASSERT_TRUE(client->Classify("image bytes", classify).ok());
  v1::ClassifyStreamRequest item;
  item.mutable_request()->set_model(testing::kFakeModel);
  ASSERT_TRUE(client->ClassifyBatchStream({item, item}).ok());
  EXPECT_THAT(server.state().authorizations(), ElementsAre(Pair("Bearer tok-1", 4)));
}

TEST(BearerTokenTest, NoTokenNoHeader) {
  FakeServer server;
  ASSERT_TRUE(server.running());
  std::unique_ptr<Client> client = Client::Create(server.address(), WithToken(""));
  ASSERT_TRUE(client->ListModels().ok());
  EXPECT_THAT(server.state().authorizations(), ElementsAre(Pair("", 1)));
}

TEST(BearerTokenTest, AddBearerTokenSetsTheHeaderOfAContext) {
  FakeServer server;
  ASSERT_TRUE(server.running());
  std::unique_ptr<v1::Classifier::Stub> stub =
      v1::Classifier::NewStub(CreateClientChannel(server.address()));
  grpc::ClientContext with, without;
  AddBearerToken("abc", &with);
  AddBearerToken("", &without);
  v1::ListModelsResponse response;
  ASSERT_TRUE(stub->ListModels(&with, {}, &response).ok());
  ASSERT_TRUE(stub->ListModels(&without, {}, &response).ok());
  EXPECT_THAT(server.state().authorizations(), ElementsAre(Pair("", 1), Pair("Bearer abc", 1)));
}

perf::PerfOptions QuickPerf() {
  perf::PerfOptions options;
  options.model = testing::kFakeModel;
  options.images = {"image bytes"};
  options.concurrency = {2};
  options.window = std::chrono::milliseconds(50);
  options.max_windows = 2;
  options.connect_timeout = std::chrono::seconds(10);
  return options;
}

TEST(BearerTokenTest, EveryPerfCallCarriesIt) {
  FakeServer server;
  ASSERT_TRUE(server.running());
  for (bool streaming : {false, true}) {
    SCOPED_TRACE(streaming ? "streaming" : "unary");
    perf::PerfOptions options = QuickPerf();
    options.streaming = streaming;
    options.bearer_token = streaming ? "perf-stream" : "perf-unary";
    const absl::StatusOr<perf::PerfReport> report =
        perf::RunPerf(CreateClientChannel(server.address()), options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_GT(report->results[0].requests, 0);
    EXPECT_EQ(report->results[0].error_count, 0);
  }
  const std::map<std::string, int> seen = server.state().authorizations();
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen.count("Bearer perf-unary") ? seen.at("Bearer perf-unary") : 0, 0);
  EXPECT_GT(seen.count("Bearer perf-stream") ? seen.at("Bearer perf-stream") : 0, 0);
}

// ---------------------------------------------------------------------------
// TLS.

FakeServerOptions TlsServer(bool require_client_certificate = false) {
  FakeServerOptions options;
  options.cert_pem = testing::kServerCertPem;
  options.key_pem = testing::kServerKeyPem;
  if (require_client_certificate) options.client_ca_pem = testing::kTestCaPem;
  return options;
}

ClientOptions TlsClient(const std::string& root_ca, const std::string& server_name) {
  ClientOptions options;
  options.timeout = std::chrono::seconds(10);
  options.security.root_ca_pem = root_ca;
  options.security.target_name_override = server_name;
  return options;
}

TEST(TlsTest, VerifiesTheServerAgainstTheGivenCa) {
  FakeServer server(TlsServer());
  ASSERT_TRUE(server.running());
  ClientOptions options = TlsClient(testing::kTestCaPem, "clca.test");
  options.security.bearer_token = "over-tls";
  std::unique_ptr<Client> client = Client::Create(server.address(), options);
  const absl::StatusOr<v1::ListModelsResponse> models = client->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_EQ(models->models_size(), 2);
  const auto health = client->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_THAT(server.state().authorizations(), ElementsAre(Pair("Bearer over-tls", 1)));
}

TEST(TlsTest, RefusesAServerTheCaDidNotSignOrUnderAnotherName) {
  FakeServer server(TlsServer());
  ASSERT_TRUE(server.running());
  // Signed by another CA.
  EXPECT_EQ(Client::Create(server.address(), TlsClient(testing::kOtherCaPem, "clca.test"))
                ->ListModels()
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  // The certificate names clca.test, not 127.0.0.1.
  EXPECT_EQ(Client::Create(server.address(), TlsClient(testing::kTestCaPem, ""))
                ->ListModels()
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  // Plaintext to a TLS server.
  EXPECT_EQ(Client::Create(server.address(), WithToken(""))->ListModels().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(server.state().authorizations().empty());
}

TEST(TlsTest, MutualTlsNeedsTheClientCertificate) {
  FakeServer server(TlsServer(/*require_client_certificate=*/true));
  ASSERT_TRUE(server.running());
  ClientOptions options = TlsClient(testing::kTestCaPem, "clca.test");
  EXPECT_EQ(Client::Create(server.address(), options)->ListModels().status().code(),
            absl::StatusCode::kUnavailable);
  options.security.cert_chain_pem = testing::kClientCertPem;
  options.security.private_key_pem = testing::kClientKeyPem;
  const absl::StatusOr<v1::ListModelsResponse> models =
      Client::Create(server.address(), options)->ListModels();
  EXPECT_TRUE(models.ok()) << models.status();
}

TEST(TlsTest, PerfRunsOverTheTlsChannel) {
  FakeServer server(TlsServer());
  ASSERT_TRUE(server.running());
  perf::PerfOptions options = QuickPerf();
  options.bearer_token = "perf-tls";
  const absl::StatusOr<perf::PerfReport> report = perf::RunPerf(
      CreateClientChannel(server.address(), TlsClient(testing::kTestCaPem, "clca.test")),
      options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->results[0].requests, 0);
  EXPECT_EQ(server.state().authorizations().count("Bearer perf-tls"), 1u);
}

// ---------------------------------------------------------------------------
// clca-client's flags.

class SecurityCliTest : public ::testing::Test {
 protected:
  std::string Flags(const std::string& extra) const {
    return "--server " + server_.address() + " --timeout 10000 " + extra;
  }

  ScratchDir dir_;
  FakeServer server_{TlsServer()};
};

TEST_F(SecurityCliTest, TlsCaServerNameAndTokenFile) {
  const std::string ca = dir_.Write("ca.pem", testing::kTestCaPem);
  const std::string token = dir_.Write("token", "cli-token\n");
  const CliRun run = RunCli(
      Flags("models --tls-ca " + ca + " --tls-server-name clca.test --token-file " + token));
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_THAT(run.out, HasSubstr("fake v1"));
  EXPECT_THAT(server_.state().authorizations(), ElementsAre(Pair("Bearer cli-token", 1)));
}

TEST_F(SecurityCliTest, TokenFromTheEnvironmentUnlessAFileIsGiven) {
  const std::string ca = dir_.Write("ca.pem", testing::kTestCaPem);
  const std::string tls = "--tls-ca " + ca + " --tls-server-name clca.test ";
  ASSERT_EQ(RunCli(Flags(tls + "models"), "CLCA_TOKEN=env-token").exit_code, 0);
  const std::string file = dir_.Write("token", "file-token");
  ASSERT_EQ(RunCli(Flags(tls + "--token-file " + file + " models"), "CLCA_TOKEN=env-token")
                .exit_code,
            0);
  EXPECT_THAT(server_.state().authorizations(),
              ElementsAre(Pair("Bearer env-token", 1), Pair("Bearer file-token", 1)));
}

TEST_F(SecurityCliTest, MutualTlsFlags) {
  FakeServer mutual(TlsServer(/*require_client_certificate=*/true));
  ASSERT_TRUE(mutual.running());
  const std::string tls = " --tls-ca " + dir_.Write("ca.pem", testing::kTestCaPem) +
                          " --tls-server-name clca.test";
  const std::string cert = dir_.Write("client.pem", testing::kClientCertPem);
  const std::string key = dir_.Write("client.key", testing::kClientKeyPem);
  CliRun run = RunCli("--server " + mutual.address() + " health" + tls + " --tls-cert " + cert +
                      " --tls-key " + key);
  EXPECT_EQ(run.exit_code, 0) << run.both();
  EXPECT_EQ(run.out, "SERVING\n");
  run = RunCli("--server " + mutual.address() + " --timeout 10000 health" + tls);
  EXPECT_EQ(run.exit_code, 1) << run.both();
  EXPECT_THAT(run.err, HasSubstr("error: UNAVAILABLE"));
}

TEST_F(SecurityCliTest, BadSecurityFlagsExitWithOneAndSayWhy) {
  const std::string cert = dir_.Write("client.pem", testing::kClientCertPem);
  CliRun run = RunCli(Flags("models --tls-cert " + cert));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err, "error: INVALID_ARGUMENT: --tls-cert needs --tls-key: the client "
                     "certificate's key\n");
  run = RunCli(Flags("models --tls-ca " + dir_.Path("nope.pem")));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err, "error: NOT_FOUND: --tls-ca: no such file: " + dir_.Path("nope.pem") + "\n");
  run = RunCli(Flags("models --token-file " + dir_.Write("blank", "\n")));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("INVALID_ARGUMENT: --token-file: "));
  run = RunCli(Flags("models"), "CLCA_TOKEN='a b'");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("INVALID_ARGUMENT: CLCA_TOKEN: the token holds a space"));
  // Flags are checked before a perf sweep connects.
  run = RunCli(Flags("perf --raw-input --tls-key " + dir_.Write("k", testing::kClientKeyPem)));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("--tls-key needs --tls-cert"));
}

TEST_F(SecurityCliTest, PerfSendsTheTokenOverTls) {
  const std::string ca = dir_.Write("ca.pem", testing::kTestCaPem);
  const CliRun run = RunCli(Flags("perf --model fake --raw-input --window-ms 50 --max-windows 2 "
                                  "--quiet --json --tls-ca " +
                                  ca + " --tls-server-name clca.test"),
                            "CLCA_TOKEN=perf-cli");
  ASSERT_EQ(run.exit_code, 0) << run.both();
  const std::map<std::string, int> seen = server_.state().authorizations();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->first, "Bearer perf-cli");
  EXPECT_GT(seen.begin()->second, 2);  // GetModel, then the sweep
}

}  // namespace
}  // namespace clca
