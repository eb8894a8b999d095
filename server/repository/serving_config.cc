#include "server/repository/serving_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca::server {
namespace {

using json = nlohmann::json;

absl::Status ReadPositiveInt(const json& object, const char* key, int64_t min_value,
                             int64_t* out) {
  if (!object.contains(key)) return absl::OkStatus();
  const json& v = object[key];
  // The counts are kept in ints; the same bound keeps the queue delay (at most
  // about 36 minutes) far from the range of the clock it is added to.
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t{kMax}
                                               : v.is_number_integer() && v.get<int64_t>() <= kMax;
  if (!in_range || v.get<int64_t>() < min_value) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be an integer from ",
                                                   min_value, " to ", kMax, ", got ", v.dump()));
  }
  *out = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadRate(const json& object, const char* key, double* out) {
  const json& v = object[key];
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0 ||
      v.get<double>() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'keep_rate.", key, "' must be a number in (0, 1], got ", v.dump()));
  }
  *out = v.get<double>();
  return absl::OkStatus();
}

absl::Status ParseKeepRate(const json& v, KeepRatePolicy* policy) {
  if (!v.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'keep_rate' must be an object {\"default\", \"min\", \"max\"}, got ",
                     v.dump()));
  }
  for (const auto& [key, value] : v.items()) {
    if (key == "default") {
      double rate = 0;
      if (absl::Status s = ReadRate(v, "default", &rate); !s.ok()) return s;
      policy->default_rate = rate;
    } else if (key == "min") {
      if (absl::Status s = ReadRate(v, "min", &policy->min); !s.ok()) return s;
    } else if (key == "max") {
      if (absl::Status s = ReadRate(v, "max", &policy->max); !s.ok()) return s;
    } else if (key == "adaptive_min") {
      double rate = 0;
      if (absl::Status s = ReadRate(v, "adaptive_min", &rate); !s.ok()) return s;
      policy->adaptive_min = rate;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key 'keep_rate.", key, "' (expected default, min, max, adaptive_min)"));
    }
  }
  if (policy->min > policy->max) {
    return absl::InvalidArgumentError(absl::StrCat("keep_rate.min ", policy->min,
                                                   " is above keep_rate.max ", policy->max));
  }
  if (policy->adaptive_min &&
      (*policy->adaptive_min < policy->min || *policy->adaptive_min > policy->max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep_rate.adaptive_min ", *policy->adaptive_min,
                     " is outside [keep_rate.min, keep_rate.max] = [", policy->min, ", ",
                     policy->max, "]"));
  }
  return absl::OkStatus();
}

absl::Status ParseWarmUp(const json& v, WarmUpConfig* warmup) {
  if (v.is_boolean()) {
    warmup->enabled = v.get<bool>();
    return absl::OkStatus();
  }
  if (!v.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'warmup' must be false or an object {\"batch_sizes\", \"keep_rates\"}, got ",
        v.dump()));
  }
  for (const auto& [key, value] : v.items()) {
    if (!value.is_array() || value.empty() || value.size() > 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("'warmup.", key, "' must be a list of 1 to 16 values, got ", value.dump()));
    }
    if (key == "batch_sizes") {
      warmup->batch_sizes.clear();
      for (const json& size : value) {
        if (!size.is_number_integer() || size.get<int64_t>() < 1 || size.get<int64_t>() > 4096) {
          return absl::InvalidArgumentError(absl::StrCat(
              "'warmup.batch_sizes' holds integers from 1 to 4096, got ", size.dump()));
        }
        warmup->batch_sizes.push_back(size.get<int>());
      }
    } else if (key == "keep_rates") {
      warmup->keep_rates.clear();
      for (const json& rate : value) {
        if (!rate.is_number() || !std::isfinite(rate.get<double>()) || rate.get<double>() <= 0 ||
            rate.get<double>() > 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "'warmup.keep_rates' holds numbers in (0, 1], got ", rate.dump()));
        }
        warmup->keep_rates.push_back(rate.get<double>());
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key 'warmup.", key, "' (expected batch_sizes, keep_rates)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Precision> ParsePrecision(const json& v) {
  const std::string name = v.is_string() ? absl::AsciiStrToLower(v.get<std::string>()) : "";
  if (name == "float32" || name == "fp32") return Precision::kFloat32;
  if (name == "bfloat16" || name == "bf16") return Precision::kBFloat16;
  if (name == "float16" || name == "fp16") return Precision::kFloat16;
  return absl::InvalidArgumentError(absl::StrCat(
      "'precision' must be \"float32\", \"bfloat16\" or \"float16\", got ", v.dump()));
}

}  // namespace

