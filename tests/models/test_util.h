// Helpers of the model tests: the reference parity vectors in
// tests/data/parity, and a small configuration.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/core/config.h"
#include "models/vit/model.h"

namespace clca::testing {

// A small model of `method` (with the CLCA cache and head when `clca`).
inline ModelConfig SmallConfig(const std::string& method, bool clca) {
  nlohmann::json given = {{"model", method + "_vit_tiny_patch16_224"},
                          {"embed_dim", 32},
                          {"depth", 5},
                          {"num_heads", 2},
                          {"input_size", 64},
                          {"num_classes", 4},
                          {"reduction_loc", {1, 2}},
                          {"keep_rate", 0.5},
                          {"ifa_head", clca},
                          {"clc", clca},
                          {"num_clr", clca ? 1 : 0}};
  auto config = ResolveConfig(given);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

// Two models of `config` with the same random weights (`seed`) but options
// `a` and `b` give the same token counts and classes and logits within 1e-3,
// at keep rates 1.0 and 0.5, on `batch` random images.
inline void ExpectSameResults(const ModelConfig& config, uint64_t seed, const ModelOptions& a,
                              const ModelOptions& b, int64_t batch) {
  auto first = ClcaModel::CreateRandom(config, seed, a);
  auto second = ClcaModel::CreateRandom(config, seed, b);
  ASSERT_TRUE(first.ok() && second.ok());
  torch::Tensor images = torch::randn({batch, 3, config.input_size, config.input_size});
  for (double kr : {1.0, 0.5}) {
    auto x = (*first)->Forward(images, kr);
    auto y = (*second)->Forward(images, kr);
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->tokens, y->tokens);
    EXPECT_TRUE(torch::allclose(x->logits, y->logits, 1e-3, 1e-3))
        << (x->logits - y->logits).abs().max().item<float>();
    EXPECT_TRUE(torch::equal(x->logits.argmax(1), y->logits.argmax(1)));
  }
}

// Options of a model on the GPU ("cuda").
inline ModelOptions OnGpu(Precision precision = Precision::kFloat32) {
  ModelOptions options;
  options.device = "cuda";
  options.precision = precision;
  return options;
}

// Tests that need a GPU: skipped where LibTorch sees none.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

inline std::string ParityDir() { return std::string(CLCA_TEST_DATA) + "/parity"; }

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A torch.save'd dict of tensors (the parity `*.expected.pt` files).
inline c10::Dict<c10::IValue, c10::IValue> ReadTensorDict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toGenericDict();
}

inline torch::Tensor Get(const c10::Dict<c10::IValue, c10::IValue>& d, const std::string& key) {
  return d.at(key).toTensor();
}

// Case stems: every NAME with a NAME.config.json.
inline std::vector<std::string> ParityCases() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(ParityDir())) {
    std::string f = e.path().filename().string();
    const std::string suffix = ".config.json";
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(f.substr(0, f.size() - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// (keep rate, expected file) pairs of a case: NAME.expected.pt at the
// configured rate and every NAME.krR.expected.pt at R.
inline std::vector<std::pair<double, std::string>> ExpectedFiles(const std::string& name,
                                                                 double configured) {
  std::vector<std::pair<double, std::string>> out = {
      {configured, ParityDir() + "/" + name + ".expected.pt"}};
  const std::string prefix = name + ".kr";
  for (const auto& e : std::filesystem::directory_iterator(ParityDir())) {
    std::string f = e.path().filename().string();
    const std::string suffix = ".expected.pt";
    if (f.rfind(prefix, 0) == 0 && f.size() > prefix.size() + suffix.size() &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
      double kr = std::stod(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
      out.push_back({kr, e.path().string()});
    }
  }
  return out;
}

}  // namespace clca::testing
