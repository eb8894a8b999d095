// The leaf generator: seeds, cultivar traits, rendering and the dataset
// writer are deterministic, and only the intended things depend on each seed.
#include <cstdlib>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/datasets/test_dirs.h"
#include "tools/synth/dataset_writer.h"
#include "tools/synth/render.h"
#include "tools/synth/rng.h"
#include "tools/synth/traits.h"

namespace clca::synth {
namespace {

using clca::testing::ReadBytes;
using clca::testing::SameBytes;
using clca::testing::ScratchDir;

RenderOptions SmallRender() {
  RenderOptions options;
  options.size = 96;
  return options;
}

// A small image size keeps the writer tests fast.
SynthDatasetOptions SmallDataset(const std::string& dir) {
  SynthDatasetOptions options;
  options.out_dir = dir;
  options.num_classes = 3;
  options.train_per_class = 2;
  options.test_per_class = 1;
  options.render.size = 64;
  options.threads = 1;
  return options;
}

double FractionEqual(const Image& a, const Image& b) {
  size_t same = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) same += a.rgb[i] == b.rgb[i];
  return static_cast<double>(same) / a.rgb.size();
}

TEST(RngTest, MatchesSplitMix64) {
  // The reference splitmix64 sequence for seed 0.
  Rng rng(0);
  EXPECT_EQ(rng.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
}

TEST(RngTest, RangesAndForks) {
  Rng rng(42);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.Uniform(2.0, 3.0);
    EXPECT_GE(u, 2.0);
    EXPECT_LT(u, 3.0);
    const int k = rng.UniformInt(-2, 2);
    EXPECT_GE(k, -2);
    EXPECT_LE(k, 2);
  }
  const Rng parent(7);
  Rng a = parent.Fork(1), b = parent.Fork(1), c = parent.Fork(2);
  const uint64_t first = a.Next();
  EXPECT_EQ(first, b.Next());
  EXPECT_NE(first, c.Next());
}

TEST(RngTest, AroundShrinksTowardsTheMiddleWithOneDraw) {
  Rng full(5), shrunk(5), none(5);
  for (int i = 0; i < 100; ++i) {
    const double u = full.Around(2.0, 4.0, 1.0);
    const double v = shrunk.Around(2.0, 4.0, 0.25);
    EXPECT_NEAR(v - 3.0, 0.25 * (u - 3.0), 1e-12);
    EXPECT_DOUBLE_EQ(none.Around(2.0, 4.0, 0.0), 3.0);
  }
  EXPECT_EQ(full.Next(), none.Next());  // the streams stay in step
}

double MeanAbsDifference(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int{a.rgb[i]} - int{b.rgb[i]});
  return sum / static_cast<double>(a.rgb.size());
}

// Narrow colour and lighting nuisances on a scanner bed make two images of
// one cultivar far more alike than the default field photographs do.
TEST(RenderTest, ScannerSettingsNarrowTheColourNuisances) {
  RenderOptions field = SmallRender();
  field.max_clutter = 0;
  field.occlusion_probability = 0;
  RenderOptions scanner = field;
  scanner.colour_jitter = 0;
  scanner.scanner_background = true;
  const TraitVector traits = CultivarTraits(2, CultivarOptions());
  double field_difference = 0, scanner_difference = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto a = RenderLeaf(traits, seed, field), b = RenderLeaf(traits, seed + 100, field);
    auto c = RenderLeaf(traits, seed, scanner), d = RenderLeaf(traits, seed + 100, scanner);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
    field_difference += MeanAbsDifference(*a, *b);
    scanner_difference += MeanAbsDifference(*c, *d);
  }
  // Pose and leaf size still differ, so the gap is partial (about 0.7 here).
  EXPECT_LT(scanner_difference, 0.8 * field_difference)
      << "scanner " << scanner_difference / 10 << ", field " << field_difference / 10;
}

TEST(TraitsTest, PureFunctionOfClassAndCultivarSeed) {
  CultivarOptions options;
  const TraitVector t = CultivarTraits(5, options);
  EXPECT_EQ(t, CultivarTraits(5, options));
  for (double v : t) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  EXPECT_NE(t, CultivarTraits(6, options));
  CultivarOptions other = options;
  other.cultivar_seed = options.cultivar_seed + 1;
  EXPECT_NE(t, CultivarTraits(5, other));
  EXPECT_EQ(CultivarName(7), "cultivar_007");
}

