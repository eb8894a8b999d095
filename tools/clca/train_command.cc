// clca train: trains or fine-tunes a model on a dataset with the reference
// recipe and writes a model-repository version directory.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/cpu/threads.h"
#include "models/io/checkpoint.h"
#include "models/save/checkpoint_writer.h"
#include "models/train/train.h"
#include "models/vit/model.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"
#include "tools/datasets/dataset.h"

#ifdef CLCA_HAVE_PREPROCESS
#include "tools/clca/train_loader.h"
#endif

namespace clca::tool {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct TrainArgs {
  std::string data, split = "train", out, init;
  ConfigFlags config;
  TrainOptions recipe;
  std::vector<double> keep_rates;
  int batch = 32;
  uint64_t seed = 1;
  int threads = 0;
  int loader_threads = 2;
  double max_minutes = 0;
  int64_t max_steps = 0;
  std::string patch_init = "random";
  bool resume = false;
  bool half = false;
  bool json = false;
  bool quiet = false;
};

// Files of the output directory.
struct OutputFiles {
  fs::path dir;
  fs::path model() const { return dir / "model.pth"; }
  fs::path config() const { return dir / "model.json"; }
  fs::path labels() const { return dir / "labels.txt"; }
  fs::path log() const { return dir / "train_log.jsonl"; }
  // Resumable state: float32 weights, optimiser moments, progress.
  fs::path resume_dir() const { return dir / "resume"; }
  fs::path resume_model() const { return resume_dir() / "model.pth"; }
  fs::path resume_optimizer() const { return resume_dir() / "optimizer.pt"; }
  fs::path resume_state() const { return resume_dir() / "state.json"; }
};

absl::Status WriteText(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot write ", path.string(), ": ", error.message()));
  return absl::OkStatus();
}

// Saves through a temporary file so an interrupted run never leaves half a file.
absl::Status SaveAtomically(const fs::path& path, const StateDict& weights, const nlohmann::json& args) {
  const fs::path tmp = path.string() + ".tmp";
  if (auto s = SaveCheckpoint(tmp.string(), weights, args); !s.ok()) return s;
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot write ", path.string(), ": ", error.message()));
  return absl::OkStatus();
}

// The reference's `args`: the model configuration plus the recipe.
nlohmann::json CheckpointArgs(const ModelConfig& config, const TrainArgs& a) {
  nlohmann::json args = config.ToJson();
  args["lr"] = a.recipe.lr;
  args["min_lr"] = a.recipe.min_lr;
  args["warmup_lr"] = a.recipe.warmup_lr;
  args["weight_decay"] = a.recipe.weight_decay;
  args["epochs"] = a.recipe.epochs;
  args["warmup_epochs"] = a.recipe.warmup_epochs;
  args["cooldown_epochs"] = a.recipe.cooldown_epochs;
  args["batch_size"] = a.batch;
  args["seed"] = a.seed;
  args["train_keep_rates"] = a.recipe.keep_rates;
  args["smoothing"] = a.recipe.label_smoothing;
  return args;
}

// Initial weights: random, with the matching entries of --init laid over.
absl::StatusOr<StateDict> InitialWeights(const ModelConfig& config, const TrainArgs& a,
                                         const Checkpoint* init) {
  auto weights = RandomWeights(config, a.seed, /*reference_complete=*/true);
  if (weights.ok() && a.patch_init == "dct") {
    for (auto& [name, t] : *weights) {
      if (name == "patch_embed.proj.weight") t = DctPatchEmbedding(t.size(0), t.size(2));
    }
  }
  if (!weights.ok() || init == nullptr) return weights;
  // pos_embed rows are [CLS, grid cells, carrier tokens]: a checkpoint with
  // another carrier count (e.g. CLCA into plain EViT) gives its CLS and grid
  // rows, and the new model keeps its own carrier rows.
  const int64_t own = config.pos_embed_suffix();
  int64_t from_carriers = own;
  if (init->args.is_object()) {
    if (auto c = ResolveConfig(init->args); c.ok()) from_carriers = c->pos_embed_suffix();
  }
  int reused = 0, reset = 0;
  for (auto& [name, t] : *weights) {
    for (const auto& [from_name, from] : init->state_dict) {
      if (from_name != name) continue;
      // pos_embed may come from another input size: the model resizes it.
      if (name == "pos_embed" && from_carriers != own && from.dim() == 3 && t.dim() == 3 &&
          from.size(1) > from_carriers) {
        t = torch::cat({from.narrow(1, 0, from.size(1) - from_carriers).to(t.scalar_type()),
                        t.narrow(1, t.size(1) - own, own)},
                       1);
        ++reused;
      } else if (from.sizes() == t.sizes() || name == "pos_embed") {
        t = from.to(t.scalar_type());
        ++reused;
      } else {
        ++reset;
      }
    }
  }
  std::cerr << "clca train: " << reused << " tensors from the checkpoint, " << reset
            << " re-initialised (shape changed, e.g. a new number of classes)\n";
  return weights;
}

std::string Duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  return s >= 3600 ? absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                   : absl::StrFormat("%d:%02d", s / 60, s % 60);
}

