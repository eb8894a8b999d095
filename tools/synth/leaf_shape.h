// Leaf geometry in leaf units: the midrib runs along +x from the base (0, 0)
// to the tip (1, 0) and y runs across the blade, so one unit is the leaf
// length. Pure functions of the traits and a random stream; no drawing.
#pragma once

#include <vector>

#include "tools/synth/rng.h"
#include "tools/synth/traits.h"

namespace clca::synth {

struct LeafPoint {
  double x = 0;
  double y = 0;
};

using Polyline = std::vector<LeafPoint>;

struct LeafShape {
  // The blade margin, teeth included: a closed polygon.
  Polyline outline;
  // Base to tip along y = 0.
  Polyline midrib;
  // One polyline per secondary vein, from the midrib towards the margin.
  std::vector<Polyline> secondary_veins;
  // Area enclosed by `outline`, in squared leaf lengths.
  double area = 0;
};

// Half-width of the blade at position u in [0, 1] along the midrib, before
// teeth: an ovate profile scaled to the aspect ratio, with two shallow sinuses
// of depth kLobeDepth.
double BladeHalfWidth(const TraitVector& traits, double u);

// Inward depth of the marginal teeth at u (leaf units), for a tooth phase
// offset `phase` in [0, 1): a sawtooth with kTeeth teeth, tapered to nothing
// near the base and the tip. `detail` is the length of one detail unit in
// leaf units.
double ToothDepth(const TraitVector& traits, double u, double phase, double detail);

// The blade outline and veins of one leaf. `rng` draws the small per-leaf
// irregularities (tooth phases, side asymmetry, vein spacing and angle
// jitter), never a trait. `detail` as for ToothDepth.
LeafShape MakeLeafShape(const TraitVector& traits, double detail, Rng& rng);

}  // namespace clca::synth
