#include "tools/synth/leaf_shape.h"

#include <algorithm>
#include <cmath>

namespace clca::synth {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Exponents of the profile u^a (1-u)^b: widest at a / (a + b) ~ 0.38, with a
// rounded base and a slightly acute tip.
constexpr double kBaseExponent = 0.55;
constexpr double kTipExponent = 0.9;
// Positions and width of the two sinuses.
constexpr double kSinus1 = 0.34;
constexpr double kSinus2 = 0.62;
constexpr double kSinusWidth = 0.05;
// Secondary veins stop short of the margin at this fraction of the half-width.
constexpr double kVeinReach = 0.86;

double SmoothStep(double edge0, double edge1, double x) {
  const double t = std::clamp((x - edge0) / (edge1 - edge0), 0.0, 1.0);
  return t * t * (3.0 - 2.0 * t);
}

double ProfileMax() {
  const double u = kBaseExponent / (kBaseExponent + kTipExponent);
  return std::pow(u, kBaseExponent) * std::pow(1.0 - u, kTipExponent);
}

}  // namespace

double BladeHalfWidth(const TraitVector& traits, double u) {
  if (u <= 0.0 || u >= 1.0) return 0.0;
  static const double kProfileMax = ProfileMax();
  const double profile =
      std::pow(u, kBaseExponent) * std::pow(1.0 - u, kTipExponent) / kProfileMax;
  const double lobe = TraitValue(traits, Trait::kLobeDepth);
  const double g1 = (u - kSinus1) / kSinusWidth;
  const double g2 = (u - kSinus2) / kSinusWidth;
  const double sinus = 1.0 - lobe * (std::exp(-g1 * g1) + std::exp(-g2 * g2));
  return 0.5 * TraitValue(traits, Trait::kAspectRatio) * profile * sinus;
}

double ToothDepth(const TraitVector& traits, double u, double phase, double detail) {
  const double teeth = TraitValue(traits, Trait::kTeeth);
  const double depth = TraitValue(traits, Trait::kToothDepth) * detail;
  const double shape = TraitValue(traits, Trait::kToothShape);
  const double taper = SmoothStep(0.05, 0.2, u) * (1.0 - SmoothStep(0.88, 0.98, u));
  double t = teeth * u + phase;
  t -= std::floor(t);
  // The margin recedes along 85% of a tooth and returns along the rest, so
  // teeth lean towards the tip.
  const double rise = 0.85;
  const double profile = t < rise ? std::pow(t / rise, shape) : (1.0 - t) / (1.0 - rise);
  return depth * taper * profile;
}

LeafShape MakeLeafShape(const TraitVector& traits, double detail, Rng& rng) {
  LeafShape shape;
  // Per-leaf irregularities: the two sides differ a little in width and in
  // where their teeth start.
  const double asymmetry = rng.Uniform(-0.04, 0.04);
  const double side_scale[2] = {1.0 + asymmetry, 1.0 - asymmetry};
  const double phase[2] = {rng.Uniform(), rng.Uniform()};

  const double teeth = TraitValue(traits, Trait::kTeeth);
  const int samples = std::max(400, static_cast<int>(teeth * 24));
  auto margin = [&](int side, double u) {
    const double w = BladeHalfWidth(traits, u) * side_scale[side];
    return std::max(0.0, w - ToothDepth(traits, u, phase[side], detail));
  };
  // Upper side base to tip, then lower side tip to base.
  for (int k = 0; k <= samples; ++k) {
    const double u = static_cast<double>(k) / samples;
    shape.outline.push_back({u, margin(0, u)});
  }
  for (int k = samples - 1; k > 0; --k) {
    const double u = static_cast<double>(k) / samples;
    shape.outline.push_back({u, -margin(1, u)});
  }
  double area2 = 0;
  for (size_t i = 0; i < shape.outline.size(); ++i) {
    const LeafPoint& a = shape.outline[i];
    const LeafPoint& b = shape.outline[(i + 1) % shape.outline.size()];
    area2 += a.x * b.y - b.x * a.y;
  }
  shape.area = std::abs(area2) / 2.0;

  for (int k = 0; k <= 40; ++k) shape.midrib.push_back({0.97 * k / 40.0, 0.0});

  const double pairs = TraitValue(traits, Trait::kVeinPairs);
  const double angle = TraitValue(traits, Trait::kVeinAngle) * kPi / 180.0;
  const double curvature = TraitValue(traits, Trait::kVeinCurvature);
  const double offset = TraitValue(traits, Trait::kVeinOffset);
  const double spacing = 0.86 / pairs;
  for (int side = 0; side < 2; ++side) {
    const double sign = side == 0 ? 1.0 : -1.0;
    for (double u0 = 0.06 + 0.5 * spacing + side * offset * spacing; u0 < 0.9; u0 += spacing) {
      const double start = u0 + rng.Uniform(-0.08, 0.08) * spacing;
      const double theta0 = angle + rng.Uniform(-0.04, 0.04);
      Polyline vein = {{start, 0.0}};
      LeafPoint p = vein.back();
      for (int step = 0; step < 200; ++step) {
        const double half = BladeHalfWidth(traits, p.x) * side_scale[side];
        const double reach = half > 0 ? std::abs(p.y) / half : 1.0;
        if (reach >= kVeinReach || p.x >= 0.97) break;
        const double theta = theta0 * (1.0 - curvature * reach);
        p.x += 0.008 * std::cos(theta);
        p.y += sign * 0.008 * std::sin(theta);
        vein.push_back(p);
      }
      if (vein.size() >= 3) shape.secondary_veins.push_back(std::move(vein));
    }
  }
  return shape;
}

}  // namespace clca::synth
