// What clients send that the server must not trust: ids and names that
// would forge or break a log line, oversized names echoed in messages, and
// clients holding the metrics port open.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

// Every line the server wrote is a log line or its start-up/stop line: no
// client text began a line of its own.
void ExpectOnlyServerLines(const std::string& output) {
  static const std::regex server_line(
      "^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z level=[a-z]+ .*|clca-server (listening|stopped) .*)$");
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, server_line)) << "a line the server did not write: " << line;
  }
}

TEST(UntrustedInputTest, RequestIdsAndModelNamesCannotForgeLogLines) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--log-level", "info"}));
  auto client = server.NewClient();
  const std::string forged = "x\n2026-01-01T00:00:00.000000Z level=info event=classify "
                             "request_id=forged code=OK\r\"quoted\" \x1b[31m";
  std::vector<v1::ClassifyStreamRequest> items(2);
  items[0].set_request_id(forged);
  items[0].mutable_request()->set_model(kTestModel);
  items[0].mutable_request()->set_image(ReadBytes(TestData("preprocess/leaf_300x300.png")));
  items[1].set_request_id("second");
  items[1].mutable_request()->set_model(forged);
  auto responses = client->ClassifyBatchStream(items);
  ASSERT_TRUE(responses.ok()) << responses.status();
  ASSERT_EQ(responses->size(), 2u);
  for (const auto& response : *responses) {
    if (response.request_id() == forged) {
      EXPECT_EQ(response.status().code(), 0) << response.status().message();
    } else {
      EXPECT_EQ(response.status().code(), static_cast<int>(absl::StatusCode::kNotFound));
      // The message quotes at most a short, escaped prefix of the name.
      EXPECT_THAT(response.status().message(), ::testing::Not(HasSubstr("\n")));
      EXPECT_LT(response.status().message().size(), 400u);
    }
  }
  ASSERT_EQ(server.Stop(SIGTERM), std::optional<int>(0));
  EXPECT_THAT(server.output(), HasSubstr("client_request_id=\"x\\n2026"));
  ExpectOnlyServerLines(server.output());
}

TEST(UntrustedInputTest, LongModelNamesAreRefusedWithoutEchoingThem) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  const std::string name(100000, 'm');
  v1::ClassifyRequest request;
  request.set_model(name);
  request.set_image(ReadBytes(TestData("preprocess/leaf_300x300.png")));
  const auto refused = client->Classify(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_LT(refused.status().message().size(), 300u);
  const auto unknown = client->GetModel(name);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(unknown.status().message().size(), 300u);
}

// A TCP connection to the metrics port that sends a few bytes and stalls.
class StalledClient {
 public:
  StalledClient(int port, const std::string& first_bytes) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (connected_ && !first_bytes.empty()) {
      (void)!send(fd_, first_bytes.data(), first_bytes.size(), MSG_NOSIGNAL);
    }
  }
  ~StalledClient() { close(fd_); }
  bool connected() const { return connected_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST(UntrustedInputTest, ScrapesAreAnsweredWhileSlowClientsHoldTheMetricsPort) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  // Clients that trickle the start of a request and stop.
  std::vector<std::unique_ptr<StalledClient>> slow;
  for (int i = 0; i < 24; ++i) {
    slow.push_back(std::make_unique<StalledClient>(server.metrics_port(), "GET /met"));
    ASSERT_TRUE(slow.back()->connected());
  }
  for (int scrape = 0; scrape < 3; ++scrape) {
    EXPECT_THAT(Metrics(server), HasSubstr("clca_requests_total")) << "scrape " << scrape;
  }
  // More silent connections than the endpoint serves at once: the oldest
  // make way, and scrapes are still answered.
  for (int i = 0; i < 100; ++i) {
    slow.push_back(std::make_unique<StalledClient>(server.metrics_port(), ""));
  }
  for (int scrape = 0; scrape < 3; ++scrape) {
    EXPECT_THAT(Metrics(server), HasSubstr("clca_requests_total")) << "scrape " << scrape;
  }
}

TEST(UntrustedInputTest, MetricsHostChoosesTheBindAddress) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--metrics-host", "127.0.0.1"}));
  EXPECT_THAT(Metrics(server), HasSubstr("clca_requests_total"));
  ServerProcess bad;
  EXPECT_FALSE(bad.Start(repository.path(), {"--metrics-host", "no.such.host.invalid"}));
  EXPECT_THAT(bad.output(), HasSubstr("cannot serve metrics"));
}

}  // namespace
}  // namespace clca::testing