Precision PrecisionFor(const ServingConfig& config, const std::string& device) {
  if (config.precision) return *config.precision;
  return absl::StartsWith(device, "cuda") ? Precision::kFloat16 : Precision::kFloat32;
}

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32: return "float32";
    case Precision::kBFloat16: return "bfloat16";
    case Precision::kFloat16: return "float16";
  }
  return "unknown";
}

absl::StatusOr<ServingConfig> ParseServingConfig(const json& object,
                                                 const ServingConfig& defaults) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("serving configuration must be a JSON object, got ", object.dump()));
  }
  static const std::set<std::string> kKeys = {"max_batch_size", "max_queue_delay_us",
                                              "queue_capacity", "workers",
                                              "intra_op_threads", "keep_rate",
                                              "precision", "warmup", "mix_keep_rates",
                                              "cuda_graphs"};
  for (const auto& [key, value] : object.items()) {
    if (kKeys.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown key '", key, "' (expected one of ",
                                                     absl::StrJoin(kKeys, ", "), ")"));
    }
  }
  ServingConfig config = defaults;
  QueueOptions& batching = config.batching;
  int64_t value = batching.max_batch_size;
  if (absl::Status s = ReadPositiveInt(object, "max_batch_size", 1, &value); !s.ok()) return s;
  batching.max_batch_size = static_cast<int>(value);
  value = batching.max_queue_delay.count();
  if (absl::Status s = ReadPositiveInt(object, "max_queue_delay_us", 0, &value); !s.ok()) {
    return s;
  }
  batching.max_queue_delay = std::chrono::microseconds(value);
  value = batching.queue_capacity;
  if (absl::Status s = ReadPositiveInt(object, "queue_capacity", 1, &value); !s.ok()) return s;
  batching.queue_capacity = static_cast<int>(value);
  value = config.workers;
  if (absl::Status s = ReadPositiveInt(object, "workers", 1, &value); !s.ok()) return s;
  config.workers = static_cast<int>(value);
  batching.max_concurrent_batches = config.workers;
  value = config.intra_op_threads;
  if (absl::Status s = ReadPositiveInt(object, "intra_op_threads", 0, &value); !s.ok()) return s;
  config.intra_op_threads = static_cast<int>(value);
  if (object.contains("keep_rate")) {
    if (absl::Status s = ParseKeepRate(object["keep_rate"], &config.keep_rate); !s.ok()) return s;
  }
  if (object.contains("precision")) {
    absl::StatusOr<Precision> precision = ParsePrecision(object["precision"]);
    if (!precision.ok()) return precision.status();
    config.precision = *precision;
  }
  if (object.contains("cuda_graphs")) {
    if (!object["cuda_graphs"].is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat("'cuda_graphs' must be true or false, got ",
                                                     object["cuda_graphs"].dump()));
    }
    config.cuda_graphs = object["cuda_graphs"].get<bool>();
  }
  if (object.contains("mix_keep_rates")) {
    if (!object["mix_keep_rates"].is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'mix_keep_rates' must be true or false, got ", object["mix_keep_rates"].dump()));
    }
    batching.mix_keep_rates = object["mix_keep_rates"].get<bool>();
  }
  if (object.contains("warmup")) {
    if (absl::Status s = ParseWarmUp(object["warmup"], &config.warmup); !s.ok()) return s;
  }
  return config;
}

absl::StatusOr<ServingConfig> ReadServingConfig(const std::string& path,
                                                const ServingConfig& defaults) {
  if (!std::filesystem::exists(path)) return defaults;
  std::ifstream in(path);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", path));
  json object = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  absl::StatusOr<ServingConfig> config = ParseServingConfig(object, defaults);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path, int num_classes) {
  std::vector<std::string> labels;
  if (!std::filesystem::exists(path)) {
    for (int i = 0; i < num_classes; ++i) labels.push_back(absl::StrCat("class_", i));
    return labels;
  }
  std::ifstream in(path);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && absl::StripAsciiWhitespace(labels.back()).empty()) labels.pop_back();
  if (static_cast<int>(labels.size()) != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " has ", labels.size(),
                                                   " labels but the model has ", num_classes,
                                                   " classes"));
  }
  return labels;
}

}  // namespace clca::server
