#include "tools/synth/dataset_writer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/synth/rng.h"

namespace clca::synth {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kImageSalt = 0x696d616765ULL;

struct Job {
  int class_id;
  Split split;
  int index;
};

absl::Status WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

absl::Status Validate(const SynthDatasetOptions& o) {
  if (o.out_dir.empty()) return absl::InvalidArgumentError("no output directory");
  if (o.num_classes < 1 || o.num_classes > 1000000) {
    return absl::InvalidArgumentError(absl::StrCat("classes must be in [1, 1000000], got ", o.num_classes));
  }
  if (o.train_per_class < 0 || o.test_per_class < 0 || o.train_per_class + o.test_per_class < 1) {
    return absl::InvalidArgumentError("images per class must be >= 0 and not both 0");
  }
  if (o.cultivars.family_size < 1) return absl::InvalidArgumentError("family_size must be >= 1");
  if (!(o.cultivars.family_spread >= 0 && o.cultivars.family_spread <= 0.5) ||
      !(o.cultivars.member_spread >= 0 && o.cultivars.member_spread <= 1)) {
    return absl::InvalidArgumentError("need family_spread in [0, 0.5] and member_spread in [0, 1]");
  }
  if (o.threads < 0) return absl::InvalidArgumentError("threads must be >= 0");
  if (o.png_compression < 0 || o.png_compression > 9) {
    return absl::InvalidArgumentError("png_compression must be in [0, 9]");
  }
  return ValidateRenderOptions(o.render);
}

std::string SplitCsv(const SynthDatasetOptions& o, Split split) {
  const int per_class = split == Split::kTrain ? o.train_per_class : o.test_per_class;
  std::string csv = "class_id,dir\n";
  for (int c = 0; c < o.num_classes; ++c) {
    for (int i = 0; i < per_class; ++i) absl::StrAppend(&csv, c, ",", ImageFileName(c, i, split), "\n");
  }
  return csv;
}

}  // namespace

const char* SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

uint64_t ImageSeed(uint64_t seed, int class_id, Split split, int index) {
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(class_id)) << 32) |
                       (split == Split::kTest ? (uint64_t{1} << 31) : 0) |
                       static_cast<uint32_t>(index & 0x7fffffff);
  // Mix64 is a bijection, so distinct keys give distinct seeds.
  return Mix64(Mix64(seed ^ kImageSalt) ^ key);
}

std::string ImageFileName(int class_id, int index, Split split) {
  return absl::StrCat(class_id, "_", index, "_", SplitName(split), ".png");
}

nlohmann::ordered_json DescribeSynthDataset(const SynthDatasetOptions& o) {
  const RenderOptions& r = o.render;
  nlohmann::ordered_json traits = nlohmann::ordered_json::array();
  for (int t = 0; t < kNumTraits; ++t) {
    const TraitSpec& spec = GetTraitSpec(static_cast<Trait>(t));
    traits.push_back({{"name", spec.name}, {"min", spec.min_value}, {"max", spec.max_value}});
  }
  nlohmann::ordered_json cultivars = nlohmann::ordered_json::array();
  for (int c = 0; c < o.num_classes; ++c) {
    const TraitVector point = CultivarTraits(c, o.cultivars);
    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    for (int t = 0; t < kNumTraits; ++t) {
      values[GetTraitSpec(static_cast<Trait>(t)).name] = TraitValue(point, static_cast<Trait>(t));
    }
    cultivars.push_back({{"class_id", c},
                         {"name", CultivarName(c)},
                         {"family", CultivarFamily(c, o.cultivars)},
                         {"traits", values}});
  }
  return {
      {"generator", "clca_synth"},
      {"format_version", 1},
      {"classes", o.num_classes},
      {"train_per_class", o.train_per_class},
      {"test_per_class", o.test_per_class},
      {"seed", o.seed},
      {"cultivar_seed", o.cultivars.cultivar_seed},
      {"family_size", o.cultivars.family_size},
      {"family_spread", o.cultivars.family_spread},
      {"member_spread", o.cultivars.member_spread},
      {"render",
       {{"size", r.size},
        {"trait_jitter", r.trait_jitter},
        {"leaf_length", {r.min_leaf_length, r.max_leaf_length}},
        {"detail_length", r.detail_length},
        {"zoom_jitter", r.zoom_jitter},
        {"colour_jitter", r.colour_jitter},
        {"scanner_background", r.scanner_background},
        {"texture_contrast", r.texture_contrast},
        {"trait_region", {r.trait_region_start, r.trait_region_end}},
        {"max_rotation_deg", r.max_rotation_deg},
        {"max_shift", r.max_shift},
        {"blur_probability", r.blur_probability},
        {"max_blur_sigma", r.max_blur_sigma},
        {"max_noise_sigma", r.max_noise_sigma},
        {"occlusion_probability", r.occlusion_probability},
        {"max_clutter", r.max_clutter},
        {"jpeg_probability", r.jpeg_probability},
        {"jpeg_quality", {r.min_jpeg_quality, r.max_jpeg_quality}}}},
      {"files",
       {{"images", "images"},
        {"train", "train_val.csv"},
        {"test", "test.csv"},
        {"classes", "classes.txt"}}},
      {"traits", traits},
      {"cultivars", cultivars},
  };
}

