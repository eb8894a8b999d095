// Client-side load balancing: one clca::Client (and clca-client) given two
// servers spreads its calls over both.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/client.h"
#include "tests/deploy/deploy_harness.h"

namespace clca::deploy_test {
namespace {

TEST(RoundRobinTest, TargetsForSeveralAddresses) {
  EXPECT_EQ(ChannelTarget("localhost:50051"), "localhost:50051");
  EXPECT_EQ(ChannelTarget("dns:///clca-headless:50051"), "dns:///clca-headless:50051");
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,localhost:2"), "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(ChannelTarget("[::1]:1,[::1]:2"), "ipv6:[::1]:1,[::1]:2");
}

TEST(RoundRobinTest, SpreadsCallsOverEveryServer) {
  TempDir dir;
  TestRepository repository;
  Server first, second;
  ASSERT_TRUE(first.Start(repository.path(), dir.path() / "first.log"));
  ASSERT_TRUE(second.Start(repository.path(), dir.path() / "second.log"));
  const std::string both = first.address() + "," + second.address();

  ClientOptions options;
  options.timeout = std::chrono::seconds(20);
  std::unique_ptr<Client> client = Client::Create(both, options);
  ClassifyOptions classify;
  classify.model = "leafnet";
  constexpr int kCalls = 8;
  for (int i = 0; i < kCalls; ++i) {
    auto response = client->ClassifyFile(TestData("preprocess/leaf_300x300.png"), classify);
    ASSERT_TRUE(response.ok()) << response.status();
  }
  // The command line client takes the same list.
  const CommandResult cli = RunCommand({ClientBinary(), "classify", "--server", both, "--model",
                                        "leafnet", TestData("preprocess/leaf_600x400.jpg"),
                                        TestData("preprocess/leaf_small_120x90.jpg")});
  ASSERT_EQ(cli.exit_code, 0) << cli.output;

  const double on_first = MetricSum(first.Metrics(), "clca_requests_total");
  const double on_second = MetricSum(second.Metrics(), "clca_requests_total");
  EXPECT_EQ(on_first + on_second, kCalls + 2);
  EXPECT_GE(on_first, 2) << "calls were not spread: " << on_first << " vs " << on_second;
  EXPECT_GE(on_second, 2) << "calls were not spread: " << on_first << " vs " << on_second;
  first.Stop();
  second.Stop();
}

}  // namespace
}  // namespace clca::deploy_test
