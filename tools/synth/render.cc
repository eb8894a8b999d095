#include "tools/synth/render.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "tools/synth/leaf_shape.h"
#include "tools/synth/scene.h"

namespace clca::synth {
namespace {

using internal::HsvToRgb;
using internal::ValueNoise;

constexpr double kPi = 3.14159265358979323846;
constexpr int kShift = 4;
constexpr double kOne = 1 << kShift;
// Share of the blade covered by spots, the same for every cultivar.
constexpr double kSpotCoverage = 0.025;

// Where the leaf lies in the image: leaf units to pixels and back.
struct Pose {
  double cx = 0, cy = 0;  // pixel position of the blade's midpoint
  double length = 1;      // pixels per leaf length
  double cos_a = 1, sin_a = 0;
  double mirror = 1;      // -1 flips the blade across the midrib

  cv::Point2d ToPixel(LeafPoint p) const {
    const double dx = (p.x - 0.5) * length, dy = mirror * p.y * length;
    return {cx + cos_a * dx - sin_a * dy, cy + sin_a * dx + cos_a * dy};
  }
  LeafPoint ToLeaf(double px, double py) const {
    const double ux = px - cx, uy = py - cy;
    const double dx = cos_a * ux + sin_a * uy, dy = -sin_a * ux + cos_a * uy;
    return {dx / length + 0.5, mirror * dy / length};
  }
};

std::vector<cv::Point> ToFixed(const Polyline& line, const Pose& pose) {
  std::vector<cv::Point> out;
  out.reserve(line.size());
  for (const LeafPoint& p : line) {
    const cv::Point2d q = pose.ToPixel(p);
    out.emplace_back(cvRound(q.x * kOne), cvRound(q.y * kOne));
  }
  return out;
}

int Thickness(double pixels) { return std::max(1, static_cast<int>(std::lround(pixels))); }

TraitVector JitterTraits(const TraitVector& traits, double sigma, Rng& rng) {
  TraitVector out;
  for (int i = 0; i < kNumTraits; ++i) {
    out[i] = std::clamp(traits[i] + sigma * rng.Normal(), 0.0, 1.0);
  }
  return out;
}

// Where the cultivar's traits show (see RenderOptions::trait_region_start).
struct TraitRegion {
  double start = 0, end = 1;
  bool Whole() const { return start <= 0 && end >= 1; }
  bool Contains(double u) const { return u >= start && u <= end; }
};

// Where the leaf goes and how large its fine structures are.
struct Placement {
  Pose pose;
  double detail_px = 1;  // pixels per detail unit
};

Placement Place(const RenderOptions& options, Rng& rng) {
  const int s = options.size;
  Placement p;
  p.pose.length = s * rng.Uniform(options.min_leaf_length, options.max_leaf_length);
  p.detail_px = s * options.detail_length *
                rng.Uniform(1.0 - options.zoom_jitter, 1.0 + options.zoom_jitter);
  // Upright is the tip pointing up (image y grows downwards).
  const double angle = options.max_rotation_deg >= 180
                           ? rng.Uniform(0, 2 * kPi)
                           : -kPi / 2 + rng.Uniform(-1, 1) * options.max_rotation_deg * kPi / 180;
  p.pose.cos_a = std::cos(angle);
  p.pose.sin_a = std::sin(angle);
  p.pose.mirror = rng.Bernoulli(0.5) ? -1.0 : 1.0;
  p.pose.cx = s * (0.5 + rng.Uniform(-options.max_shift, options.max_shift));
  p.pose.cy = s * (0.5 + rng.Uniform(-options.max_shift, options.max_shift));
  return p;
}

// Antialiased coverage masks of the leaf's parts.
struct LeafLayers {
  cv::Mat1b blade;  // blade and petiole
  cv::Mat1b veins;  // midrib 255, secondary veins 190, petiole 160
  cv::Mat1b spots;
};

// `outside`: the traits outside `region`, which also shape the blade.
LeafLayers DrawLeafLayers(const LeafShape& shape, const TraitVector& traits,
                          const TraitVector& outside, TraitRegion region, const Placement& at,
                          int size, Rng& rng) {
  const Pose& pose = at.pose;
  LeafLayers layers{cv::Mat1b(size, size, uint8_t{0}), cv::Mat1b(size, size, uint8_t{0}),
                    cv::Mat1b(size, size, uint8_t{0})};
  const std::vector<std::vector<cv::Point>> outline = {ToFixed(shape.outline, pose)};
  cv::fillPoly(layers.blade, outline, cv::Scalar(255), cv::LINE_AA, kShift);
  const double petiole = rng.Uniform(0.08, 0.16);
  const double bend = rng.Uniform(-0.03, 0.03);
  const std::vector<std::vector<cv::Point>> stalk = {
      ToFixed({{0.02, 0}, {-petiole / 2, bend / 3}, {-petiole, bend}}, pose)};
  const int stalk_width = Thickness(0.012 * at.detail_px);
  cv::polylines(layers.blade, stalk, false, cv::Scalar(255), stalk_width, cv::LINE_AA, kShift);
  cv::polylines(layers.veins, stalk, false, cv::Scalar(160), stalk_width, cv::LINE_AA, kShift);
  std::vector<std::vector<cv::Point>> secondary;
  for (const Polyline& v : shape.secondary_veins) secondary.push_back(ToFixed(v, pose));
  cv::polylines(layers.veins, secondary, false, cv::Scalar(190), Thickness(0.0045 * at.detail_px),
                cv::LINE_AA, kShift);
  const std::vector<std::vector<cv::Point>> midrib = {ToFixed(shape.midrib, pose)};
  cv::polylines(layers.veins, midrib, false, cv::Scalar(255), Thickness(0.008 * at.detail_px),
                cv::LINE_AA, kShift);

  // Spots cover a fixed share of the blade, so their size changes the
  // pattern but not the leaf's mean colour.
  auto radius_of = [&](const TraitVector& t) {
    return TraitValue(t, Trait::kSpotRadius) * at.detail_px / pose.length;
  };
  auto draw_spot = [&](double u, double radius, Rng& r_rng) {
    const double y = r_rng.Uniform(-1.0, 1.0) * BladeHalfWidth(outside, u) * 0.92;
    const double r = radius * r_rng.Uniform(0.8, 1.2) * pose.length;
    const cv::Point2d c = pose.ToPixel({u, y});
    cv::circle(layers.spots, cv::Point(cvRound(c.x * kOne), cvRound(c.y * kOne)),
               cvRound(r * kOne), cv::Scalar(255), cv::FILLED, cv::LINE_AA, kShift);
  };
  if (region.Whole()) {
    const double radius = radius_of(traits);
    const int count = static_cast<int>(std::lround(kSpotCoverage * shape.area / (kPi * radius * radius)));
    for (int i = 0; i < count; ++i) draw_spot(rng.Uniform(0.04, 0.96), radius, rng);
  } else {
    // As many candidates as neutral spots would need; one inside the region
    // is kept with the ratio of spot areas, so coverage stays the same. The
    // region draws from its own stream: the spots outside it are the same
    // for every cultivar.
    Rng inside = rng.Fork(1);
    const double r_out = radius_of(outside), r_in = radius_of(traits);
    const int count = static_cast<int>(std::lround(kSpotCoverage * shape.area / (kPi * r_out * r_out)));
    for (int i = 0; i < count; ++i) {
      const double u = rng.Uniform(0.04, 0.96);
      if (!region.Contains(u)) {
        draw_spot(u, r_out, rng);
      } else if (inside.Bernoulli(std::min(1.0, (r_out * r_out) / (r_in * r_in)))) {
        draw_spot(u, r_in, inside);
      }
    }
    // Spots smaller than neutral ones need more of them: further passes.
    for (double left = (r_out * r_out) / (r_in * r_in) - 1; left > 0; left -= 1) {
      for (int i = 0; i < count; ++i) {
        const double u = inside.Uniform(0.04, 0.96);
        if (region.Contains(u) && inside.Bernoulli(std::min(1.0, left))) draw_spot(u, r_in, inside);
      }
    }
  }
  return layers;
}

// Colours the leaf into `canvas`: a nuisance colour and shading, the
// cultivar's surface network, lighter veins and darker spots.
void PaintLeaf(cv::Mat3f& canvas, const LeafLayers& layers, const TraitVector& traits,
               const TraitVector& outside, TraitRegion region, const Placement& at,
               double texture_contrast, double colour_jitter, Rng& rng) {
  const int s = canvas.rows;
  const Pose& pose = at.pose;
  // Any green from yellowish to bluish, any plausible saturation and value.
  const double hue = rng.Around(70, 125, colour_jitter);
  const double sat = rng.Around(0.35, 0.75, colour_jitter);
  const double val = rng.Around(0.35, 0.7, colour_jitter);
  const cv::Vec3f blade = HsvToRgb(hue, sat, val);
  const cv::Vec3f vein_colour =
      HsvToRgb(hue + rng.Uniform(-10, 5), sat * 0.65, std::min(1.0, val * 1.4));
  const cv::Vec3f spot_colour =
      HsvToRgb(rng.Uniform(25, 45), rng.Uniform(0.4, 0.7), val * rng.Uniform(0.45, 0.65));
  const float vein_strength = static_cast<float>(rng.Uniform(0.35, 0.6));
  const float spot_strength = static_cast<float>(rng.Uniform(0.45, 0.75));
  const float texture_amp = static_cast<float>(rng.Uniform(0.08, 0.14) * texture_contrast);
  const float tilt = static_cast<float>(rng.Uniform(-0.12, 0.12));
  const cv::Mat1f mottle = ValueNoise(s, 6, rng);
  const cv::Mat1f fleck = ValueNoise(s, 18, rng);
  const cv::Mat1f warp1 = ValueNoise(s, 7, rng);
  const cv::Mat1f warp2 = ValueNoise(s, 7, rng);

  // The surface network: two warped gratings in leaf coordinates whose
  // crests form irregular cells of period x (period * anisotropy).
  struct Network {
    double k1, k2, cos_phi, sin_phi;
  };
  auto network_of = [&](const TraitVector& t) {
    const double period = TraitValue(t, Trait::kTexturePeriod) * at.detail_px / pose.length;
    const double phi = TraitValue(t, Trait::kTextureAngle) * kPi / 180.0;
    return Network{2 * kPi / period, 2 * kPi / (period * TraitValue(t, Trait::kTextureAnisotropy)),
                   std::cos(phi), std::sin(phi)};
  };
  const Network in_region = network_of(traits), out_of_region = network_of(outside);

  const cv::Rect box = cv::boundingRect(layers.blade);
  for (int y = box.y; y < box.br().y; ++y) {
    const uint8_t* a = layers.blade.ptr<uint8_t>(y);
    const uint8_t* v = layers.veins.ptr<uint8_t>(y);
    const uint8_t* sp = layers.spots.ptr<uint8_t>(y);
    cv::Vec3f* out = canvas.ptr<cv::Vec3f>(y);
    for (int x = box.x; x < box.br().x; ++x) {
      if (a[x] == 0) continue;
      const LeafPoint q = pose.ToLeaf(x, y);
      const Network& n = region.Contains(q.x) ? in_region : out_of_region;
      const double g1 = std::cos(n.k1 * (q.x * n.cos_phi + q.y * n.sin_phi) + 1.8 * warp1(y, x));
      const double g2 = std::cos(n.k2 * (q.y * n.cos_phi - q.x * n.sin_phi) + 1.8 * warp2(y, x));
      double crest = std::max(0.0, std::max(g1, g2));
      crest *= crest;
      crest *= crest;
      const float side = static_cast<float>(std::clamp(q.y / 0.25, -1.0, 1.0));
      const float shade = 1.0f + 0.07f * mottle(y, x) + 0.03f * fleck(y, x) + tilt * side +
                          texture_amp * static_cast<float>(crest - 0.25);
      cv::Vec3f colour = blade * shade;
      colour += (vein_colour - colour) * (v[x] * vein_strength / 255.0f);
      colour += (spot_colour - colour) * (sp[x] * spot_strength / 255.0f);
      out[x] += (colour - out[x]) * (a[x] / 255.0f);
    }
  }
}

cv::Mat3b Render(const TraitVector& cultivar, uint64_t image_seed, const RenderOptions& options) {
  // One stream per part, so that the parts vary independently.
  const Rng root(image_seed);
  Rng trait_rng = root.Fork(1), shape_rng = root.Fork(2), place_rng = root.Fork(3);
  Rng layer_rng = root.Fork(4), surface_rng = root.Fork(5), background_rng = root.Fork(6);
  Rng shadow_rng = root.Fork(7), occluder_rng = root.Fork(8), camera_rng = root.Fork(9);

  const TraitVector traits = JitterTraits(cultivar, options.trait_jitter, trait_rng);
  const TraitRegion region{options.trait_region_start, options.trait_region_end};
  // Outside the region (and in the blade's shape): the neutral point, or
  // the cultivar itself when the region is the whole blade.
  TraitVector outside = traits;
  if (!region.Whole()) {
    outside.fill(0.5);
    outside = JitterTraits(outside, options.trait_jitter, trait_rng);
  }
  const Placement at = Place(options, place_rng);
  const LeafShape shape = MakeLeafShape(outside, at.detail_px / at.pose.length, shape_rng);
  const LeafLayers layers =
      DrawLeafLayers(shape, traits, outside, region, at, options.size, layer_rng);

  cv::Mat3f canvas(options.size, options.size);
  internal::DrawBackground(canvas, background_rng, options);
  internal::DrawCastShadow(canvas, layers.blade, shadow_rng);
  PaintLeaf(canvas, layers, traits, outside, region, at, options.texture_contrast,
            options.colour_jitter, surface_rng);
  if (occluder_rng.Bernoulli(options.occlusion_probability)) {
    internal::DrawOccluders(canvas, {at.pose.cx, at.pose.cy}, at.pose.length, occluder_rng);
  }
  return internal::ApplyCamera(canvas, camera_rng, options);
}

}  // namespace

absl::Status ValidateRenderOptions(const RenderOptions& o) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (o.size < 32 || o.size > 4096) return bad(absl::StrCat("size must be in [32, 4096], got ", o.size));
  if (!(o.trait_jitter >= 0 && o.trait_jitter <= 1)) return bad("trait_jitter must be in [0, 1]");
  if (!(o.min_leaf_length > 0 && o.min_leaf_length <= o.max_leaf_length && o.max_leaf_length <= 2)) {
    return bad("leaf length range must satisfy 0 < min <= max <= 2");
  }
  if (!(o.detail_length > 0 && o.detail_length <= 2)) return bad("detail_length must be in (0, 2]");
  if (!(o.trait_region_start >= 0 && o.trait_region_start < o.trait_region_end &&
        o.trait_region_end <= 1)) {
    return bad("trait region must satisfy 0 <= start < end <= 1");
  }
  if (!(o.zoom_jitter >= 0 && o.zoom_jitter < 1)) return bad("zoom_jitter must be in [0, 1)");
  if (!(o.colour_jitter >= 0 && o.colour_jitter <= 1)) return bad("colour_jitter must be in [0, 1]");
  if (!(o.texture_contrast >= 0 && o.texture_contrast <= 8)) {
    return bad("texture_contrast must be in [0, 8]");
  }
  if (!(o.max_rotation_deg >= 0 && o.max_rotation_deg <= 180)) {
    return bad("max_rotation_deg must be in [0, 180]");
  }
  if (!(o.max_shift >= 0 && o.max_shift <= 0.5)) return bad("max_shift must be in [0, 0.5]");
  for (double p : {o.blur_probability, o.occlusion_probability, o.jpeg_probability}) {
    if (!(p >= 0 && p <= 1)) return bad("probabilities must be in [0, 1]");
  }
  if (!(o.max_blur_sigma >= 0 && o.max_blur_sigma <= 20)) return bad("max_blur_sigma must be in [0, 20]");
  if (!(o.max_noise_sigma >= 0 && o.max_noise_sigma <= 100)) {
    return bad("max_noise_sigma must be in [0, 100]");
  }
  if (o.max_clutter < 0 || o.max_clutter > 1000) return bad("max_clutter must be in [0, 1000]");
  if (o.min_jpeg_quality < 1 || o.min_jpeg_quality > o.max_jpeg_quality || o.max_jpeg_quality > 100) {
    return bad("JPEG quality range must satisfy 1 <= min <= max <= 100");
  }
  return absl::OkStatus();
}

