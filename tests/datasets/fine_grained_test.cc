// The synthetic cultivars are ultra-fine-grained but learnable: a linear
// probe on global colour and size statistics is near chance, while a probe on
// the fine-scale spectrum of the leaf does far better at full resolution than
// after a 4x downsampling. 540 images of 256 px; a few seconds.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <complex>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tools/synth/dataset_writer.h"
#include "tools/synth/render.h"
#include "tools/synth/traits.h"

namespace clca::synth {
namespace {

using Features = std::vector<double>;

constexpr int kSize = 256;
constexpr int kClasses = 12;  // three families of four siblings
constexpr int kTrainPerClass = 30;
constexpr int kTestPerClass = 15;
constexpr double kPi = 3.14159265358979323846;

// Pixels that look like leaf: green clearly above red and blue.
std::vector<uint8_t> GreenMask(const Image& im) {
  std::vector<uint8_t> mask(static_cast<size_t>(im.width) * im.height);
  for (size_t i = 0; i < mask.size(); ++i) {
    const int r = im.rgb[3 * i], g = im.rgb[3 * i + 1], b = im.rgb[3 * i + 2];
    mask[i] = g > r + 8 && g > b + 8;
  }
  return mask;
}

std::vector<double> Grey(const Image& im) {
  std::vector<double> grey(static_cast<size_t>(im.width) * im.height);
  for (size_t i = 0; i < grey.size(); ++i) {
    grey[i] = 0.299 * im.rgb[3 * i] + 0.587 * im.rgb[3 * i + 1] + 0.114 * im.rgb[3 * i + 2];
  }
  return grey;
}

// Global statistics: per-channel mean and spread, the green area, and the
// mean colour of the green pixels.
Features GlobalFeatures(const Image& im) {
  const std::vector<uint8_t> mask = GreenMask(im);
  const size_t n = mask.size();
  Features f;
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum2 = 0, leaf = 0, count = 0;
    for (size_t i = 0; i < n; ++i) {
      const double v = im.rgb[3 * i + c];
      sum += v;
      sum2 += v * v;
      if (mask[i]) leaf += v, ++count;
    }
    f.push_back(sum / n);
    f.push_back(std::sqrt(std::max(0.0, sum2 / n - (sum / n) * (sum / n))));
    f.push_back(count > 0 ? leaf / count : 0.0);
  }
  double area = 0;
  for (uint8_t m : mask) area += m;
  f.push_back(area / n);
  return f;
}

// a * b without the inf/nan handling of std::complex's operator* (slow).
std::complex<double> Mul(std::complex<double> a, std::complex<double> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// In-place radix-2 FFT of `a` (size a power of two).
void Fft(std::vector<std::complex<double>>& a) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const std::complex<double> step = std::polar(1.0, -2 * kPi / len);
    for (size_t i = 0; i < n; i += len) {
      std::complex<double> w = 1;
      for (size_t k = 0; k < len / 2; ++k, w = Mul(w, step)) {
        const std::complex<double> u = a[i + k], v = Mul(a[i + k + len / 2], w);
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
      }
    }
  }
}

// Box blur of radius r, separable, clamped at the border.
std::vector<double> BoxBlur(const std::vector<double>& in, int s, int r) {
  std::vector<double> tmp(in.size()), out(in.size());
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      double sum = 0;
      for (int d = -r; d <= r; ++d) sum += in[y * s + std::clamp(x + d, 0, s - 1)];
      tmp[y * s + x] = sum / (2 * r + 1);
    }
  }
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      double sum = 0;
      for (int d = -r; d <= r; ++d) sum += tmp[std::clamp(y + d, 0, s - 1) * s + x];
      out[y * s + x] = sum / (2 * r + 1);
    }
  }
  return out;
}

// The grey image averaged over f x f blocks and bilinearly enlarged back:
// what survives a downsampling by f.
std::vector<double> DownUp(const std::vector<double>& grey, int s, int f) {
  const int n = s / f;
  std::vector<double> small(static_cast<size_t>(n) * n, 0.0), out(grey.size());
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) small[(y / f) * n + x / f] += grey[y * s + x] / (f * f);
  }
  for (int y = 0; y < s; ++y) {
    const double fy = std::clamp((y + 0.5) / f - 0.5, 0.0, n - 1.0);
    const int y0 = std::min(static_cast<int>(fy), n - 2);
    for (int x = 0; x < s; ++x) {
      const double fx = std::clamp((x + 0.5) / f - 0.5, 0.0, n - 1.0);
      const int x0 = std::min(static_cast<int>(fx), n - 2);
      const double wy = fy - y0, wx = fx - x0;
      out[y * s + x] = (1 - wy) * ((1 - wx) * small[y0 * n + x0] + wx * small[y0 * n + x0 + 1]) +
                       wy * ((1 - wx) * small[(y0 + 1) * n + x0] + wx * small[(y0 + 1) * n + x0 + 1]);
    }
  }
  return out;
}

