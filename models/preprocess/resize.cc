// PIL-compatible separable bicubic resampling of 8-bit RGB images.
//
// Reproduces Pillow's ImagingResample for 8-bit images bit for bit: the same
// filter support and box limits, the same per-output normalised coefficients
// rounded to 22-bit fixed point, the horizontal pass first, and rounding plus
// clamping to 8 bits after each pass. Every output pixel depends only on its
// own taps, so a window of the resized image can be computed on its own.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "models/preprocess/preprocess.h"

namespace clca {
namespace {

// Fixed-point fraction bits of the coefficients (8 bits of pixel value and
// 2 bits of headroom for the kernel's negative lobes).
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution kernel with a = -0.5.
double BicubicKernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Fixed-point taps for a range of output positions along one axis.
struct Taps {
  int ksize = 0;               // Coefficient slots per output position.
  std::vector<int> first;      // First input index used by each output.
  std::vector<int> count;      // Number of inputs used by each output.
  std::vector<int32_t> coeff;  // ksize fixed-point weights per output.
};

// Taps for outputs [out_begin, out_begin + n) of an in_size -> out_size
// resampling.
Taps ComputeTaps(int in_size, int out_size, int out_begin, int n) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  const double inv_filter_scale = 1.0 / filter_scale;

  Taps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(n);
  taps.count.resize(n);
  taps.coeff.assign(static_cast<size_t>(n) * taps.ksize, 0);
  std::vector<double> w(taps.ksize);
  for (int i = 0; i < n; ++i) {
    const double center = (out_begin + i + 0.5) * scale;
    // Truncation towards zero after adding 0.5, as PIL rounds the limits.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int count = hi - lo;
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      w[k] = BicubicKernel((k + lo - center + 0.5) * inv_filter_scale);
      total += w[k];
    }
    int32_t* out = &taps.coeff[static_cast<size_t>(i) * taps.ksize];
    for (int k = 0; k < count; ++k) {
      const double v = total != 0.0 ? w[k] / total : w[k];
      out[k] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits)
                                          : 0.5 + v * (1 << kPrecisionBits));
    }
    taps.first[i] = lo;
    taps.count[i] = count;
  }
  return taps;
}

inline uint8_t Clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

constexpr int32_t kRoundHalf = 1 << (kPrecisionBits - 1);

}  // namespace

std::vector<uint8_t> ResizeCropBicubicPil(const uint8_t* rgb, int width, int height, int out_w,
                                          int out_h, int left, int top, int crop_w, int crop_h) {
  std::vector<uint8_t> out(static_cast<size_t>(crop_w) * crop_h * 3);
  if (crop_w <= 0 || crop_h <= 0) return out;
  const bool need_horizontal = out_w != width;
  const bool need_vertical = out_h != height;

  // Rows of the source the vertical pass reads: [row_begin, row_end).
  Taps vtaps;
  int row_begin = top;
  int row_end = top + crop_h;
  if (need_vertical) {
    vtaps = ComputeTaps(height, out_h, top, crop_h);
    row_begin = vtaps.first[0];
    row_end = vtaps.first[crop_h - 1] + vtaps.count[crop_h - 1];
  }
  const int rows = row_end - row_begin;

  // Horizontal pass (or a copy of the needed columns) into `mid`:
  // rows x crop_w x 3.
  std::vector<uint8_t> mid(static_cast<size_t>(rows) * crop_w * 3);
  if (need_horizontal) {
    const Taps htaps = ComputeTaps(width, out_w, left, crop_w);
    for (int y = 0; y < rows; ++y) {
      const uint8_t* src = rgb + static_cast<size_t>(row_begin + y) * width * 3;
      uint8_t* dst = &mid[static_cast<size_t>(y) * crop_w * 3];
      for (int x = 0; x < crop_w; ++x) {
        const int32_t* k = &htaps.coeff[static_cast<size_t>(x) * htaps.ksize];
        const uint8_t* p = src + static_cast<size_t>(htaps.first[x]) * 3;
        int32_t r = kRoundHalf, g = kRoundHalf, b = kRoundHalf;
        for (int i = 0, n = htaps.count[x]; i < n; ++i, p += 3) {
          r += p[0] * k[i];
          g += p[1] * k[i];
          b += p[2] * k[i];
        }
        dst[3 * x + 0] = Clip8(r);
        dst[3 * x + 1] = Clip8(g);
        dst[3 * x + 2] = Clip8(b);
      }
    }
  } else {
    for (int y = 0; y < rows; ++y) {
      std::memcpy(&mid[static_cast<size_t>(y) * crop_w * 3],
                  rgb + (static_cast<size_t>(row_begin + y) * width + left) * 3,
                  static_cast<size_t>(crop_w) * 3);
    }
  }
  if (!need_vertical) {
    out.swap(mid);
    return out;
  }

  // Vertical pass over `mid`.
  const size_t stride = static_cast<size_t>(crop_w) * 3;
  std::vector<int32_t> acc(stride);
  for (int y = 0; y < crop_h; ++y) {
    const int32_t* k = &vtaps.coeff[static_cast<size_t>(y) * vtaps.ksize];
    const uint8_t* src = &mid[static_cast<size_t>(vtaps.first[y] - row_begin) * stride];
    std::fill(acc.begin(), acc.end(), kRoundHalf);
    for (int i = 0, n = vtaps.count[y]; i < n; ++i, src += stride) {
      const int32_t ki = k[i];
      for (size_t c = 0; c < stride; ++c) acc[c] += src[c] * ki;
    }
    uint8_t* dst = &out[static_cast<size_t>(y) * stride];
    for (size_t c = 0; c < stride; ++c) dst[c] = Clip8(acc[c]);
  }
  return out;
}

std::vector<uint8_t> ResizeBicubicPil(const uint8_t* rgb, int width, int height, int out_w,
                                      int out_h) {
  return ResizeCropBicubicPil(rgb, width, height, out_w, out_h, 0, 0, out_w, out_h);
}

}  // namespace clca