absl::StatusOr<Image> RenderLeaf(const TraitVector& traits, uint64_t image_seed,
                                 const RenderOptions& options) {
  if (absl::Status s = ValidateRenderOptions(options); !s.ok()) return s;
  try {
    const cv::Mat3b mat = Render(traits, image_seed, options);
    Image image;
    image.width = mat.cols;
    image.height = mat.rows;
    image.rgb.resize(static_cast<size_t>(mat.cols) * mat.rows * 3);
    for (int y = 0; y < mat.rows; ++y) {
      std::copy_n(mat.ptr<uint8_t>(y), 3 * mat.cols, image.rgb.data() + 3 * static_cast<size_t>(y) * mat.cols);
    }
    return image;
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("rendering failed: ", e.what()));
  }
}

absl::StatusOr<std::string> EncodePng(const Image& image, int compression) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("EncodePng: empty image or wrong pixel count");
  }
  if (compression < 0 || compression > 9) {
    return absl::InvalidArgumentError("EncodePng: compression must be in [0, 9]");
  }
  try {
    const cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    std::vector<uint8_t> bytes;
    if (!cv::imencode(".png", bgr, bytes, {cv::IMWRITE_PNG_COMPRESSION, compression, cv::IMWRITE_PNG_STRATEGY,
                                           cv::IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY})) {
      return absl::InternalError("PNG encoding failed");
    }
    return std::string(bytes.begin(), bytes.end());
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("PNG encoding failed: ", e.what()));
  }
}

}  // namespace clca::synth
