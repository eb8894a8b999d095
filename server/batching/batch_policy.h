// When a queue's next batch runs, and of which tasks. A pure function of the
// queue and the clock, so it is tested without threads or sleeps.
#pragma once

#include <cstddef>

#include "server/batching/clock.h"
#include "server/batching/task_queue.h"

namespace clca::server {

struct BatchingPolicy {
  size_t max_batch_size = 8;
  // How long a task may wait for its batch to fill, from its arrival.
  Duration max_queue_delay{};
  // One batch may hold several keep rates (a model that runs mixed batches);
  // otherwise batches are of one keep rate.
  bool mix_keep_rates = false;
};

struct BatchDecision {
  // Run a batch now: of `keep_rate`, or of the oldest tasks when mixing.
  bool ready = false;
  double keep_rate = 0;
  // Otherwise, when to decide again (max(): when something is queued).
  TimePoint wake_at = TimePoint::max();
};

// Mixing: the oldest tasks run once max_batch_size wait, once the oldest has
// waited max_queue_delay, or at once when it arrived at or before
// `flush_before` (max(): draining, run everything).
//
// By keep rate: a keep rate is ready once max_batch_size of it wait, once its
// oldest has waited max_queue_delay, or when its oldest arrived at or before
// `flush_before`. Of the ready keep rates, the first above `last_keep_rate`
// (the previous batch's) runs, wrapping to the lowest: every ready keep rate
// gets its turn.
BatchDecision DecideNextBatch(const TaskQueue& queue, const BatchingPolicy& policy, TimePoint now,
                              TimePoint flush_before, double last_keep_rate);

}  // namespace clca::server
