#include "tools/synth/scene.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace clca::synth::internal {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Fixed-point bits for sub-pixel drawing.
constexpr int kShift = 4;
constexpr double kOne = 1 << kShift;

cv::Point Fixed(cv::Point2d p) { return {cvRound(p.x * kOne), cvRound(p.y * kOne)}; }

cv::Vec3f Scale(cv::Vec3f c, double k) {
  return {static_cast<float>(c[0] * k), static_cast<float>(c[1] * k), static_cast<float>(c[2] * k)};
}

cv::Point2d Polar(cv::Point2d origin, double radius, double angle) {
  return {origin.x + radius * std::cos(angle), origin.y + radius * std::sin(angle)};
}

// Draws antialiased shapes into a scratch mask and blends them, one at a
// time, into the canvas; only each shape's bounding box is touched.
class Painter {
 public:
  explicit Painter(cv::Mat3f& canvas) : canvas_(canvas), scratch_(canvas.size(), 0) {}

  void Ellipse(cv::Point2d centre, double a, double b, double angle_deg, cv::Vec3f colour,
               float opacity = 1.0f) {
    cv::ellipse(scratch_, Fixed(centre), cv::Size(cvRound(a * kOne), cvRound(b * kOne)),
                angle_deg, 0, 360, cv::Scalar(255), cv::FILLED, cv::LINE_AA, kShift);
    const double r = std::max(a, b) + 2;
    Flush(cv::Rect(cv::Point(cvFloor(centre.x - r), cvFloor(centre.y - r)),
                   cv::Point(cvCeil(centre.x + r) + 1, cvCeil(centre.y + r) + 1)),
          colour, opacity);
  }

  void Line(const std::vector<cv::Point2d>& points, double thickness, cv::Vec3f colour,
            float opacity = 1.0f) {
    std::vector<cv::Point> fixed;
    cv::Point2d lo = points.front(), hi = points.front();
    for (const cv::Point2d& p : points) {
      fixed.push_back(Fixed(p));
      lo = {std::min(lo.x, p.x), std::min(lo.y, p.y)};
      hi = {std::max(hi.x, p.x), std::max(hi.y, p.y)};
    }
    const int t = std::max(1, cvRound(thickness));
    cv::polylines(scratch_, fixed, false, cv::Scalar(255), t, cv::LINE_AA, kShift);
    const double pad = t + 2;
    Flush(cv::Rect(cv::Point(cvFloor(lo.x - pad), cvFloor(lo.y - pad)),
                   cv::Point(cvCeil(hi.x + pad) + 1, cvCeil(hi.y + pad) + 1)),
          colour, opacity);
  }

 private:
  void Flush(cv::Rect box, cv::Vec3f colour, float opacity) {
    box &= cv::Rect(0, 0, canvas_.cols, canvas_.rows);
    if (box.empty()) return;
    BlendMask(canvas_, scratch_, box, colour, opacity);
    scratch_(box).setTo(0);
  }

  cv::Mat3f& canvas_;
  cv::Mat1b scratch_;
};

// A random walk of `segments` steps: twigs and straws.
std::vector<cv::Point2d> Stick(cv::Point2d start, double length, double angle, int segments,
                               Rng& rng) {
  std::vector<cv::Point2d> points = {start};
  for (int i = 0; i < segments; ++i) {
    angle += rng.Uniform(-0.35, 0.35);
    points.push_back(Polar(points.back(), length / segments, angle));
  }
  return points;
}

