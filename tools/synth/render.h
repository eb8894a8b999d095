// Renders one photograph-like image of a leaf of a given cultivar. The
// cultivar's traits decide the fine structure (veins, teeth, surface network,
// spots); everything else is a nuisance drawn from the image seed: pose,
// scale, leaf colour, lighting, background and clutter, occluders, blur,
// noise and JPEG artefacts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/synth/traits.h"

namespace clca::synth {

// An 8-bit RGB image, interleaved and row-major (height x width x 3).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

struct RenderOptions {
  // Side of the square image, pixels; in [32, 4096]. Every length below that
  // is given in pixels refers to a 320 px image and scales with `size`.
  int size = 320;
  // Natural variation of a leaf around its cultivar: Gaussian sigma added to
  // every normalised trait coordinate per image. Compare with
  // CultivarOptions::member_spread.
  double trait_jitter = 0.02;
  // Leaf length (base to tip) as a fraction of `size`, uniform per image.
  double min_leaf_length = 0.55;
  double max_leaf_length = 0.82;
  // Pixel length of one detail unit (the unit of the fine-structure traits:
  // tooth depth, surface network, spots; vein widths follow it too), as a
  // fraction of `size`, times a camera zoom uniform in
  // [1 - zoom_jitter, 1 + zoom_jitter]. Fine structures keep their physical
  // size whatever the leaf's length, as under a scanner or a camera at a
  // roughly fixed distance; zoom_jitter is the part of the scale nuisance
  // that also magnifies them.
  double detail_length = 0.7;
  double zoom_jitter = 0.05;
  // Width of the per-image colour and lighting nuisances (leaf colour,
  // brightness, gradient, vignette, contrast, white balance) as a fraction of
  // their full ranges, in [0, 1]; 0 gives every leaf the same colour under the
  // same light.
  double colour_jitter = 1;
  // Ground under the leaf: any of soil, paper or scanner bed, foliage and
  // cloth (false), or always a pale paper or scanner bed (true), as in
  // datasets of scanned leaves.
  bool scanner_background = false;
  // Multiplier of the surface network's contrast (its amplitude is uniform in
  // [0.08, 0.14] of the leaf's brightness times this), in [0, 8]. The network
  // is the cultivar trait a patch shows most often; a larger value makes the
  // cultivars easier to learn without making them coarser.
  double texture_contrast = 1;
  // The stretch of the blade, from base (0) to tip (1), where the cultivar
  // shows. Outside it the surface network and spots take the neutral trait
  // point (0.5 on every trait), the same for all cultivars; when the stretch
  // is not the whole blade, the outline and veins are neutral everywhere, so
  // cultivars differ only inside it and a model must look there. Must satisfy
  // 0 <= start < end <= 1.
  double trait_region_start = 0;
  double trait_region_end = 1;
  // Largest turn of the leaf from upright (tip up), degrees, in [0, 180].
  // 180 gives any orientation; a small value mimics leaves laid out on a
  // scanner, as in the soybean datasets.
  double max_rotation_deg = 180;
  // Largest shift of the leaf centre from the image centre, fraction of size.
  double max_shift = 0.10;
  // Probability of a Gaussian blur, and its largest sigma (pixels at 320 px).
  // Strong blur erases the traits, so keep it below a pixel.
  double blur_probability = 0.5;
  double max_blur_sigma = 0.7;
  // Largest sigma of the additive sensor noise, in 8-bit levels.
  double max_noise_sigma = 5.0;
  // Probability that one or two objects partly cover the leaf.
  double occlusion_probability = 0.35;
  // Most clutter shapes drawn on the background (uniform in [0, max]).
  int max_clutter = 8;
  // Probability of a JPEG round trip, with quality uniform in the range.
  double jpeg_probability = 0.2;
  int min_jpeg_quality = 60;
  int max_jpeg_quality = 92;
};

// INVALID_ARGUMENT when an option is out of range.
absl::Status ValidateRenderOptions(const RenderOptions& options);

// One image of a leaf with cultivar traits `traits`. The result is a pure
// function of (traits, image_seed, options). INVALID_ARGUMENT for bad
// options, INTERNAL if OpenCV fails.
absl::StatusOr<Image> RenderLeaf(const TraitVector& traits, uint64_t image_seed,
                                 const RenderOptions& options);

// PNG bytes of `image`; `compression` is zlib's level in [0, 9]. Huffman-only
// coding: string matching finds little in noisy photographs and costs time.
absl::StatusOr<std::string> EncodePng(const Image& image, int compression = 1);

}  // namespace clca::synth
