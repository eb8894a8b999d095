// The request pipeline and a servable in-process, on the test model: the
// refusal while draining and a model failure becoming INTERNAL.
#include <algorithm>
#include <chrono>
#include <cmath>
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

// The fake clock stands still and nothing else is queued, so a deadline
// set from the servable's compute-time model decides the keep rate.
class AdaptiveKeepRateTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    auto servable = repository_->Find(kTestModel, std::nullopt);
    ASSERT_TRUE(servable.ok());
    servable_ = *servable;
    // Warm-up ran batches: the model has something to predict from.
    ASSERT_TRUE(servable_->compute_model().Current().has_value());
    input_.model = kTestModel;
    input_.image = image_;
  }
  Duration Predicted(double gmacs) const {
    return std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(servable_->compute_model().Current()->Seconds(gmacs)));
  }

  const std::string image_ = ReadBytes(TestData("preprocess/leaf_300x300.png"));
  std::shared_ptr<const ServableModel> servable_;
  ClassifyInput input_;
};

TEST_F(AdaptiveKeepRateTest, WithoutADeadlineTheHighestAllowed) {
  input_.min_keep_rate = 0.2f;
  absl::StatusOr<ClassifyOutput> out = Classify(input_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->keep_rate, servable_->serving().keep_rate.max);
}

TEST_F(AdaptiveKeepRateTest, TheHighestKeepRateThatMeetsTheDeadline) {
  const std::vector<RateCost>& rates = servable_->adaptive_rates();
  ASSERT_GE(rates.size(), 3u);
  EXPECT_EQ(rates.front().keep_rate, 1.0);
  EXPECT_DOUBLE_EQ(rates.back().keep_rate, 0.1);
  // A deadline between the cost of the keep rate in the middle and the next
  // dearer one.
  size_t target = rates.size() / 2;
  while (target > 0 && rates[target - 1].gmacs <= rates[target].gmacs) --target;
  ASSERT_GT(target, 0u) << "the keep rates all cost the same";
  const Duration budget = (Predicted(rates[target].gmacs) + Predicted(rates[target - 1].gmacs)) / 2;
  input_.min_keep_rate = 0.1f;
  absl::StatusOr<ClassifyOutput> out = Classify(input_, clock_.Now() + budget);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_DOUBLE_EQ(out->keep_rate, rates[target].keep_rate);
  EXPECT_LT(out->keep_rate, 1.0);
}

TEST_F(AdaptiveKeepRateTest, PredictedToMissEvenAtTheMinimumIsRefusedUncomputed) {
  const double batches = metrics_->AddModel(kTestModel, 1)->batches->Value();
  input_.min_keep_rate = 0.3f;
  const Duration too_short = Predicted(servable_->GmacsAt(0.3)) / 2;
  absl::StatusOr<ClassifyOutput> refused = Classify(input_, clock_.Now() + too_short);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("predicted to finish"));
  // A fixed keep rate is held to its deadline the same way.
  input_.min_keep_rate.reset();
  input_.keep_rate = 1.0f;
  refused = Classify(input_, clock_.Now() + Predicted(servable_->gmacs_full()) / 2);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("or set min_keep_rate"));
  EXPECT_EQ(metrics_->AddModel(kTestModel, 1)->batches->Value(), batches);
  EXPECT_EQ(metrics_->AddModel(kTestModel, 1)->deadline_refused->Value(), 2);
}

TEST_F(AdaptiveKeepRateTest, MinKeepRateOutsideThePolicyIsInvalidArgument) {
  input_.min_keep_rate = 0.05f;
  absl::StatusOr<ClassifyOutput> out = Classify(input_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("min_keep_rate 0.05"));
  input_.min_keep_rate = std::nanf("");
  EXPECT_EQ(Classify(input_).status().code(), absl::StatusCode::kInvalidArgument);
  // An explicit keep rate wins over min_keep_rate.
  input_.min_keep_rate = 0.2f;
  input_.keep_rate = 0.7f;
  out = Classify(input_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_DOUBLE_EQ(out->keep_rate, 0.7);
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
