// Parsing of the sweep's flags and the checks RunPerf makes of its options.
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/perf.h"

namespace clca::perf {
namespace {

// Bounds that keep a typo from starting a million threads or points.
constexpr int kMaxConcurrency = 4096;
constexpr size_t kMaxPoints = 1000;

std::vector<absl::string_view> SplitList(absl::string_view spec) {
  std::vector<absl::string_view> items = absl::StrSplit(spec, ',');
  for (absl::string_view& item : items) item = absl::StripAsciiWhitespace(item);
  return items;
}

absl::StatusOr<int> ParsePositiveInt(absl::string_view text, absl::string_view what) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a positive integer, got \"", text, "\""));
  }
  return value;
}

absl::StatusOr<double> ParsePositiveNumber(absl::string_view text, absl::string_view what) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a positive number, got \"", text, "\""));
  }
  return value;
}

absl::StatusOr<std::vector<absl::string_view>> SplitRange(absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected start:end or start:end:step, got \"", spec, "\""));
  }
  for (absl::string_view& part : parts) part = absl::StripAsciiWhitespace(part);
  return parts;
}

}  // namespace

std::string KeepRateLabel(const std::optional<float>& keep_rate) {
  return keep_rate ? absl::StrFormat("%g", *keep_rate) : "default";
}

absl::StatusOr<std::vector<KeepRateShare>> ParseKeepRateMix(absl::string_view spec) {
  std::vector<KeepRateShare> mix;
  size_t weighted = 0;
  for (absl::string_view item : SplitList(spec)) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty entry in \"", spec, "\""));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected rate or rate:weight, got \"", item, "\""));
    }
    KeepRateShare share;
    const absl::string_view rate_text = absl::StripAsciiWhitespace(parts[0]);
    if (rate_text != "default") {
      double rate = 0;
      if (!absl::SimpleAtod(rate_text, &rate) || !(rate > 0 && rate <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "keep rate \"", rate_text, "\" is not a number in (0, 1] or \"default\""));
      }
      share.keep_rate = static_cast<float>(rate);
    }
    if (parts.size() == 2) {
      absl::StatusOr<double> weight =
          ParsePositiveNumber(absl::StripAsciiWhitespace(parts[1]),
                              absl::StrCat("the weight of keep rate ", rate_text));
      if (!weight.ok()) return weight.status();
      share.weight = *weight;
      ++weighted;
    }
    for (const KeepRateShare& other : mix) {
      if (other.keep_rate == share.keep_rate) {
        return absl::InvalidArgumentError(
            absl::StrCat("keep rate ", KeepRateLabel(share.keep_rate), " is given twice"));
      }
    }
    mix.push_back(share);
  }
  if (weighted != 0 && weighted != mix.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("give every keep rate a weight or none, got \"", spec, "\""));
  }
  return mix;
}

absl::StatusOr<std::vector<int>> ParseConcurrencyList(absl::string_view spec) {
  std::vector<int> levels;
  for (absl::string_view item : SplitList(spec)) {
    absl::StatusOr<int> level = ParsePositiveInt(item, "a concurrency level");
    if (!level.ok()) return level.status();
    if (*level > kMaxConcurrency) {
      return absl::InvalidArgumentError(
          absl::StrCat("concurrency ", *level, " exceeds ", kMaxConcurrency));
    }
    levels.push_back(*level);
  }
  return levels;
}

absl::StatusOr<std::vector<int>> ParseConcurrencyRange(absl::string_view spec) {
  absl::StatusOr<std::vector<absl::string_view>> parts = SplitRange(spec);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<int> start = ParsePositiveInt((*parts)[0], "the start");
  if (!start.ok()) return start.status();
  absl::StatusOr<int> end = ParsePositiveInt((*parts)[1], "the end");
  if (!end.ok()) return end.status();
  absl::StatusOr<int> step = parts->size() == 3 ? ParsePositiveInt((*parts)[2], "the step") : 1;
  if (!step.ok()) return step.status();
  if (*end < *start) {
    return absl::InvalidArgumentError(
        absl::StrCat("the end ", *end, " is below the start ", *start));
  }
  if (*end > kMaxConcurrency) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency ", *end, " exceeds ", kMaxConcurrency));
  }
  std::vector<int> levels;
  for (int c = *start; c <= *end; c += *step) levels.push_back(c);
  return levels;
}

