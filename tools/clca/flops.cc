// clca flops: GMACs and tokens per block of a configuration, without weights.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "models/cost.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"

namespace clca::tool {
namespace {

struct FlopsArgs {
  std::string config, model;
  std::vector<double> keep_rates;
  std::vector<int> reduction_loc;
  int input_size = 0, num_classes = 0, embed_dim = 0, depth = 0, num_heads = 0, num_clr = -1;
  std::string ifa_head, clc;  // "true"/"false" or empty
  bool json = false;
};

int Flops(const FlopsArgs& a) {
  auto given = ReadJsonFile(a.config);
  if (!given.ok()) return Fail(given.status());
  nlohmann::json& g = *given;
  if (!a.model.empty()) g["model"] = a.model;
  for (auto [key, value] : {std::pair{"input_size", a.input_size}, std::pair{"num_classes", a.num_classes},
                            std::pair{"embed_dim", a.embed_dim}, std::pair{"depth", a.depth},
                            std::pair{"num_heads", a.num_heads}}) {
    if (value > 0) g[key] = value;
  }
  if (a.num_clr >= 0) g["num_clr"] = a.num_clr;
  if (!a.reduction_loc.empty()) g["reduction_loc"] = a.reduction_loc;
  if (!a.ifa_head.empty()) g["ifa_head"] = a.ifa_head == "true" || a.ifa_head == "1";
  if (!a.clc.empty()) g["clc"] = a.clc == "true" || a.clc == "1";
  // The classifier is negligible in the count; let configurations omit it.
  if (!g.contains("num_classes")) g["num_classes"] = 1000;
  auto config = ResolveConfig(g);
  if (!config.ok()) return Fail(config.status());
  std::vector<double> rates = a.keep_rates;
  if (rates.empty()) rates.push_back(config->keep_rate);

  nlohmann::json results = nlohmann::json::array();
  std::string text = absl::StrFormat("%s @%d (%s, %s%s)\n", config->model, config->input_size,
                                     ReductionName(config->reduction), BackboneName(config->backbone),
                                     config->clc ? ", CLCA" : "");
  for (double kr : rates) {
    auto cost = EstimateCost(*config, kr);
    if (!cost.ok()) return Fail(cost.status());
    results.push_back({{"keep_rate", kr}, {"gmacs", cost->gmacs()}, {"tokens", cost->tokens}});
    absl::StrAppendFormat(&text, "keep rate %-5g %8.3f GMACs   tokens %s\n", kr, cost->gmacs(),
                          absl::StrJoin(cost->tokens, " "));
  }
  nlohmann::json out = {{"model", config->model},
                        {"input_size", config->input_size},
                        {"config", config->ToJson()},
                        {"results", results}};
  auto s = WriteOutput("", a.json ? out.dump(1) + "\n" : text);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

void AddFlopsCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<FlopsArgs>();
  CLI::App* cmd = app.add_subcommand("flops", "GMACs (as the paper counts them) and tokens per block");
  cmd->add_option("--config", a->config, "configuration JSON (reference field names)");
  cmd->add_option("--model", a->model, "model name, e.g. evit_vit_base_patch16_224");
  cmd->add_option("--keep-rate", a->keep_rates, "keep rate(s); default: the configuration's")
      ->delimiter(',');
  cmd->add_option("--input-size", a->input_size);
  cmd->add_option("--num-classes", a->num_classes);
  cmd->add_option("--embed-dim", a->embed_dim);
  cmd->add_option("--depth", a->depth);
  cmd->add_option("--num-heads", a->num_heads);
  cmd->add_option("--num-clr", a->num_clr);
  cmd->add_option("--reduction-loc", a->reduction_loc)->delimiter(',');
  cmd->add_option("--ifa-head", a->ifa_head, "true/false");
  cmd->add_option("--clc", a->clc, "true/false");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, exit_code] { *exit_code = Flops(*a); });
}

}  // namespace clca::tool
