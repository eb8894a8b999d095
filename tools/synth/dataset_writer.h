// Writes a synthetic UFG dataset to disk in the layout of the reference
// splits (Cotton80, SoyLocal, SoyGlobal):
//   DIR/images/<class>_<i>_<train|test>.png
//   DIR/train_val.csv, DIR/test.csv   header "class_id,dir", dir relative to images/
//   DIR/classes.txt                   one cultivar name per line, line k = class k
//   DIR/dataset.json                  the generator parameters and cultivar traits
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "tools/synth/render.h"
#include "tools/synth/traits.h"

namespace clca::synth {

enum class Split { kTrain, kTest };

// "train" or "test".
const char* SplitName(Split split);

struct SynthDatasetOptions {
  // Output directory, created if missing. Files of the same names are
  // overwritten; other files are left alone (the CSVs list the dataset).
  std::string out_dir;
  // Number of cultivars K; class ids are 0..K-1. In [1, 1000000].
  int num_classes = 10;
  // Images per class in each split, >= 0, not both 0. A split without images
  // gets no CSV (a stale one is removed): e.g. a fresh test split alone, made
  // with another seed into its own directory.
  int train_per_class = 3;
  int test_per_class = 3;
  // Seed of the per-image nuisances. Another seed gives new images of the
  // same cultivars, e.g. a fresh test split.
  uint64_t seed = 1;
  // The cultivars (their seed included).
  CultivarOptions cultivars;
  RenderOptions render;
  // Worker threads; 0 means std::thread::hardware_concurrency(). Every image
  // has its own seed, so the output does not depend on this.
  int threads = 0;
  // zlib level of the PNG files, in [0, 9]: 1 is fast, 9 is small.
  int png_compression = 1;
};

struct SynthDatasetSummary {
  int images = 0;
  double seconds = 0;
};

// The nuisance seed of image `index` of class `class_id` in `split`. Distinct
// (class_id, split, index) give distinct seeds for index < 2^31, so train
// and test images never share one.
uint64_t ImageSeed(uint64_t seed, int class_id, Split split, int index);

// "<class_id>_<index>_<train|test>.png".
std::string ImageFileName(int class_id, int index, Split split);

// What dataset.json holds for `options`.
nlohmann::ordered_json DescribeSynthDataset(const SynthDatasetOptions& options);

// Renders and writes the whole dataset. INVALID_ARGUMENT for bad options,
// INTERNAL for write or rendering failures.
absl::StatusOr<SynthDatasetSummary> WriteSynthDataset(const SynthDatasetOptions& options);

}  // namespace clca::synth
