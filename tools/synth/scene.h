// Drawing helpers of the renderer: colours, smooth noise, backgrounds,
// clutter, occluders and the camera model. Internal to clca_synth; images are
// float RGB in [0, 255] (CV_32FC3). OpenCV may throw; RenderLeaf catches.
#pragma once

#include <opencv2/core.hpp>

#include "tools/synth/render.h"
#include "tools/synth/rng.h"

namespace clca::synth::internal {

// RGB in [0, 255] of a colour given as hue in degrees, saturation and value
// in [0, 1].
cv::Vec3f HsvToRgb(double hue_deg, double saturation, double value);

// Smooth noise of roughly unit amplitude over a size x size image, with about
// `cells` features across it.
cv::Mat1f ValueNoise(int size, int cells, Rng& rng);

// Fills `canvas` with one of several grounds (soil, paper, foliage, cloth)
// and up to `options.max_clutter` shapes lying on it.
void DrawBackground(cv::Mat3f& canvas, Rng& rng, const RenderOptions& options);

// Darkens `canvas` by the leaf's cast shadow, given the leaf's alpha mask.
void DrawCastShadow(cv::Mat3f& canvas, const cv::Mat1b& leaf_alpha, Rng& rng);

// One or two objects partly covering a leaf centred at `centre` with length
// `leaf_length` pixels: twigs, pebbles, other leaves, a fingertip, a shadow.
void DrawOccluders(cv::Mat3f& canvas, cv::Point2d centre, double leaf_length, Rng& rng);

// Lighting (brightness, gradient, vignette, contrast, white balance), optics
// blur, sensor noise, 8-bit quantisation and an optional JPEG round trip.
cv::Mat3b ApplyCamera(const cv::Mat3f& canvas, Rng& rng, const RenderOptions& options);

// Blends `colour` into `canvas` through the 8-bit alpha `mask` (scaled by
// `opacity`) inside `box`.
void BlendMask(cv::Mat3f& canvas, const cv::Mat1b& mask, cv::Rect box, cv::Vec3f colour,
               float opacity);

}  // namespace clca::synth::internal
