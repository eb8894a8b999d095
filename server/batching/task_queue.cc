#include "server/batching/task_queue.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clca::server {

absl::Status TaskQueue::Push(std::unique_ptr<InferenceTask>* task, TimePoint now) {
  if (size_ >= capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model's queue is full (", capacity_, " requests waiting); retry later or raise ",
        "queue_capacity in serving.json"));
  }
  (*task)->enqueue_time = now;
  (*task)->sequence = next_sequence_++;
  groups_[(*task)->keep_rate].push_back(std::move(*task));
  ++size_;
  return absl::OkStatus();
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::RemoveExpired(TimePoint now) {
  std::vector<std::unique_ptr<InferenceTask>> removed;
  for (auto it = groups_.begin(); it != groups_.end();) {
    Group& group = it->second;
    auto keep = std::stable_partition(group.begin(), group.end(), [now](const auto& task) {
      return !task->IsCancelled() && task->deadline > now;
    });
    for (auto t = keep; t != group.end(); ++t) removed.push_back(std::move(*t));
    group.erase(keep, group.end());
    it = group.empty() ? groups_.erase(it) : std::next(it);
  }
  // Oldest first, as they arrived.
  std::sort(removed.begin(), removed.end(),
            [](const auto& a, const auto& b) { return a->sequence < b->sequence; });
  size_ -= removed.size();
  return removed;
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::PopBatch(double keep_rate,
                                                                size_t max_size) {
  std::vector<std::unique_ptr<InferenceTask>> batch;
  auto it = groups_.find(keep_rate);
  if (it == groups_.end()) return batch;
  Group& group = it->second;
  while (!group.empty() && batch.size() < max_size) {
    batch.push_back(std::move(group.front()));
    group.pop_front();
  }
  if (group.empty()) groups_.erase(it);
  size_ -= batch.size();
  return batch;
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::PopOldest(size_t max_size) {
  std::vector<std::unique_ptr<InferenceTask>> batch;
  while (!empty() && batch.size() < max_size) {
    auto oldest = groups_.begin();
    for (auto it = groups_.begin(); it != groups_.end(); ++it) {
      if (it->second.front()->sequence < oldest->second.front()->sequence) oldest = it;
    }
    batch.push_back(std::move(oldest->second.front()));
    oldest->second.pop_front();
    if (oldest->second.empty()) groups_.erase(oldest);
    --size_;
  }
  return batch;
}

std::vector<std::unique_ptr<InferenceTask>> TaskQueue::RemoveAll() {
  return PopOldest(size_);
}

TimePoint TaskQueue::EarliestDeadline() const {
  TimePoint earliest = TimePoint::max();
  for (const auto& [keep_rate, group] : groups_) {
    for (const auto& task : group) earliest = std::min(earliest, task->deadline);
  }
  return earliest;
}

const InferenceTask& TaskQueue::oldest() const {
  const InferenceTask* oldest = nullptr;
  for (const auto& [keep_rate, group] : groups_) {
    const InferenceTask& front = *group.front();
    if (oldest == nullptr || front.sequence < oldest->sequence) oldest = &front;
  }
  return *oldest;
}

size_t TaskQueue::CountWithKeepRate(double keep_rate) const {
  auto it = groups_.find(keep_rate);
  return it == groups_.end() ? 0 : it->second.size();
}

}  // namespace clca::server
