// clca eval: top-1/top-5 accuracy and GMACs of model versions over keep rates
// on a dataset split, as a table and a plot of accuracy against GMACs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "models/io/load_model.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tools/clca/commands.h"
#include "tools/clca/eval_report.h"
#include "tools/clca/util.h"
#include "tools/clca/version_dir.h"
#include "tools/datasets/dataset.h"
#ifdef CLCA_HAVE_PREPROCESS
#include "models/cpu/threads.h"
#include "models/preprocess/preprocess.h"
#endif

namespace clca::tool {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct EvalArgs {
  // Dataset root; its layout is detected (clca::data::OpenDataset).
  std::string data;
  std::string split = "test";
  // Model-repository version directories, evaluated in this order.
  std::vector<std::string> models;
  // Display names, one per model; empty: "<model>/<version>" of each directory.
  std::vector<std::string> names;
  std::string keep_rates = "0.1,0.25,0.5,0.7,1.0";
  // Images per forward pass.
  int batch = 32;
  // LibTorch intra-op threads; 0: hardware concurrency.
  int threads = 0;
  // Threads decoding and preprocessing images; 0: hardware concurrency.
  int loader_threads = 0;
  // Evaluate only the first `limit` images; 0: all.
  int64_t limit = 0;
  std::string format = "text";
  bool json = false;  // --format json
  // Compute precision: fp32, bf16 or fp16; other than fp32, a float32 copy
  // of each model runs beside it to measure agreement.
  std::string precision = "fp32";
  // Table file (default: stdout) and plot file (default: none).
  std::string out, plot;
  bool quiet = false;
};

// The last component of a path: "data/synth" and "data/synth/" give "synth".
std::string BaseName(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}


// Comma-separated keep rates, each in (0, 1], none twice.
absl::StatusOr<std::vector<double>> ParseKeepRates(const std::string& text) {
  std::vector<double> rates;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    double rate = 0;
    if (!absl::SimpleAtod(part, &rate)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--keep-rates: '", part, "' is not a number"));
    }
    if (absl::Status s = ValidateKeepRate(rate); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--keep-rates: ", s.message()));
    }
    if (std::find(rates.begin(), rates.end(), rate) != rates.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--keep-rates: ", rate, " is given twice"));
    }
    rates.push_back(rate);
  }
  return rates;
}

// An output file must go into an existing directory (checked before the
// evaluation runs, not after).
absl::Status CheckOutputPath(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  const fs::path parent = fs::absolute(path).parent_path();
  std::error_code error;
  if (!fs::is_directory(parent, error)) {
    return absl::NotFoundError(
        absl::StrCat(flag, ": directory ", parent.string(), " does not exist"));
  }
  if (fs::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is a directory"));
  }
  return absl::OkStatus();
}

struct EvalModel {
  std::string name;
  std::unique_ptr<ClcaModel> model;
  // The float32 model, when `model` computes in another precision.
  std::unique_ptr<ClcaModel> reference;
  // Per keep rate: images whose top-1 equals the reference's, and the largest
  // and summed absolute logit differences.
  std::vector<int64_t> agree;
  std::vector<double> max_diff, sum_diff;
  // Multiply-accumulates per image at each keep rate, in billions.
  std::vector<double> gmacs;
  // Images whose class is first / among the first five, per keep rate.
  std::vector<int64_t> top1, top5;
};

