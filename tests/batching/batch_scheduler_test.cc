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
#include "absl/time/clock.h"
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

// Polls `value` until it is zero (for the end of work on another thread).
template <typename Value>
bool WaitForZero(Value value) {
  for (int i = 0; i < 60000; ++i) {
    if (value() == 0) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return value() == 0;
}

BatchingPolicy Policy(size_t max_batch_size, milliseconds delay, bool mix = false) {
  BatchingPolicy policy;
  policy.max_batch_size = max_batch_size;
  policy.max_queue_delay = delay;
  policy.mix_keep_rates = mix;
  return policy;
}

constexpr TimePoint kNoFlush = TimePoint::min();

TEST(BatchPolicyTest, WaitsForTheOldestTasksDelay) {
  TaskQueue queue(16);
  const TimePoint t0 = Clock::Real()->Now();
  auto task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0).ok());
  task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0 + milliseconds(3)).ok());
  BatchDecision d =
      DecideNextBatch(queue, Policy(4, milliseconds(5)), t0 + milliseconds(4), kNoFlush, -1);
  EXPECT_FALSE(d.ready);
  // Measured from the oldest arrival, not the newest.
  EXPECT_EQ(d.wake_at, t0 + milliseconds(5));
  d = DecideNextBatch(queue, Policy(4, milliseconds(5)), t0 + milliseconds(5), kNoFlush, -1);
  EXPECT_TRUE(d.ready);
  EXPECT_EQ(d.keep_rate, 0.5);
}

TEST(BatchPolicyTest, FullBatchOrFlushRunsAtOnce) {
  TaskQueue queue(16);
  const TimePoint t0 = Clock::Real()->Now();
  EXPECT_FALSE(DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, TimePoint::max(), -1).ready);
  auto task = MakeTask(0.5);
  ASSERT_TRUE(queue.Push(&task, t0).ok());
  EXPECT_FALSE(DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, kNoFlush, -1).ready);
  EXPECT_TRUE(DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, TimePoint::max(), -1).ready);
  // Flushing what arrived up to a moment: the task that came at t0 runs.
  EXPECT_TRUE(DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, t0, -1).ready);
  EXPECT_FALSE(
      DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, t0 - milliseconds(1), -1).ready);
  // A full batch of another keep rate does not wait behind the oldest task.
  for (int i = 0; i < 2; ++i) {
    task = MakeTask(0.25);
    ASSERT_TRUE(queue.Push(&task, t0).ok());
  }
  BatchDecision d = DecideNextBatch(queue, Policy(2, milliseconds(5)), t0, kNoFlush, -1);
  EXPECT_TRUE(d.ready);
  EXPECT_EQ(d.keep_rate, 0.25);
}

TEST(BatchPolicyTest, ReadyKeepRatesTakeTurns) {
  TaskQueue queue(64);
  const TimePoint t0 = Clock::Real()->Now();
  for (double rate : {0.1, 0.5, 1.0}) {
    for (int i = 0; i < 4; ++i) {
      auto task = MakeTask(rate);
      ASSERT_TRUE(queue.Push(&task, t0).ok());
    }
  }
  const BatchingPolicy policy = Policy(2, milliseconds(5));
  // Every keep rate is full; the turn goes round, not to the lowest.
  double last = -1;
  std::vector<double> order;
  for (int i = 0; i < 6; ++i) {
    BatchDecision d = DecideNextBatch(queue, policy, t0, kNoFlush, last);
    ASSERT_TRUE(d.ready);
    order.push_back(d.keep_rate);
    queue.PopBatch(d.keep_rate, 2);
    last = d.keep_rate;
  }
  EXPECT_THAT(order, ElementsAre(0.1, 0.5, 1.0, 0.1, 0.5, 1.0));
}

TEST(BatchPolicyTest, MixedBatchesTakeTheOldestWhateverTheirKeepRate) {
  TaskQueue queue(64);
  const TimePoint t0 = Clock::Real()->Now();
  const double rates[] = {1.0, 0.1, 0.5, 0.1};
  for (int i = 0; i < 4; ++i) {
    auto task = MakeTask(rates[i]);
    task->request_id = std::to_string(i);
    ASSERT_TRUE(queue.Push(&task, t0 + milliseconds(i)).ok());
  }
  const BatchingPolicy policy = Policy(3, milliseconds(50), /*mix=*/true);
  BatchDecision d = DecideNextBatch(queue, policy, t0 + milliseconds(4), kNoFlush, -1);
  ASSERT_TRUE(d.ready);
  std::vector<std::string> ids;
  for (const auto& task : queue.PopOldest(3)) ids.push_back(task->request_id);
  EXPECT_THAT(ids, ElementsAre("0", "1", "2"));
  d = DecideNextBatch(queue, policy, t0 + milliseconds(4), kNoFlush, -1);
  EXPECT_FALSE(d.ready);
  EXPECT_EQ(d.wake_at, t0 + milliseconds(3) + milliseconds(50));
}

