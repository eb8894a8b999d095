// What `clca eval` reports: one row per (model, keep rate), as a table (text,
// Markdown, JSON) and as a plot of top-1 accuracy against GMACs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clca::tool {

struct EvalResult {
  // Display name of the model.
  std::string model;
  double keep_rate = 1.0;
  // Percent of the images whose class is the first / among the first five
  // (all of them, with fewer than five classes) of the sorted logits.
  double top1 = 0, top5 = 0;
  // Multiply-accumulates per image, in billions (clca::EstimateCost).
  double gmacs = 0;
  int64_t images = 0;
  // With --precision other than fp32: the precision, the percent of images
  // whose top-1 class equals the float32 model's, and the largest and mean
  // absolute logit difference from it; agreement < 0 otherwise.
  std::string precision = "fp32";
  double agreement = -1;
  double max_logit_diff = 0, mean_logit_diff = 0;
};

enum class TableFormat { kText, kMarkdown, kJson };

// "text", "markdown" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<TableFormat> ParseTableFormat(const std::string& name);

// A keep rate as the tables and the plot print it: "0.25", "1.0".
std::string FormatKeepRate(double keep_rate);

// The rows in `format`, in their order. `caption` heads the text format only.
// JSON: {"results": [{"model", "keep_rate", "top1", "top5", "gmacs",
// "images"}, ...]}, plus "precision", "agreement_with_fp32",
// "max_abs_logit_diff" and "mean_abs_logit_diff" for rows that have them.
std::string FormatResults(const std::vector<EvalResult>& rows, TableFormat format,
                          const std::string& caption);

struct PlotOptions {
  // Drawn above the axes; empty: none.
  std::string title;
  // Image size in pixels.
  int width = 960;
  int height = 640;
};

// Draws top-1 (y, %) against GMACs (x): a line with markers per model in
// order of GMACs, each point labelled with its keep rate, ticks, axis labels
// and a legend; writes it with cv::imwrite (the format follows the
// extension, e.g. .png). UNIMPLEMENTED without OpenCV; INTERNAL when the file
// cannot be written.
absl::Status WriteAccuracyPlot(const std::vector<EvalResult>& rows, const std::string& path,
                               const PlotOptions& options = {});

}  // namespace clca::tool
