#include "server/batching/batch_policy.h"

#include <algorithm>

namespace clca::server {

BatchDecision DecideNextBatch(const TaskQueue& queue, const BatchingPolicy& policy, TimePoint now,
                              TimePoint flush_before, double last_keep_rate) {
  BatchDecision decision;
  if (queue.empty()) return decision;
  if (policy.mix_keep_rates) {
    const TimePoint arrived = queue.oldest().enqueue_time;
    const TimePoint due = arrived + policy.max_queue_delay;
    if (arrived <= flush_before || now >= due || queue.size() >= policy.max_batch_size) {
      decision.ready = true;
    } else {
      decision.wake_at = due;
    }
    return decision;
  }
  // Ready keep rates in ascending order; the turn goes to the first above
  // the last one served.
  bool found = false;
  double first_ready = 0;
  for (const auto& [keep_rate, group] : queue.groups()) {
    const TimePoint arrived = group.front()->enqueue_time;
    const TimePoint due = arrived + policy.max_queue_delay;
    if (arrived <= flush_before || now >= due || group.size() >= policy.max_batch_size) {
      if (keep_rate > last_keep_rate) {
        decision.ready = true;
        decision.keep_rate = keep_rate;
        return decision;
      }
      if (!found) {
        found = true;
        first_ready = keep_rate;
      }
    } else {
      decision.wake_at = std::min(decision.wake_at, due);
    }
  }
  if (found) {
    decision.ready = true;
    decision.keep_rate = first_ready;
    decision.wake_at = TimePoint::max();
  }
  return decision;
}

}  // namespace clca::server