// Records every batch the scheduler runs, by queue.
class FakeModel {
 public:
  BatchScheduler::ProcessBatchFn Fn(const std::string& name = "") {
    return [this, name](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) {
      std::vector<double> rates;
      for (const auto& task : batch) rates.push_back(task->keep_rate);
      {
        absl::MutexLock lock(&mu_);
        batches_.push_back(rates);
        queues_.push_back(name);
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
  std::vector<std::string> queues() {
    absl::MutexLock lock(&mu_);
    return queues_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<double>> batches_;
  std::vector<std::string> queues_;
};

QueueOptions Options(int max_batch_size, milliseconds delay, int capacity = 64) {
  QueueOptions options;
  options.max_batch_size = max_batch_size;
  options.max_queue_delay = delay;
  options.queue_capacity = capacity;
  return options;
}

// A scheduler of `workers` threads on `clock` (null: the real one).
std::unique_ptr<BatchScheduler> Scheduler(Clock* clock = nullptr, int workers = 1) {
  BatchScheduler::Options options;
  options.num_workers = workers;
  options.clock = clock;
  auto scheduler = BatchScheduler::Create(options);
  EXPECT_TRUE(scheduler.ok());
  return *std::move(scheduler);
}

TEST(BatchSchedulerTest, RejectsBadOptions) {
  BatchScheduler::Options bad;
  bad.num_workers = 0;
  EXPECT_FALSE(BatchScheduler::Create(bad).ok());
  auto scheduler = Scheduler();
  FakeModel model;
  EXPECT_FALSE(scheduler->AddQueue(Options(0, milliseconds(1)), model.Fn()).ok());
  EXPECT_FALSE(scheduler->AddQueue(Options(1, milliseconds(1), 0), model.Fn()).ok());
  QueueOptions negative = Options(1, milliseconds(1));
  negative.max_concurrent_batches = -1;
  EXPECT_FALSE(scheduler->AddQueue(negative, model.Fn()).ok());
  EXPECT_FALSE(scheduler->AddQueue(Options(1, milliseconds(1)), nullptr).ok());
}

TEST(BatchSchedulerTest, FullBatchRunsWithoutWaitingForTheDelay) {
  FakeModel model;
  auto scheduler = Scheduler();
  auto queue = scheduler->AddQueue(Options(4, milliseconds(10000)), model.Fn());
  ASSERT_TRUE(queue.ok());
  std::vector<Outcome> outcomes(4);
  for (Outcome& outcome : outcomes) {
    auto task = MakeTask(0.5, &outcome);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    EXPECT_TRUE(outcome.status.ok());
    EXPECT_EQ(outcome.result.batch_size, 4);
    EXPECT_EQ(outcome.result.batch_id, outcomes[0].result.batch_id);
  }
  EXPECT_EQ(model.batches().size(), 1u);
}

TEST(BatchSchedulerTest, ATaskThatWouldFinishPastItsDeadlineIsNotComputed) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = Scheduler(&clock);
  auto queue = scheduler->AddQueue(Options(4, milliseconds(10000)), model.Fn());
  ASSERT_TRUE(queue.ok());
  // Four tasks of 100 ms each: the batch is predicted to end 400 ms after it
  // starts, past the last task's deadline.
  std::vector<Outcome> outcomes(4);
  const TimePoint start = clock.Now();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const TimePoint deadline = start + milliseconds(i == 3 ? 300 : 1000);
    auto task = MakeTask(0.5, &outcomes[i], deadline, &clock);
    task->predicted_compute = milliseconds(100);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(outcomes[i].status.ok()) << outcomes[i].status;
    EXPECT_EQ(outcomes[i].result.batch_size, 3);
  }
  EXPECT_EQ(outcomes[3].status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(outcomes[3].status.message()),
              ::testing::HasSubstr("predicted to finish 100 ms after the deadline"));
  EXPECT_THAT(model.batches(), ElementsAre(std::vector<double>{0.5, 0.5, 0.5}));
}

TEST(BatchSchedulerTest, BacklogCountsWhatRunningBatchesHaveLeft) {
  FakeClock clock;
  absl::Notification started, release;
  auto scheduler = Scheduler(&clock);
  auto queue = scheduler->AddQueue(
      Options(2, milliseconds(10000)),
      [&](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t) {
        if (!started.HasBeenNotified()) started.Notify();
        release.WaitForNotification();
        for (auto& task : batch) task->Finish(TaskResult{});
      });
  ASSERT_TRUE(queue.ok());
  std::vector<Outcome> outcomes(3);
  for (size_t i = 0; i < 2; ++i) {
    auto task = MakeTask(0.5, &outcomes[i], TimePoint::max(), &clock);
    task->predicted_compute = milliseconds(100);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(scheduler->Backlog(), milliseconds(200));
  clock.Advance(milliseconds(50));
  EXPECT_EQ(scheduler->Backlog(), milliseconds(150));
  // A queued task counts in full.
  auto task = MakeTask(0.5, &outcomes[2], TimePoint::max(), &clock);
  task->predicted_compute = milliseconds(30);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  EXPECT_EQ(scheduler->Backlog(), milliseconds(180));
  // A batch running past its prediction has nothing left.
  clock.Advance(milliseconds(500));
  EXPECT_EQ(scheduler->Backlog(), milliseconds(30));
  release.Notify();
  clock.Advance(milliseconds(10000));
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  }
}

TEST(BatchSchedulerTest, PartialBatchRunsWhenTheDelayHasPassed) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = Scheduler(&clock);
  auto queue = scheduler->AddQueue(Options(8, milliseconds(50)), model.Fn());
  ASSERT_TRUE(queue.ok());
  Outcome a, b;
  const TimePoint start = clock.Now();
  auto task = MakeTask(0.5, &a, TimePoint::max(), &clock);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  clock.Advance(milliseconds(10));
  task = MakeTask(0.5, &b, TimePoint::max(), &clock);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  // The worker waits for the oldest task's delay, measured from its arrival.
  clock.BlockUntilWaiters(1);
  clock.Advance(milliseconds(39));
  EXPECT_FALSE(a.done.HasBeenNotified());
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(a.when - start, milliseconds(50));
  EXPECT_EQ(a.result.batch_size, 2);
  EXPECT_EQ(model.batches().size(), 1u);
}

TEST(BatchSchedulerTest, BatchesNeverMixKeepRatesUnlessAsked) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = Scheduler(&clock);
  auto queue = scheduler->AddQueue(Options(4, milliseconds(5), 256), model.Fn());
  ASSERT_TRUE(queue.ok());
  const double rates[] = {0.25, 0.5, 0.7, 1.0};
  std::vector<Outcome> outcomes(62);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    auto task = MakeTask(rates[(i * 7) % 4], &outcomes[i], TimePoint::max(), &clock);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  // Full batches run at once; each keep rate's remainder once the delay passes.
  clock.BlockUntilWaiters(1);
  clock.Advance(milliseconds(5));
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
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
  // 62 tasks over four keep rates: 16, 15, 15 and 16, so two partial batches.
  EXPECT_EQ(partial, 2u);
  EXPECT_EQ(model.batches().size(), 16u);
  EXPECT_THAT(images, ElementsAre(std::pair<const double, size_t>(0.25, 16),
                                  std::pair<const double, size_t>(0.5, 15),
                                  std::pair<const double, size_t>(0.7, 15),
                                  std::pair<const double, size_t>(1.0, 16)));

