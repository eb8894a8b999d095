// The waiting tasks of one model version: bounded, and kept by keep rate,
// each keep rate first in first out, so batches of one keep rate (or of the
// oldest tasks whatever their keep rate) are taken without a scan.
// Not thread-safe: the batch scheduler locks around it.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
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
  // before `now`.
  std::vector<std::unique_ptr<InferenceTask>> RemoveExpired(TimePoint now);

  // Removes up to `max_size` tasks with exactly `keep_rate`, oldest first.
  std::vector<std::unique_ptr<InferenceTask>> PopBatch(double keep_rate, size_t max_size);
  // Removes up to `max_size` of the oldest tasks, whatever their keep rate.
  std::vector<std::unique_ptr<InferenceTask>> PopOldest(size_t max_size);

  // Removes everything.
  std::vector<std::unique_ptr<InferenceTask>> RemoveAll();

  // The earliest deadline of a waiting task; max() when none has one.
  TimePoint EarliestDeadline() const;

  // Waiting tasks of one keep rate, oldest first; by keep rate, ascending.
  using Group = std::deque<std::unique_ptr<InferenceTask>>;
  const std::map<double, Group>& groups() const { return groups_; }
  // The oldest waiting task; the queue must not be empty.
  const InferenceTask& oldest() const;
  // Number of waiting tasks with exactly `keep_rate`.
  size_t CountWithKeepRate(double keep_rate) const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  size_t size_ = 0;
  uint64_t next_sequence_ = 0;
  std::map<double, Group> groups_;
};

}  // namespace clca::server