// Loads a version directory and checks it against the dataset: labels.txt
// (when present) must list num_classes labels, and the dataset must have
// num_classes classes.
absl::StatusOr<EvalModel> LoadEvalModel(const std::string& dir, const std::string& name,
                                        const data::Dataset& dataset,
                                        const std::vector<double>& keep_rates,
                                        Precision precision) {
  absl::StatusOr<VersionDir> version = ReadVersionDir(dir);
  if (!version.ok()) return version.status();
  ModelOptions options;
  options.precision = precision;
  absl::StatusOr<LoadedModel> loaded = LoadModel(version->checkpoint, version->config, options);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(version->checkpoint, ": ", loaded.status().message()));
  }
  EvalModel m;
  m.name = name;
  m.model = std::move(loaded->model);
  if (precision != Precision::kFloat32) {
    absl::StatusOr<LoadedModel> reference = LoadModel(version->checkpoint, version->config);
    if (!reference.ok()) return reference.status();
    m.reference = std::move(reference->model);
    m.agree.assign(keep_rates.size(), 0);
    m.max_diff.assign(keep_rates.size(), 0);
    m.sum_diff.assign(keep_rates.size(), 0);
  }
  const ModelConfig& config = m.model->config();
  if (version->labels && static_cast<int>(version->labels->size()) != config.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        (fs::path(dir) / "labels.txt").string(), " has ", version->labels->size(),
        " labels but the model has ", config.num_classes, " classes"));
  }
  if (config.num_classes != dataset.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", name, " (", dir, ") has ", config.num_classes, " classes but the dataset ",
        dataset.root, " (", dataset.split, ") has ", dataset.num_classes(), " classes"));
  }
  if (version->labels) {
    for (int k = 0; k < config.num_classes; ++k) {
      if ((*version->labels)[k] != dataset.class_names[k]) {
        std::cerr << absl::StrFormat(
            "clca eval: warning: %s: label %d is '%s' in labels.txt but '%s' in the dataset\n",
            name, k, (*version->labels)[k], dataset.class_names[k]);
        break;
      }
    }
  }
  for (double kr : keep_rates) {
    absl::StatusOr<Cost> cost = EstimateCost(config, kr);
    if (!cost.ok()) return cost.status();
    m.gmacs.push_back(cost->gmacs());
  }
  m.top1.assign(keep_rates.size(), 0);
  m.top5.assign(keep_rates.size(), 0);
  return m;
}

#ifdef CLCA_HAVE_PREPROCESS
// Decodes examples [first, first + count) once each and preprocesses them for
// every input size in `inputs` ([count, 3, size, size] each), on `threads`
// threads.
absl::Status LoadImages(const std::vector<data::Example>& examples, size_t first, size_t count,
                        std::map<int, torch::Tensor>& inputs, int threads) {
  std::atomic<size_t> next{0};
  std::mutex mutex;
  absl::Status error;
  auto work = [&] {
    for (size_t i = next++; i < count; i = next++) {
      const std::string& path = examples[first + i].path;
      PreprocessOptions options;
      absl::StatusOr<RgbImage> image = DecodeImageFile(path, options);
      absl::Status status = image.status();
      for (auto& [size, tensor] : inputs) {
        if (!status.ok()) break;
        options.input_size = size;
        status = PreprocessRgbInto(*image, options, tensor.data_ptr<float>() + i * 3 * size * size);
      }
      if (!status.ok() && !absl::StrContains(status.message(), path)) {
        status = absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        if (error.ok()) error = status;
        next = count;  // stop the other workers early
      }
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(count)));
  std::vector<std::thread> workers;
  for (int t = 1; t < n; ++t) workers.emplace_back(work);
  work();
  for (std::thread& w : workers) w.join();
  return error;
}
#endif

