// The batch queue of one model version: bounded, first in first out, and
// grouped by keep rate so batches can be formed of one keep rate at a time.
// Not thread-safe: the batch scheduler locks around it.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "server/batching/task.h"

namespace clca::server {

class TaskQueue {
 public:
  explicit TaskQueue(size_t capacity) : capacity_(capacity) {}

  // Appends `*task`, stamping its enqueue time with `now`. Takes ownership
  // only if it returns OK; a full queue is RESOURCE_EXHAUSTED (retryable).
  absl::Status Push(std::unique_ptr<InferenceTask>* task, TimePoint now);

  // Removes the tasks whose caller has gone away or whose deadline is at or
  // before `now`, oldest first.
  std::vector<std::unique_ptr<InferenceTask>> RemoveExpired(TimePoint now);

  // Removes up to `max_size` tasks with exactly `keep_rate`, oldest first.
  std::vector<std::unique_ptr<InferenceTask>> PopBatch(double keep_rate, size_t max_size);

  // Removes everything.
  std::vector<std::unique_ptr<InferenceTask>> RemoveAll();

  // The earliest deadline of a waiting task; max() when none has one.
  TimePoint EarliestDeadline() const;

  // The oldest waiting task; the queue must not be empty.
  const InferenceTask& oldest() const { return *tasks_.front(); }
  // Number of waiting tasks with exactly `keep_rate`.
  size_t CountWithKeepRate(double keep_rate) const;
  // A keep rate with at least `count` waiting tasks, if any.
  std::optional<double> KeepRateWithAtLeast(size_t count) const;

  size_t size() const { return tasks_.size(); }
  bool empty() const { return tasks_.empty(); }
  size_t capacity() const { return capacity_; }

 private:
  void Uncount(double keep_rate);

  const size_t capacity_;
  std::deque<std::unique_ptr<InferenceTask>> tasks_;
  // Waiting tasks per keep rate.
  std::map<double, size_t> counts_;
};

}  // namespace clca::server
