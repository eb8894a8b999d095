// `clca synth` end to end: the files it writes read back as a dataset.
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/datasets/test_dirs.h"
#include "tools/datasets/dataset.h"

namespace clca {
namespace {

const std::string kClca = std::string(CLCA_BINARY_DIR) + "/tools/clca";

// Runs `clca ARGS`, output discarded; returns the exit code.
int Clca(const std::string& args) {
  const int status = std::system((kClca + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SynthCliTest, WritesAReadableDataset) {
  if (!std::filesystem::exists(kClca)) GTEST_SKIP() << "build the clca target first";
  testing::ScratchDir one("one"), two("two");
  const std::string args = " --classes 2 --train-per-class 2 --test-per-class 1 --size 48 --seed 5";
  ASSERT_EQ(Clca("synth --out " + one.str() + args + " --threads 1"), 0);
  ASSERT_EQ(Clca("synth --out " + two.str() + args + " --threads 2"), 0);
  auto train = data::OpenDataset(one.str(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->examples.size(), 4u);
  EXPECT_EQ(train->num_classes(), 2);
  auto test = data::OpenDataset(one.str(), "test");
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->examples.size(), 2u);
  for (const char* file : {"images/0_0_train.png", "images/1_0_test.png", "dataset.json"}) {
    EXPECT_TRUE(testing::SameBytes(one.path() / file, two.path() / file)) << file;
  }
}

// The generator settings given as flags are used and recorded in dataset.json.
TEST(SynthCliTest, GeneratorFlagsAreRecorded) {
  if (!std::filesystem::exists(kClca)) GTEST_SKIP() << "build the clca target first";
  testing::ScratchDir plain("plain"), coarse("coarse");
  const std::string args = " --classes 2 --train-per-class 1 --test-per-class 0 --size 48 --threads 1";
  ASSERT_EQ(Clca("synth --out " + plain.str() + args), 0);
  ASSERT_EQ(Clca("synth --out " + coarse.str() + args +
                 " --family-size 1 --detail-length 2 --max-clutter 0 --occlusion-probability 0"
                 " --max-rotation 15 --texture-contrast 3 --family-spread 0.5"
                 " --colour-jitter 0.2 --scanner-background --leaf-length 1.1 1.4"
                 " --trait-region 0.4 0.7"),
            0);
  std::ifstream in(coarse.path() / "dataset.json");
  const nlohmann::json meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta["family_size"], 1);
  EXPECT_EQ(meta["render"]["detail_length"], 2.0);
  EXPECT_EQ(meta["render"]["max_clutter"], 0);
  EXPECT_EQ(meta["render"]["occlusion_probability"], 0.0);
  EXPECT_EQ(meta["render"]["max_rotation_deg"], 15.0);
  EXPECT_EQ(meta["render"]["texture_contrast"], 3.0);
  EXPECT_EQ(meta["family_spread"], 0.5);
  EXPECT_EQ(meta["render"]["colour_jitter"], 0.2);
  EXPECT_EQ(meta["render"]["scanner_background"], true);
  EXPECT_EQ(meta["render"]["leaf_length"], nlohmann::json({1.1, 1.4}));
  EXPECT_EQ(meta["render"]["trait_region"], nlohmann::json({0.4, 0.7}));
  EXPECT_FALSE(testing::SameBytes(plain.path() / "images/0_0_train.png",
                                  coarse.path() / "images/0_0_train.png"));
}

TEST(SynthCliTest, RejectsBadArguments) {
  if (!std::filesystem::exists(kClca)) GTEST_SKIP() << "build the clca target first";
  testing::ScratchDir dir;
  EXPECT_NE(Clca("synth --out " + dir.str() + " --classes 0"), 0);
  EXPECT_NE(Clca("synth --classes 2"), 0);  // no --out
  EXPECT_NE(Clca("synth --out " + dir.str() + " --detail-length 3"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --family-size 0"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --max-rotation 200"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --texture-contrast 9"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --family-spread 0.6"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --colour-jitter 1.5"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --trait-region 0.7 0.4"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --leaf-length 0.9 0.5"), 0);
  EXPECT_NE(Clca("synth --out " + dir.str() + " --leaf-length 0.9"), 0);
}

}  // namespace
}  // namespace clca
