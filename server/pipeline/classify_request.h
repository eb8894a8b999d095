// One classification as the request pipeline sees it, whatever the wire
// format: what the caller asks for, and the answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clca::server {

// Pixels that are the model input already: 8-bit RGB, interleaved, row-major.
struct RawPixels {
  int width = 0;
  int height = 0;
  // Points into memory the caller keeps until the pipeline answers.
  std::string_view rgb;
};

struct ClassifyInput {
  std::string model;
  // Absent: the highest available version.
  std::optional<int64_t> version;
  // Absent: the model's default, or chosen by the server (min_keep_rate).
  std::optional<float> keep_rate;
  // Lets the server pick the keep rate in [min_keep_rate, the model's max].
  std::optional<float> min_keep_rate;
  // 0: the default (5).
  int top_k = 0;
  // The encoded image; points into memory the caller keeps until the
  // pipeline answers. Unused when `raw` is set.
  std::string_view image;
  std::optional<RawPixels> raw;
};

struct Prediction {
  int class_id = 0;
  std::string label;
  // Softmax probability.
  float score = 0;
};

// What answering cost; see clca.v1.Cost.
struct ClassifyCost {
  double gmacs = 0;
  double gmacs_full = 0;
  std::vector<int64_t> tokens;
  int batch_size = 0;
  uint64_t batch_id = 0;
  int64_t queue_us = 0;
  int64_t preprocess_us = 0;
  int64_t compute_us = 0;
  int64_t total_us = 0;
};

struct ClassifyOutput {
  // Best first.
  std::vector<Prediction> predictions;
  std::string model;
  int64_t version = 0;
  double keep_rate = 1.0;
  std::string request_id;
  ClassifyCost cost;
};

}  // namespace clca::server
