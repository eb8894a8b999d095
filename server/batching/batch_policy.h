// When to run the next batch, and of which keep rate. A pure function of the
// queue and the clock, so it is tested without threads or sleeps.
#pragma once

#include <cstddef>

#include "server/batching/task.h"
#include "server/batching/task_queue.h"

namespace clca::server {

struct BatchDecision {
  // Run a batch of `keep_rate` now.
  bool ready = false;
  double keep_rate = 0;
  // Otherwise, when to decide again (max(): when something is queued).
  TimePoint wake_at = TimePoint::max();
};

// The oldest waiting task sets the keep rate: its batch runs once it holds
// `max_batch_size` tasks, once that task has waited `max_queue_delay` since it
// was queued, or at once when `flush` is set (draining). A full batch of
// another keep rate does not wait behind it.
BatchDecision DecideNextBatch(const TaskQueue& queue, size_t max_batch_size,
                              Duration max_queue_delay, TimePoint now, bool flush);

}  // namespace clca::server
