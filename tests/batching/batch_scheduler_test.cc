// The batch queue, the batching policy and the scheduler, with fake tasks and
// a fake batch function (no model).
#include "server/batching/batch_scheduler.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/batching/batch_policy.h"
#include "server/batching/clock.h"
#include "server/batching/task_queue.h"

namespace clca::server {
namespace {

using ::testing::ElementsAre;
using ::testing::Each;
using std::chrono::milliseconds;

// What happened to one fake task.
struct Outcome {
  absl::Notification done;
  absl::Status status;
  TaskResult result;
  TimePoint when;
};

std::unique_ptr<InferenceTask> MakeTask(double keep_rate, Outcome* outcome = nullptr,
                                        TimePoint deadline = TimePoint::max(),
                                        Clock* clock = Clock::Real()) {
  auto task = std::make_unique<InferenceTask>();
  task->keep_rate = keep_rate;
  task->deadline = deadline;
  task->done = [outcome, clock](absl::StatusOr<TaskResult> result) {
    if (outcome == nullptr) return;
    outcome->status = result.status();
    if (result.ok()) outcome->result = *result;
    outcome->when = clock->Now();
    outcome->done.Notify();
  };
  return task;
}

TEST(TaskQueueTest, RefusesTasksBeyondCapacity) {
  TaskQueue queue(2);
  for (int i = 0; i < 2; ++i) {
    auto task = MakeTask(0.5);
    ASSERT_TRUE(queue.Push(&task, Clock::Real()->Now()).ok());
    EXPECT_EQ(task, nullptr);
  }
  auto task = MakeTask(0.5);
  absl::Status status = queue.Push(&task, Clock::Real()->Now());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  // Ownership stays with the caller on failure.
  EXPECT_NE(task, nullptr);
  EXPECT_EQ(queue.size(), 2u);
}

TEST(TaskQueueTest, PopBatchTakesOneKeepRateOldestFirst) {
  TaskQueue queue(16);
  const double rates[] = {0.5, 0.25, 0.5, 0.7, 0.5, 0.25};
  for (int i = 0; i < 6; ++i) {
    auto task = MakeTask(rates[i]);
    task->request_id = std::to_string(i);
    ASSERT_TRUE(queue.Push(&task, Clock::Real()->Now()).ok());
  }
  EXPECT_EQ(queue.CountWithKeepRate(0.5), 3u);
  auto batch = queue.PopBatch(0.5, 2);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0]->request_id, "0");
  EXPECT_EQ(batch[1]->request_id, "2");
  EXPECT_EQ(queue.size(), 4u);
  EXPECT_EQ(queue.CountWithKeepRate(0.5), 1u);
  // The rest keeps its order.
  EXPECT_EQ(queue.oldest().request_id, "1");
  auto rest = queue.RemoveAll();
  std::vector<std::string> ids;
  for (const auto& task : rest) ids.push_back(task->request_id);
  EXPECT_THAT(ids, ElementsAre("1", "3", "4", "5"));
}

TEST(TaskQueueTest, RemoveExpiredTakesPastDeadlinesAndCancelled) {
  TaskQueue queue(8);
  const TimePoint now = Clock::Real()->Now();
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  auto a = MakeTask(0.5, nullptr, now + milliseconds(10));
  auto b = MakeTask(0.5, nullptr, now + milliseconds(100));
  auto c = MakeTask(0.5);
  c->cancelled = cancelled;
  ASSERT_TRUE(queue.Push(&a, now).ok());
  ASSERT_TRUE(queue.Push(&b, now).ok());
  ASSERT_TRUE(queue.Push(&c, now).ok());
  EXPECT_EQ(queue.EarliestDeadline(), now + milliseconds(10));
  EXPECT_TRUE(queue.RemoveExpired(now).empty());
  EXPECT_EQ(queue.RemoveExpired(now + milliseconds(10)).size(), 1u);
  cancelled->store(true);
  EXPECT_EQ(queue.RemoveExpired(now + milliseconds(20)).size(), 1u);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.CountWithKeepRate(0.5), 1u);
}

TEST(BatchPolicyTest, WaitsForTheOldestTasksDelay) {
  TaskQueue queue(16);
  const TimePoint t0 = Clock::Real()->Now();
  auto task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0).ok());
  task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0 + milliseconds(3)).ok());
  BatchDecision d = DecideNextBatch(queue, 4, milliseconds(5), t0 + milliseconds(4), false);
  EXPECT_FALSE(d.ready);
  // Measured from the oldest arrival, not the newest.
  EXPECT_EQ(d.wake_at, t0 + milliseconds(5));
  d = DecideNextBatch(queue, 4, milliseconds(5), t0 + milliseconds(5), false);
  EXPECT_TRUE(d.ready);
  EXPECT_EQ(d.keep_rate, 0.5);
}