// A window over the leaf interior: the green mask, softened and pulled in
// from the leaf edge so that the outline does not dominate the spectrum.
std::vector<double> LeafWindow(const std::vector<uint8_t>& mask) {
  std::vector<double> m(mask.begin(), mask.end());
  double covered = 0;
  for (double v : m) covered += v;
  if (covered < 1000) std::fill(m.begin(), m.end(), 1.0);  // no leaf found: whole image
  std::vector<double> w = BoxBlur(BoxBlur(m, kSize, 3), kSize, 3);
  for (double& v : w) v = std::max(0.0, 2.0 * v - 1.0);
  return w;
}

constexpr int kBands = 24;

// The spectral band (24 log-spaced from 0.02 to 0.5 cycles per pixel) of
// each FFT bin, -1 outside.
const std::vector<int>& BandOfBin() {
  static const std::vector<int> bands = [] {
    const int s = kSize;
    const double lo = std::log(0.02), hi = std::log(0.5);
    std::vector<int> b(static_cast<size_t>(s) * s, -1);
    for (int y = 0; y < s; ++y) {
      for (int x = 0; x < s; ++x) {
        const double fy = (y <= s / 2 ? y : y - s) / static_cast<double>(s);
        const double fx = (x <= s / 2 ? x : x - s) / static_cast<double>(s);
        const double r = std::sqrt(fx * fx + fy * fy);
        if (r < 0.02 || r > 0.5) continue;
        b[y * s + x] = std::min(kBands - 1, static_cast<int>((std::log(r) - lo) / (hi - lo) * kBands));
      }
    }
    return b;
  }();
  return bands;
}

// Rotation- and translation-invariant texture signature: the log radial
// power spectrum of the windowed grey image, band by band.
Features SpectrumFeatures(const std::vector<double>& grey, const std::vector<double>& w) {
  const int s = kSize;
  double mean = 0, wsum = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    mean += w[i] * grey[i];
    wsum += w[i];
  }
  mean /= std::max(wsum, 1e-9);
  std::vector<std::complex<double>> plane(w.size());
  for (size_t i = 0; i < w.size(); ++i) plane[i] = w[i] * (grey[i] - mean);
  std::vector<std::complex<double>> line(s);
  for (int y = 0; y < s; ++y) {
    std::copy_n(plane.begin() + y * s, s, line.begin());
    Fft(line);
    std::copy_n(line.begin(), s, plane.begin() + y * s);
  }
  for (int x = 0; x < s; ++x) {
    for (int y = 0; y < s; ++y) line[y] = plane[y * s + x];
    Fft(line);
    for (int y = 0; y < s; ++y) plane[y * s + x] = line[y];
  }
  const std::vector<int>& band = BandOfBin();
  std::vector<double> power(kBands, 0.0), count(kBands, 0.0);
  for (size_t i = 0; i < plane.size(); ++i) {
    if (band[i] < 0) continue;
    power[band[i]] += std::norm(plane[i]);
    count[band[i]] += 1;
  }
  double total = 1e-12;
  for (int b = 0; b < kBands; ++b) total += power[b] /= std::max(1.0, count[b]);
  Features f;
  for (double p : power) f.push_back(std::log(p / total + 1e-9));
  return f;
}

// Solves a x = b in place (Gaussian elimination with partial pivoting).
std::vector<double> Solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
    }
    std::swap(a[c], a[p]);
    std::swap(b[c], b[p]);
    for (size_t r = c + 1; r < n; ++r) {
      const double k = a[r][c] / a[c][c];
      for (size_t j = c; j < n; ++j) a[r][j] -= k * a[c][j];
      b[r] -= k * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t i = n; i-- > 0;) {
    double v = b[i];
    for (size_t j = i + 1; j < n; ++j) v -= a[i][j] * x[j];
    x[i] = v / a[i][i];
  }
  return x;
}

