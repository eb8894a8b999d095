// nginx (Debian's package) running deploy/nginx/nginx.conf in front of two
// clca-server processes on loopback: gRPC calls, unary and streaming, and
// clca-client pass through it, and the calls are spread over both servers.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>

#include <string>
#include <vector>

#include "client/client.h"
#include "tests/deploy/deploy_harness.h"

namespace clca::deploy_test {
namespace {

using ::testing::HasSubstr;

constexpr const char* kNginx = "/usr/sbin/nginx";

// deploy/nginx/nginx.conf with the upstream servers and the listening port
// filled in, and its files kept under `dir`.
std::string NginxConfig(const fs::path& dir, int port, const std::vector<int>& upstreams) {
  std::string config = ReadFile(SourceDir() / "deploy" / "nginx" / "nginx.conf");
  std::string servers;
  for (int upstream : upstreams) {
    if (!servers.empty()) servers += "\n    ";
    servers += "server 127.0.0.1:" + std::to_string(upstream) + ";";
  }
  config = ReplaceExpecting(config, "server\\s+clca-replica:50051\\s*;", servers, 1,
                            "nginx.conf upstream");
  config = ReplaceExpecting(config, "listen\\s+50051\\s+http2\\s*;",
                            "listen 127.0.0.1:" + std::to_string(port) + " http2;", 1,
                            "nginx.conf listen");
  // Debian's nginx keeps temporary files under /var/lib/nginx, which only
  // root may write.
  std::string temp_paths;
  for (const char* kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    temp_paths += std::string("\n  ") + kind + "_temp_path " + (dir / kind).string() + ";";
  }
  config = ReplaceExpecting(config, "\\nhttp \\{", "\nhttp {" + temp_paths, 1, "nginx.conf http");
  // Run as root, Debian's nginx would switch to user and group "nobody", and
  // Debian has no group of that name.
  if (geteuid() == 0) {
    const passwd* user = getpwuid(geteuid());
    const group* grp = getgrgid(getegid());
    if (user != nullptr && grp != nullptr) {
      config = "user " + std::string(user->pw_name) + " " + grp->gr_name + ";\n" + config;
    }
  }
  return config;
}

TEST(NginxTest, BalancesGrpcCallsOverTwoServers) {
  ASSERT_TRUE(IsExecutable(kNginx));
  TempDir dir;
  TestRepository repository;
  Server first, second;
  ASSERT_TRUE(first.Start(repository.path(), dir.path() / "first.log"));
  ASSERT_TRUE(second.Start(repository.path(), dir.path() / "second.log"));

  const int port = FreePort();
  const fs::path config = dir.path() / "nginx.conf";
  WriteFile(config, NginxConfig(dir.path(), port, {first.port(), second.port()}));
  const std::string globals =
      "daemon off; pid " + (dir.path() / "nginx.pid").string() + "; error_log stderr;";
  const std::vector<std::string> nginx_args = {
      kNginx, "-p", dir.path().string() + "/", "-c", config.string(), "-g", globals};
  std::vector<std::string> check_args = nginx_args;
  check_args.push_back("-t");
  const CommandResult check = RunCommand(check_args);
  ASSERT_EQ(check.exit_code, 0) << check.output << "\n" << ReadFile(config);

  ChildProcess nginx;
  ASSERT_TRUE(nginx.Start(nginx_args, dir.path() / "nginx.log"));
  ASSERT_TRUE(WaitFor([&] { return Listening(port) || !nginx.Running(); }, seconds(10)) &&
              nginx.Running())
      << nginx.Log();

  const std::string address = "127.0.0.1:" + std::to_string(port);
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(30000);
  auto client = Client::Create(address, options);
  const auto health = client->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status() << "\n" << nginx.Log();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);

  constexpr int kCalls = 8;
  ClassifyOptions request;
  request.model = "leafnet";
  for (int i = 0; i < kCalls; ++i) {
    const auto response =
        client->ClassifyFile(TestData("preprocess/leaf_small_120x90.jpg"), request);
    ASSERT_TRUE(response.ok()) << "call " << i << ": " << response.status() << "\n" << nginx.Log();
  }
  const CommandResult cli = RunCommand(
      {ClientBinary(), "classify", TestData("preprocess/leaf_300x300.png"), "--server", address});
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_THAT(cli.output, HasSubstr("model leafnet v1"));

  const double on_first = MetricSum(first.Metrics(), "clca_requests_total");
  const double on_second = MetricSum(second.Metrics(), "clca_requests_total");
  EXPECT_GE(on_first, 1) << first.Metrics();
  EXPECT_GE(on_second, 1) << second.Metrics();
  EXPECT_EQ(on_first + on_second, kCalls + 1);

  // A bidirectional stream passes too.
  std::vector<v1::ClassifyStreamRequest> items(2);
  for (size_t i = 0; i < items.size(); ++i) {
    items[i].set_request_id("item-" + std::to_string(i));
    items[i].mutable_request()->set_model("leafnet");
    items[i].mutable_request()->set_image(ReadFile(TestData("preprocess/leaf_600x400.jpg")));
  }
  const auto streamed = client->ClassifyBatchStream(items);
  ASSERT_TRUE(streamed.ok()) << streamed.status() << "\n" << nginx.Log();
  ASSERT_EQ(streamed->size(), items.size());
  for (const auto& item : *streamed) EXPECT_EQ(item.status().code(), 0) << item.status().message();

  // The access log names both upstream servers and the gRPC status.
  EXPECT_TRUE(nginx.Stop(SIGQUIT, seconds(10)).has_value()) << "nginx did not exit on SIGQUIT";
  const std::string log = nginx.Log();
  EXPECT_THAT(log, HasSubstr("upstream=" + first.address()));
  EXPECT_THAT(log, HasSubstr("upstream=" + second.address()));
  EXPECT_THAT(log, HasSubstr("grpc-status=0"));
}

}  // namespace
}  // namespace clca::deploy_test