int Eval(const EvalArgs& a) {
#ifndef CLCA_HAVE_PREPROCESS
  return Fail(absl::UnimplementedError("this build has no image preprocessing (OpenCV not found)"));
#else
  // Arguments, before anything expensive.
  if (a.data.empty()) return Fail(absl::InvalidArgumentError("--data is required"));
  if (a.models.empty()) return Fail(absl::InvalidArgumentError("--model is required"));
  if (!a.names.empty() && a.names.size() != a.models.size()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--name is given ", a.names.size(), " times for ", a.models.size(), " --model")));
  }
  if (a.json && a.format != "text" && a.format != "json") {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("--json conflicts with --format ", a.format)));
  }
  absl::StatusOr<TableFormat> format = ParseTableFormat(a.json ? "json" : a.format);
  if (!format.ok()) return Fail(format.status());
  absl::StatusOr<std::vector<double>> keep_rates = ParseKeepRates(a.keep_rates);
  if (!keep_rates.ok()) return Fail(keep_rates.status());
  if (a.batch < 1) return Fail(absl::InvalidArgumentError("--batch must be at least 1"));
  if (a.threads < 0 || a.loader_threads < 0) {
    return Fail(absl::InvalidArgumentError("--threads and --loader-threads must be >= 0"));
  }
  if (a.limit < 0) return Fail(absl::InvalidArgumentError("--limit must be >= 0"));
  Precision precision = Precision::kFloat32;
  if (a.precision == "bf16") {
    precision = Precision::kBFloat16;
  } else if (a.precision == "fp16") {
    precision = Precision::kFloat16;
  } else if (a.precision != "fp32") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("unknown precision '", a.precision, "' (fp32, bf16 or fp16)")));
  }
  for (const auto& [flag, path] : {std::pair{"--out", a.out}, std::pair{"--plot", a.plot}}) {
    if (absl::Status s = CheckOutputPath(flag, path); !s.ok()) return Fail(s);
  }
  std::vector<std::string> names = a.names;
  if (names.empty()) {
    for (const std::string& dir : a.models) names.push_back(VersionDirName(dir));
  }
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size()) {
    return Fail(absl::InvalidArgumentError(
        "two models have the same display name; tell them apart with --name"));
  }

  // The dataset, then every model checked against it.
  std::error_code fs_error;
  if (!fs::is_directory(a.data, fs_error)) {
    return Fail(absl::NotFoundError(absl::StrCat("dataset directory ", a.data, " does not exist")));
  }
  absl::StatusOr<data::Dataset> dataset = data::OpenDataset(a.data, a.split);
  if (!dataset.ok()) return Fail(dataset.status());
  std::vector<data::Example>& examples = dataset->examples;
  if (a.limit > 0 && static_cast<size_t>(a.limit) < examples.size()) examples.resize(a.limit);
  if (examples.empty()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("dataset ", a.data, " has no ", a.split, " images")));
  }
  const int threads = a.threads > 0 ? a.threads : HardwareThreads();
  const int loader_threads = a.loader_threads > 0 ? a.loader_threads : HardwareThreads();
  SetComputeThreads(threads);
  if (!a.quiet) {
    std::cerr << absl::StrFormat("clca eval: %s (%s, %s): %d images, %d classes\n", dataset->root,
                                 data::LayoutName(dataset->layout), dataset->split,
                                 examples.size(), dataset->num_classes());
  }
  std::vector<EvalModel> models;
  for (size_t i = 0; i < a.models.size(); ++i) {
    absl::StatusOr<EvalModel> m = LoadEvalModel(a.models[i], names[i], *dataset, *keep_rates, precision);
    if (!m.ok()) return Fail(m.status());
    if (!a.quiet) {
      const ModelConfig& c = m->model->config();
      std::cerr << absl::StrFormat("clca eval: %s: %s @%d, %d classes\n", m->name, c.model,
                                   c.input_size, c.num_classes);
    }
    models.push_back(*std::move(m));
  }

  // Each batch of images is decoded once and preprocessed once per input
  // size; every model then runs it at every keep rate.
  std::set<int> sizes;
  for (const EvalModel& m : models) sizes.insert(m.model->config().input_size);
  c10::InferenceMode inference;
  const auto start = Clock::now();
  auto last_report = start;
  const size_t total = examples.size();
  for (size_t first = 0; first < total; first += a.batch) {
    const size_t count = std::min(total - first, static_cast<size_t>(a.batch));
    std::map<int, torch::Tensor> inputs;
    for (int size : sizes) {
      inputs[size] = torch::empty({static_cast<int64_t>(count), 3, size, size}, torch::kFloat32);
    }
    if (absl::Status s = LoadImages(examples, first, count, inputs, loader_threads); !s.ok()) {
      return Fail(s);
    }
    std::vector<int64_t> label_ids;
    for (size_t i = 0; i < count; ++i) label_ids.push_back(examples[first + i].class_id);
    const torch::Tensor labels = torch::tensor(label_ids, torch::kInt64).unsqueeze(1);
    for (EvalModel& m : models) {
      const torch::Tensor& images = inputs.at(m.model->config().input_size);
      const int64_t k = std::min<int64_t>(5, m.model->config().num_classes);
      for (size_t r = 0; r < keep_rates->size(); ++r) {
        absl::StatusOr<ForwardResult> result = m.model->Forward(images, (*keep_rates)[r]);
        if (!result.ok()) {
          return Fail(absl::Status(result.status().code(),
                                   absl::StrCat(m.name, ": ", result.status().message())));
        }
        const torch::Tensor top = std::get<1>(result->logits.cpu().topk(k, 1));
        const torch::Tensor hit = top.eq(labels);
        m.top1[r] += hit.select(1, 0).sum().item<int64_t>();
        m.top5[r] += hit.any(1).sum().item<int64_t>();
        if (m.reference) {
          absl::StatusOr<ForwardResult> ref = m.reference->Forward(images, (*keep_rates)[r]);
          if (!ref.ok()) return Fail(ref.status());
          const torch::Tensor diff = (result->logits.cpu() - ref->logits.cpu()).abs();
          m.agree[r] += result->logits.cpu().argmax(1).eq(ref->logits.cpu().argmax(1)).sum().item<int64_t>();
          m.max_diff[r] = std::max(m.max_diff[r], diff.max().item<double>());
          m.sum_diff[r] += diff.mean(1).sum().item<double>();
        }
      }
    }
    const auto now = Clock::now();
    const size_t done = first + count;
    if (!a.quiet && (done == total || now - last_report >= std::chrono::seconds(2))) {
      const double seconds = std::chrono::duration<double>(now - start).count();
      std::cerr << absl::StrFormat("clca eval: %d/%d images, %.1f s, %.1f images/s\n", done, total,
                                   seconds, done / std::max(seconds, 1e-9));
      last_report = now;
    }
  }

  std::vector<EvalResult> rows;
  for (const EvalModel& m : models) {
    for (size_t r = 0; r < keep_rates->size(); ++r) {
      EvalResult row{m.name, (*keep_rates)[r], 100.0 * m.top1[r] / total,
                     100.0 * m.top5[r] / total, m.gmacs[r], static_cast<int64_t>(total)};
      if (m.reference) {
        row.precision = a.precision;
        row.agreement = 100.0 * m.agree[r] / total;
        row.max_logit_diff = m.max_diff[r];
        row.mean_logit_diff = m.sum_diff[r] / total;
      }
      rows.push_back(row);
    }
  }
  const std::string caption =
      absl::StrFormat("%s (%s): %d images, %d classes", dataset->root, dataset->split, total,
                      dataset->num_classes());
  if (absl::Status s = WriteOutput(a.out, FormatResults(rows, *format, caption)); !s.ok()) {
    return Fail(s);
  }
  if (!a.plot.empty()) {
    PlotOptions plot;
    plot.title = absl::StrFormat("Top-1 accuracy vs GMACs: %s %s, %d images",
                                 BaseName(dataset->root), dataset->split, total);
    if (absl::Status s = WriteAccuracyPlot(rows, a.plot, plot); !s.ok()) return Fail(s);
    if (!a.quiet) std::cerr << "clca eval: wrote " << a.plot << "\n";
  }
  return 0;