absl::StatusOr<SynthDatasetSummary> WriteSynthDataset(const SynthDatasetOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  const fs::path root(o.out_dir);
  const fs::path images = root / "images";
  std::error_code ec;
  fs::create_directories(images, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", images.string(), ": ", ec.message()));

  std::string names;
  for (int c = 0; c < o.num_classes; ++c) absl::StrAppend(&names, CultivarName(c), "\n");
  std::vector<std::pair<const char*, std::string>> files = {
      {"classes.txt", names}, {"dataset.json", DescribeSynthDataset(o).dump(2) + "\n"}};
  for (const auto& [split, file, count] : {std::tuple{Split::kTrain, "train_val.csv", o.train_per_class},
                                           std::tuple{Split::kTest, "test.csv", o.test_per_class}}) {
    if (count > 0) {
      files.emplace_back(file, SplitCsv(o, split));
    } else if (fs::remove(root / file, ec); ec) {
      return absl::InternalError(absl::StrCat("cannot remove ", (root / file).string(), ": ", ec.message()));
    }
  }
  for (const auto& [file, text] : files) {
    if (absl::Status s = WriteFile(root / file, text); !s.ok()) return s;
  }

  std::vector<TraitVector> traits;
  for (int c = 0; c < o.num_classes; ++c) traits.push_back(CultivarTraits(c, o.cultivars));
  std::vector<Job> jobs;
  for (int c = 0; c < o.num_classes; ++c) {
    for (int i = 0; i < o.train_per_class; ++i) jobs.push_back({c, Split::kTrain, i});
    for (int i = 0; i < o.test_per_class; ++i) jobs.push_back({c, Split::kTest, i});
  }

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  absl::Status first_error;
  auto work = [&] {
    for (size_t j = next++; j < jobs.size() && !failed; j = next++) {
      const Job& job = jobs[j];
      absl::Status status;
      auto image = RenderLeaf(traits[job.class_id],
                              ImageSeed(o.seed, job.class_id, job.split, job.index), o.render);
      if (!image.ok()) {
        status = image.status();
      } else if (auto png = EncodePng(*image, o.png_compression); !png.ok()) {
        status = png.status();
      } else {
        status = WriteFile(images / ImageFileName(job.class_id, job.index, job.split), *png);
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = status;
        failed = true;
      }
    }
  };
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, static_cast<int>(std::max<size_t>(1, jobs.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (!first_error.ok()) return first_error;

  SynthDatasetSummary summary;
  summary.images = static_cast<int>(jobs.size());
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace clca::synth
