// clca flops: GMACs and tokens per block of a configuration, without weights.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "models/vit/cost.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"

namespace clca::tool {
namespace {

struct FlopsArgs {
  ConfigFlags config;
  std::vector<double> keep_rates;
  bool json = false;
};

int Flops(const FlopsArgs& a) {
  auto config = ResolveConfigFlags(a.config);
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
  AddConfigFlags(cmd, &a->config);
  cmd->add_option("--keep-rate", a->keep_rates, "keep rate(s); default: the configuration's")
      ->delimiter(',');
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, exit_code] { *exit_code = Flops(*a); });
}

}  // namespace clca::tool
