// The request pipeline and a servable in-process, on the test model: the
// refusal while draining and a model failure becoming INTERNAL.
#include <algorithm>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "server/observability/metrics.h"
#include "server/pipeline/classify_pipeline.h"
#include "server/repository/model_repository.h"
#include "tests/server/server_harness.h"

namespace clca::server {
namespace {

using ::clca::testing::kTestModel;
using ::clca::testing::ReadBytes;
using ::clca::testing::TestData;
using ::clca::testing::TestRepository;
using ::testing::HasSubstr;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto metrics = Metrics::Create();
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
    RepositoryOptions options;
    options.intra_op_threads = 1;
    auto repository = ModelRepository::Load(test_repository_.path(), options, metrics_.get());
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = *std::move(repository);
    PipelineOptions pipeline_options;
    pipeline_options.preprocess_threads = 1;
    pipeline_ = std::make_unique<ClassifyPipeline>(repository_.get(), metrics_.get(),
                                                   pipeline_options);
  }

  absl::StatusOr<ClassifyOutput> Classify(const ClassifyInput& input) {
    absl::Notification done;
    absl::StatusOr<ClassifyOutput> result;
    CallContext call;
    call.request_id = ClassifyPipeline::NewRequestId();
    pipeline_->Submit(input, call, [&](absl::StatusOr<ClassifyOutput> r) {
      result = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return result;
  }

  TestRepository test_repository_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<ClassifyPipeline> pipeline_;
};

TEST_F(PipelineTest, AfterStopAcceptingRequestsAreUnavailable) {
  const std::string image = ReadBytes(TestData("preprocess/leaf_300x300.png"));
  ClassifyInput input;
  input.model = kTestModel;
  input.image = image;
  ASSERT_TRUE(Classify(input).ok());
  pipeline_->StopAccepting();
  absl::StatusOr<ClassifyOutput> refused = Classify(input);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("shutting down"));
  // A request counts as answered once its callback has returned.
  EXPECT_TRUE(pipeline_->WaitUntilIdle(absl::Seconds(5)));
  EXPECT_EQ(pipeline_->accepted(), 1);
  EXPECT_EQ(pipeline_->answered(), 1);
}

TEST_F(PipelineTest, KeepRatesAreTheDecimalsClientsMeant) {
  auto servable = repository_->Find(kTestModel, std::nullopt);
  ASSERT_TRUE(servable.ok());
  EXPECT_EQ(*(*servable)->ResolveKeepRate(std::nullopt), 0.5);
  // A float 0.7 runs, and batches, as the number 0.7.
  EXPECT_EQ(*(*servable)->ResolveKeepRate(0.7f), 0.7);
  EXPECT_EQ(*(*servable)->ResolveKeepRate(0.1f), 0.1);
  EXPECT_EQ((*servable)->ResolveKeepRate(0.099f).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PipelineTest, ModelFailureIsInternalForEveryTaskOfTheBatch) {
  auto servable = repository_->Find(kTestModel, std::nullopt);
  ASSERT_TRUE(servable.ok());
  absl::Notification done;
  absl::Status status;
  auto task = std::make_unique<InferenceTask>();
  // Not the model's input size: the forward pass fails.
  task->image = torch::zeros({3, 100, 100});
  task->keep_rate = 0.5;
  task->done = [&](absl::StatusOr<TaskResult> result) {
    status = result.status();
    done.Notify();
  };
  ASSERT_TRUE((*servable)->scheduler()->Schedule(&task).ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
}

// Without intra_op_threads in serving.json or on the command line, a model's
// workers share the hardware threads.
TEST(ServableThreadsTest, WorkersShareTheHardwareThreadsByDefault) {
  auto metrics = Metrics::Create();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int workers : {1, 2, 64}) {
    SCOPED_TRACE(workers);
    TestRepository repository("{\"workers\": " + std::to_string(workers) + "}");
    auto loaded = ModelRepository::Load(repository.path(), RepositoryOptions(), metrics->get());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto servable = (*loaded)->Find(kTestModel, std::nullopt);
    ASSERT_TRUE(servable.ok());
    EXPECT_EQ((*servable)->intra_op_threads(), std::max(1, hardware / workers));
  }
}

}  // namespace
}  // namespace clca::server