  // Mixing: batches fill with whatever keep rates wait.
  FakeModel mixed;
  QueueOptions options = Options(4, milliseconds(60000), 256);
  options.mix_keep_rates = true;
  auto mixing = scheduler->AddQueue(options, mixed.Fn());
  ASSERT_TRUE(mixing.ok());
  std::vector<Outcome> more(8);
  for (size_t i = 0; i < more.size(); ++i) {
    auto task = MakeTask(rates[i % 4], &more[i], TimePoint::max(), &clock);
    ASSERT_TRUE((*mixing)->Schedule(&task).ok());
  }
  for (Outcome& outcome : more) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }
  ASSERT_EQ(mixed.batches().size(), 2u);
  for (const std::vector<double>& batch : mixed.batches()) {
    EXPECT_THAT(batch, ElementsAre(0.25, 0.5, 0.7, 1.0));
  }
}

TEST(BatchSchedulerTest, QueuesTakeTurnsOnTheSharedWorkers) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = Scheduler(&clock, /*workers=*/1);
  // One worker; its first batch waits on `gate` while both queues fill up.
  absl::Notification gate;
  absl::Notification started;
  auto blocker = scheduler->AddQueue(
      Options(1, milliseconds(0)),
      [&](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t) {
        started.Notify();
        gate.WaitForNotification();
        for (auto& task : batch) task->Finish(TaskResult());
      });
  ASSERT_TRUE(blocker.ok());
  auto task = MakeTask(1.0);
  ASSERT_TRUE((*blocker)->Schedule(&task).ok());
  started.WaitForNotification();
  auto a = scheduler->AddQueue(Options(2, milliseconds(0)), model.Fn("a"));
  auto b = scheduler->AddQueue(Options(2, milliseconds(0)), model.Fn("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<Outcome> outcomes(12);
  for (int i = 0; i < 12; ++i) {
    auto t = MakeTask(0.5, &outcomes[i], TimePoint::max(), &clock);
    ASSERT_TRUE((i < 8 ? *a : *b)->Schedule(&t).ok());
  }
  gate.Notify();
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }
  // a had 8 waiting and b 4: they alternate while both have work.
  EXPECT_THAT(model.queues(), ElementsAre("a", "b", "a", "b", "a", "a"));
}

