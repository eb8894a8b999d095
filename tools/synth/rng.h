// Deterministic pseudo-random numbers for the generator. Everything derives
// from splitmix64 and our own mappings, so a seed gives the same values with
// every compiler and standard library (std::*_distribution does not).
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace clca::synth {

// The splitmix64 output function: a bijection on 64-bit values with good
// avalanche, so distinct inputs always give distinct outputs.
constexpr uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A hash of several values; the order matters.
inline uint64_t HashValues(std::initializer_list<uint64_t> values) {
  uint64_t h = 0x6a09e667f3bcc909ULL;
  for (uint64_t v : values) h = Mix64(h ^ v);
  return h;
}

// A splitmix64 stream. Cheap to copy; Fork() gives independent sub-streams so
// that drawing more values in one part of an image leaves the others alone.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform in [lo, hi) shrunk towards the middle by `spread` in [0, 1]
  // (1: the whole range, 0: the midpoint). Draws one number whatever
  // `spread` is, so changing it leaves every other draw as it was.
  double Around(double lo, double hi, double spread) {
    const double u = Uniform(lo, hi);
    if (spread == 1) return u;  // bit for bit what Uniform(lo, hi) gives
    const double mid = (lo + hi) / 2;
    return mid + (u - mid) * spread;
  }

  // Uniform integer in [lo, hi] (hi >= lo); multiply-shift, bias below 2^-32.
  int UniformInt(int lo, int hi) {
    const uint64_t span = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo + 1);
    return lo + static_cast<int>(((Next() >> 32) * span) >> 32);
  }

  bool Bernoulli(double p) { return Uniform() < p; }

  // Standard normal by Box-Muller (one value per call).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  // An independent stream named by `stream`; does not advance this one.
  Rng Fork(uint64_t stream) const { return Rng(HashValues({state_, stream})); }

 private:
  uint64_t state_;
};

}  // namespace clca::synth