#ifdef CLCA_HAVE_PREPROCESS
int Train(TrainArgs a) {
  for (double kr : a.recipe.keep_rates) {
    if (auto s = ValidateKeepRate(kr); !s.ok()) return Fail(s);
  }
  OutputFiles files{a.out};
  std::error_code error;
  fs::create_directories(files.resume_dir(), error);
  if (error) return Fail(absl::InternalError(absl::StrCat("cannot create ", a.out, ": ", error.message())));

  auto dataset = data::OpenDataset(a.data, a.split);
  if (!dataset.ok()) return Fail(dataset.status());
  const int classes = dataset->num_classes();

  // Configuration and starting weights: a resumed run, --init, or scratch.
  nlohmann::json state = nlohmann::json::object();
  std::unique_ptr<Checkpoint> start;
  if (a.resume) {
    auto s = ReadJsonFile(files.resume_state().string());
    if (!s.ok()) return Fail(absl::NotFoundError(absl::StrCat("nothing to resume in ", a.out, ": ", s.status().message())));
    state = *s;
    auto c = LoadCheckpoint(files.resume_model().string());
    if (!c.ok()) return Fail(c.status());
    start = std::make_unique<Checkpoint>(std::move(*c));
  } else if (!a.init.empty()) {
    auto c = LoadCheckpoint(a.init);
    if (!c.ok()) return Fail(c.status());
    start = std::make_unique<Checkpoint>(std::move(*c));
  }
  auto given = ConfigFlagsJson(a.config);
  if (!given.ok()) return Fail(given.status());
  if (given->contains("num_classes") && (*given)["num_classes"] != classes) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "num_classes is ", (*given)["num_classes"].dump(), " but the dataset has ", classes, " classes")));
  }
  (*given)["num_classes"] = classes;
  nlohmann::json start_args = start && start->args.is_object() ? start->args : nlohmann::json();
  if (!a.resume && start_args.is_object()) {
    // A checkpoint's own classifier size does not bind the new model.
    start_args.erase("num_classes");
  }
  auto config = ResolveConfig(*given, start_args.is_object() ? &start_args : nullptr);
  if (!config.ok()) return Fail(config.status());
  if (a.recipe.keep_rates.empty()) a.recipe.keep_rates = {config->keep_rate};
  SetComputeThreads(a.threads);

  absl::StatusOr<StateDict> weights =
      a.resume ? absl::StatusOr<StateDict>(start->state_dict)
               : InitialWeights(*config, a, start ? start.get() : nullptr);
  if (!weights.ok()) return Fail(weights.status());
  start.reset();
  ModelOptions model_options;
  model_options.trainable = true;
  auto model = ClcaModel::Create(*config, *weights, model_options);
  if (!model.ok()) return Fail(model.status());
  weights->clear();

  LoaderOptions loader_options;
  loader_options.input_size = config->input_size;
  loader_options.batch_size = a.batch;
  loader_options.threads = a.loader_threads;
  loader_options.seed = a.seed;
  if (!a.quiet) std::cerr << "clca train: reading " << dataset->examples.size() << " images\n";
  auto loader = TrainLoader::Create(dataset->examples, loader_options);
  if (!loader.ok()) return Fail(loader.status());
  const int64_t per_epoch = (*loader)->batches_per_epoch();
  auto trainer = Trainer::Create(model->get(), a.recipe, per_epoch);
  if (!trainer.ok()) return Fail(trainer.status());
  if (a.resume) {
    if (auto s = (*trainer)->LoadOptimizer(files.resume_optimizer().string()); !s.ok()) return Fail(s);
    (*trainer)->set_step(state.value("step", int64_t{0}));
  }
  const nlohmann::json args = CheckpointArgs(*config, a);
  std::string labels;
  for (const std::string& name : dataset->class_names) labels += name + "\n";
  nlohmann::json model_json = config->ToJson();
  model_json.erase("method");
  model_json.erase("backbone");
  if (auto s = WriteText(files.config(), model_json.dump(2) + "\n"); !s.ok()) return Fail(s);
  if (auto s = WriteText(files.labels(), labels); !s.ok()) return Fail(s);

  auto save_resume = [&](int64_t step) -> absl::Status {
    if (auto s = SaveAtomically(files.resume_model(), (*model)->state_dict(), args); !s.ok()) return s;
    const std::string tmp = files.resume_optimizer().string() + ".tmp";
    if (auto s = (*trainer)->SaveOptimizer(tmp); !s.ok()) return s;
    std::error_code rename_error;
    fs::rename(tmp, files.resume_optimizer(), rename_error);
    if (rename_error) {
      return absl::InternalError(absl::StrCat("cannot write ", files.resume_optimizer().string(),
                                              ": ", rename_error.message()));
    }
    nlohmann::json st = {{"step", step}, {"epochs", a.recipe.epochs}, {"steps_per_epoch", per_epoch}};
    return WriteText(files.resume_state(), st.dump() + "\n");
  };

  const bool tty = isatty(fileno(stderr)) != 0;
  const int64_t total = per_epoch * a.recipe.epochs;
  const int64_t stop_at = a.max_steps > 0 ? std::min(total, (*trainer)->step() + a.max_steps) : total;
  const auto started = Clock::now();
  int64_t images_done = 0;
  double first_loss = NAN, last_epoch_loss = NAN, last_epoch_acc = NAN;
  bool out_of_time = false;
  std::ofstream log(files.log(), std::ios::app);
  torch::manual_seed(a.seed * 1000003 + static_cast<uint64_t>((*trainer)->step()));

  while ((*trainer)->step() < stop_at && !out_of_time) {
    const int64_t step0 = (*trainer)->step();
    const int epoch = static_cast<int>(step0 / per_epoch);
    (*loader)->StartEpoch(epoch, step0 % per_epoch);
    double loss_sum = 0, aux_sum = 0;
    int64_t correct = 0, seen = 0, steps = 0;
    const auto epoch_start = Clock::now();
    while ((*trainer)->step() < std::min(stop_at, (epoch + 1) * per_epoch)) {
      Batch batch = (*loader)->Next();
      auto r = (*trainer)->Step(batch.images, batch.labels);
      if (!r.ok()) return Fail(r.status());
      if (std::isnan(first_loss)) first_loss = r->loss;
      loss_sum += r->loss;
      aux_sum += r->auxiliary_loss;
      correct += r->correct;
      seen += batch.labels.size(0);
      ++steps;
      images_done += batch.labels.size(0);
      const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
      const double rate = images_done / std::max(elapsed, 1e-9);
      const int64_t in_epoch = (*trainer)->step() - epoch * per_epoch;
      const double eta = (stop_at - (*trainer)->step()) * a.batch / std::max(rate, 1e-9);
      if (!a.quiet && (tty || in_epoch == per_epoch || in_epoch % std::max<int64_t>(1, per_epoch / 4) == 0)) {
        const int width = 20;
        const int filled = static_cast<int>(width * in_epoch / per_epoch);
        std::cerr << absl::StrFormat(
                         "%sepoch %d/%d [%s%s] %d/%d loss %.4f acc %.1f%% lr %.2e kr %.2f %.1f img/s ETA %s",
                         tty ? "\r" : "", epoch + 1, a.recipe.epochs, std::string(filled, '#'),
                         std::string(width - filled, '.'), in_epoch, per_epoch, loss_sum / steps,
                         100.0 * correct / seen, r->lr, r->keep_rate, rate, Duration(eta))
                  << (tty ? "" : "\n") << std::flush;
      }
      if (a.max_minutes > 0 && elapsed > a.max_minutes * 60) {
        out_of_time = true;
        break;
      }
    }
    if (tty && !a.quiet) std::cerr << "\n";
    last_epoch_loss = loss_sum / std::max<int64_t>(steps, 1);
    last_epoch_acc = 100.0 * correct / std::max<int64_t>(seen, 1);
    const double epoch_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    log << nlohmann::json{{"epoch", epoch + 1},
                          {"step", (*trainer)->step()},
                          {"loss", last_epoch_loss},
                          {"auxiliary_loss", aux_sum / std::max<int64_t>(steps, 1)},
                          {"train_top1", last_epoch_acc},
                          {"lr", LearningRateAt(a.recipe, static_cast<double>((*trainer)->step()) / per_epoch)},
                          {"images_per_s", seen / std::max(epoch_seconds, 1e-9)},
                          {"elapsed_s", std::chrono::duration<double>(Clock::now() - started).count()}}
                  .dump()
        << "\n";
    log.flush();
    if (auto s = save_resume((*trainer)->step()); !s.ok()) return Fail(s);
  }

  StateDict final_weights = (*model)->state_dict();
  if (a.half) {
    for (auto& [name, t] : final_weights) {
      if (t.is_floating_point()) t = t.to(torch::kFloat16);
    }
  }
  if (auto s = SaveAtomically(files.model(), final_weights, args); !s.ok()) return Fail(s);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  nlohmann::json summary = {{"out", a.out},
                            {"steps", (*trainer)->step()},
                            {"epochs_completed", static_cast<double>((*trainer)->step()) / per_epoch},
                            {"first_loss", first_loss},
                            {"last_epoch_loss", last_epoch_loss},
                            {"last_epoch_train_top1", last_epoch_acc},
                            {"seconds", seconds},
                            {"finished", (*trainer)->step() >= total}};
  if (a.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat("trained %d steps (%.2f epochs) in %s; last epoch loss %.4f, train top-1 %.1f%%\n"
                                 "wrote %s\n",
                                 (*trainer)->step(), summary["epochs_completed"].get<double>(),
                                 Duration(seconds), last_epoch_loss, last_epoch_acc,
                                 files.model().string());
  }
  return 0;
}
#else
int Train(TrainArgs) {
  return Fail(absl::UnimplementedError("clca was built without image preprocessing (OpenCV)"));
}
#endif

}  // namespace

void AddTrainCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train or fine-tune a model on a dataset (reference recipe) into a version directory");
  cmd->add_option("--data", a->data, "dataset root (UFG CSV, anno or class folders)")->required();
  cmd->add_option("--split", a->split, "split to train on")->capture_default_str();
  cmd->add_option("--out", a->out,
                  "output version directory: model.pth, model.json, labels.txt, train_log.jsonl, resume/")
      ->required();
  cmd->add_option("--init", a->init, "checkpoint to fine-tune from (default: random initialisation)");
  AddConfigFlags(cmd, &a->config);
  cmd->add_option("--epochs", a->recipe.epochs)->capture_default_str();
  cmd->add_option("--warmup-epochs", a->recipe.warmup_epochs)->capture_default_str();
  cmd->add_option("--cooldown-epochs", a->recipe.cooldown_epochs)->capture_default_str();
  cmd->add_option("--lr", a->recipe.lr)->capture_default_str();
  cmd->add_option("--warmup-lr", a->recipe.warmup_lr)->capture_default_str();
  cmd->add_option("--min-lr", a->recipe.min_lr)->capture_default_str();
  cmd->add_option("--weight-decay", a->recipe.weight_decay)->capture_default_str();
  cmd->add_option("--smoothing", a->recipe.label_smoothing, "label smoothing")->capture_default_str();
  cmd->add_option("--clip-grad", a->recipe.clip_grad, "gradient-norm clip (0: none)")->capture_default_str();
  cmd->add_option("--keep-rates", a->recipe.keep_rates,
                  "keep rates to train at, one drawn per step (default: the configuration's)")
      ->delimiter(',');
  cmd->add_option("--batch", a->batch)->capture_default_str();
  cmd->add_option("--seed", a->seed)->capture_default_str();
  cmd->add_option("--threads", a->threads, "LibTorch and BLAS threads (0: their defaults)")->capture_default_str();
  cmd->add_option("--loader-threads", a->loader_threads)->capture_default_str();
  cmd->add_option("--max-minutes", a->max_minutes,
                  "stop after this many minutes (resumable; 0: no limit)")->capture_default_str();
  cmd->add_option("--max-steps", a->max_steps, "stop after this many steps (0: no limit)")->capture_default_str();
  cmd->add_option("--patch-init", a->patch_init,
                  "patch embedding of a model trained from scratch: random, or dct (a 2-D "
                  "cosine basis over all frequency bands)")
      ->check(CLI::IsMember({"random", "dct"}))
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume, "continue the run saved in --out");
  cmd->add_flag("--half", a->half, "store the final weights as float16");
  cmd->add_flag("--json", a->json, "print a JSON summary");
  cmd->add_flag("--quiet", a->quiet, "no progress output");
  cmd->callback([a, exit_code] { *exit_code = Train(*a); });
}

}  // namespace clca::tool
