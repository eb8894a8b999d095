// Cultivar traits: the only things that tell one synthetic cultivar from
// another. Each cultivar is a point in a normalised trait space [0,1]^T; the
// table below maps a coordinate to its physical value. All traits are small
// structures (vein layout, margin teeth, surface texture, spots) or weak
// shape cues, never global colour or size, which are per-image nuisances.
// Fine structures are measured in detail units, a fixed physical length (see
// RenderOptions::detail_length): they do not grow with the leaf, so a large
// leaf is not a magnified small one.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace clca::synth {

enum class Trait : int {
  kAspectRatio = 0,   // leaf width / length (a weak cue: jittered per image)
  kLobeDepth,         // depth of two shallow sinuses, fraction of the half-width
  kVeinAngle,         // angle of the secondary veins to the midrib, degrees
  kVeinPairs,         // secondary veins per side
  kVeinCurvature,     // fraction of its angle a secondary vein loses by the margin
  kVeinOffset,        // shift of one side's veins, fraction of the spacing
  kTeeth,             // marginal teeth per side
  kToothDepth,        // tooth depth, in detail units (see below)
  kToothShape,        // flank exponent: < 1 convex (crenate), > 1 concave (sharp)
  kTexturePeriod,     // surface-network cell size, in detail units
  kTextureAngle,      // network orientation to the midrib, degrees
  kTextureAnisotropy, // ratio of the network's two cell sides
  kSpotRadius,        // radius of the surface spots, in detail units
  kCount,
};

inline constexpr int kNumTraits = static_cast<int>(Trait::kCount);

struct TraitSpec {
  const char* name;
  double min_value;  // physical value at coordinate 0
  double max_value;  // physical value at coordinate 1
};

// The physical range of every trait, indexed by Trait.
const TraitSpec& GetTraitSpec(Trait trait);

// Normalised coordinates in [0, 1], indexed by Trait.
using TraitVector = std::array<double, kNumTraits>;

// The physical value of `trait` at the normalised point `traits`.
double TraitValue(const TraitVector& traits, Trait trait);

struct CultivarOptions {
  // Seed of the trait space. Cultivar traits are a pure function of
  // (class id, cultivar_seed, the fields below), so datasets made with the
  // same cultivar seed share their cultivars whatever their image seed.
  uint64_t cultivar_seed = 2025;
  // Consecutive class ids form families of this many sibling cultivars that
  // share a trait centre: siblings are the nearest neighbours in trait space
  // and the hardest pairs to tell apart.
  int family_size = 4;
  // A family centre is uniform in [0.5 - family_spread, 0.5 + family_spread]
  // on every trait. Must lie in [0, 0.5].
  double family_spread = 0.35;
  // A cultivar sits uniformly within +-member_spread of its family centre on
  // every trait (clamped to [0, 1]). Smaller values make siblings closer and
  // the task harder; compare with the per-image trait jitter of the renderer.
  double member_spread = 0.12;
};

// The traits of cultivar `class_id` (>= 0).
TraitVector CultivarTraits(int class_id, const CultivarOptions& options);

// The family of cultivar `class_id`.
int CultivarFamily(int class_id, const CultivarOptions& options);

// The display name of a cultivar, e.g. "cultivar_007".
std::string CultivarName(int class_id);

// Euclidean distance between two trait points, in normalised units.
double TraitDistance(const TraitVector& a, const TraitVector& b);

}  // namespace clca::synth
