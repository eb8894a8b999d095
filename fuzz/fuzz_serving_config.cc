// serving.json as the model repository reads it (ReadServingConfig): parsed
// without exceptions, then ParseServingConfig.
#include <chrono>
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

#include "server/repository/serving_config.h"

namespace {

// Whether `microseconds` fits the steady clock's duration type, which the
// batcher adds it to.
bool FitsClock(int64_t microseconds) {
  using Clock = std::chrono::steady_clock;
  constexpr int64_t kMax =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::duration::max()).count();
  return microseconds >= 0 && microseconds <= kMax;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  absl::StatusOr<clca::server::ServingConfig> config = clca::server::ParseServingConfig(json);
  if (!config.ok()) return 0;
  // Out-of-range values are refused, never stored wrapped around.
  const clca::server::ServingConfig& c = *config;
  const clca::server::KeepRatePolicy& k = c.keep_rate;
  if (c.batching.max_batch_size < 1 || c.batching.queue_capacity < 1 ||
      c.batching.max_concurrent_batches < 0 || c.workers < 0 || c.intra_op_threads < 0 ||
      !FitsClock(c.batching.max_queue_delay.count()) || !(k.min > 0 && k.min <= k.max) ||
      !(k.max <= 1) ||
      (k.default_rate && !(*k.default_rate > 0 && *k.default_rate <= 1))) {
    __builtin_trap();
  }
  clca::server::PrecisionName(clca::server::PrecisionFor(c, "cpu"));
  clca::server::PrecisionName(clca::server::PrecisionFor(c, "cuda"));
  return 0;
}
