// The accuracy-against-GMACs plot of `clca eval`, drawn with OpenCV.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/clca/eval_report.h"
#ifdef CLCA_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace clca::tool {

#ifndef CLCA_HAVE_OPENCV

absl::Status WriteAccuracyPlot(const std::vector<EvalResult>& rows, const std::string& path,
                               const PlotOptions& options) {
  return absl::UnimplementedError("this build has no plotting (OpenCV not found)");
}

#else

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kBlack(0, 0, 0), kWhite(255, 255, 255), kGrid(225, 225, 225),
    kFrame(90, 90, 90);

// matplotlib's tab10 colours, in BGR.
const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140},  {194, 119, 227}, {127, 127, 127},
                               {34, 189, 188},  {207, 190, 23}};

// A value range and the spacing of its ticks; lo and hi are multiples of step.
struct Axis {
  double lo = 0, hi = 1, step = 0.1;
  // Digits after the point that tick labels need.
  int decimals() const {
    return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  }
};

// [lo, hi] padded by 5% of the span (a point gets +-5% of its value), then
// widened to ticks of 1, 2 or 5 x 10^k, about `target` of them.
Axis NiceAxis(double lo, double hi, int target) {
  double span = hi - lo;
  if (span <= 1e-9 * std::max(1.0, std::abs(hi))) {
    const double pad = std::max(std::abs(hi) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  } else {
    lo -= 0.05 * span;
    hi += 0.05 * span;
  }
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  Axis axis;
  axis.step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
  axis.lo = std::floor(lo / axis.step + 1e-9) * axis.step;
  axis.hi = std::ceil(hi / axis.step - 1e-9) * axis.step;
  return axis;
}

cv::Size TextSize(const std::string& text, double scale, int thickness = 1) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, thickness, &baseline);
}

void PutText(cv::Mat& image, const std::string& text, cv::Point origin, double scale,
             const cv::Scalar& color, int thickness = 1) {
  cv::putText(image, text, origin, kFont, scale, color, thickness, cv::LINE_AA);
}

void DrawMarker(cv::Mat& image, cv::Point center, const cv::Scalar& color) {
  cv::circle(image, center, 6, kWhite, cv::FILLED, cv::LINE_AA);
  cv::circle(image, center, 5, color, cv::FILLED, cv::LINE_AA);
}

struct Series {
  std::string name;
  std::vector<const EvalResult*> points;  // by GMACs
};

}  // namespace