TEST(BatchSchedulerTest, ConcurrentBatchesOfAQueueAreCapped) {
  auto scheduler = Scheduler(nullptr, /*workers=*/3);
  absl::Mutex mu;
  int running = 0, most = 0;
  absl::Notification release;
  QueueOptions options = Options(1, milliseconds(0));
  options.max_concurrent_batches = 1;
  auto queue = scheduler->AddQueue(
      options, [&](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t) {
        {
          absl::MutexLock lock(&mu);
          most = std::max(most, ++running);
        }
        release.WaitForNotificationWithTimeout(absl::Milliseconds(100));
        {
          absl::MutexLock lock(&mu);
          --running;
        }
        for (auto& task : batch) task->Finish(TaskResult());
      });
  ASSERT_TRUE(queue.ok());
  std::vector<Outcome> outcomes(4);
  for (Outcome& outcome : outcomes) {
    auto task = MakeTask(0.5, &outcome);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }
  EXPECT_EQ(most, 1);
}

TEST(BatchSchedulerTest, QueueFullIsResourceExhausted) {
  FakeModel model;
  auto scheduler = Scheduler();
  auto queue = scheduler->AddQueue(Options(64, milliseconds(10000), 2), model.Fn());
  ASSERT_TRUE(queue.ok());
  for (int i = 0; i < 2; ++i) {
    auto task = MakeTask(0.5);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
  }
  auto task = MakeTask(0.5);
  EXPECT_EQ((*queue)->Schedule(&task).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(task, nullptr);
  EXPECT_EQ((*queue)->depth(), 2u);
}

TEST(BatchSchedulerTest, DeadlinePassingInTheQueueFailsWithoutABatch) {
  FakeClock clock;
  FakeModel model;
  auto scheduler = Scheduler(&clock);
  auto queue = scheduler->AddQueue(Options(64, milliseconds(60000)), model.Fn());
  ASSERT_TRUE(queue.ok());
  Outcome outcome;
  const TimePoint deadline = clock.Now() + milliseconds(50);
  auto task = MakeTask(0.5, &outcome, deadline, &clock);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  // The worker waits for the queue delay, the timer for the deadline.
  clock.BlockUntilWaiters(2);
  clock.Advance(milliseconds(49));
  EXPECT_FALSE(outcome.done.HasBeenNotified());
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(outcome.when, deadline);
  EXPECT_TRUE(model.batches().empty());
  EXPECT_EQ((*queue)->depth(), 0u);
}

TEST(BatchSchedulerTest, CancelledTaskIsDroppedBeforeItRuns) {
  FakeModel model;
  auto scheduler = Scheduler();
  auto queue = scheduler->AddQueue(Options(64, milliseconds(60000)), model.Fn());
  ASSERT_TRUE(queue.ok());
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  Outcome outcome;
  auto task = MakeTask(0.5, &outcome);
  task->cancelled = cancelled;
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  cancelled->store(true);
  (*queue)->NotifyCancelled();
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(model.batches().empty());
}

TEST(BatchSchedulerTest, FlushAndRunNowRunWaitingTasksAtOnce) {
  FakeModel model;
  auto scheduler = Scheduler();
  auto queue = scheduler->AddQueue(Options(64, milliseconds(60000)), model.Fn());
  ASSERT_TRUE(queue.ok());
  Outcome a, b, c;
  auto task = MakeTask(0.5, &a);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  (*queue)->RunNow();
  ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  task = MakeTask(0.5, &b);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  task = MakeTask(0.25, &c);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  scheduler->FlushAll();
  ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_TRUE(b.status.ok());
  EXPECT_TRUE(c.status.ok());
  EXPECT_EQ(model.batches().size(), 3u);
}

TEST(BatchSchedulerTest, RemovingAQueueFailsItsWaitingTasks) {
  FakeModel model;
  auto scheduler = Scheduler();
  Outcome outcome;
  {
    auto queue = scheduler->AddQueue(Options(64, milliseconds(60000)), model.Fn());
    ASSERT_TRUE(queue.ok());
    auto task = MakeTask(0.5, &outcome);
    ASSERT_TRUE((*queue)->Schedule(&task).ok());
    EXPECT_EQ(scheduler->queue_count(), 1u);
  }
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(scheduler->queue_count(), 0u);
}

TEST(BatchSchedulerTest, AQueueRemovedFromInsideItsBatchLeavesAfterIt) {
  auto scheduler = Scheduler();
  std::unique_ptr<BatchScheduler::Queue> queue;
  auto added = scheduler->AddQueue(
      Options(1, milliseconds(0)), [&](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t) {
        // As when a batch answers the last call of an unloaded version.
        queue.reset();
        for (auto& task : batch) task->Finish(TaskResult());
      });
  ASSERT_TRUE(added.ok());
  queue = *std::move(added);
  Outcome outcome;
  auto task = MakeTask(0.5, &outcome);
  ASSERT_TRUE(queue->Schedule(&task).ok());
  ASSERT_TRUE(outcome.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_TRUE(outcome.status.ok());
  EXPECT_TRUE(WaitForZero([&] { return scheduler->queue_count(); }));
}

TEST(BatchSchedulerTest, AThrowingBatchAnswersInternalAndTheWorkersGoOn) {
  auto scheduler = Scheduler();
  std::atomic<int> calls{0};
  BatchScheduler::QueueHooks hooks;
  std::string cause;
  absl::Notification failed;
  hooks.batch_failed = [&](uint64_t, const std::string& what) {
    cause = what;
    failed.Notify();
  };
  auto queue = scheduler->AddQueue(
      Options(1, milliseconds(0)),
      [&](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t) {
        if (calls++ == 0) throw std::runtime_error("out of memory");
        for (auto& task : batch) task->Finish(TaskResult());
      },
      hooks);
  ASSERT_TRUE(queue.ok());
  Outcome first, second;
  auto task = MakeTask(0.5, &first);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(first.status.code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(cause, "out of memory");
  task = MakeTask(0.5, &second);
  ASSERT_TRUE((*queue)->Schedule(&task).ok());
  ASSERT_TRUE(second.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_TRUE(second.status.ok());
}

TEST(InferenceTaskTest, ATaskDestroyedUnansweredAnswersInternal) {
  Outcome outcome;
  MakeTask(0.5, &outcome).reset();
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kInternal);
}

TEST(BatchSchedulerTest, WorkersStartOnceAndMoreQueuesAddNoThread) {
  FakeModel model;
  std::atomic<int> workers{0};
  std::atomic<size_t> depth{0};
  BatchScheduler::QueueHooks hooks;
  hooks.queue_depth_changed = [&depth](size_t d) { depth = d; };
  BatchScheduler::Options options;
  options.num_workers = 3;
  options.worker_started = [&workers] { ++workers; };
  auto scheduler = BatchScheduler::Create(options);
  ASSERT_TRUE(scheduler.ok());
  {
    auto first = (*scheduler)->AddQueue(Options(64, milliseconds(60000)), model.Fn(), hooks);
    auto second = (*scheduler)->AddQueue(Options(64, milliseconds(60000)), model.Fn());
    ASSERT_TRUE(first.ok() && second.ok());
    for (int i = 0; i < 3; ++i) {
      auto task = MakeTask(0.5);
      ASSERT_TRUE((*first)->Schedule(&task).ok());
    }
    EXPECT_EQ(depth.load(), 3u);
    EXPECT_EQ((*scheduler)->num_workers(), 3);
    EXPECT_EQ((*scheduler)->queue_count(), 2u);
  }
  EXPECT_EQ(depth.load(), 0u);
  EXPECT_TRUE(WaitForZero([&] { return static_cast<size_t>(3 - workers.load()); }));
}

}  // namespace
}  // namespace clca::server
