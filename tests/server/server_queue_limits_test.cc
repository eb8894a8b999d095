// Requests waiting in the batch queue: deadlines that pass there, callers
// that cancel, and a full queue.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

// Requests wait in the queue for 30 s unless 64 arrive.
constexpr const char* kSlowBatching = R"({"max_batch_size": 64, "max_queue_delay_us": 30000000})";

v1::ClassifyRequest Request() {
  v1::ClassifyRequest request;
  request.set_model(kTestModel);
  request.set_image(ReadBytes(TestData("preprocess/leaf_300x300.png")));
  return request;
}

// A unary call running in the background on the callback API.
class PendingCall {
 public:
  PendingCall(v1::Classifier::Stub* stub, std::optional<milliseconds> timeout = std::nullopt) {
    if (timeout) context_.set_deadline(std::chrono::system_clock::now() + *timeout);
    request_ = Request();
    stub->async()->Classify(&context_, &request_, &response_, [this](grpc::Status status) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(status);
      cv_.notify_all();
    });
  }
  ~PendingCall() {
    context_.TryCancel();
    Wait(std::chrono::seconds(30));
  }

  std::optional<grpc::Status> Wait(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return status_.has_value(); });
    return status_;
  }
  void Cancel() { context_.TryCancel(); }
  const v1::ClassifyResponse& response() const { return response_; }

 private:
  grpc::ClientContext context_;
  v1::ClassifyRequest request_;
  v1::ClassifyResponse response_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<grpc::Status> status_;
};

class QueueLimitsTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& serving_json) {
    repository_ = std::make_unique<TestRepository>(serving_json);
    ASSERT_TRUE(server_.Start(repository_->path()));
    channel_ = grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Classifier::NewStub(channel_);
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return MetricValue(Metrics(server_), name, labels);
  }

  bool QueueDepthReaches(double depth) {
    return WaitFor([&] { return Metric("clca_queue_depth") == depth; });
  }

  std::unique_ptr<TestRepository> repository_;
  ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
};

// When the deadline passes is the scheduler's business, tested on a fake clock
// (tests/batching); here: the server answers DEADLINE_EXCEEDED itself.
TEST_F(QueueLimitsTest, DeadlinePassingInTheQueueIsDeadlineExceeded) {
  ASSERT_NO_FATAL_FAILURE(StartServer(kSlowBatching));
  PendingCall call(stub_.get(), milliseconds(400));
  std::optional<grpc::Status> status = call.Wait(milliseconds(60000));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's own timer failed it (not a cancellation), and the queue is
  // empty again without a batch having run.
  EXPECT_TRUE(WaitFor(
      [&] { return Metric("clca_requests_total", {{"code", "DEADLINE_EXCEEDED"}}) == 1; }));
  EXPECT_TRUE(QueueDepthReaches(0));
  EXPECT_EQ(Metric("clca_batches_total"), 0);
}

TEST_F(QueueLimitsTest, CancelledCallIsDroppedBeforeItRuns) {
  ASSERT_NO_FATAL_FAILURE(StartServer(kSlowBatching));
  PendingCall call(stub_.get());
  ASSERT_TRUE(QueueDepthReaches(1));
  call.Cancel();
  std::optional<grpc::Status> status = call.Wait(milliseconds(60000));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return Metric("clca_requests_total", {{"code", "CANCELLED"}}) == 1; }));
  EXPECT_TRUE(QueueDepthReaches(0));
  EXPECT_EQ(Metric("clca_inferred_images_total"), 0);
}

TEST_F(QueueLimitsTest, FullQueueIsResourceExhausted) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer(R"({"max_batch_size": 64, "max_queue_delay_us": 30000000, "queue_capacity": 2})"));
  PendingCall first(stub_.get());
  PendingCall second(stub_.get());
  ASSERT_TRUE(QueueDepthReaches(2));
  auto client = server_.NewClient(milliseconds(60000));
  auto refused = client->Classify(Request());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("queue_capacity"));
  EXPECT_EQ(Metric("clca_requests_total", {{"code", "RESOURCE_EXHAUSTED"}}), 1);

  // The two accepted requests are answered when the server drains.
  ASSERT_EQ(server_.Stop(SIGTERM), std::optional<int>(0)) << server_.output();
  for (PendingCall* call : {&first, &second}) {
    std::optional<grpc::Status> status = call->Wait(milliseconds(60000));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->ok()) << status->error_message();
    EXPECT_EQ(call->response().cost().batch_size(), 2);
  }
}

}  // namespace
}  // namespace clca::testing