#endif
}

}  // namespace

void AddEvalCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Top-1/top-5 accuracy (%) and GMACs of models over keep rates on a dataset");
  cmd->add_option("--data", a->data, "dataset root (CSV, anno or class-folder layout; required)");
  cmd->add_option("--split", a->split, "dataset split")->capture_default_str();
  cmd->add_option("--model", a->models,
                  "model-repository version directory: one checkpoint, model.json, optional "
                  "labels.txt (repeatable; required)");
  cmd->add_option("--name", a->names,
                  "display name of each --model, in order (default: <model>/<version> of its "
                  "directory)");
  cmd->add_option("--keep-rates", a->keep_rates, "comma-separated keep rates in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "images per forward pass")->capture_default_str();
  cmd->add_option("--threads", a->threads, "LibTorch intra-op and BLAS threads (0: hardware concurrency)")
      ->capture_default_str();
  cmd->add_option("--loader-threads", a->loader_threads,
                  "threads decoding and preprocessing images (0: hardware concurrency)")
      ->capture_default_str();
  cmd->add_option("--limit", a->limit, "evaluate the first N images only (0: all)")
      ->capture_default_str();
  cmd->add_option("--format", a->format,
                  "text, markdown or json; top1/top5 are percentages (0-100), gmacs per image")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "same as --format json");
  cmd->add_option("--precision", a->precision,
                  "compute precision: fp32, bf16 or fp16; other than fp32 also reports top-1 "
                  "agreement with float32 and the logit difference")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "write the table to this file (default: stdout)");
  cmd->add_option("--plot", a->plot, "draw top-1 against GMACs into this PNG file");
  cmd->add_flag("--quiet", a->quiet, "no progress on stderr");
  cmd->callback([a, exit_code] { *exit_code = Eval(*a); });
}

}  // namespace clca::tool
