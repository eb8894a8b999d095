// Memory bounded in bytes and in calls: the budget for images waiting to be
// decoded, open ClassifyStream calls, and the items one stream may have in
// flight. Each overload is RESOURCE_EXHAUSTED with the flag to raise.
#include <string>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

// A valid PNG followed by `padding` bytes, which decoders ignore.
std::string PaddedLeaf(size_t padding) {
  return ReadBytes(TestData("preprocess/leaf_300x300.png")) + std::string(padding, '\0');
}

v1::ClassifyRequest Request(std::string image) {
  v1::ClassifyRequest request;
  request.set_model(kTestModel);
  request.set_image(std::move(image));
  return request;
}

TEST(MemoryLimitsTest, ImagesBeyondThePendingDecodeBudgetAreResourceExhausted) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--max-pending-decode-mib", "1"}));
  auto client = server.NewClient();
  // Within the budget: decoded and answered.
  const auto fits = client->Classify(Request(PaddedLeaf(512 << 10)));
  EXPECT_TRUE(fits.ok()) << fits.status();
  // Beyond it: refused before it is queued for decoding.
  const auto refused = client->Classify(Request(PaddedLeaf(3 << 19)));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-pending-decode-mib"));
  // The budget is given back: the server still takes what fits.
  EXPECT_TRUE(client->Classify(Request(PaddedLeaf(0))).ok());
}

TEST(MemoryLimitsTest, OpenStreamsBeyondTheLimitAreResourceExhausted) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--max-open-streams", "1"}));
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Classifier::NewStub(channel);

  // The first stream is open once its first answer came back.
  grpc::ClientContext first_context;
  auto first = stub->ClassifyStream(&first_context);
  v1::ClassifyStreamRequest item;
  item.set_request_id("1");
  *item.mutable_request() = Request(PaddedLeaf(0));
  ASSERT_TRUE(first->Write(item));
  v1::ClassifyStreamResponse answer;
  ASSERT_TRUE(first->Read(&answer));
  EXPECT_EQ(answer.status().code(), 0) << answer.status().message();

  grpc::ClientContext second_context;
  auto second = stub->ClassifyStream(&second_context);
  second->WritesDone();
  while (second->Read(&answer)) {
  }
  const grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-open-streams"));

  // Unary calls are not streams, and a closed stream frees its place.
  EXPECT_TRUE(server.NewClient()->Classify(Request(PaddedLeaf(0))).ok());
  first->WritesDone();
  while (first->Read(&answer)) {
  }
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_TRUE(WaitFor([&] {
    auto items = server.NewClient()->ClassifyBatchStream({item});
    return items.ok() && items->size() == 1 && items->front().status().code() == 0;
  }));
}

TEST(MemoryLimitsTest, AStreamReadsNoMoreItemsThanItMayHaveInFlight) {
  // Requests wait for 64 others or 30 s: items stay in flight.
  TestRepository repository(R"({"max_batch_size": 64, "max_queue_delay_us": 30000000})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--stream-max-in-flight", "2"}));
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Classifier::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->ClassifyStream(&context);
  for (int i = 0; i < 6; ++i) {
    v1::ClassifyStreamRequest item;
    item.set_request_id(std::to_string(i));
    *item.mutable_request() = Request(PaddedLeaf(0));
    ASSERT_TRUE(stream->Write(item));
  }
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(server), "clca_queue_depth") == 2; }));
  // The other four are still in the transport: the server read two.
  EXPECT_EQ(MetricValue(Metrics(server), "clca_requests_total"), 0);
  EXPECT_EQ(MetricValue(Metrics(server), "clca_queue_depth"), 2);
  context.TryCancel();
}

}  // namespace
}  // namespace clca::testing