TEST(BatchPolicyTest, FullBatchOrFlushRunsAtOnce) {
  TaskQueue queue(16);
  const TimePoint t0 = Clock::Real()->Now();
  EXPECT_FALSE(DecideNextBatch(queue, 2, milliseconds(5), t0, true).ready);
  auto task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0).ok());
  EXPECT_FALSE(DecideNextBatch(queue, 2, milliseconds(5), t0, false).ready);
  EXPECT_TRUE(DecideNextBatch(queue, 2, milliseconds(5), t0, true).ready);
  // A full batch of another keep rate does not wait behind the oldest task.
  for (int i = 0; i < 2; ++i) {
    task = MakeTask(0.25);
    ASSERT_TRUE(queue.Push(&task, t0).ok());
  }
  BatchDecision d = DecideNextBatch(queue, 2, milliseconds(5), t0, false);
  EXPECT_TRUE(d.ready);
  EXPECT_EQ(d.keep_rate, 0.25);
}

// Records every batch the scheduler runs.
class FakeModel {
 public:
  BatchScheduler::ProcessBatchFn Fn() {
    return [this](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) {
      std::vector<double> rates;
      for (const auto& task : batch) rates.push_back(task->keep_rate);
      {
        absl::MutexLock lock(&mu_);
        batches_.push_back(rates);
      }
      for (auto& task : batch) {
        TaskResult result;
        result.batch_size = static_cast<int>(batch.size());
        result.batch_id = batch_id;
        task->Finish(result);
      }
    };
  }

  std::vector<std::vector<double>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<double>> batches_;
};

BatchSchedulerOptions Options(int max_batch_size, milliseconds delay, int capacity = 64,
                              Clock* clock = nullptr) {
  BatchSchedulerOptions options;
  options.max_batch_size = max_batch_size;
  options.max_queue_delay = delay;
  options.queue_capacity = capacity;
  options.clock = clock;
  return options;
}

TEST(BatchSchedulerTest, RejectsBadOptions) {
  FakeModel model;
  EXPECT_FALSE(BatchScheduler::Create(Options(0, milliseconds(1)), model.Fn()).ok());
  EXPECT_FALSE(BatchScheduler::Create(Options(1, milliseconds(1), 0), model.Fn()).ok());
  BatchSchedulerOptions options;
  options.num_workers = 0;
  EXPECT_FALSE(BatchScheduler::Create(options, model.Fn()).ok());
}

TEST(BatchSchedulerTest, FullBatchRunsWithoutWaitingForTheDelay) {
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(4, milliseconds(10000)), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  std::vector<Outcome> outcomes(4);
  for (Outcome& outcome : outcomes) {
    auto task = MakeTask(0.5, &outcome);
    ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  }
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_TRUE(outcome.status.ok());
    EXPECT_EQ(outcome.result.batch_size, 4);
    EXPECT_EQ(outcome.result.batch_id, outcomes[0].result.batch_id);
  }
  EXPECT_EQ(model.batches().size(), 1u);
}

TEST(BatchSchedulerTest, PartialBatchRunsWhenTheDelayHasPassed) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(8, milliseconds(50), 64, &clock), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  Outcome a, b;
  const TimePoint start = clock.Now();
  auto task = MakeTask(0.5, &a, TimePoint::max(), &clock);
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  clock.Advance(milliseconds(10));
  task = MakeTask(0.5, &b, TimePoint::max(), &clock);
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  // The worker waits for the oldest task's delay, measured from its arrival.
  clock.BlockUntilWaiters(1);
  clock.Advance(milliseconds(39));
  EXPECT_FALSE(a.done.HasBeenNotified());
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(a.when - start, milliseconds(50));
  EXPECT_EQ(a.result.batch_size, 2);
  EXPECT_EQ(model.batches().size(), 1u);
}

