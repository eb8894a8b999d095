#include "tools/synth/traits.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "tools/synth/rng.h"

namespace clca::synth {
namespace {

// Ranges are chosen so that one step between siblings moves a structure by
// about a pixel at 224 px input: visible at full resolution, lost when the
// image is downsampled a few times.
constexpr std::array<TraitSpec, kNumTraits> kSpecs = {{
    {"aspect_ratio", 0.44, 0.52},
    {"lobe_depth", 0.0, 0.10},
    {"vein_angle_deg", 34.0, 58.0},
    {"vein_pairs", 6.0, 11.0},
    {"vein_curvature", 0.0, 0.6},
    {"vein_offset", 0.0, 0.5},
    {"teeth", 16.0, 36.0},
    {"tooth_depth", 0.004, 0.014},
    {"tooth_shape", 0.5, 2.0},
    {"texture_period", 0.016, 0.030},
    {"texture_angle_deg", 0.0, 90.0},
    {"texture_anisotropy", 1.0, 1.8},
    {"spot_radius", 0.005, 0.013},
}};

// Salts keep the family and member streams apart.
constexpr uint64_t kFamilySalt = 0x66616d696c79ULL;
constexpr uint64_t kMemberSalt = 0x6d656d626572ULL;

}  // namespace

const TraitSpec& GetTraitSpec(Trait trait) { return kSpecs[static_cast<int>(trait)]; }

double TraitValue(const TraitVector& traits, Trait trait) {
  const TraitSpec& spec = GetTraitSpec(trait);
  const double t = std::clamp(traits[static_cast<int>(trait)], 0.0, 1.0);
  return spec.min_value + t * (spec.max_value - spec.min_value);
}

int CultivarFamily(int class_id, const CultivarOptions& options) {
  return class_id / std::max(1, options.family_size);
}

TraitVector CultivarTraits(int class_id, const CultivarOptions& options) {
  const int family = CultivarFamily(class_id, options);
  Rng family_rng(HashValues({options.cultivar_seed, kFamilySalt, static_cast<uint64_t>(family)}));
  Rng member_rng(HashValues({options.cultivar_seed, kMemberSalt, static_cast<uint64_t>(class_id)}));
  const double spread = std::clamp(options.family_spread, 0.0, 0.5);
  TraitVector traits;
  for (int i = 0; i < kNumTraits; ++i) {
    const double centre = family_rng.Uniform(0.5 - spread, 0.5 + spread);
    const double offset = member_rng.Uniform(-options.member_spread, options.member_spread);
    traits[i] = std::clamp(centre + offset, 0.0, 1.0);
  }
  return traits;
}

std::string CultivarName(int class_id) { return absl::StrFormat("cultivar_%03d", class_id); }

double TraitDistance(const TraitVector& a, const TraitVector& b) {
  double sum = 0;
  for (int i = 0; i < kNumTraits; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum);
}

}  // namespace clca::synth