// Linear discriminant analysis with a shrunk pooled covariance on
// standardised features; returns the test accuracy.
double LinearProbeAccuracy(const std::vector<Features>& train, const std::vector<int>& train_y,
                           const std::vector<Features>& test, const std::vector<int>& test_y) {
  const size_t d = train[0].size();
  std::vector<double> mu(d, 0.0), sd(d, 0.0);
  for (const Features& f : train) {
    for (size_t i = 0; i < d; ++i) mu[i] += f[i] / train.size();
  }
  for (const Features& f : train) {
    for (size_t i = 0; i < d; ++i) sd[i] += (f[i] - mu[i]) * (f[i] - mu[i]) / train.size();
  }
  for (double& v : sd) v = std::sqrt(v) + 1e-9;
  auto standard = [&](const Features& f) {
    Features z(d);
    for (size_t i = 0; i < d; ++i) z[i] = (f[i] - mu[i]) / sd[i];
    return z;
  };
  std::vector<Features> means(kClasses, Features(d, 0.0));
  std::vector<int> counts(kClasses, 0);
  for (size_t n = 0; n < train.size(); ++n) {
    const Features z = standard(train[n]);
    for (size_t i = 0; i < d; ++i) means[train_y[n]][i] += z[i];
    ++counts[train_y[n]];
  }
  for (int k = 0; k < kClasses; ++k) {
    for (double& v : means[k]) v /= std::max(1, counts[k]);
  }
  std::vector<std::vector<double>> cov(d, std::vector<double>(d, 0.0));
  for (size_t n = 0; n < train.size(); ++n) {
    const Features z = standard(train[n]);
    for (size_t i = 0; i < d; ++i) {
      for (size_t j = 0; j < d; ++j) {
        cov[i][j] += (z[i] - means[train_y[n]][i]) * (z[j] - means[train_y[n]][j]) / train.size();
      }
    }
  }
  constexpr double kShrink = 0.1;
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) cov[i][j] = (1 - kShrink) * cov[i][j] + (i == j ? kShrink : 0.0);
  }
  // Class scores w_k . z + b_k with w_k = cov^-1 mu_k, b_k = -w_k . mu_k / 2.
  std::vector<Features> weights;
  std::vector<double> bias;
  for (int k = 0; k < kClasses; ++k) {
    weights.push_back(Solve(cov, means[k]));
    double b = 0;
    for (size_t i = 0; i < d; ++i) b -= 0.5 * weights[k][i] * means[k][i];
    bias.push_back(b);
  }
  int correct = 0;
  for (size_t n = 0; n < test.size(); ++n) {
    const Features z = standard(test[n]);
    int best = 0;
    double best_score = -1e300;
    for (int k = 0; k < kClasses; ++k) {
      double score = bias[k];
      for (size_t i = 0; i < d; ++i) score += weights[k][i] * z[i];
      if (score > best_score) best_score = score, best = k;
    }
    correct += best == test_y[n];
  }
  return static_cast<double>(correct) / test.size();
}

struct Sample {
  int class_id = 0;
  bool test = false;
  Features global, fine, half, coarse;
};

TEST(FineGrainedTest, DetailNotColourTellsCultivarsApart) {
  RenderOptions options;
  options.size = kSize;
  const CultivarOptions cultivars;
  std::vector<Sample> samples;
  for (int c = 0; c < kClasses; ++c) {
    for (int i = 0; i < kTrainPerClass + kTestPerClass; ++i) {
      samples.push_back({c, i >= kTrainPerClass, {}, {}, {}, {}});
    }
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t j = next++; j < samples.size(); j = next++) {
      Sample& s = samples[j];
      const int i = static_cast<int>(j % (kTrainPerClass + kTestPerClass));
      const uint64_t seed = s.test ? ImageSeed(11, s.class_id, Split::kTest, i - kTrainPerClass)
                                   : ImageSeed(11, s.class_id, Split::kTrain, i);
      auto image = RenderLeaf(CultivarTraits(s.class_id, cultivars), seed, options);
      if (!image.ok()) {
        failed = true;
        continue;
      }
      const std::vector<double> window = LeafWindow(GreenMask(*image));
      const std::vector<double> grey = Grey(*image);
      s.global = GlobalFeatures(*image);
      s.fine = SpectrumFeatures(grey, window);
      s.half = SpectrumFeatures(DownUp(grey, kSize, 2), window);
      s.coarse = SpectrumFeatures(DownUp(grey, kSize, 4), window);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) pool.emplace_back(work);
  for (std::thread& t : pool) t.join();
  ASSERT_FALSE(failed);

  auto accuracy = [&](Features Sample::*field) {
    std::vector<Features> train, test;
    std::vector<int> train_y, test_y;
    for (const Sample& s : samples) {
      (s.test ? test : train).push_back(s.*field);
      (s.test ? test_y : train_y).push_back(s.class_id);
    }
    return LinearProbeAccuracy(train, train_y, test, test_y);
  };
  const double chance = 1.0 / kClasses;
  const double global = accuracy(&Sample::global);
  const double fine = accuracy(&Sample::fine);
  const double half = accuracy(&Sample::half);
  const double coarse = accuracy(&Sample::coarse);
  std::printf("linear probe, %d cultivars, chance %.3f: global colour/size %.3f; leaf spectrum "
              "at full resolution %.3f, after 2x downsampling %.3f, after 4x %.3f\n",
              kClasses, chance, global, fine, half, coarse);
  EXPECT_LT(global, 2 * chance);
  EXPECT_GT(fine, 3 * chance);
  EXPECT_GT(fine, coarse + 0.15);
  EXPECT_GT(fine, 2 * coarse);
}

}  // namespace
}  // namespace clca::synth