absl::StatusOr<std::vector<double>> ParseRateList(absl::string_view spec) {
  std::vector<double> rates;
  for (absl::string_view item : SplitList(spec)) {
    absl::StatusOr<double> rate = ParsePositiveNumber(item, "a request rate");
    if (!rate.ok()) return rate.status();
    rates.push_back(*rate);
  }
  return rates;
}

absl::StatusOr<std::vector<double>> ParseRateRange(absl::string_view spec) {
  absl::StatusOr<std::vector<absl::string_view>> parts = SplitRange(spec);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<double> start = ParsePositiveNumber((*parts)[0], "the start");
  if (!start.ok()) return start.status();
  absl::StatusOr<double> end = ParsePositiveNumber((*parts)[1], "the end");
  if (!end.ok()) return end.status();
  absl::StatusOr<double> step =
      parts->size() == 3 ? ParsePositiveNumber((*parts)[2], "the step") : 1.0;
  if (!step.ok()) return step.status();
  if (*end < *start) {
    return absl::InvalidArgumentError(
        absl::StrCat("the end ", *end, " is below the start ", *start));
  }
  if ((*end - *start) / *step >= kMaxPoints) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxPoints, " rates"));
  }
  std::vector<double> rates;
  // The tolerance keeps the end when the steps do not add up exactly.
  for (size_t i = 0; *start + i * *step <= *end * (1 + 1e-9); ++i) {
    rates.push_back(*start + i * *step);
  }
  return rates;
}

absl::Status ValidatePerfOptions(const PerfOptions& options) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (options.images.empty() && options.raw_images.empty()) return invalid("no image to send");
  if (!options.images.empty() && !options.raw_images.empty()) {
    return invalid("send encoded images or raw pixels, not both");
  }
  for (const RawPixels& raw : options.raw_images) {
    if (raw.width <= 0 || raw.height <= 0 ||
        raw.rgb.size() != 3 * static_cast<size_t>(raw.width) * raw.height) {
      return invalid("a raw image needs width * height * 3 bytes");
    }
  }
  if (!options.concurrency.empty() && !options.request_rates.empty()) {
    return invalid("give concurrency levels or request rates, not both");
  }
  if (options.streaming && !options.request_rates.empty()) {
    return invalid("streaming measures concurrency levels, not request rates");
  }
  for (int c : options.concurrency) {
    if (c < 1 || c > kMaxConcurrency) {
      return invalid("concurrency must be in [1, ", kMaxConcurrency, "], got ", c);
    }
  }
  for (double r : options.request_rates) {
    if (!std::isfinite(r) || r <= 0) return invalid("request rate must be positive, got ", r);
  }
  for (const KeepRateShare& share : options.keep_rates) {
    if (!std::isfinite(share.weight) || share.weight <= 0) {
      return invalid("keep-rate weights must be positive");
    }
  }
  if (options.min_keep_rate) {
    if (!(*options.min_keep_rate > 0 && *options.min_keep_rate <= 1)) {
      return invalid("the minimum keep rate must be in (0, 1], got ", *options.min_keep_rate);
    }
    if (!options.keep_rates.empty()) {
      return invalid(
          "a minimum keep rate lets the server choose each request's keep rate: give it or a "
          "keep-rate mix, not both");
    }
  }
  if (options.deadline.count() < 0) return invalid("the deadline must not be negative");
  if (options.window.count() <= 0) return invalid("the window must be positive");
  if (options.warmup.count() < 0) return invalid("the warm-up must not be negative");
  if (options.max_windows < 1) return invalid("max_windows must be at least 1");
  if (options.stable_windows < 1) return invalid("stable_windows must be at least 1");
  if (!(options.stability > 0)) return invalid("stability must be positive");
  if (options.max_threads < 1 || options.max_threads > kMaxConcurrency) {
    return invalid("max_threads must be in [1, ", kMaxConcurrency, "]");
  }
  if (options.top_k < 0) return invalid("top_k must not be negative");
  return absl::OkStatus();
}

}  // namespace clca::perf
