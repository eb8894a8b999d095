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
#include "server/server.h"
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
    // The scheduler measures deadlines on the pipeline's clock.
    BatchScheduler::Options scheduler_options;
    scheduler_options.clock = &clock_;
    auto scheduler = BatchScheduler::Create(scheduler_options);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    auto repository = ModelRepository::Open(test_repository_.path(), RepositoryOptions(),
                                            scheduler_.get(), metrics_.get());
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = *std::move(repository);
    PipelineOptions pipeline_options;
    pipeline_options.preprocess_threads = 1;
    pipeline_options.clock = &clock_;
    pipeline_ = std::make_unique<ClassifyPipeline>(repository_.get(), metrics_.get(),
                                                   pipeline_options);
  }

  absl::StatusOr<ClassifyOutput> Classify(const ClassifyInput& input, TimePoint deadline) {
    absl::Notification done;
    absl::StatusOr<ClassifyOutput> result;
    CallContext call;
    call.request_id = ClassifyPipeline::NewRequestId();
    call.deadline = deadline;
    pipeline_->Submit(input, call, [&](absl::StatusOr<ClassifyOutput> r) {
      result = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    return result;
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

  // Batches run as soon as a worker is free: the fake clock stands still.
  TestRepository test_repository_{R"({"max_queue_delay_us": 0})"};
  FakeClock clock_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<BatchScheduler> scheduler_;
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
  ASSERT_TRUE((*servable)->queue()->Schedule(&task).ok());
  (*servable)->queue()->RunNow();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
}

TEST_F(PipelineTest, ACallWhoseDeadlineHasPassedIsNotDecoded) {
  const std::string image = ReadBytes(TestData("preprocess/leaf_300x300.png"));
  ClassifyInput input;
  input.model = kTestModel;
  input.image = image;
  // On the pipeline's clock the deadline is now: it has passed when a
  // preprocessing thread takes the request.
  absl::StatusOr<ClassifyOutput> late = Classify(input, clock_.Now());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  EXPECT_THAT(late.status().message(), HasSubstr("before the image was decoded"));
  absl::StatusOr<ClassifyOutput> in_time =
      Classify(input, clock_.Now() + std::chrono::seconds(1));
  ASSERT_TRUE(in_time.ok()) << in_time.status();
  // Durations are on the fake clock too: it stood still.
  EXPECT_EQ(in_time->cost.preprocess_us, 0);
  EXPECT_EQ(in_time->cost.total_us, 0);
}

TEST(PoolLayoutTest, TheServingJsonFilesSetTheLayoutWhenTheyAgree) {
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  ServerOptions options;
  {
    TestRepository repository;
    options.model_repository = repository.path();
    PoolLayout pool = ResolvePoolLayout(options);
    EXPECT_EQ(pool.workers, 1);
    EXPECT_EQ(pool.intra_op_threads, hardware);
  }
  {
    TestRepository repository(R"({"workers": 2, "intra_op_threads": 1})");
    options.model_repository = repository.path();
    PoolLayout pool = ResolvePoolLayout(options);
    EXPECT_EQ(pool.workers, 2);
    EXPECT_EQ(pool.intra_op_threads, 1);
    // Flags win.
    options.workers = 3;
    pool = ResolvePoolLayout(options);
    EXPECT_EQ(pool.workers, 3);
    EXPECT_EQ(pool.intra_op_threads, 1);
    options.workers = 0;
  }
  {
    TestRepository repository(R"({"workers": 64})");
    repository.AddVersion(kTestModel, 2, R"({"workers": 2})");
    options.model_repository = repository.path();
    // They disagree: one worker on every core.
    PoolLayout pool = ResolvePoolLayout(options);
    EXPECT_EQ(pool.workers, 1);
    EXPECT_EQ(pool.intra_op_threads, hardware);
  }
}

}  // namespace
}  // namespace clca::server
