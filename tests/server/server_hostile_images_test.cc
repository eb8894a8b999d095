// Hostile images over gRPC: every decompression bomb and refused format is
// answered INVALID_ARGUMENT saying why, the server's peak memory does not
// grow, and it still classifies a normal image afterwards.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/preprocess/hostile_images.h"
#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

// The peak resident memory of process `pid` (VmHWM), in bytes; -1 if it
// cannot be read.
int64_t PeakResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

class HostileImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(repository_.path()));
    client_ = server_.NewClient();
  }

  absl::StatusOr<v1::ClassifyResponse> Classify(std::string image) {
    ClassifyOptions options;
    options.model = kTestModel;
    return client_->Classify(std::move(image), options);
  }

  TestRepository repository_;
  ServerProcess server_;
  std::unique_ptr<Client> client_;
};

TEST_F(HostileImagesTest, BombsAreRefusedWithoutMemoryGrowth) {
  const std::string image = ReadBytes(TestData("preprocess/leaf_600x400.jpg"));
  // A normal request first: the model's and a request's own memory are in
  // the peak before the bombs come.
  ASSERT_TRUE(Classify(image).ok());
  const int64_t before = PeakResidentBytes(server_.pid());
  ASSERT_GT(before, 0);

  for (const test_images::Bomb& bomb : test_images::Bombs()) {
    SCOPED_TRACE(bomb.name);
    const absl::Status status = Classify(std::string(bomb.bytes.begin(), bomb.bytes.end())).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(bomb.message));
  }

  const int64_t after = PeakResidentBytes(server_.pid());
  std::printf("server peak resident memory: %lld MiB before the bombs, %lld MiB after\n",
              static_cast<long long>(before >> 20), static_cast<long long>(after >> 20));
  EXPECT_LT(after - before, int64_t{64} << 20)
      << "peak resident memory grew from " << before << " to " << after << " bytes";

  absl::StatusOr<v1::ClassifyResponse> response = Classify(image);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->predictions_size(), 5);
}

TEST_F(HostileImagesTest, UnrecognisedBytesNameTheAcceptedFormats) {
  const absl::Status status = Classify("definitely not a picture").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("not a recognised image format"));
  EXPECT_THAT(status.message(), HasSubstr("send JPEG, PNG, WebP or BMP"));
}

}  // namespace
}  // namespace clca::testing
