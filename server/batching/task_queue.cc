#include "server/batching/task_queue.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clca::server {

absl::Status TaskQueue::Push(std::unique_ptr<InferenceTask>* task, TimePoint now) {
  if (tasks_.size() >= capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model's queue is full (", capacity_, " requests waiting); retry later or raise ",
        "queue_capacity in serving.json"));
  }
  (*task)->enqueue_time = now;
  ++counts_[(*task)->keep_rate];
  tasks_.push_back(std::move(*task));
  return absl::OkStatus();
}

void TaskQueue::Uncount(double keep_rate) {
  auto it = counts_.find(keep_rate);
  if (--it->second == 0) counts_.erase(it);
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::RemoveExpired(TimePoint now) {
  std::vector<std::unique_ptr<InferenceTask>> removed;
  auto keep = std::stable_partition(tasks_.begin(), tasks_.end(), [now](const auto& task) {
    return !task->IsCancelled() && task->deadline > now;
  });
  for (auto it = keep; it != tasks_.end(); ++it) {
    Uncount((*it)->keep_rate);
    removed.push_back(std::move(*it));
  }
  tasks_.erase(keep, tasks_.end());
  return removed;
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::PopBatch(double keep_rate,
                                                                size_t max_size) {
  std::vector<std::unique_ptr<InferenceTask>> batch;
  auto out = tasks_.begin();
  for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
    if (batch.size() < max_size && (*it)->keep_rate == keep_rate) {
      batch.push_back(std::move(*it));
    } else {
      if (out != it) *out = std::move(*it);
      ++out;
    }
  }
  tasks_.erase(out, tasks_.end());
  for (size_t i = 0; i < batch.size(); ++i) Uncount(keep_rate);
  return batch;
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::RemoveAll() {
  std::vector<std::unique_ptr<InferenceTask>> removed;
  for (auto& task : tasks_) removed.push_back(std::move(task));
  tasks_.clear();
  counts_.clear();
  return removed;
}

TimePoint TaskQueue::EarliestDeadline() const {
  TimePoint earliest = TimePoint::max();
  for (const auto& task : tasks_) earliest = std::min(earliest, task->deadline);
  return earliest;
}

size_t TaskQueue::CountWithKeepRate(double keep_rate) const {
  auto it = counts_.find(keep_rate);
  return it == counts_.end() ? 0 : it->second;
}

std::optional<double> TaskQueue::KeepRateWithAtLeast(size_t count) const {
  for (const auto& [keep_rate, n] : counts_) {
    if (n >= count) return keep_rate;
  }
  return std::nullopt;
}

}  // namespace clca::server