TEST(TraitsTest, SiblingsAreNearestNeighbours) {
  CultivarOptions options;  // families of 4
  double siblings = 0, strangers = 0;
  int n_siblings = 0, n_strangers = 0;
  for (int a = 0; a < 40; ++a) {
    for (int b = a + 1; b < 40; ++b) {
      const double d = TraitDistance(CultivarTraits(a, options), CultivarTraits(b, options));
      if (CultivarFamily(a, options) == CultivarFamily(b, options)) {
        siblings += d, ++n_siblings;
      } else {
        strangers += d, ++n_strangers;
      }
    }
  }
  siblings /= n_siblings;
  strangers /= n_strangers;
  EXPECT_GT(siblings, 0.1);  // distinct cultivars
  EXPECT_LT(siblings, 0.5 * strangers);
}

TEST(TraitsTest, ValuesStayInTheirPhysicalRange) {
  TraitVector t;
  t.fill(0.0);
  EXPECT_EQ(TraitValue(t, Trait::kVeinAngle), GetTraitSpec(Trait::kVeinAngle).min_value);
  t.fill(1.0);
  EXPECT_EQ(TraitValue(t, Trait::kTeeth), GetTraitSpec(Trait::kTeeth).max_value);
}

TEST(RenderTest, SameSeedsGiveIdenticalImages) {
  const RenderOptions options = SmallRender();
  const TraitVector traits = CultivarTraits(3, CultivarOptions());
  auto a = RenderLeaf(traits, 99, options);
  auto b = RenderLeaf(traits, 99, options);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->width, 96);
  EXPECT_EQ(a->height, 96);
  ASSERT_EQ(a->rgb.size(), 96u * 96u * 3u);
  EXPECT_EQ(a->rgb, b->rgb);
}