absl::Status WriteAccuracyPlot(const std::vector<EvalResult>& rows, const std::string& path,
                               const PlotOptions& options) {
  if (rows.empty()) return absl::InvalidArgumentError("nothing to plot");
  std::vector<Series> series;
  for (const EvalResult& r : rows) {
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const Series& s) { return s.name == r.model; });
    if (it == series.end()) it = series.insert(series.end(), Series{r.model, {}});
    it->points.push_back(&r);
  }
  double x_min = rows[0].gmacs, x_max = x_min, y_min = rows[0].top1, y_max = y_min;
  for (Series& s : series) {
    std::stable_sort(s.points.begin(), s.points.end(),
                     [](const EvalResult* a, const EvalResult* b) { return a->gmacs < b->gmacs; });
    for (const EvalResult* p : s.points) {
      x_min = std::min(x_min, p->gmacs);
      x_max = std::max(x_max, p->gmacs);
      y_min = std::min(y_min, p->top1);
      y_max = std::max(y_max, p->top1);
    }
  }
  const Axis x = NiceAxis(x_min, x_max, 6);
  Axis y = NiceAxis(y_min, y_max, 6);
  y.lo = std::max(y.lo, 0.0);  // accuracy stays in [0, 100]
  y.hi = std::min(y.hi, 100.0);

  const int width = std::max(options.width, 320), height = std::max(options.height, 240);
  const int left = 90, right = width - 30, top = options.title.empty() ? 30 : 60,
            bottom = height - 70;
  auto px = [&](double v) {
    return static_cast<int>(std::lround(left + (v - x.lo) / (x.hi - x.lo) * (right - left)));
  };
  auto py = [&](double v) {
    return static_cast<int>(std::lround(bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top)));
  };
  cv::Mat image(height, width, CV_8UC3, kWhite);

  // Grid, ticks and tick labels.
  const double tick_scale = 0.45;
  for (int i = 0; x.lo + i * x.step <= x.hi + 1e-9 * x.step; ++i) {
    const double v = x.lo + i * x.step;
    const int p = px(v);
    cv::line(image, {p, top}, {p, bottom}, kGrid, 1);
    cv::line(image, {p, bottom}, {p, bottom + 5}, kFrame, 1);
    const std::string label = absl::StrFormat("%.*f", x.decimals(), v);
    const cv::Size size = TextSize(label, tick_scale);
    PutText(image, label, {p - size.width / 2, bottom + 10 + size.height}, tick_scale, kBlack);
  }
  for (int i = 0; y.lo + i * y.step <= y.hi + 1e-9 * y.step; ++i) {
    const double v = y.lo + i * y.step;
    const int p = py(v);
    cv::line(image, {left, p}, {right, p}, kGrid, 1);
    cv::line(image, {left - 5, p}, {left, p}, kFrame, 1);
    const std::string label = absl::StrFormat("%.*f", y.decimals(), v);
    const cv::Size size = TextSize(label, tick_scale);
    PutText(image, label, {left - 9 - size.width, p + size.height / 2}, tick_scale, kBlack);
  }
  cv::rectangle(image, {left, top}, {right, bottom}, kFrame, 1);

  // Axis labels; the y label is drawn on its own strip and turned upright.
  const double label_scale = 0.55;
  const std::string x_label = "GMACs";
  const cv::Size x_size = TextSize(x_label, label_scale);
  PutText(image, x_label, {(left + right - x_size.width) / 2, height - 18}, label_scale, kBlack);
  const std::string y_label = "Top-1 accuracy (%)";
  const cv::Size y_size = TextSize(y_label, label_scale);
  cv::Mat strip(y_size.height + 10, y_size.width + 4, CV_8UC3, kWhite);
  PutText(strip, y_label, {2, y_size.height + 3}, label_scale, kBlack);
  cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int strip_top = std::clamp((top + bottom - strip.rows) / 2, 0, height - strip.rows);
  if (strip.cols + 12 <= width && strip.rows <= height) {
    strip.copyTo(image(cv::Rect(12, strip_top, strip.cols, strip.rows)));
  }
  if (!options.title.empty()) {
    const cv::Size size = TextSize(options.title, 0.6);
    PutText(image, options.title, {std::max(4, (width - size.width) / 2), 35}, 0.6, kBlack);
  }

  // One line with markers per model, each point labelled with its keep rate.
  std::vector<cv::Point> all_points;
  for (size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar color = kPalette[s % (sizeof kPalette / sizeof kPalette[0])];
    std::vector<cv::Point> points;
    for (const EvalResult* p : series[s].points) points.push_back({px(p->gmacs), py(p->top1)});
    for (size_t i = 1; i < points.size(); ++i) {
      cv::line(image, points[i - 1], points[i], color, 2, cv::LINE_AA);
    }
    for (size_t i = 0; i < points.size(); ++i) {
      DrawMarker(image, points[i], color);
      const std::string label = FormatKeepRate(series[s].points[i]->keep_rate);
      const cv::Size size = TextSize(label, 0.4);
      // Alternate sides between models so that close curves stay readable.
      cv::Point origin = s % 2 == 0 ? cv::Point(points[i].x - size.width - 4, points[i].y - 8)
                                    : cv::Point(points[i].x + 6, points[i].y + size.height + 8);
      origin.x = std::clamp(origin.x, 2, width - size.width - 2);
      origin.y = std::clamp(origin.y, size.height + 2, height - 4);
      PutText(image, label, origin, 0.4, color);
    }
    all_points.insert(all_points.end(), points.begin(), points.end());
  }

  // Legend, in the corner of the axes that covers the fewest points.
  const double legend_scale = 0.5;
  int text_width = 0, text_height = 0;
  for (const Series& s : series) {
    const cv::Size size = TextSize(s.name, legend_scale);
    text_width = std::max(text_width, size.width);
    text_height = std::max(text_height, size.height);
  }
  const int row = std::max(text_height + 10, 20);
  const cv::Size box(46 + text_width + 12, row * static_cast<int>(series.size()) + 10);
  const cv::Point corners[] = {{right - 10 - box.width, bottom - 10 - box.height},
                               {left + 10, top + 10},
                               {left + 10, bottom - 10 - box.height},
                               {right - 10 - box.width, top + 10}};
  cv::Rect legend(corners[0], box);
  size_t fewest = all_points.size() + 1;
  for (const cv::Point& corner : corners) {
    const cv::Rect candidate(corner, box);
    const cv::Rect covered(candidate.x - 8, candidate.y - 8, candidate.width + 16,
                           candidate.height + 16);
    const size_t n = std::count_if(all_points.begin(), all_points.end(),
                                   [&](const cv::Point& p) { return covered.contains(p); });
    if (n < fewest) {
      fewest = n;
      legend = candidate;
    }
  }
  cv::rectangle(image, legend, kWhite, cv::FILLED);
  cv::rectangle(image, legend, kFrame, 1);
  for (size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar color = kPalette[s % (sizeof kPalette / sizeof kPalette[0])];
    const int cy = legend.y + 5 + row * static_cast<int>(s) + row / 2;
    cv::line(image, {legend.x + 8, cy}, {legend.x + 38, cy}, color, 2, cv::LINE_AA);
    DrawMarker(image, {legend.x + 23, cy}, color);
    PutText(image, series[s].name, {legend.x + 46, cy + text_height / 2}, legend_scale, kBlack);
  }

  try {
    if (!cv::imwrite(path, image)) return absl::InternalError(absl::StrCat("cannot write ", path));
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", e.err));
  }
  return absl::OkStatus();
}

#endif  // CLCA_HAVE_OPENCV

}  // namespace clca::tool
