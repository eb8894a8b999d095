#include "tools/clca/train_loader.h"

#include <algorithm>
#include <atomic>
#include <random>

#include "absl/strings/str_cat.h"
#include "models/preprocess/preprocess.h"

namespace clca::tool {
namespace {

// A generator for (seed, epoch, item): the same draws whatever thread builds it.
std::mt19937_64 Generator(uint64_t seed, int epoch, int64_t item) {
  std::seed_seq seq{seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(item)};
  return std::mt19937_64(seq);
}

}  // namespace

TrainLoader::TrainLoader(std::vector<data::Example> examples, const LoaderOptions& options)
    : examples_(std::move(examples)), options_(options) {}

TrainLoader::~TrainLoader() { StopWorkers(); }

absl::StatusOr<std::unique_ptr<TrainLoader>> TrainLoader::Create(
    std::vector<data::Example> examples, const LoaderOptions& options) {
  if (options.input_size < 1 || options.batch_size < 1 || options.threads < 1) {
    return absl::InvalidArgumentError("input size, batch size and loader threads must be >= 1");
  }
  if (static_cast<int64_t>(examples.size()) < options.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("the dataset has ", examples.size(),
                                                   " images, fewer than one batch of ",
                                                   options.batch_size));
  }
  std::unique_ptr<TrainLoader> loader(new TrainLoader(std::move(examples), options));
  loader->resized_ = static_cast<int>(options.input_size / 0.875);
  const size_t n = loader->examples_.size();
  loader->pixels_.resize(n);
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  absl::Status error;
  PreprocessOptions decode;
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      const std::string& path = loader->examples_[i].path;
      absl::StatusOr<RgbImage> image = DecodeImageFile(path, decode);
      if (!image.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.ok()) error = absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
        continue;
      }
      loader->pixels_[i] = ResizeBicubicPil(image->pixels.data(), image->width, image->height,
                                            loader->resized_, loader->resized_);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (!error.ok()) return error;
  for (int t = 0; t < options.threads; ++t) loader->workers_.emplace_back([l = loader.get()] { l->Work(); });
  return loader;
}

int64_t TrainLoader::batches_per_epoch() const {
  return static_cast<int64_t>(examples_.size()) / options_.batch_size;
}

void TrainLoader::StartEpoch(int epoch, int64_t first_batch) {
  std::vector<int64_t> order(examples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (options_.augment) {
    std::mt19937_64 rng = Generator(options_.seed, epoch, -1);
    std::shuffle(order.begin(), order.end(), rng);
  }
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = epoch;
  ++generation_;
  order_ = std::make_shared<const std::vector<int64_t>>(std::move(order));
  ready_.clear();
  next_to_build_ = next_to_take_ = first_batch;
  cv_.notify_all();
}

void TrainLoader::Build(const std::vector<int64_t>& order, int epoch, int64_t index,
                        Batch* out) const {
  const int b = options_.batch_size, s = options_.input_size;
  out->images = torch::empty({b, 3, s, s}, torch::kFloat32);
  out->labels = torch::empty({b}, torch::kLong);
  float* dst = out->images.data_ptr<float>();
  int64_t* labels = out->labels.data_ptr<int64_t>();
  const int margin = resized_ - s;
  for (int i = 0; i < b; ++i) {
    const int64_t item = order[index * b + i];
    int left = margin / 2, top = margin / 2;
    bool flip = false;
    if (options_.augment) {
      std::mt19937_64 rng = Generator(options_.seed, epoch, item);
      left = std::uniform_int_distribution<int>(0, margin)(rng);
      top = std::uniform_int_distribution<int>(0, margin)(rng);
      flip = rng() & 1;
    }
    NormalizeCropInto(pixels_[item].data(), resized_, left, top, s, flip,
                      dst + static_cast<size_t>(i) * 3 * s * s);
    labels[i] = examples_[item].class_id;
  }
}

void TrainLoader::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] {
      return stop_ || (order_ && next_to_build_ < batches_per_epoch() &&
                       next_to_build_ < next_to_take_ + 2 * options_.threads);
    });
    if (stop_) return;
    const int64_t index = next_to_build_++;
    const int epoch = epoch_;
    const uint64_t generation = generation_;
    std::shared_ptr<const std::vector<int64_t>> order = order_;
    Batch batch;
    lock.unlock();
    Build(*order, epoch, index, &batch);
    lock.lock();
    if (generation == generation_) {
      ready_[index] = std::move(batch);
      cv_.notify_all();
    }
  }
}

Batch TrainLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t index = next_to_take_;
  cv_.wait(lock, [&] { return ready_.count(index) > 0; });
  Batch batch = std::move(ready_[index]);
  ready_.erase(index);
  ++next_to_take_;
  cv_.notify_all();
  return batch;
}

void TrainLoader::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
}

}  // namespace clca::tool