void DrawClutter(cv::Mat3f& canvas, cv::Vec3f ground, int count, Rng& rng) {
  const double s = canvas.rows;
  Painter paint(canvas);
  for (int i = 0; i < count; ++i) {
    const cv::Point2d at(rng.Uniform(0, s), rng.Uniform(0, s));
    switch (rng.UniformInt(0, 4)) {
      case 0:  // pebble
        paint.Ellipse(at, rng.Uniform(0.01, 0.06) * s, rng.Uniform(0.01, 0.05) * s,
                      rng.Uniform(0, 180), Scale(ground, rng.Uniform(0.55, 1.5)));
        break;
      case 1:  // twig
        paint.Line(Stick(at, rng.Uniform(0.2, 0.6) * s, rng.Uniform(0, 2 * kPi), 4, rng),
                   rng.Uniform(1.5, 5.0) * s / 320,
                   HsvToRgb(rng.Uniform(20, 40), rng.Uniform(0.4, 0.7), rng.Uniform(0.2, 0.5)));
        break;
      case 2:  // dry leaf
        paint.Ellipse(at, rng.Uniform(0.04, 0.12) * s, rng.Uniform(0.015, 0.05) * s,
                      rng.Uniform(0, 180),
                      HsvToRgb(rng.Uniform(25, 50), rng.Uniform(0.4, 0.8), rng.Uniform(0.3, 0.7)));
        break;
      case 3:  // a green blob of another plant, in the leaves' own hue range
        paint.Ellipse(at, rng.Uniform(0.03, 0.1) * s, rng.Uniform(0.015, 0.05) * s,
                      rng.Uniform(0, 180),
                      HsvToRgb(rng.Uniform(70, 130), rng.Uniform(0.3, 0.7), rng.Uniform(0.2, 0.6)));
        break;
      default:  // straw
        paint.Line(Stick(at, rng.Uniform(0.1, 0.4) * s, rng.Uniform(0, 2 * kPi), 2, rng),
                   rng.Uniform(1.0, 2.5) * s / 320,
                   HsvToRgb(rng.Uniform(35, 55), rng.Uniform(0.2, 0.5), rng.Uniform(0.6, 0.9)),
                   0.8f);
        break;
    }
  }
}

}  // namespace

cv::Vec3f HsvToRgb(double hue_deg, double saturation, double value) {
  double h = std::fmod(hue_deg, 360.0);
  if (h < 0) h += 360.0;
  const double c = value * saturation;
  const double x = c * (1.0 - std::abs(std::fmod(h / 60.0, 2.0) - 1.0));
  const double m = value - c;
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(h / 60.0)) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  return {static_cast<float>(255 * (r + m)), static_cast<float>(255 * (g + m)),
          static_cast<float>(255 * (b + m))};
}

