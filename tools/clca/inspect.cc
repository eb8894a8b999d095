// clca inspect: what a checkpoint holds and the model it builds; clca init:
// a randomly initialised checkpoint for a configuration.
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/io/checkpoint.h"
#include "models/save/checkpoint_writer.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"

namespace clca::tool {
namespace {

struct InspectArgs {
  std::string checkpoint, config;
  bool json = false;
};

int Inspect(const InspectArgs& a) {
  auto given = ReadJsonFile(a.config);
  if (!given.ok()) return Fail(given.status());
  auto ck = LoadCheckpoint(a.checkpoint);
  if (!ck.ok()) return Fail(ck.status());
  nlohmann::json report = {{"checkpoint", a.checkpoint},
                           {"format", ck->format},
                           {"weights_key", ck->source_key},
                           {"tensors", ck->state_dict.size()},
                           {"args", ck->args}};
  std::map<std::string, int64_t> dtypes;
  std::vector<std::string> notes;
  int64_t params = 0;
  for (const auto& [name, t] : ck->state_dict) {
    dtypes[std::string(c10::toString(t.scalar_type()))] += 1;
    if (t.is_floating_point()) {
      params += t.numel();
      if (!torch::isfinite(t).all().item<bool>()) notes.push_back(name + " has non-finite values");
    }
  }
  report["dtypes_loaded"] = dtypes;
  report["parameters_in_file"] = params;
  if (ck->args.is_null()) notes.push_back("no training args: every field must come from --config");
  const nlohmann::json* args = ck->args.is_object() ? &ck->args : nullptr;
  auto config = ResolveConfig(*given, args);
  if (!config.ok()) {
    notes.push_back(std::string(config.status().message()));
  } else {
    report["config"] = config->ToJson();
    auto model = ClcaModel::Create(*config, ck->state_dict);
    if (!model.ok()) {
      notes.push_back(std::string(model.status().message()));
    } else {
      report["model_builds"] = true;
      for (const auto& [name, t] : ck->state_dict) {
        if (name == "pos_embed" && config->backbone != Backbone::kDeit3 &&
            t.size(1) != 1 + config->num_patches() + config->num_clr) {
          notes.push_back(absl::StrCat("pos_embed grid resized for input size ", config->input_size));
        }
      }
      nlohmann::json costs = nlohmann::json::object();
      for (double kr : {0.1, 0.25, 0.5, 0.7, 1.0}) {
        auto cost = EstimateCost(*config, kr);
        if (cost.ok()) costs[absl::StrFormat("%g", kr)] = cost->gmacs();
      }
      report["gmacs_by_keep_rate"] = costs;
    }
  }
  report["notes"] = notes;
  if (!report.contains("model_builds")) report["model_builds"] = false;
  std::string text;
  if (a.json) {
    text = report.dump(1) + "\n";
  } else {
    text = absl::StrCat("checkpoint  ", a.checkpoint, " (", ck->format,
                        ck->source_key.empty() ? "" : ", weights under '" + ck->source_key + "'", ")\n",
                        "tensors     ", ck->state_dict.size(), ", ", params, " floating-point values\n");
    for (const auto& [dt, n] : dtypes) absl::StrAppend(&text, "dtype       ", dt, ": ", n, " tensors\n");
    if (report.contains("config")) absl::StrAppend(&text, "config      ", report["config"].dump(), "\n");
    if (report.contains("gmacs_by_keep_rate")) {
      absl::StrAppend(&text, "gmacs       ", report["gmacs_by_keep_rate"].dump(), "\n");
    }
    absl::StrAppend(&text, "builds      ", report["model_builds"].get<bool>() ? "yes" : "no", "\n");
    for (const auto& n : notes) absl::StrAppend(&text, "note        ", n, "\n");
  }
  auto s = WriteOutput("", text);
  if (!s.ok()) return Fail(s);
  return report["model_builds"].get<bool>() ? 0 : 1;
}

struct InitArgs {
  std::string config, output;
  uint64_t seed = 0;
  bool half = false;
};

int Init(const InitArgs& a) {
  auto given = ReadJsonFile(a.config);
  if (!given.ok()) return Fail(given.status());
  auto config = ResolveConfig(*given);
  if (!config.ok()) return Fail(config.status());
  auto model = ClcaModel::CreateRandom(*config, a.seed);
  if (!model.ok()) return Fail(model.status());
  nlohmann::json args = config->ToJson();
  args["seed"] = a.seed;
  StateDict weights = (*model)->state_dict();
  if (a.half) {
    for (auto& [name, t] : weights) {
      if (t.is_floating_point()) t = t.to(torch::kFloat16);
    }
  }
  auto s = SaveCheckpoint(a.output, weights, args);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

void AddInspectCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a checkpoint and the model it builds");
  cmd->add_option("--checkpoint", a->checkpoint)->required();
  cmd->add_option("--config", a->config, "configuration JSON overriding the checkpoint's args");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, exit_code] { *exit_code = Inspect(*a); });
}

void AddInitCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<InitArgs>();
  CLI::App* cmd = app.add_subcommand("init", "Write a randomly initialised checkpoint for a configuration");
  cmd->add_option("--config", a->config, "configuration JSON")->required();
  cmd->add_option("--seed", a->seed, "random seed");
  cmd->add_option("--output", a->output, "output .pth")->required();
  cmd->add_flag("--half", a->half, "store float16 weights (half the size; loaded as float32)");
  cmd->callback([a, exit_code] { *exit_code = Init(*a); });
}

}  // namespace clca::tool