TEST(BatchSchedulerTest, BatchesNeverMixKeepRates) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(4, milliseconds(5), 256, &clock), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  const double rates[] = {0.25, 0.5, 0.7, 1.0};
  std::vector<Outcome> outcomes(62);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    auto task = MakeTask(rates[(i * 7) % 4], &outcomes[i], TimePoint::max(), &clock);
    ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  }
  // Full batches run at once; each keep rate's remainder once the delay passes.
  clock.BlockUntilWaiters(1);
  clock.Advance(milliseconds(5));
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_TRUE(outcome.status.ok());
  }
  std::map<double, size_t> images;
  size_t partial = 0;
  for (const std::vector<double>& batch : model.batches()) {
    EXPECT_THAT(batch, Each(batch.front()));
    EXPECT_LE(batch.size(), 4u);
    if (batch.size() < 4) ++partial;
    images[batch.front()] += batch.size();
  }
  // 62 tasks over four keep rates: 16, 16, 15 and 15, so two partial batches.
  EXPECT_EQ(partial, 2u);
  EXPECT_EQ(model.batches().size(), 16u);
  EXPECT_THAT(images, ElementsAre(std::pair<const double, size_t>(0.25, 16),
                                  std::pair<const double, size_t>(0.5, 15),
                                  std::pair<const double, size_t>(0.7, 15),
                                  std::pair<const double, size_t>(1.0, 16)));
}

TEST(BatchSchedulerTest, QueueFullIsResourceExhausted) {
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(64, milliseconds(10000), 2), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  for (int i = 0; i < 2; ++i) {
    auto task = MakeTask(0.5);
    ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  }
  auto task = MakeTask(0.5);
  EXPECT_EQ((*scheduler)->Schedule(&task).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(task, nullptr);
  EXPECT_EQ((*scheduler)->queue_depth(), 2u);
}

TEST(BatchSchedulerTest, DeadlinePassingInTheQueueFailsWithoutABatch) {
  FakeClock clock;
  FakeModel model;
  auto scheduler =
      BatchScheduler::Create(Options(64, milliseconds(60000), 64, &clock), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  Outcome outcome;
  const TimePoint deadline = clock.Now() + milliseconds(50);
  auto task = MakeTask(0.5, &outcome, deadline, &clock);
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  // The worker waits for the queue delay, the timer for the deadline.
  clock.BlockUntilWaiters(2);
  clock.Advance(milliseconds(49));
  EXPECT_FALSE(outcome.done.HasBeenNotified());
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(outcome.when, deadline);
  EXPECT_TRUE(model.batches().empty());
  EXPECT_EQ((*scheduler)->queue_depth(), 0u);
}

TEST(BatchSchedulerTest, CancelledTaskIsDroppedBeforeItRuns) {
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(64, milliseconds(60000)), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  Outcome outcome;
  auto task = MakeTask(0.5, &outcome);
  task->cancelled = cancelled;
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  cancelled->store(true);
  (*scheduler)->NotifyCancelled();
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(model.batches().empty());
}

TEST(BatchSchedulerTest, FlushRunsWaitingTasksAtOnce) {
  FakeModel model;
  auto scheduler = BatchScheduler::Create(Options(64, milliseconds(60000)), model.Fn());
  ASSERT_TRUE(scheduler.ok());
  Outcome a, b;
  auto task = MakeTask(0.5, &a);
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  task = MakeTask(0.25, &b);
  ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  (*scheduler)->Flush();
  ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(a.status.ok());
  EXPECT_TRUE(b.status.ok());
  EXPECT_EQ(model.batches().size(), 2u);
}

TEST(BatchSchedulerTest, DestructionFailsWaitingTasks) {
  FakeModel model;
  Outcome outcome;
  {
    auto scheduler = BatchScheduler::Create(Options(64, milliseconds(60000)), model.Fn());
    ASSERT_TRUE(scheduler.ok());
    auto task = MakeTask(0.5, &outcome);
    ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
  }
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
}

TEST(BatchSchedulerTest, ReportsQueueDepthAndStartsWorkers) {
  FakeModel model;
  std::atomic<int> workers{0};
  std::atomic<size_t> depth{0};
  BatchScheduler::Hooks hooks;
  hooks.worker_started = [&workers] { ++workers; };
  hooks.queue_depth_changed = [&depth](size_t d) { depth = d; };
  BatchSchedulerOptions options = Options(64, milliseconds(60000));
  options.num_workers = 3;
  {
    auto scheduler = BatchScheduler::Create(options, model.Fn(), hooks);
    ASSERT_TRUE(scheduler.ok());
    for (int i = 0; i < 3; ++i) {
      auto task = MakeTask(0.5);
      ASSERT_TRUE((*scheduler)->Schedule(&task).ok());
    }
    EXPECT_EQ(depth.load(), 3u);
  }
  EXPECT_EQ(workers.load(), 3);
  EXPECT_EQ(depth.load(), 0u);
}

}  // namespace
}  // namespace clca::server