TEST(RenderTest, ImageSeedChangesTheNuisances) {
  const RenderOptions options = SmallRender();
  const TraitVector traits = CultivarTraits(3, CultivarOptions());
  auto a = RenderLeaf(traits, 1, options);
  auto b = RenderLeaf(traits, 2, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(FractionEqual(*a, *b), 0.2);
}

TEST(RenderTest, CultivarChangesOnlyTheLeaf) {
  // With one image seed, two cultivars share pose, background and camera:
  // most pixels (the background) stay the same, the leaf changes.
  RenderOptions options = SmallRender();
  options.jpeg_probability = 0;
  options.blur_probability = 0;
  CultivarOptions cultivars;
  auto a = RenderLeaf(CultivarTraits(0, cultivars), 5, options);
  auto b = RenderLeaf(CultivarTraits(1, cultivars), 5, options);
  ASSERT_TRUE(a.ok() && b.ok());
  const double same = FractionEqual(*a, *b);
  EXPECT_GT(same, 0.4);
  EXPECT_LT(same, 0.95);
}

TEST(RenderTest, TraitRegionConfinesTheDifferenceBetweenCultivars) {
  // An upright leaf of fixed length, centred: leaf position u (base 0, tip 1)
  // lies on image row 48 - (u - 0.5) * 76.8 of a 96 px image.
  RenderOptions options = SmallRender();
  options.jpeg_probability = 0;
  options.blur_probability = 0;
  options.occlusion_probability = 0;
  options.max_rotation_deg = 0;
  options.max_shift = 0;
  options.min_leaf_length = options.max_leaf_length = 0.8;
  options.trait_region_start = 0.6;
  options.trait_region_end = 0.9;
  CultivarOptions cultivars;
  cultivars.family_size = 1;
  cultivars.family_spread = 0.5;
  for (uint64_t seed : {3, 4, 5}) {
    auto a = RenderLeaf(CultivarTraits(0, cultivars), seed, options);
    auto b = RenderLeaf(CultivarTraits(1, cultivars), seed, options);
    ASSERT_TRUE(a.ok() && b.ok());
    int first = a->height, last = -1;
    for (int y = 0; y < a->height; ++y) {
      for (int x = 0; x < 3 * a->width; ++x) {
        const size_t i = 3 * static_cast<size_t>(y) * a->width + x;
        if (a->rgb[i] != b->rgb[i]) {
          first = std::min(first, y);
          last = std::max(last, y);
        }
      }
    }
    ASSERT_GE(last, 0) << "the cultivars look the same, seed " << seed;
    EXPECT_GE(first, 17 - 2) << "seed " << seed;  // u = 0.9, less the spot radius
    EXPECT_LE(last, 41 + 2) << "seed " << seed;   // u = 0.6
  }
  options.trait_region_end = 0.6;
  EXPECT_EQ(ValidateRenderOptions(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RenderTest, RejectsBadOptions) {
  const TraitVector traits = CultivarTraits(0, CultivarOptions());
  RenderOptions options;
  options.size = 8;
  EXPECT_EQ(RenderLeaf(traits, 1, options).status().code(), absl::StatusCode::kInvalidArgument);
  options = RenderOptions();
  options.min_leaf_length = 0.9;
  options.max_leaf_length = 0.5;
  EXPECT_EQ(RenderLeaf(traits, 1, options).status().code(), absl::StatusCode::kInvalidArgument);
  options = RenderOptions();
  options.jpeg_probability = 1.5;
  EXPECT_EQ(ValidateRenderOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options = RenderOptions();
  options.max_rotation_deg = -1;
  EXPECT_EQ(ValidateRenderOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options = RenderOptions();
  options.texture_contrast = 9;
  EXPECT_EQ(ValidateRenderOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options = RenderOptions();
  options.colour_jitter = -0.1;
  EXPECT_EQ(ValidateRenderOptions(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RenderTest, EncodesPng) {
  auto image = RenderLeaf(CultivarTraits(0, CultivarOptions()), 1, SmallRender());
  ASSERT_TRUE(image.ok());
  auto png = EncodePng(*image);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  Image empty;
  EXPECT_EQ(EncodePng(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageSeedTest, DistinctPerClassSplitAndIndex) {
  std::set<uint64_t> seeds;
  for (int c = 0; c < 20; ++c) {
    for (int i = 0; i < 200; ++i) {
      seeds.insert(ImageSeed(1, c, Split::kTrain, i));
      seeds.insert(ImageSeed(1, c, Split::kTest, i));
    }
  }
  EXPECT_EQ(seeds.size(), 20u * 200u * 2u);
  EXPECT_NE(ImageSeed(1, 0, Split::kTrain, 0), ImageSeed(2, 0, Split::kTrain, 0));
  EXPECT_EQ(ImageFileName(12, 3, Split::kTest), "12_3_test.png");
}

TEST(WriterTest, WritesTheUfgLayout) {
  ScratchDir dir;
  auto summary = WriteSynthDataset(SmallDataset(dir.str()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->images, 9);
  EXPECT_EQ(ReadBytes(dir.path() / "train_val.csv"),
            "class_id,dir\n0,0_0_train.png\n0,0_1_train.png\n1,1_0_train.png\n"
            "1,1_1_train.png\n2,2_0_train.png\n2,2_1_train.png\n");
  EXPECT_EQ(ReadBytes(dir.path() / "test.csv"),
            "class_id,dir\n0,0_0_test.png\n1,1_0_test.png\n2,2_0_test.png\n");
  EXPECT_EQ(ReadBytes(dir.path() / "classes.txt"), "cultivar_000\ncultivar_001\ncultivar_002\n");
  const auto json = nlohmann::json::parse(ReadBytes(dir.path() / "dataset.json"));
  EXPECT_EQ(json["classes"], 3);
  EXPECT_EQ(json["seed"], 1);
  EXPECT_EQ(json["cultivar_seed"], 2025);
  EXPECT_EQ(json["render"]["size"], 64);
  ASSERT_EQ(json["cultivars"].size(), 3u);
  EXPECT_EQ(json["cultivars"][2]["name"], "cultivar_002");
  for (const char* file : {"0_0_train.png", "2_1_train.png", "1_0_test.png"}) {
    EXPECT_FALSE(ReadBytes(dir.path() / "images" / file).empty()) << file;
  }
  // Train and test images of a class differ.
  EXPECT_FALSE(SameBytes(dir.path() / "images" / "0_0_train.png",
                         dir.path() / "images" / "0_0_test.png"));
}

TEST(WriterTest, OutputIsIndependentOfThreadCount) {
  ScratchDir one("one"), four("four");
  SynthDatasetOptions options = SmallDataset(one.str());
  ASSERT_TRUE(WriteSynthDataset(options).ok());
  options.out_dir = four.str();
  options.threads = 4;
  ASSERT_TRUE(WriteSynthDataset(options).ok());
  for (const char* file : {"train_val.csv", "test.csv", "classes.txt", "dataset.json"}) {
    EXPECT_EQ(ReadBytes(one.path() / file), ReadBytes(four.path() / file)) << file;
  }
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 2; ++i) {
      const std::string file = ImageFileName(c, i, Split::kTrain);
      EXPECT_TRUE(SameBytes(one.path() / "images" / file, four.path() / "images" / file)) << file;
    }
  }
}

TEST(WriterTest, AnotherSeedGivesNewImagesOfTheSameCultivars) {
  ScratchDir first("first"), second("second");
  SynthDatasetOptions options = SmallDataset(first.str());
  ASSERT_TRUE(WriteSynthDataset(options).ok());
  options.out_dir = second.str();
  options.seed = 2;
  ASSERT_TRUE(WriteSynthDataset(options).ok());
  const auto a = nlohmann::json::parse(ReadBytes(first.path() / "dataset.json"));
  const auto b = nlohmann::json::parse(ReadBytes(second.path() / "dataset.json"));
  EXPECT_EQ(a["cultivars"], b["cultivars"]);
  EXPECT_EQ(ReadBytes(first.path() / "classes.txt"), ReadBytes(second.path() / "classes.txt"));
  EXPECT_FALSE(SameBytes(first.path() / "images" / "0_0_test.png",
                         second.path() / "images" / "0_0_test.png"));
  EXPECT_FALSE(ReadBytes(second.path() / "images" / "0_0_test.png").empty());
}

TEST(WriterTest, WritesOneSplitAlone) {
  // An image depends on (seed, class, split, index) only, so a test split
  // written alone equals the test split of a full run with the same seed.
  ScratchDir full("full"), alone("alone");
  SynthDatasetOptions options = SmallDataset(full.str());
  ASSERT_TRUE(WriteSynthDataset(options).ok());
  options.out_dir = alone.str();
  options.train_per_class = 0;
  clca::testing::WriteText(alone.path() / "train_val.csv", "stale\n");
  auto summary = WriteSynthDataset(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->images, 3);
  EXPECT_FALSE(std::filesystem::exists(alone.path() / "train_val.csv"));
  EXPECT_EQ(ReadBytes(alone.path() / "test.csv"), ReadBytes(full.path() / "test.csv"));
  EXPECT_TRUE(SameBytes(alone.path() / "images" / "2_0_test.png", full.path() / "images" / "2_0_test.png"));
  EXPECT_FALSE(std::filesystem::exists(alone.path() / "images" / "0_0_train.png"));
}

TEST(WriterTest, RejectsBadOptions) {
  ScratchDir dir;
  SynthDatasetOptions options = SmallDataset(dir.str());
  options.num_classes = 0;
  EXPECT_EQ(WriteSynthDataset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = SmallDataset("");
  EXPECT_EQ(WriteSynthDataset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = SmallDataset(dir.str());
  options.train_per_class = 0;
  options.test_per_class = 0;
  EXPECT_EQ(WriteSynthDataset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = SmallDataset(dir.str());
  options.render.size = 10;
  EXPECT_EQ(WriteSynthDataset(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WriterTest, ReportsUnwritableOutput) {
  ScratchDir dir;
  clca::testing::WriteText(dir.path() / "file", "x");
  // A path under a regular file cannot be created.
  SynthDatasetOptions options = SmallDataset((dir.path() / "file" / "sub").string());
  EXPECT_EQ(WriteSynthDataset(options).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace clca::synth
