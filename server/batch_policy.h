// When to run the next batch, and of which keep rate. A pure function of the
// queue and the clock, so it is tested without threads or sleeps.
#pragma once

#include <cstddef>

#include "server/task.h"
#include "server/task_queue.h"

namespace clca::server {

struct BatchDecision {
  // Run a batch of `keep_rate` now.
  bool ready = false;
  double keep_rate = 0;
  // Otherwise, when to decide again (max(): when something is queued).
  Clock::time_point wake_at = Clock::time_point::max();
};

// The oldest waiting task sets the keep rate: its batch runs once it holds
// `max_batch_size` tasks, once that task has waited `max_queue_delay` since it
// was queued, or at once when `flush` is set (draining). A full batch of
// another keep rate does not wait behind it.
BatchDecision DecideNextBatch(const TaskQueue& queue, size_t max_batch_size,
                              Clock::duration max_queue_delay, Clock::time_point now, bool flush);

}  // namespace clca::server