cv::Mat1f ValueNoise(int size, int cells, Rng& rng) {
  cells = std::max(2, cells);
  cv::Mat1f grid(cells, cells);
  for (float& v : grid) v = static_cast<float>(rng.Uniform(-1.0, 1.0));
  cv::Mat1f out;
  cv::resize(grid, out, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  return out;
}

void BlendMask(cv::Mat3f& canvas, const cv::Mat1b& mask, cv::Rect box, cv::Vec3f colour,
               float opacity) {
  box &= cv::Rect(0, 0, canvas.cols, canvas.rows);
  const float k = opacity / 255.0f;
  for (int y = box.y; y < box.br().y; ++y) {
    const uint8_t* m = mask.ptr<uint8_t>(y);
    cv::Vec3f* c = canvas.ptr<cv::Vec3f>(y);
    for (int x = box.x; x < box.br().x; ++x) {
      if (m[x] == 0) continue;
      c[x] += (colour - c[x]) * (m[x] * k);
    }
  }
}

void DrawBackground(cv::Mat3f& canvas, Rng& rng, const RenderOptions& options) {
  const int s = canvas.rows;
  cv::Vec3f a, b;
  double grain = 0;
  const int ground = rng.UniformInt(0, 3);
  switch (options.scanner_background ? 1 : ground) {
    case 0:  // soil: brown, with wetter patches and coarse grain
      a = HsvToRgb(rng.Uniform(15, 45), rng.Uniform(0.25, 0.6), rng.Uniform(0.2, 0.55));
      b = Scale(a, rng.Uniform(0.55, 0.85));
      grain = 0.12;
      break;
    case 1:  // paper or scanner bed
      a = HsvToRgb(rng.Uniform(0, 360), rng.Uniform(0, 0.06), rng.Uniform(0.72, 0.95));
      b = Scale(a, rng.Uniform(0.88, 0.98));
      grain = 0.015;
      break;
    case 2:  // foliage out of focus
      a = HsvToRgb(rng.Uniform(60, 140), rng.Uniform(0.3, 0.7), rng.Uniform(0.12, 0.45));
      b = HsvToRgb(rng.Uniform(40, 150), rng.Uniform(0.2, 0.6), rng.Uniform(0.05, 0.3));
      grain = 0.04;
      break;
    default:  // cloth or board
      a = HsvToRgb(rng.Uniform(0, 360), rng.Uniform(0.05, 0.5), rng.Uniform(0.08, 0.6));
      b = Scale(a, rng.Uniform(0.8, 1.0));
      grain = 0.04;
      break;
  }
  const cv::Mat1f patches = ValueNoise(s, rng.UniformInt(2, 6), rng);
  const cv::Mat1f mid = ValueNoise(s, rng.UniformInt(10, 24), rng);
  const cv::Mat1f fine = ValueNoise(s, std::max(8, s / 4), rng);
  const float mid_amp = static_cast<float>(rng.Uniform(0.04, 0.15));
  for (int y = 0; y < s; ++y) {
    cv::Vec3f* row = canvas.ptr<cv::Vec3f>(y);
    for (int x = 0; x < s; ++x) {
      const float m = std::clamp(0.5f + 1.2f * patches(y, x), 0.0f, 1.0f);
      const double noise = 0.6 * fine(y, x) + rng.Uniform(-1.0, 1.0);
      const float v = 1.0f + mid_amp * mid(y, x) + static_cast<float>(grain * noise);
      row[x] = (a * (1.0f - m) + b * m) * v;
    }
  }
  DrawClutter(canvas, a, rng.UniformInt(0, std::max(0, options.max_clutter)), rng);
}

void DrawCastShadow(cv::Mat3f& canvas, const cv::Mat1b& leaf_alpha, Rng& rng) {
  const double s = canvas.rows;
  const double strength = rng.Uniform(0.0, 0.35);
  const cv::Matx23d shift(1, 0, rng.Uniform(-0.03, 0.03) * s, 0, 1, rng.Uniform(-0.03, 0.03) * s);
  const double sigma = rng.Uniform(1.0, 6.0) * s / 320;
  if (strength < 0.02) return;
  cv::Mat1b moved;
  cv::warpAffine(leaf_alpha, moved, shift, leaf_alpha.size(), cv::INTER_LINEAR);
  cv::Mat1f shadow;
  moved.convertTo(shadow, CV_32F, strength / 255.0);
  cv::GaussianBlur(shadow, shadow, cv::Size(0, 0), sigma);
  for (int y = 0; y < canvas.rows; ++y) {
    cv::Vec3f* row = canvas.ptr<cv::Vec3f>(y);
    const float* d = shadow.ptr<float>(y);
    for (int x = 0; x < canvas.cols; ++x) row[x] *= 1.0f - d[x];
  }
}

void DrawOccluders(cv::Mat3f& canvas, cv::Point2d centre, double leaf_length, Rng& rng) {
  const double s = canvas.rows;
  const double l = leaf_length;
  Painter paint(canvas);
  const int count = rng.UniformInt(1, 2);
  for (int i = 0; i < count; ++i) {
    // Objects sit around the leaf's edge so that they cover only part of it.
    const double angle = rng.Uniform(0, 2 * kPi);
    const cv::Point2d edge = Polar(centre, rng.Uniform(0.2, 0.45) * l, angle);
    switch (rng.UniformInt(0, 4)) {
      case 0: {  // twig across the blade
        const double dir = rng.Uniform(0, 2 * kPi);
        const double len = rng.Uniform(0.3, 0.8) * l;
        paint.Line(Stick(Polar(edge, -len / 2, dir), len, dir, 4, rng),
                   rng.Uniform(2.0, 6.0) * s / 320,
                   HsvToRgb(rng.Uniform(20, 40), rng.Uniform(0.4, 0.7), rng.Uniform(0.2, 0.5)));
        break;
      }
      case 1:  // pebble or clod
        paint.Ellipse(edge, rng.Uniform(0.05, 0.12) * l, rng.Uniform(0.04, 0.1) * l,
                      rng.Uniform(0, 180),
                      HsvToRgb(rng.Uniform(0, 60), rng.Uniform(0.0, 0.4), rng.Uniform(0.2, 0.8)));
        break;
      case 2:  // another leaf
        paint.Ellipse(edge, rng.Uniform(0.15, 0.3) * l, rng.Uniform(0.05, 0.1) * l,
                      rng.Uniform(0, 180),
                      HsvToRgb(rng.Uniform(60, 130), rng.Uniform(0.3, 0.8), rng.Uniform(0.15, 0.7)));
        break;
      case 3: {  // fingertip reaching in from outside the leaf
        const double width = rng.Uniform(0.06, 0.1) * l;
        paint.Line({Polar(edge, 1.2 * s, angle + rng.Uniform(-0.4, 0.4)), Polar(edge, -width / 2, angle)},
                   width,
                   HsvToRgb(rng.Uniform(10, 30), rng.Uniform(0.25, 0.5), rng.Uniform(0.5, 0.9)));
        break;
      }
      default: {  // soft shadow band
        cv::Mat1b band(canvas.size(), 0);
        const double dir = rng.Uniform(0, 2 * kPi);
        const cv::Point2d a = Polar(edge, s, dir), b = Polar(edge, -s, dir);
        cv::line(band, a, b, cv::Scalar(255), std::max(1, cvRound(rng.Uniform(0.1, 0.3) * l)),
                 cv::LINE_AA);
        cv::Mat1f soft;
        band.convertTo(soft, CV_32F, rng.Uniform(0.2, 0.45) / 255.0);
        cv::GaussianBlur(soft, soft, cv::Size(0, 0), rng.Uniform(2.0, 8.0) * s / 320);
        for (int y = 0; y < canvas.rows; ++y) {
          cv::Vec3f* row = canvas.ptr<cv::Vec3f>(y);
          const float* d = soft.ptr<float>(y);
          for (int x = 0; x < canvas.cols; ++x) row[x] *= 1.0f - d[x];
        }
        break;
      }
    }
  }
}

cv::Mat3b ApplyCamera(const cv::Mat3f& canvas, Rng& rng, const RenderOptions& options) {
  const int s = canvas.rows;
  const double half = s / 2.0;
  const double j = options.colour_jitter;
  const double brightness = rng.Around(0.7, 1.25, j);
  const double gradient = rng.Uniform(0.0, 0.35) * j;
  const double direction = rng.Uniform(0, 2 * kPi);
  const double vignette = rng.Uniform(0.0, 0.3) * j;
  const float contrast = static_cast<float>(rng.Around(0.8, 1.2, j));
  cv::Vec3f balance;
  for (int c = 0; c < 3; ++c) balance[c] = static_cast<float>(rng.Around(0.92, 1.08, j));
  const double gx = std::cos(direction) / half, gy = std::sin(direction) / half;

  cv::Mat3f lit(canvas.size());
  for (int y = 0; y < s; ++y) {
    const cv::Vec3f* in = canvas.ptr<cv::Vec3f>(y);
    cv::Vec3f* out = lit.ptr<cv::Vec3f>(y);
    const double dy = y - half;
    for (int x = 0; x < s; ++x) {
      const double dx = x - half;
      const double r2 = (dx * dx + dy * dy) / (2 * half * half);
      const float gain = static_cast<float>(brightness * (1.0 + gradient * (dx * gx + dy * gy)) *
                                            (1.0 - vignette * r2));
      for (int c = 0; c < 3; ++c) {
        out[x][c] = (in[x][c] * gain * balance[c] - 128.0f) * contrast + 128.0f;
      }
    }
  }
  if (rng.Bernoulli(options.blur_probability) && options.max_blur_sigma > 0) {
    const double sigma = rng.Uniform(0.25, std::max(0.25, options.max_blur_sigma)) * s / 320;
    cv::GaussianBlur(lit, lit, cv::Size(0, 0), sigma);
  }
  // Sensor noise: the sum of four 16-bit uniforms per value, scaled to unit
  // variance (close to Gaussian, one random draw per value).
  const float noise = static_cast<float>(rng.Uniform(0.0, options.max_noise_sigma) *
                                         std::sqrt(3.0) / 65536.0);
  cv::Mat3b out(canvas.size());
  for (int y = 0; y < s; ++y) {
    const float* in = lit.ptr<float>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int i = 0; i < 3 * s; ++i) {
      const uint64_t r = rng.Next();
      const float sum = static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                           ((r >> 32) & 0xffff) + (r >> 48)) -
                        2.0f * 65536.0f;
      o[i] = cv::saturate_cast<uint8_t>(in[i] + noise * sum);
    }
  }
  if (rng.Bernoulli(options.jpeg_probability)) {
    const int quality = rng.UniformInt(options.min_jpeg_quality, options.max_jpeg_quality);
    cv::Mat bgr;
    cv::cvtColor(out, bgr, cv::COLOR_RGB2BGR);
    std::vector<uint8_t> bytes;
    cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
    bgr = cv::imdecode(bytes, cv::IMREAD_COLOR);
    cv::cvtColor(bgr, out, cv::COLOR_BGR2RGB);
  }
  return out;
}

}  // namespace clca::synth::internal
