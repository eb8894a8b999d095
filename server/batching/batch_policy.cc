#include "server/batching/batch_policy.h"

#include <optional>

namespace clca::server {

BatchDecision DecideNextBatch(const TaskQueue& queue, size_t max_batch_size,
                              Duration max_queue_delay, TimePoint now, bool flush) {
  BatchDecision decision;
  if (queue.empty()) return decision;
  const InferenceTask& oldest = queue.oldest();
  const TimePoint due = oldest.enqueue_time + max_queue_delay;
  if (flush || now >= due || queue.CountWithKeepRate(oldest.keep_rate) >= max_batch_size) {
    decision.ready = true;
    decision.keep_rate = oldest.keep_rate;
    return decision;
  }
  if (std::optional<double> full = queue.KeepRateWithAtLeast(max_batch_size)) {
    decision.ready = true;
    decision.keep_rate = *full;
    return decision;
  }
  decision.wake_at = due;
  return decision;
}

}  // namespace clca::server
